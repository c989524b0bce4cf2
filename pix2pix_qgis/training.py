"""Train a Pix2Pix model on a chips folder and write it as a ``.p2p`` package.

The loop is the reference's (one D step, then one G step, per batch; Adam; constant then
linearly decaying learning rate), with three changes for rasters: the L1 term and the
metrics skip nodata pixels, the real pair shown to D carries the fake values at nodata
pixels (so nodata gives D nothing to tell pairs apart by), and the model kept is the best
epoch on the validation chips by a chosen metric. At epoch ends (every few minutes), at
the end and at a cancel, the full training state goes into ``<model>.ckpt`` so a run can
resume where it stopped, to the step.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from .dataset import ChipDataset, ChipsFolder, EpochSampler, make_loader, open_chips, training_loader
from .errors import Cancelled, Pix2PixError
from .guards import check_training_memory
from .locking import holds_output_lock
from .metrics import MetricAccumulator, is_better
from .networks import (
    MAX_DEPTH,
    NORMS,
    GeneratorSpec,
    NLayerDiscriminator,
    UnetGenerator,
    build_discriminator,
    build_generator,
    check_chip_size,
    count_parameters,
    deepest_fit,
    patchgan_output_size,
)
from .package import (
    checkpoint_path,
    flatten_optimizer,
    load_checkpoint,
    model_metadata,
    render_losses,
    render_preview,
    save_checkpoint,
    tensor_group,
    unflatten_optimizer,
    write_package,
)
from .progress import Progress

if TYPE_CHECKING:
    from .distributed import World

GAN_MODES = ("vanilla", "lsgan")
BEST_METRICS = ("l1", "mae", "rmse", "psnr", "ssim")
# Fields that define the weights: a checkpoint resumes only with the same values.
ARCHITECTURE_FIELDS = ("ngf", "ndf", "norm", "dropout")
LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake")


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


def resolve_device(name: str) -> torch.device:
    """``auto`` → the first CUDA device if this PyTorch can use one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise Pix2PixError(
                f"Device '{name}' was asked for, but this PyTorch ({torch.__version__}) cannot use CUDA "
                f"(CUDA build: {torch.version.cuda or 'none'}). Use device cpu or auto, or install a CUDA build "
                "of PyTorch ('pix2pix-qgis doctor' shows what this interpreter can use)."
            )
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise Pix2PixError(f"Device '{name}' does not exist: this machine has {torch.cuda.device_count()} GPU(s).")
    return torch.device(name)


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


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |prediction − target| over valid pixels and all bands; ``mask`` is (B, 1, H, W) in {0, 1}."""
    weight = mask.expand_as(prediction)
    return (torch.abs(prediction - target) * weight).sum() / weight.sum().clamp_min(1.0)


def gan_loss(logits: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """vanilla: BCE on logits (autocast-safe); lsgan: MSE on logits, against 1 (real) or 0 (fake)."""
    logits = logits.float()
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


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


class Pix2PixTrainer:
    """The two networks, their optimizers and one training step; device and AMP handled here.

    ``train_g``/``train_d`` are the modules the training step calls: the networks themselves
    here, their DDP wrappers in data-parallel runs (``distributed.DistributedTrainer``).
    """

    rank, world_size = 0, 1

    def __init__(self, spec: GeneratorSpec, config: TrainConfig, device: torch.device) -> None:
        self.config, self.device = config, device
        init = torch.Generator().manual_seed(config.seed)
        self.generator: UnetGenerator = build_generator(spec, init).to(device)
        self.discriminator: NLayerDiscriminator = build_discriminator(
            spec.in_channels + spec.out_channels, config.ndf, config.norm, generator=init).to(device)
        cuda = device.type == "cuda"
        self.memory_format = torch.channels_last if cuda and config.channels_last else torch.contiguous_format
        self.generator.to(memory_format=self.memory_format)
        self.discriminator.to(memory_format=self.memory_format)
        self.amp = cuda and config.amp
        self.amp_dtype = torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        scaled = self.amp and self.amp_dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=scaled)
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=scaled)
        betas = (config.beta1, 0.999)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)
        self.train_g: torch.nn.Module = self.generator
        self.train_d: torch.nn.Module = self.discriminator

    @property
    def is_writer(self) -> bool:
        """Whether this process writes checkpoints and the model (rank 0 of a data-parallel run)."""
        return self.rank == 0

    def set_lr(self, lr: float) -> None:
        for optimizer in (self.opt_g, self.opt_d):
            for group in optimizer.param_groups:
                group["lr"] = lr

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def to_device(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

        return move(batch["a"]), move(batch["b"]), move(batch["mask"])

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One D update then one G update on a batch; returns the four losses (G_L1 unweighted)."""
        a, b, mask = self.to_device(batch)
        mode = self.config.gan_mode
        with self._autocast():
            fake = self.train_g(a)
        real_b = mask * b + (1 - mask) * fake.detach().float()

        self.discriminator.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            loss_d_fake = gan_loss(self.train_d(torch.cat([a, fake.detach()], 1)), False, mode)
            loss_d_real = gan_loss(self.train_d(torch.cat([a, real_b], 1)), True, mode)
        loss_d = 0.5 * (loss_d_fake + loss_d_real)
        self.scaler_d.scale(loss_d).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()

        self.discriminator.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        with self._autocast():
            loss_g_gan = gan_loss(self.discriminator(torch.cat([a, fake], 1)), True, mode)
        loss_g_l1 = masked_l1(fake.float(), b, mask)
        loss_g = loss_g_gan + self.config.lambda_l1 * loss_g_l1
        self.scaler_g.scale(loss_g).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        values = torch.stack([loss_g_gan, loss_g_l1, loss_d_real, loss_d_fake]).detach().float().cpu().tolist()
        return dict(zip(LOSS_NAMES, values))

    @torch.no_grad()
    def evaluate(self, loader: Any, chips: ChipsFolder, progress: Progress | None = None) -> dict[str, Any]:
        """Validation in eval mode: masked L1 (normalised units) and metrics in target units."""
        return evaluate(self.generator, loader, chips, self.device, progress, self._autocast, self.memory_format)

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"G/{k}": v for k, v in self.generator.state_dict().items()}
        tensors.update({f"D/{k}": v for k, v in self.discriminator.state_dict().items()})
        structure = {}
        for name, optimizer in (("optG", self.opt_g), ("optD", self.opt_d)):
            flat, structure[name] = flatten_optimizer(optimizer.state_dict(), name)
            tensors.update(flat)
        structure["scalers"] = {"G": self.scaler_g.state_dict(), "D": self.scaler_d.state_dict()}
        return tensors, structure

    def load_state(self, tensors: dict[str, torch.Tensor], structure: dict[str, Any]) -> None:
        self.generator.load_state_dict(tensor_group(tensors, "G"))
        self.discriminator.load_state_dict(tensor_group(tensors, "D"))
        self.opt_g.load_state_dict(unflatten_optimizer(structure["optG"], tensors))
        self.opt_d.load_state_dict(unflatten_optimizer(structure["optD"], tensors))
        scalers = structure.get("scalers", {})
        if scalers.get("G") and self.scaler_g.is_enabled():
            self.scaler_g.load_state_dict(scalers["G"])
            self.scaler_d.load_state_dict(scalers["D"])


