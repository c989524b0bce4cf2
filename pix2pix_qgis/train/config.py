"""Training options (:class:`TrainConfig`), validated once, and the U-Net depth they imply for a chip size.

Defaults follow the reference pix2pix where they apply. The fields in ``ARCHITECTURE_FIELDS``
define the weights: a checkpoint resumes only with the same values.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from ..contract.errors import Pix2PixError
from ..contract.tables import TRAIN
from ..data.folder import ChipsFolder
from ..model.discriminators import DiscriminatorSpec
from ..model.generators import AnyGeneratorSpec
from ..model.networks import MAX_DEPTH, GeneratorSpec, check_chip_size, deepest_fit
from ..model.resnet import ResnetSpec

# Fields that define the weights: a checkpoint resumes only with the same values.
ARCHITECTURE_FIELDS = ("model_type", "generator", "resnet_blocks", "ngf", "ndf", "norm", "dropout", "upsample",
                       "d_scales", "spectral_norm")

# What a checkpoint written before a field existed was trained with (its default then).
LEGACY_VALUES: dict[str, Any] = {"upsample": "transpose", "d_scales": 1, "spectral_norm": False, "lambda_feat": 0.0,
                                 "model_type": "pix2pix", "generator": "unet"}

# The defaults that differ between the two models: each reference's own (pix2pix's train options;
# CycleGAN's cycle_gan_model.py and its base options: LSGAN, instance norm, resnet_9blocks).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "pix2pix": {"gan_mode": "vanilla", "norm": "batch", "generator": "unet"},
    "cyclegan": {"gan_mode": "lsgan", "norm": "instance", "generator": "resnet"},
}


@dataclass(frozen=True)
class TrainConfig:
    """Training options, validated once. Defaults follow the reference where they apply.

    ``epochs`` is the total; the last ``epochs_decay`` of them (default: half, as the
    reference's 100 + 100) decay the learning rate linearly towards 0. ``depth`` None picks
    the deepest U-Net (≤ 8) the chip size allows. ``validation`` applies only to Esri
    folders (ours carry a spatial split). ``num_workers`` None picks 0 on the CPU and up to
    4 on CUDA. ``precision`` None (auto) follows ``amp``: mixed precision on CUDA unless
    ``amp`` is off, float32 on the CPU; float32, bfloat16 or float16 ask for one, checked
    against the device when the trainer is built (``optimisation.training_dtype``).
    ``channels_last`` acts only on CUDA. The checkpoint is written at
    the end of an epoch once ``checkpoint_minutes`` have passed since the last one (0: every
    epoch), when the run ends and when it is cancelled.

    The pix2pixHD options: ``upsample`` (``networks.UPSAMPLES``), ``d_scales`` PatchGANs at
    halving resolutions, ``spectral_norm`` in the discriminator, ``gan_mode`` hinge, and
    ``lambda_feat`` > 0 adds the feature-matching loss with that weight (pix2pixHD: 10).
    """

    model_type: str = TRAIN["MODEL_TYPE"].default
    epochs: int = TRAIN["EPOCHS"].default
    epochs_decay: int | None = None
    batch_size: int = TRAIN["BATCH_SIZE"].default
    lr: float = TRAIN["LR"].default
    beta1: float = TRAIN["BETA1"].default
    lambda_l1: float = TRAIN["LAMBDA_L1"].default
    gan_mode: str = None  # type: ignore[assignment]  # resolved in __post_init__ (MODEL_DEFAULTS)
    lambda_feat: float = TRAIN["LAMBDA_FEAT"].default
    lambda_cycle: float = TRAIN["LAMBDA_CYCLE"].default
    lambda_identity: float = TRAIN["LAMBDA_IDENTITY"].default
    pool_size: int = TRAIN["POOL_SIZE"].default
    generator: str = None  # type: ignore[assignment]  # resolved in __post_init__
    resnet_blocks: int = TRAIN["RESNET_BLOCKS"].default
    ngf: int = TRAIN["NGF"].default
    ndf: int = TRAIN["NDF"].default
    depth: int | None = None
    norm: str = None  # type: ignore[assignment]  # resolved in __post_init__
    dropout: bool = TRAIN["DROPOUT"].default
    upsample: str = TRAIN["UPSAMPLE"].default
    d_scales: int = TRAIN["D_SCALES"].default
    spectral_norm: bool = TRAIN["SPECTRAL_NORM"].default
    augment: bool = TRAIN["AUGMENT"].default
    best_metric: str = TRAIN["BEST_METRIC"].default
    patience: int | None = None
    validation: float = TRAIN["VALIDATION"].default
    device: str = TRAIN["DEVICE"].default
    num_workers: int | None = None
    seed: int = TRAIN["SEED"].default
    amp: bool = TRAIN["AMP"].default
    precision: str | None = None  # auto: as ``amp``
    channels_last: bool = True  # internal: not a user parameter
    preview_chips: int = 4  # internal: chips shown in the report's previews
    checkpoint_minutes: float = TRAIN["CHECKPOINT_MINUTES"].default

    def __post_init__(self) -> None:
        TRAIN.check_object(self)  # ranges, choices and their messages: contract.tables
        for name, value in MODEL_DEFAULTS[self.model_type].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.model_type == "cyclegan" and self.lambda_feat > 0:
            raise Pix2PixError(f"LAMBDA_FEAT {self.lambda_feat} (--lambda-feat) is pix2pix's feature matching against "
                               "the real pair, which CycleGAN does not have; leave it at 0 for --model cyclegan.")
        if self.epochs_decay is not None and self.epochs_decay > self.epochs:
            raise Pix2PixError(f"EPOCHS_DECAY {self.epochs_decay} (--epochs-decay) must be between 0 and EPOCHS "
                               f"({self.epochs}); half of EPOCHS, the default, is typical.")
        if not self.amp and self.precision not in (None, "float32"):
            raise Pix2PixError(f"AMP off (--no-amp, amp=False) asks for float32, but PRECISION is {self.precision} "
                               f"(--precision); to train in {self.precision} leave AMP on, else drop PRECISION.")
        if self.preview_chips < 1:
            raise Pix2PixError(f"PREVIEW_CHIPS {self.preview_chips} must be at least 1.")

    def workers_for(self, device: torch.device) -> int:
        """Chip-reading processes: as configured, else none on the CPU (they would compete with
        the compute threads) and up to 4 on CUDA (so reading keeps up with the GPU)."""
        if self.num_workers is not None:
            return self.num_workers
        return min(4, max(0, (os.cpu_count() or 1) - 1)) if device.type == "cuda" else 0

    @property
    def decay_epochs(self) -> int:
        """Epochs of linear learning-rate decay at the end (half the epochs unless given)."""
        return self.epochs // 2 if self.epochs_decay is None else self.epochs_decay

    def lr_factor(self, epoch: int) -> float:
        """The reference's linear policy for 1-based ``epoch``: 1 until the decay starts, then → 1/(n+1)."""
        constant = self.epochs - self.decay_epochs
        return 1.0 - max(0, epoch - constant) / (self.decay_epochs + 1)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as recorded in ``model.json`` and the checkpoint."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The config a checkpoint recorded; unknown keys are ignored, and fields it predates take the value
        they had then (``LEGACY_VALUES``)."""
        names = {f.name for f in fields(cls)}
        return cls(**{**LEGACY_VALUES, **{k: v for k, v in data.items() if k in names}})

    def discriminator_spec(self, in_channels: int) -> DiscriminatorSpec:
        """The discriminator these options build for pairs of ``in_channels`` bands in all."""
        return DiscriminatorSpec(in_channels, self.ndf, 3, self.norm, self.d_scales, self.spectral_norm)


def choose_depth(config: TrainConfig, tile_size: int) -> int:
    """The U-Net depth for ``tile_size`` px chips, with errors that say what chip sizes work."""
    config.discriminator_spec(1).check_chip_size(tile_size)
    if config.depth is not None:
        check_chip_size(tile_size, tile_size, config.depth)
        return config.depth
    depth = deepest_fit(tile_size, MAX_DEPTH)
    if depth == 0:
        raise Pix2PixError(
            f"Chips of {tile_size} px cannot go through a U-Net: the size must be divisible by at least 4 "
            "(a multiple of 256 gives the reference depth 8). Re-export with such a tile size."
        )
    return depth


def generator_spec(config: TrainConfig, chips: ChipsFolder) -> AnyGeneratorSpec:
    """The generator ``config`` builds for ``chips``: their band counts, the U-Net depth their size allows,
    or the ResNet of ``resnet_blocks`` (``generator`` resnet, as the reference's ``--netG resnet_9blocks``)."""
    if config.generator == "resnet":
        config.discriminator_spec(1).check_chip_size(chips.tile_size)
        spec = ResnetSpec(chips.bands_a, chips.bands_b, config.resnet_blocks, config.ngf, config.norm, config.dropout,
                          config.upsample)
        spec.check_size(chips.tile_size, chips.tile_size)
        return spec
    depth = choose_depth(config, chips.tile_size)
    return GeneratorSpec(chips.bands_a, chips.bands_b, depth, config.ngf, config.norm, config.dropout,
                         config.upsample)
