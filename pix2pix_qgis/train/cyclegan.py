"""Train a CycleGAN (Zhu et al. 2017) on an unpaired chips folder and write both directions as one ``.p2p``.

The step is the reference's ``cycle_gan_model.py``: G_A maps A→B and G_B maps B→A; D_A
judges B (real, or G_A's output drawn from an image pool of 50) and D_B judges A. The
generators minimise the adversarial losses plus λ_cycle · (‖G_B(G_A(a)) − a‖₁ +
‖G_A(G_B(b)) − b‖₁) plus λ_identity · λ_cycle · (‖G_A(b) − b‖₁ + ‖G_B(a) − a‖₁), in one
Adam step for both; then both discriminators take one step on half the sum of their real
and fake losses. Defaults are the reference's: LSGAN, λ_cycle 10, λ_identity 0.5, pools of
50, ResNet generators of 9 blocks with instance norm and no dropout, Adam 2e-4, β₁ 0.5.
Changes for rasters: the L1 terms skip nodata pixels, and generated chips are shown to the
discriminators with their source's nodata pixels set to 0, the value real chips carry
there, so nodata tells real from fake nothing. The identity losses need as many bands in
A as in B (the reference asserts it); with other counts they are off and the log says so.

Without pairs no validation metric says which epoch translates best, so the last epoch is
kept (as the reference does); each epoch reports the validation chips' cycle error
(A→B→A and B→A→B, masked L1 in normalised units). The epochs, checkpoint, cancel and resume
are the shared ones (``run.py``); the preview shows validation chips of A with their A→B
translation and of B with their B→A translation.
"""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path
from typing import Any, Protocol

import torch
from PIL import Image

from ..contract.errors import Pix2PixError
from ..core import plots
from ..core.locking import holds_output_lock
from ..core.paths import check_run_paths
from ..core.progress import Progress
from ..data.cycle import CycleDataset
from ..data.dataset import ChipView
from ..data.sampling import make_loader, training_loader
from ..data.unpaired import Domain, DomainDataset, UnpairedChips, open_unpaired
from ..model.card import BandsCard, GridCard, MetricsCard, ModelCard
from ..model.checkpoint import checkpoint_path
from ..model.device import resolve_device
from ..model.discriminators import MultiscaleDiscriminator, build_discriminator
from ..model.generators import AnyGeneratorSpec, Generator, build_generator, spec_from_dict
from ..model.guards import check_training_memory
from ..model.networks import GeneratorSpec, count_parameters
from ..model.package import write_package
from ..model.resnet import ResnetSpec
from .config import TrainConfig, choose_depth
from .losses import adversarial_loss, masked_l1
from .optimisation import Optimisation
from .run import TrainState, check_output, restore_training, run_epochs, save_training

# The reference's loss names (cycle_gan_model.py), in its order; cycle and identity are weighted.
CYCLE_LOSSES = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")


class ImagePool:
    """The history of generated chips a discriminator also sees (Shrivastava et al. 2017; the reference's ImagePool).

    Until ``size`` chips are stored each new one is stored and returned; after that each new
    chip is, with probability ½, swapped for a random stored one (which is returned instead).
    Draws come from ``generator``, so a resumed run continues the same sequence.
    """

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size, self.generator = size, generator
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) generated chips (detached) → B chips for the discriminator, new or from the pool."""
        if self.size == 0:
            return images
        chosen = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                chosen.append(image)
            elif float(torch.rand((), generator=self.generator)) > 0.5:
                slot = int(torch.randint(len(self.images), (), generator=self.generator))
                chosen.append(self.images[slot])
                self.images[slot] = image.clone()
            else:
                chosen.append(image)
        return torch.stack(chosen)

    def state(self) -> torch.Tensor | None:
        """The stored chips as one (N, C, H, W) tensor, None when empty."""
        return torch.stack(self.images) if self.images else None

    def load(self, stored: torch.Tensor | None, device: torch.device) -> None:
        """Restore :meth:`state`'s tensor."""
        self.images = [] if stored is None else [image.to(device) for image in stored]


