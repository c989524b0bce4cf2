"""One Pix2Pix training step and validation: the two networks, their optimizers, precision and device.

The step is the reference's (one D update, then one G update on the same batch), with
nodata handled as the loop's docstring says, and pix2pixHD's options: a multi-scale
discriminator (its adversarial losses averaged over the scales) and, with ``lambda_feat``,
the feature-matching loss against the updated discriminator's activations on the real pair.
:class:`Pix2PixTrainer` is what the loop drives; ``scale.ddp.DistributedTrainer`` wraps its
modules in DDP for data-parallel runs.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from ..core.progress import Progress
from ..data.dataset import ChipDataset, ChipView
from ..data.folder import ChipsFolder
from ..evaluate.metrics import MetricAccumulator
from ..model.checkpoint import tensor_group
from ..model.discriminators import MultiscaleDiscriminator, build_discriminator, legacy_state
from ..model.generators import AnyGeneratorSpec, Generator, build_generator
from .config import TrainConfig
from .losses import FEATURE_LOSS, LOSS_NAMES, adversarial_loss, feature_matching_loss, masked_l1
from .optimisation import Optimisation


class Pix2PixTrainer:
    """The two networks, their optimizers and one training step; precision and layout from :class:`Optimisation`.

    ``train_g``/``train_d`` are the modules the training step calls: the networks themselves
    here, their DDP wrappers in data-parallel runs (``distributed.DistributedTrainer``).
    """

    rank, world_size = 0, 1

    def __init__(self, spec: AnyGeneratorSpec, config: TrainConfig, device: torch.device) -> None:
        self.config, self.device = config, device
        init = torch.Generator().manual_seed(config.seed)
        self.generator: Generator = build_generator(spec, init).to(device)
        self.discriminator: MultiscaleDiscriminator = build_discriminator(
            config.discriminator_spec(spec.in_channels + spec.out_channels), generator=init).to(device)
        self.optimisation = Optimisation(config, device, [self.generator], [self.discriminator])
        self.train_g: torch.nn.Module = self.generator
        self.train_d: torch.nn.Module = self.discriminator

    @property
    def is_writer(self) -> bool:
        """Whether this process writes checkpoints and the model (rank 0 of a data-parallel run)."""
        return self.rank == 0

    def train_mode(self) -> None:
        """Both networks in training mode (dropout on, BatchNorm learning its statistics)."""
        self.generator.train()
        self.discriminator.train()

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of both optimizers (the decay policy calls this each epoch)."""
        self.optimisation.set_lr(lr)

    def to_device(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A batch's A, B and mask on the training device in its memory format, copied without blocking."""
        move = self.optimisation.move
        return move(batch["a"]), move(batch["b"]), move(batch["mask"])

    @property
    def loss_names(self) -> tuple[str, ...]:
        """The losses :meth:`step` returns: the four of pix2pix, plus G_feat with feature matching."""
        return (*LOSS_NAMES, FEATURE_LOSS) if self.config.lambda_feat > 0 else LOSS_NAMES

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One D update then one G update on a batch; returns :attr:`loss_names` (G_L1 and G_feat unweighted)."""
        a, b, mask = self.to_device(batch)
        mode, autocast = self.config.gan_mode, self.optimisation.autocast
        with autocast():
            fake = self.train_g(a)
        real_b = mask * b + (1 - mask) * fake.detach().float()
        real_pair = torch.cat([a, real_b], 1)

        self.discriminator.requires_grad_(True)
        with autocast():
            loss_d_fake = adversarial_loss(self.train_d(torch.cat([a, fake.detach()], 1)), False, mode)
            loss_d_real = adversarial_loss(self.train_d(real_pair), True, mode)
        self.optimisation.step("D", 0.5 * (loss_d_fake + loss_d_real))

        self.discriminator.requires_grad_(False)
        feature_terms = []
        with autocast():
            judged = self.discriminator(torch.cat([a, fake], 1))
            loss_g_gan = adversarial_loss(judged, True, mode, for_discriminator=False)
            if self.config.lambda_feat > 0:
                with torch.no_grad():
                    real_features = self.discriminator(real_pair)
                feature_terms.append(feature_matching_loss(judged, real_features))
        loss_g_l1 = masked_l1(fake.float(), b, mask)
        loss_g = loss_g_gan + self.config.lambda_l1 * loss_g_l1
        for term in feature_terms:
            loss_g = loss_g + self.config.lambda_feat * term
        self.optimisation.step("G", loss_g)
        values = torch.stack([loss_g_gan, loss_g_l1, loss_d_real, loss_d_fake, *feature_terms]).detach().float().cpu()
        return dict(zip(self.loss_names, values.tolist()))

    @torch.no_grad()
    def evaluate(self, loader: Any, chips: ChipsFolder, progress: Progress | None = None) -> dict[str, Any]:
        """Validation in eval mode: masked L1 (normalised units) and metrics in target units."""
        return evaluate(self.generator, loader, chips, self.device, progress, self.optimisation.autocast,
                        self.optimisation.memory_format)

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """What a checkpoint needs to resume: network and optimizer tensors, and the JSON structure around them."""
        tensors = {f"G/{k}": v for k, v in self.generator.state_dict().items()}
        tensors.update({f"D/{k}": v for k, v in self.discriminator.state_dict().items()})
        optimisers, structure = self.optimisation.state()
        tensors.update(optimisers)
        return tensors, structure

    def load_state(self, tensors: dict[str, torch.Tensor], structure: dict[str, Any]) -> None:
        """Restore networks, optimizers and grad scalers from :meth:`state_tensors`' output."""
        self.generator.load_state_dict(tensor_group(tensors, "G"))
        self.discriminator.load_state_dict(legacy_state(tensor_group(tensors, "D")))
        self.optimisation.load(tensors, structure)


def evaluate(
    generator: torch.nn.Module,
    loader: Any,
    chips: ChipsFolder,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    autocast: Any = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> dict[str, Any]:
    """Masked validation L1 in normalised units (``l1``) and target-unit metrics of ``generator``.

    Metrics use the target band's p01..p99 span as PSNR/SSIM data range. The generator is
    evaluated in eval mode (as translation runs it) and put back into its previous mode.
    """
    was_training = generator.training
    generator.eval()
    norm = chips.norm_b
    accumulator = MetricAccumulator([h - lo for lo, h in zip(norm.low, norm.high)])
    l1_sum = weight_sum = 0.0
    try:
        with torch.no_grad():
            for batch in loader:
                if progress is not None:
                    progress.check_cancelled()
                a = batch["a"].to(device).contiguous(memory_format=memory_format)
                b, mask = batch["b"].to(device), batch["mask"].to(device)
                if autocast is not None:
                    with autocast():
                        fake = generator(a)
                else:
                    fake = generator(a)
                fake = fake.float()
                weight = mask.expand_as(fake)
                l1_sum += float((torch.abs(fake - b) * weight).sum())
                weight_sum += float(weight.sum())
                accumulator.add(norm.invert(fake), batch["b_units"].to(device), mask[:, 0] > 0.5)
    finally:
        generator.train(was_training)
    return {"l1": l1_sum / weight_sum if weight_sum else None, **accumulator.result()}


@torch.no_grad()
def predict_chips(generator: torch.nn.Module, chips: ChipsFolder, count: int, device: torch.device | str = "cpu"
                  ) -> list[ChipView]:
    """The first ``count`` validation chips (training chips when there are none) with the
    generator's prediction in target units, in eval mode as translation runs it: the package's
    ``preview.png`` and the API's ``show_results``. The generator's mode is put back."""
    dataset = ChipDataset(chips, "validation" if chips.validation else "train", with_units=True)
    was_training = generator.training
    generator.eval()
    views = []
    try:
        for index in range(min(count, len(dataset))):
            sample = dataset[index]
            fake = generator(sample["a"][None].to(device)).float()
            views.append(dataset.view(sample, chips.norm_b.invert(fake)[0].cpu().numpy()))
    finally:
        generator.train(was_training)
    return views


def chips_fingerprint(chips: ChipsFolder) -> str:
    """Identifies the chips a checkpoint was trained on (names, split, size, bands, normalisation)."""
    text = repr((chips.train, chips.validation, chips.tile_size, chips.norm_a, chips.norm_b))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
