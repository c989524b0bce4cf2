"""Train a Pix2Pix model on a chips folder and write it as a ``.p2p`` package.

The loop is the reference's (one D step, then one G step, per batch; Adam; constant then
linearly decaying learning rate), with three changes for rasters: the L1 term and the
metrics skip nodata pixels, the real pair shown to D carries the fake values at nodata
pixels (so nodata gives D nothing to tell pairs apart by), and the model kept is the best
epoch on the validation chips by a chosen metric. At epoch ends (every few minutes), at
the end and at a cancel, the full training state goes into ``<model>.ckpt`` so a run can
resume where it stopped, to the step. At the end, the validation curve is read for signs
that the budget was too short or that training diverged (``guide``), and the package's
preview shows the validation chips as predicted after the first, the best and the last epoch.

One process is the N = 1 case of a data-parallel run: :func:`train` takes a
:class:`Topology` (this process's rank, world size, device and trainer factory);
``scale.ddp.World`` is the torchrun implementation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..core import plots
from ..core.locking import holds_output_lock
from ..core.paths import check_run_paths
from ..core.progress import Progress
from ..data.dataset import ChipDataset, ChipView
from ..data.folder import ChipsFolder, open_chips
from ..data.sampling import make_loader, training_loader
from ..evaluate.metrics import is_better
from ..model.card import ModelCard
from ..model.checkpoint import checkpoint_path, tensor_group
from ..model.device import resolve_device
from ..model.discriminators import DiscriminatorSpec
from ..model.generators import AnyGeneratorSpec, Generator, make_generator, spec_from_dict
from ..model.guards import check_training_memory
from ..model.networks import GeneratorSpec, count_parameters
from ..model.package import write_package
from .config import TrainConfig, generator_spec
from .guide import budget_advice
from .losses import LOSS_NAMES
from .run import TrainState, check_output, restore_training, run_epochs, save_training
from .trainer import Pix2PixTrainer, chips_fingerprint, predict_chips


class Topology(Protocol):
    """Where this process stands in a training run: its device, rank and world size, and its trainer.

    :class:`SingleProcess` is the N = 1 case; ``scale.ddp.World`` is one rank of a torchrun
    launch. The loop runs the same code for both.
    """

    @property
    def device(self) -> torch.device:
        """The device this process trains on."""

    @property
    def rank(self) -> int:
        """This process's rank; only rank 0 writes outputs and reports."""

    @property
    def size(self) -> int:
        """Number of processes that train together."""

    def trainer(self, spec: AnyGeneratorSpec, config: TrainConfig) -> Pix2PixTrainer:
        """The trainer that runs this process's steps (DDP-wrapped when size > 1)."""


@dataclass(frozen=True)
class SingleProcess:
    """One process on one device: rank 0 of a world of 1."""

    device: torch.device
    rank: int = 0
    size: int = 1

    def trainer(self, spec: AnyGeneratorSpec, config: TrainConfig) -> Pix2PixTrainer:
        """A plain trainer on this process's device."""
        return Pix2PixTrainer(spec, config, self.device)