def cyclegan_specs(config: TrainConfig, chips: UnpairedChips) -> tuple[AnyGeneratorSpec, AnyGeneratorSpec]:
    """The A→B and B→A generators ``config`` builds for ``chips`` (no dropout, as the CycleGAN reference)."""
    bands_a, bands_b = chips.a.channels, chips.b.channels
    config.discriminator_spec(1).check_chip_size(chips.tile_size)
    if config.generator == "resnet":
        ResnetSpec(bands_a, bands_b).check_size(chips.tile_size, chips.tile_size)
        return (ResnetSpec(bands_a, bands_b, config.resnet_blocks, config.ngf, config.norm, False, config.upsample),
                ResnetSpec(bands_b, bands_a, config.resnet_blocks, config.ngf, config.norm, False, config.upsample))
    depth = choose_depth(config, chips.tile_size)
    return (GeneratorSpec(bands_a, bands_b, depth, config.ngf, config.norm, False, config.upsample),
            GeneratorSpec(bands_b, bands_a, depth, config.ngf, config.norm, False, config.upsample))


class CycleGanTrainer:
    """Two generators, two discriminators, their two optimizers, the image pools and one training step."""

    rank, world_size = 0, 1

    def __init__(self, spec_a2b: AnyGeneratorSpec, spec_b2a: AnyGeneratorSpec, config: TrainConfig,
                 device: torch.device) -> None:
        self.config, self.device = config, device
        init = torch.Generator().manual_seed(config.seed)
        self.g_a: Generator = build_generator(spec_a2b, init).to(device)  # A → B
        self.g_b: Generator = build_generator(spec_b2a, init).to(device)  # B → A
        self.d_a: MultiscaleDiscriminator = build_discriminator(  # judges B
            config.discriminator_spec(spec_a2b.out_channels), generator=init).to(device)
        self.d_b: MultiscaleDiscriminator = build_discriminator(  # judges A
            config.discriminator_spec(spec_b2a.out_channels), generator=init).to(device)
        self.optimisation = Optimisation(config, device, [self.g_a, self.g_b], [self.d_a, self.d_b])
        same_bands = spec_a2b.in_channels == spec_a2b.out_channels
        self.lambda_identity = config.lambda_identity if same_bands else 0.0
        self.pool_rng = torch.Generator().manual_seed(config.seed + 1)
        self.pool_a = ImagePool(config.pool_size, self.pool_rng)  # generated A, for D_B
        self.pool_b = ImagePool(config.pool_size, self.pool_rng)  # generated B, for D_A

    @property
    def networks(self) -> tuple[torch.nn.Module, ...]:
        """G_A, G_B, D_A, D_B."""
        return self.g_a, self.g_b, self.d_a, self.d_b

    @property
    def is_writer(self) -> bool:
        """Whether this process writes checkpoints and the model."""
        return self.rank == 0

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of both optimizers (the decay policy calls this each epoch)."""
        self.optimisation.set_lr(lr)

    def train_mode(self) -> None:
        """Every network in training mode."""
        for net in self.networks:
            net.train()

    def share_gradients(self, *networks: torch.nn.Module) -> None:
        """Make the gradients of ``networks`` those of the whole run before their optimizer steps.

        One process holds the whole run's gradients already; a data-parallel trainer
        (``scale.cycle_ddp``) averages them over the ranks here.
        """

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One G step (both generators) then one D step (both discriminators); returns :data:`CYCLE_LOSSES`."""
        move, autocast = self.optimisation.move, self.optimisation.autocast
        a, b = move(batch["a"]), move(batch["b"])
        mask_a, mask_b = move(batch["mask_a"]), move(batch["mask_b"])
        mode, lam = self.config.gan_mode, self.config.lambda_cycle
        with autocast():
            fake_b = self.g_a(a)
            rec_a = self.g_b(fake_b)
            fake_a = self.g_b(b)
            rec_b = self.g_a(fake_a)
        # Generated chips carry 0 where their source is nodata, as real chips do there.
        shown_b, shown_a = fake_b * mask_a, fake_a * mask_b

        for net in (self.d_a, self.d_b):
            net.requires_grad_(False)
        zero = torch.zeros((), device=self.device)
        with autocast():
            loss_g_a = adversarial_loss(self.d_a(shown_b), True, mode, for_discriminator=False)
            loss_g_b = adversarial_loss(self.d_b(shown_a), True, mode, for_discriminator=False)
            idt_a = self.g_a(b) if self.lambda_identity > 0 else None
            idt_b = self.g_b(a) if self.lambda_identity > 0 else None
        loss_cycle_a = lam * masked_l1(rec_a.float(), a, mask_a)
        loss_cycle_b = lam * masked_l1(rec_b.float(), b, mask_b)
        weight = lam * self.lambda_identity
        loss_idt_a = weight * masked_l1(idt_a.float(), b, mask_b) if idt_a is not None else zero
        loss_idt_b = weight * masked_l1(idt_b.float(), a, mask_a) if idt_b is not None else zero
        loss_g = loss_g_a + loss_g_b + loss_cycle_a + loss_cycle_b + loss_idt_a + loss_idt_b
        self.optimisation.step("G", loss_g, lambda: self.share_gradients(self.g_a, self.g_b))

        for net in (self.d_a, self.d_b):
            net.requires_grad_(True)
        pooled_b, pooled_a = self.pool_b.query(shown_b.detach()), self.pool_a.query(shown_a.detach())
        with autocast():
            loss_d_a = 0.5 * (adversarial_loss(self.d_a(b), True, mode) + adversarial_loss(self.d_a(pooled_b), False,
                                                                                              mode))
            loss_d_b = 0.5 * (adversarial_loss(self.d_b(a), True, mode) + adversarial_loss(self.d_b(pooled_a), False,
                                                                                              mode))
        self.optimisation.step("D", loss_d_a + loss_d_b, lambda: self.share_gradients(self.d_a, self.d_b))
        values = torch.stack([loss_d_a, loss_g_a, loss_cycle_a, loss_idt_a, loss_d_b, loss_g_b, loss_cycle_b,
                              loss_idt_b]).detach().float().cpu()
        return dict(zip(CYCLE_LOSSES, values.tolist()))

    @torch.no_grad()
    def evaluate(self, loader: Any, progress: Progress | None = None) -> dict[str, float | None]:
        """Cycle errors of the validation chips in eval mode: masked L1 of A→B→A against A and B→A→B against B."""
        for net in (self.g_a, self.g_b):
            net.eval()
        sums = {"a": [0.0, 0.0], "b": [0.0, 0.0]}
        try:
            for batch in loader:
                if progress is not None:
                    progress.check_cancelled()
                a, b = self.optimisation.move(batch["a"]), self.optimisation.move(batch["b"])
                for key, source, mask, there, back in (("a", a, batch["mask_a"], self.g_a, self.g_b),
                                                       ("b", b, batch["mask_b"], self.g_b, self.g_a)):
                    with self.optimisation.autocast():
                        rec = back(there(source)).float()
                    weight = mask.to(self.device).expand_as(rec)
                    sums[key][0] += float((torch.abs(rec - source) * weight).sum())
                    sums[key][1] += float(weight.sum())
        finally:
            self.train_mode()
        return {f"cycle_{key.upper()}": (total / count if count else None) for key, (total, count) in sums.items()}

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Networks, optimizers, pools and the pools' RNG; and the JSON structure around them."""
        tensors: dict[str, torch.Tensor] = {}
        for name, net in zip(("G_A", "G_B", "D_A", "D_B"), self.networks):
            tensors.update({f"{name}/{k}": v for k, v in net.state_dict().items()})
        optimisers, structure = self.optimisation.state()
        tensors.update(optimisers)
        for name, pool in (("pool/A", self.pool_a), ("pool/B", self.pool_b)):
            stored = pool.state()
            if stored is not None:
                tensors[name] = stored
        tensors["rng/pool"] = self.pool_rng.get_state()
        return tensors, structure

    def load_state(self, tensors: dict[str, torch.Tensor], structure: dict[str, Any]) -> None:
        """Restore :meth:`state_tensors`' output."""
        for name, net in zip(("G_A", "G_B", "D_A", "D_B"), self.networks):
            net.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + "/")})
        self.optimisation.load(tensors, structure)
        self.pool_a.load(tensors.get("pool/A"), self.device)
        self.pool_b.load(tensors.get("pool/B"), self.device)
        self.pool_rng.set_state(tensors["rng/pool"])