def evaluate(
    generator: UnetGenerator,
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


def chips_fingerprint(chips: ChipsFolder) -> str:
    """Identifies the chips a checkpoint was trained on (names, split, size, bands, normalisation)."""
    text = repr((chips.train, chips.validation, chips.tile_size, chips.norm_a, chips.norm_b))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _require_pillow() -> None:
    """Fail before training, not after it, if the package's previews cannot be drawn."""
    try:
        import PIL  # noqa: F401
    except ModuleNotFoundError:
        raise Pix2PixError(
            f"Training writes preview images with Pillow, which {sys.executable} lacks. Install it with: "
            f'"{sys.executable}" -m pip install pillow'
        ) from None


def _check_output(output_model: str | Path) -> Path:
    output = Path(output_model).absolute()
    if output.suffix.lower() != ".p2p":
        raise Pix2PixError(f"The model path {output} must end in .p2p (a Pix2Pix model package).")
    if output.exists() and not output.is_file():
        raise Pix2PixError(f"The model path {output} is a folder; give a file path ending in .p2p.")
    return output


@holds_output_lock("output_model")  # one training per model path: checkpoint and model are never interleaved
def train(
    chips_folder: str | Path,
    output_model: str | Path,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    world: World | None = None,
) -> dict[str, Any]:
    """Train on ``chips_folder`` and write the best epoch's model to ``output_model`` (.p2p).

    The checkpoint ``<output_model>.ckpt`` is written at epoch ends (see
    ``TrainConfig.checkpoint_minutes``), at the end and when cancelled (:class:`Cancelled`
    is re-raised after it is saved); ``resume=True`` continues from it.
    Seeds the global torch RNG (dropout) with ``config.seed``. Returns a summary.
    With ``world`` (``distributed.process_group``, under torchrun) this is one rank of a
    data-parallel run: only rank 0 writes, and other ranks return ``{"rank": …}``.
    """
    config = config or TrainConfig()
    progress = progress or Progress()
    started = time.monotonic()
    _require_pillow()
    output = _check_output(output_model)
    ckpt = checkpoint_path(output)
    device = world.device if world else resolve_device(config.device)
    chips = open_chips(chips_folder, config.validation, config.seed)
    for note in chips.notes:
        progress.info(note)
    depth = choose_depth(config, chips.tile_size)
    if config.depth is None and depth < 5:
        progress.warning(
            f"Chips of {chips.tile_size} px allow a U-Net of depth {depth} only, which sees little context. "
            "Chips of a multiple of 32 px (256 is typical) allow depth 5 and more."
        )
    spec = GeneratorSpec(chips.bands_a, chips.bands_b, depth, config.ngf, config.norm, config.dropout)
    check_training_memory(spec, config.ndf, chips.tile_size, config.batch_size, len(chips.train), device)
    torch.manual_seed(config.seed)
    trainer = world.trainer(spec, config) if world else Pix2PixTrainer(spec, config, device)
    state = TrainState()
    best_weights: dict[str, torch.Tensor] | None = None
    if resume:
        state, best_weights = _restore(ckpt, trainer, chips, spec, config, progress)
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
    steps_per_epoch = sampler.steps_per_epoch
    total_steps = config.epochs * steps_per_epoch
    progress.info(
        f"Training a U-Net of depth {depth} ({count_parameters(trainer.generator):,} parameters, "
        f"{chips.bands_a}→{chips.bands_b} bands) on {len(chips.train)} training and {len(chips.validation)} "
        f"validation chips of {chips.tile_size} px, on {device}"
        f"{' with ' + str(trainer.amp_dtype).replace('torch.', '') + ' autocast' if trainer.amp else ''}."
    )
    stopped_early = False
    saved_at, unsaved = time.monotonic(), not resume
    try:
        while state.epoch <= config.epochs:
            if config.patience and state.stale_epochs >= config.patience:
                stopped_early = True
                break
            _train_epoch(trainer, loader, sampler, state, config, steps_per_epoch, total_steps, progress)
            _end_epoch(trainer, validation, chips, state, config, progress)
            best_weights = _keep_best(trainer, state, best_weights)
            state.epoch += 1
            state.step_in_epoch = 0
            state.seconds += time.monotonic() - started
            started, unsaved = time.monotonic(), True
            if started - saved_at >= config.checkpoint_minutes * 60:
                _save(ckpt, trainer, state, best_weights, chips, spec, config)
                saved_at, unsaved = time.monotonic(), False
    except Cancelled:
        state.seconds += time.monotonic() - started
        _save(ckpt, trainer, state, best_weights, chips, spec, config)
        progress.warning(f"Cancelled at epoch {state.epoch}, step {state.step_in_epoch}; the training state is "
                         f"saved in {ckpt}. Run again with resume to continue.")
        raise
    if unsaved:
        _save(ckpt, trainer, state, best_weights, chips, spec, config)
    if stopped_early:
        progress.info(f"Stopped early: {config.best_metric} did not improve for {config.patience} epochs.")
    if not trainer.is_writer:
        return {"rank": trainer.rank, "world_size": trainer.world_size, "steps": state.global_step}
    if best_weights is None:  # no validation: keep the last epoch
        best_weights = {k: v.detach().cpu().clone() for k, v in trainer.generator.state_dict().items()}
    return _finish(output, ckpt, trainer, chips, spec, config, state, best_weights, validation, stopped_early,
                   device, progress)


def _train_epoch(trainer: Pix2PixTrainer, loader: Any, sampler: EpochSampler, state: TrainState,
                 config: TrainConfig, steps_per_epoch: int, total_steps: int, progress: Progress) -> None:
    if state.step_in_epoch >= steps_per_epoch:
        return
    lr = config.lr * config.lr_factor(state.epoch)
    trainer.set_lr(lr)
    trainer.generator.train()
    trainer.discriminator.train()
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
            state.loss_sums[name] += value
        now = time.monotonic()
        state.epoch_seconds += now - tick
        tick = now
        text = " ".join(f"{name} {value:.3f}" for name, value in losses.items())
        progress.update(
            state.global_step / total_steps,
            f"epoch {state.epoch}/{config.epochs} step {state.step_in_epoch}/{steps_per_epoch} {text}",
            epoch=state.epoch, step=state.global_step, lr=lr, **losses,
        )


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


def _rng_tensors(device: torch.device) -> dict[str, torch.Tensor]:
    tensors = {"rng/torch": torch.get_rng_state()}
    if device.type == "cuda":
        for index, value in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda{index}"] = value
    return tensors


def _save(path: Path, trainer: Pix2PixTrainer, state: TrainState, best: dict[str, torch.Tensor] | None,
          chips: ChipsFolder, spec: GeneratorSpec, config: TrainConfig) -> None:
    if not trainer.is_writer:
        return
    tensors, structure = trainer.state_tensors()
    tensors.update(_rng_tensors(trainer.device))
    if best is not None:
        tensors.update({f"best/{k}": v for k, v in best.items()})
    document = {
        "config": config.to_dict(),
        "generator": spec.to_dict(),
        "chips": {"path": str(chips.root), "fingerprint": chips_fingerprint(chips)},
        "state": asdict(state),
        "world_size": trainer.world_size,
        **structure,
    }
    save_checkpoint(path, document, tensors)


def _restore(path: Path, trainer: Pix2PixTrainer, chips: ChipsFolder, spec: GeneratorSpec, config: TrainConfig,
             progress: Progress) -> tuple[TrainState, dict[str, torch.Tensor] | None]:
    if not path.exists():
        raise Pix2PixError(f"There is no checkpoint {path} to resume; train without resume to start afresh.")
    document, tensors = load_checkpoint(path)
    saved = TrainConfig.from_dict(document["config"])
    saved_spec = GeneratorSpec.from_dict(document["generator"])
    differs = [f"{name} {getattr(saved, name)} (now {getattr(config, name)})"
               for name in ARCHITECTURE_FIELDS if getattr(saved, name) != getattr(config, name)]
    if saved_spec.depth != spec.depth:
        differs.append(f"depth {saved_spec.depth} (now {spec.depth})")
    if differs:
        raise Pix2PixError(
            f"The checkpoint {path} was trained with {', '.join(differs)}; resume with the same settings, "
            "or train afresh without resume."
        )
    if document["chips"]["fingerprint"] != chips_fingerprint(chips):
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
    best = tensor_group(tensors, "best") or None
    progress.info(f"Resuming from epoch {state.epoch}, step {state.step_in_epoch} ({state.global_step} steps done).")
    return state, best


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


def _preview_rows(generator: UnetGenerator, chips: ChipsFolder, count: int, device: torch.device
                  ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    split = "validation" if chips.validation else "train"
    dataset = ChipDataset(chips, split, with_units=True)
    rows = []
    generator.eval()
    with torch.no_grad():
        for index in range(min(count, len(dataset))):
            sample = dataset[index]
            fake = generator(sample["a"][None].to(device)).float()
            prediction = chips.norm_b.invert(fake)[0].cpu().numpy()
            valid = sample["mask"][0].numpy() > 0.5
            a_units = chips.norm_a.invert(sample["a"]).numpy()
            rows.append((a_units, sample["b_units"].numpy(), prediction, valid))
    return rows


def _finish(output: Path, ckpt: Path, trainer: Pix2PixTrainer, chips: ChipsFolder, spec: GeneratorSpec,
            config: TrainConfig, state: TrainState, best_weights: dict[str, torch.Tensor], validation: Any,
            stopped_early: bool, device: torch.device, progress: Progress) -> dict[str, Any]:
    generator = UnetGenerator(spec).to(device)
    generator.load_state_dict(best_weights)
    rows = _preview_rows(generator, chips, config.preview_chips, device)
    history = state.history
    training = {
        "config": config.to_dict(),
        "epochs_run": history[-1]["epoch"] if history else 0,
        "steps": state.global_step,
        "seconds": round(state.seconds, 1),
        "device": str(device),
        "amp": str(trainer.amp_dtype).replace("torch.", "") if trainer.amp else None,
        "stopped_early": stopped_early,
        "losses": {"gan": config.gan_mode, "lambda_l1": config.lambda_l1, "l1": "masked mean over valid pixels"},
    }
    discriminator = {"type": "patchgan", "n_layers": 3, "ndf": config.ndf, "norm": config.norm,
                     "in_channels": spec.in_channels + spec.out_channels}
    metric = config.best_metric if validation is not None else "last epoch"
    metadata = model_metadata(chips.describe(), spec, discriminator, training, history, state.best_epoch, metric)
    path = write_package(output, metadata, best_weights, render_preview(rows), render_losses(history))
    best = metadata["metrics"]["best"] or {}
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
        "depth": spec.depth,
        "parameters": count_parameters(generator),
        "device": str(device),
        "seconds": training["seconds"],
        "stopped_early": stopped_early,
    }
