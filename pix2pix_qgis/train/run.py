"""What every GAN training run shares, whatever its networks: epochs, steps, checkpoints, resume.

Pix2Pix (``loop.py``) and CycleGAN (``cyclegan.py``) drive their trainers through these: the
epoch loop with its checkpoint interval, cancel and patience (:func:`run_epochs`), one epoch
of steps with progress lines and the divergence check (:func:`train_epoch`), and the
checkpoint written and restored with the RNG state, the architecture check, the chips
fingerprint and the mid-epoch position rescaled to another batch or world size. A trainer is
anything with the :class:`Trainer` methods; a model's own part (validation, the best epoch,
what the package holds) comes in as :class:`EpochHooks`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import torch

from ..contract.errors import Cancelled, Pix2PixError
from ..core.progress import Progress
from ..data.sampling import EpochSampler
from ..model.checkpoint import load_checkpoint, save_checkpoint
from .config import ARCHITECTURE_FIELDS, TrainConfig
from .losses import LOSS_NAMES


@dataclass
class TrainState:
    """Where a run is: everything besides tensors that a checkpoint must restore."""

    epoch: int = 1  # the epoch in progress (1-based)
    step_in_epoch: int = 0  # batches of that epoch already applied
    global_step: int = 0
    loss_sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LOSS_NAMES, 0.0))
    epoch_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    stale_epochs: int = 0
    seconds: float = 0.0


class Trainer(Protocol):
    """What the shared loop needs of a trainer: steps, learning rate, modes, state and its place in the world."""

    device: torch.device
    rank: int
    world_size: int

    @property
    def is_writer(self) -> bool:
        """Whether this process writes checkpoints and the model."""

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of every optimizer."""

    def train_mode(self) -> None:
        """Put every network into training mode."""

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step on a batch; returns the losses by name."""

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Networks, optimizers and anything else to resume: tensors, and the JSON structure around them."""

    def load_state(self, tensors: dict[str, torch.Tensor], structure: dict[str, Any]) -> None:
        """Restore what :meth:`state_tensors` returned."""


class EpochHooks(Protocol):
    """A model's own part of the loop: what happens at an epoch's end and what a checkpoint holds."""

    def end_epoch(self, state: TrainState) -> None:
        """Validate, append the epoch's row to ``state.history``, update the best epoch, report."""

    def save(self, state: TrainState) -> None:
        """Write the checkpoint (rank 0 only)."""


def check_output(output_model: str | Path) -> Path:
    """The absolute model path, refused unless it ends in .p2p and is not a folder."""
    output = Path(output_model).absolute()
    if output.suffix.lower() != ".p2p":
        raise Pix2PixError(f"The model path {output} must end in .p2p (a Pix2Pix model package).")
    if output.exists() and not output.is_file():
        raise Pix2PixError(f"The model path {output} is a folder; give a file path ending in .p2p.")
    return output


def run_epochs(trainer: Trainer, loader: Any, sampler: EpochSampler, state: TrainState, config: TrainConfig,
               hooks: EpochHooks, progress: Progress, ckpt: Path, resume: bool, started: float) -> bool:
    """Train from ``state`` to the last epoch; returns whether patience stopped it early.

    ``started`` (``time.monotonic``) is when the run began: ``state.seconds`` counts from it.

    The checkpoint is written at the first epoch end ``config.checkpoint_minutes`` after the
    last one, at the end, and on a cancel (then :class:`Cancelled` is re-raised).
    """
    steps_per_epoch = sampler.steps_per_epoch
    total_steps = config.epochs * steps_per_epoch
    saved_at, unsaved = time.monotonic(), not resume
    stopped_early = False
    try:
        while state.epoch <= config.epochs:
            if config.patience and state.stale_epochs >= config.patience:
                stopped_early = True
                break
            train_epoch(trainer, loader, sampler, state, config, steps_per_epoch, total_steps, progress)
            hooks.end_epoch(state)
            state.epoch += 1
            state.step_in_epoch = 0
            state.seconds += time.monotonic() - started
            started, unsaved = time.monotonic(), True
            if started - saved_at >= config.checkpoint_minutes * 60:
                hooks.save(state)
                saved_at, unsaved = time.monotonic(), False
    except Cancelled:
        state.seconds += time.monotonic() - started
        hooks.save(state)
        progress.warning(f"Cancelled at epoch {state.epoch}, step {state.step_in_epoch}; the training state is "
                         f"saved in {ckpt}. Run again with resume to continue.")
        raise
    if unsaved:
        hooks.save(state)
    if stopped_early:
        progress.info(f"Stopped early: {config.best_metric} did not improve for {config.patience} epochs.")
    return stopped_early