@holds_output_lock("output_model")  # one training per model path: checkpoint and model are never interleaved
def train(
    chips_folder: str | Path,
    output_model: str | Path,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    topology: Topology | None = None,
) -> dict[str, Any]:
    """Train on ``chips_folder`` and write the best epoch's model to ``output_model`` (.p2p).

    The checkpoint ``<output_model>.ckpt`` is written at epoch ends (see
    ``TrainConfig.checkpoint_minutes``), at the end and when cancelled (:class:`Cancelled`
    is re-raised after it is saved); ``resume=True`` continues from it.
    Seeds the global torch RNG (dropout) with ``config.seed``. Returns a summary.
    ``topology`` is this process's place in the run (default: :class:`SingleProcess` on
    ``config.device``); with a ``scale.ddp.World`` (under torchrun) this is one rank of a
    data-parallel run: only rank 0 writes, and other ranks return ``{"rank": …}``.
    """
    config = config or TrainConfig()
    progress = progress or Progress()
    started = time.monotonic()
    output = check_output(output_model)
    ckpt = checkpoint_path(output)
    check_run_paths(inputs={"chips folder": chips_folder}, files={"model": output, "checkpoint": ckpt})
    topology = topology or SingleProcess(resolve_device(config.device))
    device = topology.device
    chips = open_chips(chips_folder, config.validation, config.seed)
    for note in chips.notes:
        progress.info(note)
    spec = generator_spec(config, chips)
    depth = spec.depth if isinstance(spec, GeneratorSpec) else None
    if config.depth is None and depth is not None and depth < 5:
        progress.warning(
            f"Chips of {chips.tile_size} px allow a U-Net of depth {depth} only, which sees little context. "
            "Chips of a multiple of 32 px (256 is typical) allow depth 5 and more."
        )
    judge = config.discriminator_spec(chips.bands_a + chips.bands_b)
    check_training_memory(spec, judge, chips.tile_size, config.batch_size, len(chips.train), device)
    torch.manual_seed(config.seed)
    trainer = topology.trainer(spec, config)
    state = TrainState()
    best_weights: dict[str, torch.Tensor] | None = None
    first_preview: torch.Tensor | None = None
    if resume:
        state, best_weights, first_preview = _restore(ckpt, trainer, chips, spec, config, progress)
    elif ckpt.exists():
        progress.warning(f"The earlier checkpoint {ckpt} will be replaced; use resume to continue it instead.")
    pin = device.type == "cuda"
    workers = config.workers_for(device)
    train_set = ChipDataset(chips, "train", augment=config.augment, seed=config.seed)
    loader, sampler = training_loader(train_set, config.batch_size, config.seed, workers, pin,
                                      trainer.rank, trainer.world_size)
    validation = None
    if chips.validation:
        val_set = ChipDataset(chips, "validation", with_units=True, seed=config.seed)
        validation = make_loader(val_set, config.batch_size, num_workers=workers, pin_memory=pin)
    else:
        progress.warning("There are no validation chips, so the last epoch is kept and no metrics are reported. "
                         "Export with VALIDATION above 0 to choose the best epoch on held-out chips.")
    progress.info(
        f"Training a {spec.name} ({count_parameters(trainer.generator):,} parameters, "
        f"{chips.bands_a}→{chips.bands_b} bands) on {len(chips.train)} training and {len(chips.validation)} "
        f"validation chips of {chips.tile_size} px, on {device} in {trainer.optimisation.precision}"
        f"{' autocast' if trainer.optimisation.mixed else ''}."
    )
    run = _Pix2PixRun(trainer, validation, chips, spec, config, ckpt, progress, best_weights, first_preview)
    stopped_early = run_epochs(trainer, loader, sampler, state, config, run, progress, ckpt, resume, started)
    best_weights, first_preview = run.best_weights, run.first_preview
    if not trainer.is_writer:
        return {"rank": trainer.rank, "world_size": trainer.world_size, "steps": state.global_step}
    if best_weights is None:  # no validation: keep the last epoch
        best_weights = {k: v.detach().cpu().clone() for k, v in trainer.generator.state_dict().items()}
    advice = budget_advice(state.history, config.lr) if not stopped_early else []
    for line in advice:
        progress.warning(line)
    return _finish(output, ckpt, trainer, chips, spec, judge, config, state, best_weights, first_preview, advice,
                   validation, stopped_early, device, progress)


