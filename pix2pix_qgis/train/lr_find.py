"""The learning-rate range test (Smith 2017; fastai's ``lr_find``, which arcgis.learn's ``lr_find`` runs).

A throw-away :class:`Pix2PixTrainer`, built exactly as training builds it and started from
the same weights as the run it advises (the seed's initialisation, or a checkpoint of the
fits so far), takes training steps on augmented training chips while the learning rate of
both networks grows geometrically from ``start_lr`` to ``end_lr``. The copy is then dropped
and torch's global random state restored, so nothing the test did reaches a later ``fit``.

After each step the generator's objective (GAN + λ·L1, as the step returns it) is smoothed
by a bias-corrected exponential moving average; the test stops early once the smoothed loss
exceeds four times its minimum. fastai averages with β = 0.98 over 100 cheap steps; here a
step is a full GAN step on a new batch and tests are tens of steps long, so β = 0.9 (about
ten steps), which lags the rates far less. (Measured on the sample's chips: 40 steps with
β = 0.98 put the minimum at 3e-2, where single steps were already diverging.)

The suggestion is a tenth of the rate at the smoothed loss's minimum (fastai's "minimum"
rule). arcgis.learn picks a point halfway down the longest falling stretch of the curve, but
it trains with a one-cycle schedule that warms up to that rate; training here runs at the
full rate from the first step (then decays it), so the test takes the conservative rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..contract.errors import Pix2PixError
from ..core.progress import Progress
from ..data.dataset import ChipDataset
from ..data.folder import ChipsFolder
from ..data.sampling import training_loader
from ..model.checkpoint import load_checkpoint
from ..model.guards import check_training_memory
from .config import TrainConfig, generator_spec
from .losses import FEATURE_LOSS
from .trainer import Pix2PixTrainer

SMOOTHING = 0.9
DIVERGENCE = 4.0


@dataclass(frozen=True)
class LRFinding:
    """The range test's curve, ``lrs`` and smoothed ``losses`` step by step, and its suggested rate."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    suggestion: float


def suggest_lr(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """A tenth of the rate at which the smoothed loss is lowest (module docstring)."""
    if not losses:
        raise Pix2PixError("The learning-rate range test has no step to judge: the loss was not finite at the "
                           "first rate. Give a lower start_lr.")
    return float(lrs[int(np.argmin(losses))]) / 10


def lr_range_test(
    chips: ChipsFolder,
    config: TrainConfig,
    device: torch.device,
    start_lr: float = 1e-6,
    end_lr: float = 1e-1,
    steps: int = 100,
    checkpoint: Path | None = None,
    progress: Progress | None = None,
) -> LRFinding:
    """Run the range test on ``chips`` with ``config``'s networks, batch size and augmentation.

    ``checkpoint`` (a training checkpoint, ``<model>.ckpt``) starts the copy from a run's
    current state instead of the seed's initialisation.
    """
    if not 0 < start_lr < end_lr < 1:
        raise Pix2PixError(f"The range test needs 0 < start_lr < end_lr < 1, not {start_lr} and {end_lr} "
                           "(1e-6 to 0.1 covers Adam's usual rates).")
    if steps < 5:
        raise Pix2PixError(f"The range test needs at least 5 steps, not {steps} (100 is usual).")
    progress = progress or Progress()
    spec = generator_spec(config, chips)
    judge = config.discriminator_spec(chips.bands_a + chips.bands_b)
    check_training_memory(spec, judge, chips.tile_size, config.batch_size, len(chips.train), device)
    dataset = ChipDataset(chips, "train", augment=config.augment, seed=config.seed)
    loader, sampler = training_loader(dataset, config.batch_size, config.seed)
    lrs: list[float] = []
    losses: list[float] = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type=device.type):
        torch.manual_seed(config.seed)  # as train() seeds it: the copy starts where a fit would
        trainer = Pix2PixTrainer(spec, config, device)
        if checkpoint is not None:
            document, tensors = load_checkpoint(checkpoint)
            trainer.load_state(tensors, document)
        trainer.generator.train()
        trainer.discriminator.train()
        average, epoch = 0.0, 0
        batches: Iterator[dict[str, torch.Tensor]] = iter(())
        for step, lr in enumerate(np.geomspace(start_lr, end_lr, steps), start=1):
            progress.check_cancelled()
            batch = next(batches, None)
            if batch is None:
                epoch += 1
                sampler.set_epoch(epoch)
                batches = iter(loader)
                batch = next(batches)
            trainer.set_lr(float(lr))
            result = trainer.step(batch)
            loss = (result["G_GAN"] + config.lambda_l1 * result["G_L1"]
                    + config.lambda_feat * result.get(FEATURE_LOSS, 0.0))
            if not math.isfinite(loss):
                break
            average = SMOOTHING * average + (1 - SMOOTHING) * loss
            lrs.append(float(lr))
            losses.append(average / (1 - SMOOTHING**step))
            progress.update(step / steps, f"lr_find step {step}/{steps}: lr {lr:.2e}, loss {losses[-1]:.4g}")
            if losses[-1] > DIVERGENCE * min(losses):
                break
    return LRFinding(tuple(lrs), tuple(losses), suggest_lr(lrs, losses))
