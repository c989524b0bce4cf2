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
from ..data.folder import ChipsFolder
from ..model.networks import MAX_DEPTH, NORMS, GeneratorSpec, check_chip_size, deepest_fit, patchgan_output_size

GAN_MODES = ("vanilla", "lsgan")


BEST_METRICS = ("l1", "mae", "rmse", "psnr", "ssim")


# Fields that define the weights: a checkpoint resumes only with the same values.
ARCHITECTURE_FIELDS = ("ngf", "ndf", "norm", "dropout")


@dataclass(frozen=True)
class TrainConfig:
    """Training options, validated once. Defaults follow the reference where they apply.

    ``epochs`` is the total; the last ``epochs_decay`` of them (default: half, as the
    reference's 100 + 100) decay the learning rate linearly towards 0. ``depth`` None picks
    the deepest U-Net (≤ 8) the chip size allows. ``validation`` applies only to Esri
    folders (ours carry a spatial split). ``num_workers`` None picks 0 on the CPU and up to
    4 on CUDA. ``amp`` and ``channels_last`` act only on CUDA. The checkpoint is written at
    the end of an epoch once ``checkpoint_minutes`` have passed since the last one (0: every
    epoch), when the run ends and when it is cancelled.
    """

    epochs: int = 50
    epochs_decay: int | None = None
    batch_size: int = 4
    lr: float = 2e-4
    beta1: float = 0.5
    lambda_l1: float = 100.0
    gan_mode: str = "vanilla"
    ngf: int = 64
    ndf: int = 64
    depth: int | None = None
    norm: str = "batch"
    dropout: bool = True
    augment: bool = True
    best_metric: str = "l1"
    patience: int | None = None
    validation: float = 0.1
    device: str = "auto"
    num_workers: int | None = None
    seed: int = 0
    amp: bool = True
    channels_last: bool = True
    preview_chips: int = 4
    checkpoint_minutes: float = 2.0

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise Pix2PixError(message)

        need(self.epochs >= 1, f"EPOCHS {self.epochs} must be at least 1.")
        need(self.epochs_decay is None or 0 <= self.epochs_decay <= self.epochs,
             f"EPOCHS_DECAY {self.epochs_decay} must be between 0 and EPOCHS ({self.epochs}).")
        need(self.batch_size >= 1, f"BATCH_SIZE {self.batch_size} must be at least 1 (1–16 is usual).")
        need(0 < self.lr < 1, f"Learning rate {self.lr} must be in (0, 1); the reference uses 0.0002.")
        need(0 <= self.beta1 < 1, f"BETA1 {self.beta1} must be in [0, 1); the reference uses 0.5.")
        need(self.lambda_l1 >= 0, f"LAMBDA_L1 {self.lambda_l1} must not be negative; the reference uses 100.")
        need(self.gan_mode in GAN_MODES, f"GAN mode '{self.gan_mode}' is unknown; use {' or '.join(GAN_MODES)}.")
        need(self.ngf >= 1 and self.ndf >= 1, f"NGF/NDF ({self.ngf}/{self.ndf}) must be at least 1 (64 is usual).")
        need(self.depth is None or 2 <= self.depth <= 10, f"DEPTH {self.depth} must be 2 to 10 (8 is the reference).")
        need(self.norm in NORMS, f"Normalisation '{self.norm}' is unknown; use {' or '.join(NORMS)}.")
        need(self.best_metric in BEST_METRICS,
             f"Best metric '{self.best_metric}' is unknown; use one of {', '.join(BEST_METRICS)}.")
        need(self.patience is None or self.patience >= 1, f"PATIENCE {self.patience} must be at least 1 epoch.")
        need(0 <= self.validation < 1, f"VALIDATION {self.validation} must be a fraction in [0, 1), e.g. 0.1.")
        need(self.num_workers is None or self.num_workers >= 0,
             f"WORKERS {self.num_workers} must not be negative (0 reads in the main process).")
        need(self.seed >= 0, f"SEED {self.seed} must not be negative.")
        need(self.preview_chips >= 1, f"PREVIEW_CHIPS {self.preview_chips} must be at least 1.")
        need(self.checkpoint_minutes >= 0, f"CHECKPOINT_MINUTES {self.checkpoint_minutes} must not be negative.")
        device = self.device
        need(device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()),
             f"Device '{device}' is unknown; use auto, cpu, cuda or cuda:N.")

    def workers_for(self, device: torch.device) -> int:
        """Chip-reading processes: as configured, else none on the CPU (they would compete with
        the compute threads) and up to 4 on CUDA (so reading keeps up with the GPU)."""
        if self.num_workers is not None:
            return self.num_workers
        return min(4, max(0, (os.cpu_count() or 1) - 1)) if device.type == "cuda" else 0

    @property
    def decay_epochs(self) -> int:
        return self.epochs // 2 if self.epochs_decay is None else self.epochs_decay

    def lr_factor(self, epoch: int) -> float:
        """The reference's linear policy for 1-based ``epoch``: 1 until the decay starts, then → 1/(n+1)."""
        constant = self.epochs - self.decay_epochs
        return 1.0 - max(0, epoch - constant) / (self.decay_epochs + 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def choose_depth(config: TrainConfig, tile_size: int) -> int:
    """The U-Net depth for ``tile_size`` px chips, with errors that say what chip sizes work."""
    if patchgan_output_size(tile_size) < 1:
        raise Pix2PixError(
            f"Chips of {tile_size} px are too small for the 70×70 PatchGAN discriminator; export chips of at "
            "least 32 px (256 is typical)."
        )
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


def generator_spec(config: TrainConfig, chips: ChipsFolder) -> GeneratorSpec:
    """The generator ``config`` builds for ``chips``: their band counts, the depth their size allows."""
    depth = choose_depth(config, chips.tile_size)
    return GeneratorSpec(chips.bands_a, chips.bands_b, depth, config.ngf, config.norm, config.dropout)