def _end_epoch(trainer: Pix2PixTrainer, validation: Any, chips: ChipsFolder, state: TrainState,
               config: TrainConfig, progress: Progress) -> None:
    """Validate, append the epoch to the history, update the best epoch and report one line."""
    steps = max(state.step_in_epoch, 1)
    row: dict[str, Any] = {"epoch": state.epoch, "lr": config.lr * config.lr_factor(state.epoch)}
    row.update({name: total / steps for name, total in state.loss_sums.items()})
    row["train_seconds"] = round(state.epoch_seconds, 3)
    row["samples_per_s"] = round(len(chips.train) / state.epoch_seconds, 3) if state.epoch_seconds else None
    line = f"epoch {state.epoch}/{config.epochs}: train L1 {row['G_L1']:.4f}"
    improved = False
    if validation is not None:
        metrics = trainer.evaluate(validation, chips, progress)
        row.update({f"val_{name}": metrics[name] for name in ("l1", "mae", "rmse", "psnr", "ssim", "bias", "r2")})
        row["val_bands"] = metrics["bands"]
        value = row[f"val_{config.best_metric}"]
        improved = is_better(config.best_metric, value, state.best_value)
        if improved:
            state.best_epoch, state.best_value, state.stale_epochs = state.epoch, value, 0
        else:
            state.stale_epochs += 1
        line += (f", val L1 {_fmt(row['val_l1'])}, MAE {_fmt(row['val_mae'])}, RMSE {_fmt(row['val_rmse'])}, "
                 f"PSNR {_fmt(row['val_psnr'])} dB, SSIM {_fmt(row['val_ssim'])}")
    else:
        state.best_epoch = state.epoch
    state.history.append(row)
    state.loss_sums = dict.fromkeys(LOSS_NAMES, 0.0)
    state.epoch_seconds = 0.0
    speed = f", {row['samples_per_s']:.1f} samples/s" if row["samples_per_s"] else ""
    progress.info(line + speed + (" (best so far)" if improved else ""))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _keep_best(trainer: Pix2PixTrainer, state: TrainState, best: dict[str, torch.Tensor] | None
               ) -> dict[str, torch.Tensor] | None:
    if state.best_epoch == state.epoch and state.history and "val_l1" in state.history[-1]:
        return {k: v.detach().cpu().clone() for k, v in trainer.generator.state_dict().items()}
    return best


class _Pix2PixRun:
    """The Pix2Pix part of the shared loop (``run.EpochHooks``): validation, the best epoch's weights,
    the first epoch's preview, and what its checkpoint holds besides the trainer's state."""

    def __init__(self, trainer: Pix2PixTrainer, validation: Any, chips: ChipsFolder, spec: AnyGeneratorSpec,
                 config: TrainConfig, ckpt: Path, progress: Progress, best_weights: dict[str, torch.Tensor] | None,
                 first_preview: torch.Tensor | None) -> None:
        self.trainer, self.validation, self.chips, self.spec = trainer, validation, chips, spec
        self.config, self.ckpt, self.progress = config, ckpt, progress
        self.best_weights, self.first_preview = best_weights, first_preview

    def end_epoch(self, state: TrainState) -> None:
        """Validate and report, keep the best weights, and the first epoch's predictions for the preview."""
        _end_epoch(self.trainer, self.validation, self.chips, state, self.config, self.progress)
        self.best_weights = _keep_best(self.trainer, state, self.best_weights)
        if state.epoch == 1 and self.trainer.is_writer:
            views = predict_chips(self.trainer.generator, self.chips, self.config.preview_chips, self.trainer.device)
            self.first_preview = _stacked(views)

    def save(self, state: TrainState) -> None:
        """The checkpoint: the trainer's state plus the best weights and the first preview."""
        extra = {f"best/{k}": v for k, v in (self.best_weights or {}).items()}
        if self.first_preview is not None:
            extra["preview/first"] = self.first_preview
        record = {"generator": self.spec.to_dict(),
                  "chips": {"path": str(self.chips.root), "fingerprint": chips_fingerprint(self.chips)}}
        save_training(self.ckpt, self.trainer, state, self.config, record, extra)


def _restore(path: Path, trainer: Pix2PixTrainer, chips: ChipsFolder, spec: AnyGeneratorSpec, config: TrainConfig,
             progress: Progress) -> tuple[TrainState, dict[str, torch.Tensor] | None, torch.Tensor | None]:
    def depth(document: dict[str, Any]) -> list[str]:
        saved = spec_from_dict(document["generator"])
        if isinstance(saved, GeneratorSpec) and isinstance(spec, GeneratorSpec):
            return [f"depth {saved.depth} (now {spec.depth})"] if saved.depth != spec.depth else []
        return [f"generator {saved.name} (now {spec.name})"] if saved != spec else []

    _, tensors, state = restore_training(path, trainer, config, depth, chips_fingerprint(chips), progress)
    best = tensor_group(tensors, "best") or None
    return state, best, tensors.get("preview/first")