def train_epoch(trainer: Trainer, loader: Any, sampler: EpochSampler, state: TrainState, config: TrainConfig,
                steps_per_epoch: int, total_steps: int, progress: Progress) -> None:
    """The rest of ``state.epoch``: its steps from ``state.step_in_epoch``, with progress and losses summed."""
    if state.step_in_epoch >= steps_per_epoch:
        return
    lr = config.lr * config.lr_factor(state.epoch)
    trainer.set_lr(lr)
    trainer.train_mode()
    sampler.set_epoch(state.epoch, state.step_in_epoch)
    tick = time.monotonic()
    for batch in loader:
        progress.check_cancelled()
        losses = trainer.step(batch)
        if not all(math.isfinite(value) for value in losses.values()):
            raise Pix2PixError(
                f"Training diverged at epoch {state.epoch}, step {state.step_in_epoch + 1} (losses {losses}). "
                "Resume from the last epoch's checkpoint with a lower learning rate, or train afresh with one."
            )
        state.step_in_epoch += 1
        state.global_step += 1
        for name, value in losses.items():
            state.loss_sums[name] = state.loss_sums.get(name, 0.0) + value
        now = time.monotonic()
        state.epoch_seconds += now - tick
        tick = now
        text = " ".join(f"{name} {value:.3f}" for name, value in losses.items())
        progress.update(
            state.global_step / total_steps,
            f"epoch {state.epoch}/{config.epochs} step {state.step_in_epoch}/{steps_per_epoch} {text}",
            epoch=state.epoch, step=state.global_step, lr=lr, **losses,
        )


def rng_tensors(device: torch.device) -> dict[str, torch.Tensor]:
    """torch's RNG states (CPU, and every GPU's on CUDA), for the checkpoint."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if device.type == "cuda":
        for index, value in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda{index}"] = value
    return tensors


def save_training(path: Path, trainer: Trainer, state: TrainState, config: TrainConfig,
                  record: Mapping[str, Any], extra: Mapping[str, torch.Tensor]) -> None:
    """Write the checkpoint: the trainer's state, the RNG, ``extra`` tensors, and ``record`` (generator specs,
    the chips' path and fingerprint) beside the config, the state and the world size. Rank 0 only."""
    if not trainer.is_writer:
        return
    tensors, structure = trainer.state_tensors()
    tensors.update(rng_tensors(trainer.device))
    tensors.update(extra)
    document = {"config": config.to_dict(), **record, "state": asdict(state), "world_size": trainer.world_size,
                **structure}
    save_checkpoint(path, document, tensors)


def restore_training(path: Path, trainer: Trainer, config: TrainConfig,
                     generators: Callable[[dict[str, Any]], list[str]], fingerprint: str,
                     progress: Progress) -> tuple[dict[str, Any], dict[str, torch.Tensor], TrainState]:
    """Load the checkpoint at ``path`` into ``trainer`` and torch's RNG; its document, tensors and state.

    Refused with the fix: no checkpoint, other architecture settings (``ARCHITECTURE_FIELDS``,
    plus what ``generators`` finds in the document, e.g. another U-Net depth), other chips
    (``fingerprint``). Other
    settings (epochs, learning rate…) may change and are reported.
    """
    if not path.exists():
        raise Pix2PixError(f"There is no checkpoint {path} to resume; train without resume to start afresh.")
    document, tensors = load_checkpoint(path)
    saved = TrainConfig.from_dict(document["config"])
    differs = [f"{name} {getattr(saved, name)} (now {getattr(config, name)})"
               for name in ARCHITECTURE_FIELDS if getattr(saved, name) != getattr(config, name)]
    differs += generators(document)
    if differs:
        raise Pix2PixError(
            f"The checkpoint {path} was trained with {', '.join(differs)}; resume with the same settings, "
            "or train afresh without resume."
        )
    if document["chips"]["fingerprint"] != fingerprint:
        raise Pix2PixError(
            f"The checkpoint {path} was trained on other chips ({document['chips']['path']}); resume on the same "
            "chips folder, or train afresh without resume."
        )
    changed = [f.name for f in fields(TrainConfig) if getattr(saved, f.name) != getattr(config, f.name)]
    if changed:
        progress.info(f"Resuming with changed settings: {', '.join(changed)}.")
    trainer.load_state(tensors, document)
    torch.set_rng_state(tensors["rng/torch"])
    if trainer.device.type == "cuda":
        states = [tensors[f"rng/cuda{i}"] for i in range(torch.cuda.device_count()) if f"rng/cuda{i}" in tensors]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    state = TrainState(**document["state"])
    _rescale_partial_epoch(state, document, config.batch_size * trainer.world_size, progress)
    progress.info(f"Resuming from epoch {state.epoch}, step {state.step_in_epoch} ({state.global_step} steps done).")
    return document, tensors, state


def _rescale_partial_epoch(state: TrainState, document: dict[str, Any], global_batch: int,
                           progress: Progress) -> None:
    """A run stopped mid-epoch resumes after the chips it saw, also with another batch size or process count."""
    saved = int(document["config"]["batch_size"]) * int(document.get("world_size", 1))
    if state.step_in_epoch and saved != global_batch:
        seen = state.step_in_epoch * saved
        state.step_in_epoch = seen // global_batch
        progress.warning(f"The checkpoint stopped after {seen} chips of epoch {state.epoch} with {saved} chips per "
                         f"step; with {global_batch} per step it resumes at step {state.step_in_epoch} of that epoch, "
                         f"so up to {global_batch - 1} of those chips are seen twice.")