def unpaired_fingerprint(chips: UnpairedChips) -> str:
    """Identifies the chips a checkpoint was trained on (each domain's names, split, size and normalisation)."""
    text = repr([(d.train, d.validation, d.tile_size, d.norm) for d in (chips.a, chips.b)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class _CycleRun:
    """The CycleGAN part of the shared loop (``run.EpochHooks``): validation rows and the checkpoint."""

    def __init__(self, trainer: CycleGanTrainer, validation: Any, chips: UnpairedChips,
                 specs: tuple[AnyGeneratorSpec, AnyGeneratorSpec], config: TrainConfig, ckpt: Path,
                 progress: Progress) -> None:
        self.trainer, self.validation, self.chips, self.specs = trainer, validation, chips, specs
        self.config, self.ckpt, self.progress = config, ckpt, progress

    def end_epoch(self, state: TrainState) -> None:
        """Average the epoch's losses, add the validation cycle errors, keep this (the last) epoch."""
        steps = max(state.step_in_epoch, 1)
        row: dict[str, Any] = {"epoch": state.epoch, "lr": self.config.lr * self.config.lr_factor(state.epoch)}
        row.update({name: total / steps for name, total in state.loss_sums.items()})
        row["train_seconds"] = round(state.epoch_seconds, 3)
        draws = max(len(self.chips.a.train), len(self.chips.b.train))
        row["samples_per_s"] = round(draws / state.epoch_seconds, 3) if state.epoch_seconds else None
        line = (f"epoch {state.epoch}/{self.config.epochs}: cycle A {row.get('cycle_A', 0.0):.4f}, "
                f"cycle B {row.get('cycle_B', 0.0):.4f}")
        if self.validation is not None:
            errors = self.trainer.evaluate(self.validation, self.progress)
            row.update({f"val_{name}": value for name, value in errors.items()})
            line += ", validation cycle A {}, B {}".format(*(
                "n/a" if errors[key] is None else f"{errors[key]:.4f}" for key in ("cycle_A", "cycle_B")))
        state.best_epoch = state.epoch
        state.history.append(row)
        state.loss_sums = dict.fromkeys(CYCLE_LOSSES, 0.0)
        state.epoch_seconds = 0.0
        speed = f", {row['samples_per_s']:.1f} draws/s" if row["samples_per_s"] else ""
        self.progress.info(line + speed)

    def save(self, state: TrainState) -> None:
        """The checkpoint: the trainer's state (networks, optimizers, pools) and both generator specs."""
        record = {"generator": self.specs[0].to_dict(), "generator_b2a": self.specs[1].to_dict(),
                  "chips": {"path": str(self.chips.root), "fingerprint": unpaired_fingerprint(self.chips)}}
        save_training(self.ckpt, self.trainer, state, self.config, record, {})


class CycleTopology(Protocol):
    """Where this process stands in a CycleGAN run: its device and its trainer (``loop.Topology`` for CycleGAN).

    Without one, :func:`train_cyclegan` trains in one process; ``scale.cycle_ddp.CycleRank``
    is one rank of a torchrun launch, whose trainer averages gradients over the ranks.
    """

    @property
    def device(self) -> torch.device:
        """The device this process trains on."""

    def cycle_trainer(self, spec_a2b: AnyGeneratorSpec, spec_b2a: AnyGeneratorSpec,
                      config: TrainConfig) -> CycleGanTrainer:
        """The trainer that runs this process's steps, with its rank and world size."""


@holds_output_lock("output_model")  # one training per model path: checkpoint and model are never interleaved
def train_cyclegan(
    chips_folder: str | Path,
    output_model: str | Path,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    topology: CycleTopology | None = None,
) -> dict[str, Any]:
    """Train a CycleGAN on the unpaired ``chips_folder`` and write both generators to ``output_model`` (.p2p).

    The checkpoint ``<output_model>.ckpt`` is written as :func:`loop.train` writes its own
    (epoch ends after ``checkpoint_minutes``, the end, a cancel); ``resume=True`` continues
    from it. ``config.model_type`` must be cyclegan. Returns a summary. With a ``topology``
    of several processes (``scale.cycle_ddp.CycleRank`` under torchrun) this is one rank of a
    data-parallel run: each rank draws its own shard of each epoch, only rank 0 writes, and
    other ranks return ``{"rank": …}``.
    """
    config = config or TrainConfig(model_type="cyclegan")
    if config.model_type != "cyclegan":
        raise Pix2PixError(f"train_cyclegan needs MODEL_TYPE cyclegan (--model cyclegan), not {config.model_type}.")
    progress = progress or Progress()
    started = time.monotonic()
    output = check_output(output_model)
    ckpt = checkpoint_path(output)
    check_run_paths(inputs={"chips folder": chips_folder}, files={"model": output, "checkpoint": ckpt})
    device = topology.device if topology is not None else resolve_device(config.device)
    chips = open_unpaired(chips_folder, config.validation, config.seed)
    for note in chips.notes + chips.a.notes + chips.b.notes:
        progress.info(note)
    specs = cyclegan_specs(config, chips)
    judge_b = config.discriminator_spec(chips.b.channels)
    draws = max(len(chips.a.train), len(chips.b.train))
    # Two of each network and twice the passes: the pix2pix estimate of one direction, at twice the batch.
    check_training_memory(specs[0], judge_b, chips.tile_size, 2 * config.batch_size, 2 * draws, device)
    torch.manual_seed(config.seed)
    trainer = topology.cycle_trainer(*specs, config) if topology is not None else CycleGanTrainer(*specs, config,
                                                                                                   device)
    if trainer.lambda_identity == 0 and config.lambda_identity > 0:
        progress.info(f"A has {chips.a.channels} band(s) and B {chips.b.channels}: the identity losses need equal "
                      "counts, so they are off (LAMBDA_IDENTITY ignored).")
    state = TrainState(loss_sums=dict.fromkeys(CYCLE_LOSSES, 0.0))
    if resume:
        def differences(document: dict[str, Any]) -> list[str]:
            saved = (spec_from_dict(document["generator"]), spec_from_dict(document["generator_b2a"]))
            return [f"generators {saved[0].name} (now {specs[0].name})"] if saved != specs else []

        _, _, state = restore_training(ckpt, trainer, config, differences, unpaired_fingerprint(chips), progress)
    elif ckpt.exists():
        progress.warning(f"The earlier checkpoint {ckpt} will be replaced; use resume to continue it instead.")
    workers = config.workers_for(device)
    pin = device.type == "cuda"
    loader, sampler = training_loader(CycleDataset(chips, "train", augment=config.augment, seed=config.seed),
                                      config.batch_size, config.seed, workers, pin, trainer.rank, trainer.world_size)
    validation = None
    if chips.a.validation and chips.b.validation:
        validation = make_loader(CycleDataset(chips, "validation", seed=config.seed), config.batch_size,
                                 num_workers=workers, pin_memory=pin)
    progress.info(
        f"Training a CycleGAN: two {specs[0].name} generators ({count_parameters(trainer.g_a):,} parameters each, "
        f"{chips.a.channels}↔{chips.b.channels} bands), {len(chips.a.train)} training chips of A and "
        f"{len(chips.b.train)} of B, {chips.tile_size} px, {config.gan_mode} loss, λ cycle {config.lambda_cycle:g}, "
        f"λ identity {trainer.lambda_identity:g}, pools of {config.pool_size}, on {device} in "
        f"{trainer.optimisation.precision}."
    )
    run = _CycleRun(trainer, validation, chips, specs, config, ckpt, progress)
    run_epochs(trainer, loader, sampler, state, config, run, progress, ckpt, resume, started)
    if not trainer.is_writer:
        return {"rank": trainer.rank, "world_size": trainer.world_size, "steps": state.global_step}
    return _finish(output, ckpt, trainer, chips, specs, config, state, progress)


def _views(domain: Domain, there: torch.nn.Module, target: Domain, count: int, device: torch.device
           ) -> list[ChipView]:
    """The first ``count`` validation (else training) chips of ``domain`` with their translation, in units."""
    split = "validation" if domain.validation else "train"
    dataset = DomainDataset(domain, split)
    views = []
    with torch.no_grad():
        for index in range(min(count, len(dataset))):
            sample = dataset[index]
            out = there(sample["image"][None].to(device)).float()
            valid = sample["mask"][0].numpy() > 0.5
            translated = target.norm.invert(out)[0].cpu().numpy()
            views.append(ChipView(dataset.names[index], domain.norm.invert(sample["image"]).numpy(), translated,
                                  valid))
    return views


def _preview_png(trainer: CycleGanTrainer, chips: UnpairedChips, count: int) -> bytes:
    """A→B on chips of A above B→A on chips of B: each row a source chip and its translation (one PNG)."""
    trainer.g_a.eval()
    trainer.g_b.eval()
    figures = []
    for source, there, target, title in ((chips.a, trainer.g_a, chips.b, "A → B"),
                                         (chips.b, trainer.g_b, chips.a, "B → A")):
        views = _views(source, there, target, count, trainer.device)
        displays = (plots.Display.of(source.channels, source.dtype), plots.Display.of(target.channels, target.dtype))
        figures.append(plots.predictions_figure(views, [], *displays, title=title))
    tiles = [Image.open(io.BytesIO(plots.png(figure))).convert("RGB") for figure in figures]
    width, height = max(t.width for t in tiles), sum(t.height for t in tiles)
    canvas = Image.new("RGB", (width, height), "white")
    top = 0
    for tile in tiles:
        canvas.paste(tile, (0, top))
        top += tile.height
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def _finish(output: Path, ckpt: Path, trainer: CycleGanTrainer, chips: UnpairedChips,
            specs: tuple[AnyGeneratorSpec, AnyGeneratorSpec], config: TrainConfig, state: TrainState,
            progress: Progress) -> dict[str, Any]:
    history = state.history
    last = history[-1] if history else {}
    training = {
        "config": config.to_dict(),
        "epochs_run": last.get("epoch", 0),
        "steps": state.global_step,
        "seconds": round(state.seconds, 1),
        "device": str(trainer.device),
        "precision": trainer.optimisation.precision,
        "amp": trainer.optimisation.precision if trainer.optimisation.mixed else None,
        "losses": {"gan": config.gan_mode, "lambda_cycle": config.lambda_cycle,
                   "lambda_identity": trainer.lambda_identity, "pool_size": config.pool_size,
                   "cycle": "masked mean over valid pixels"},
        "chips": chips.describe()["chips"],
    }
    described = chips.describe()
    grid_a, grid_b = described["a"].get("grid"), described["b"].get("grid")
    card = ModelCard(
        generator=specs[0], chip_size=chips.tile_size,
        input=BandsCard.from_dict(described["a"]), output=BandsCard.from_dict(described["b"]),
        grid=None if grid_a is None else GridCard.from_dict(grid_a),
        metrics=MetricsCard(state.best_epoch, "last epoch", last, tuple(history)),
        discriminator=config.discriminator_spec(chips.b.channels), training=training, model_type="cyclegan",
        generator_b2a=specs[1], discriminator_b2a=config.discriminator_spec(chips.a.channels),
        grid_b=None if grid_b is None else GridCard.from_dict(grid_b),
    )
    preview = _preview_png(trainer, chips, config.preview_chips)
    losses = plots.png(plots.losses_figure(history, state.best_epoch))
    weights = {k: v.detach().cpu() for k, v in trainer.g_a.state_dict().items()}
    weights_b2a = {k: v.detach().cpu() for k, v in trainer.g_b.state_dict().items()}
    path = write_package(output, card, weights, preview, losses, b2a_state=weights_b2a)
    progress.update(1.0, "done")
    progress.info(f"Model written to {path} (both directions, epoch {state.best_epoch}).")
    return {
        "output": str(path), "checkpoint": str(ckpt), "model_type": "cyclegan", "epochs": training["epochs_run"],
        "kept_epoch": state.best_epoch, **{f"val_{key}": last.get(f"val_{key}") for key in ("cycle_A", "cycle_B")},
        "train_chips_a": len(chips.a.train), "train_chips_b": len(chips.b.train),
        "validation_chips_a": len(chips.a.validation), "validation_chips_b": len(chips.b.validation),
        "chip_size": chips.tile_size, "generator": specs[0].name, "parameters": count_parameters(trainer.g_a),
        "device": str(trainer.device), "precision": training["precision"], "seconds": training["seconds"],
    }