def _stacked(views: list[ChipView]) -> torch.Tensor:
    """The predictions of ``views`` as one (N, C_B, H, W) tensor in target units, for the checkpoint."""
    return torch.from_numpy(np.stack([view.prediction for view in views if view.prediction is not None]))


def _preview_png(trainer: Pix2PixTrainer, best: Generator, chips: ChipsFolder, config: TrainConfig,
                 state: TrainState, first: torch.Tensor | None, validation: Any, device: torch.device) -> bytes:
    """The package's preview: input, target and the predictions after the first, the kept (best)
    and the last epoch, one column each, on the first validation chips (``trainer.predict_chips``).

    The first epoch's predictions come from the checkpoint; a column that would repeat the kept
    epoch is left out, and so is the first epoch when a resumed run asks for more chips than it kept.
    """
    views = predict_chips(best, chips, config.preview_chips, device)
    last_epoch = state.history[-1]["epoch"] if state.history else 0
    columns: list[tuple[str, Sequence[np.ndarray]]] = []
    if first is not None and state.best_epoch != 1 and len(first) == len(views):
        columns.append(("Epoch 1", list(first.numpy())))
    kept = "best, kept" if validation is not None else "kept"
    columns.append((f"Epoch {state.best_epoch} ({kept})", list(_stacked(views).numpy())))
    if state.best_epoch != last_epoch:
        last = predict_chips(trainer.generator, chips, config.preview_chips, device)
        columns.append((f"Epoch {last_epoch} (last)", list(_stacked(last).numpy())))
    displays = (plots.Display.of(chips.bands_a, chips.band_info["a"]["dtype"]),
                plots.Display.of(chips.bands_b, chips.band_info["b"]["dtype"]))
    return plots.png(plots.predictions_figure(views, columns, *displays))


def _finish(output: Path, ckpt: Path, trainer: Pix2PixTrainer, chips: ChipsFolder, spec: AnyGeneratorSpec,
            judge: DiscriminatorSpec, config: TrainConfig, state: TrainState, best_weights: dict[str, torch.Tensor],
            first_preview: torch.Tensor | None, advice: list[str], validation: Any, stopped_early: bool,
            device: torch.device, progress: Progress) -> dict[str, Any]:
    generator = make_generator(spec).to(device)
    generator.load_state_dict(best_weights)
    history = state.history
    last_epoch = history[-1]["epoch"] if history else 0
    preview = _preview_png(trainer, generator, chips, config, state, first_preview, validation, device)
    training = {
        "config": config.to_dict(),
        "epochs_run": last_epoch,
        "steps": state.global_step,
        "seconds": round(state.seconds, 1),
        "device": str(device),
        "precision": trainer.optimisation.precision,
        "amp": trainer.optimisation.precision if trainer.optimisation.mixed else None,
        "stopped_early": stopped_early,
        "losses": {"gan": config.gan_mode, "lambda_l1": config.lambda_l1, "lambda_feat": config.lambda_feat,
                   "l1": "masked mean over valid pixels"},
        "advice": advice,
    }
    metric = config.best_metric if validation is not None else "last epoch"
    card = ModelCard.from_training(chips, spec, judge, training, history, state.best_epoch, metric)
    losses = plots.png(plots.losses_figure(history, state.best_epoch))
    path = write_package(output, card, best_weights, preview, losses)
    best = card.metrics.best or {}
    progress.update(1.0, "done")
    progress.info(f"Model written to {path} (best epoch {state.best_epoch}).")
    return {
        "output": str(path),
        "checkpoint": str(ckpt),
        "epochs": training["epochs_run"],
        "best_epoch": state.best_epoch,
        "best_metric": metric,
        "best_value": state.best_value,
        **{f"val_{name}": best.get(f"val_{name}") for name in ("l1", "mae", "rmse", "psnr", "ssim", "bias", "r2")},
        "train_l1": best.get("G_L1"),
        "train_chips": len(chips.train),
        "validation_chips": len(chips.validation),
        "chip_size": chips.tile_size,
        "depth": spec.depth if isinstance(spec, GeneratorSpec) else None,
        "generator": spec.name,
        "parameters": count_parameters(generator),
        "device": str(device),
        "precision": training["precision"],
        "seconds": training["seconds"],
        "stopped_early": stopped_early,
        "advice": advice,
    }
