"""The notebook workflow of arcgis.learn, on this engine.

    data = prepare_data("chips", batch_size=4)
    data.show_batch()                        # input | target chips
    model = Pix2Pix(data, ngf=32)
    lr = model.lr_find()                     # learning-rate range test; model.plot_lr_find() draws it
    model.fit(20, lr)                        # fit(20) without lr runs lr_find first
    model.plot_losses()
    model.show_results()                     # input | target | prediction on validation chips
    model.compute_metrics()                  # MAE, RMSE, PSNR, SSIM per band, in the target's units
    model.save("roads.p2p")
    model = Pix2Pix.from_model("roads.p2p")
    model.translate_raster("county.tif", "county_roads.tif")
    prediction = model.predict(array)        # (C, H, W) in A's units → B's units

Every call runs the engine's own code, never a copy: ``fit`` is ``train.loop.train``;
``lr_find`` trains a throw-away ``Pix2PixTrainer`` (``train.lr_find``); ``show_results`` and
``compute_metrics`` are training's validation (``train.trainer``, ``evaluate.metrics``);
``translate_raster`` is ``infer.translate``'s; figures come from ``core.plots`` and are
matplotlib Figures, which Jupyter shows inline.

Unlike arcgis.learn, chips are paired by name, the split is the export's spatial one,
metrics are in the target's units with the standard PSNR, and ``predict`` returns numbers
in the target's units instead of showing a picture.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from .contract.errors import Pix2PixError
from .contract.tables import TRAIN
from .core import plots
from .core.outputs import staged_file
from .core.paths import check_run_paths
from .core.progress import Progress
from .data.dataset import ChipDataset
from .data.folder import SPLITS, ChipsFolder, open_chips
from .data.sampling import epoch_order, make_loader
from .infer.translate import TranslateSpec
from .infer.translate import translate_raster as translate_file
from .model.card import ModelCard
from .model.checkpoint import checkpoint_path
from .model.device import resolve_device
from .model.generators import Generator
from .model.package import load_model, predict
from .train.config import TrainConfig
from .train.cyclegan import train_cyclegan
from .train.loop import train
from .train.lr_find import LRFinding, lr_range_test
from .train.trainer import evaluate, predict_chips

Bands = Union[int, Sequence[int], None]  # one band (1-based), or three for an RGB composite; None: the default


def _shown(figure: Figure) -> Figure:
    """A figure for the caller; in Jupyter it renders inline when it is a cell's result."""
    plots.enable_notebook_display()
    return figure


@dataclass(frozen=True)
class Pix2PixData:
    """A checked chips folder plus how to batch it."""

    chips: ChipsFolder
    batch_size: int = TRAIN["BATCH_SIZE"].default
    num_workers: int | None = None  # None: none on the CPU, up to 4 with CUDA
    seed: int = TRAIN["SEED"].default
    val_split_pct: float = TRAIN["VALIDATION"].default

    @property
    def path(self) -> Path:
        """The chips folder (its root, where ``chips.json`` or the Esri files are)."""
        return self.chips.root

    @property
    def chip_size(self) -> int:
        """Side of every chip in pixels (chips are square)."""
        return self.chips.tile_size

    def loader(self, split: str = "validation") -> Any:
        """Batches of a split in file order, without augmentation (to look at or to evaluate)."""
        dataset = ChipDataset(self.chips, split, with_units=True, seed=self.seed)
        return make_loader(dataset, self.batch_size, num_workers=self.num_workers or 0, seed=self.seed)

    def displays(self, bands_a: Bands = None, bands_b: Bands = None) -> tuple[plots.Display, plots.Display]:
        """How input and target are drawn: bands 1-2-3 as RGB for 3-band rasters, else band 1 (or
        the bands given); 8-bit data on 0–255, other data stretched 2–98 %."""
        info = self.chips.band_info
        return (plots.Display.of(self.chips.bands_a, info["a"]["dtype"], bands_a, "input (A)"),
                plots.Display.of(self.chips.bands_b, info["b"]["dtype"], bands_b, "target (B)"))

    def show_batch(self, rows: int = 4, split: str = "train", bands_a: Bands = None, bands_b: Bands = None
                   ) -> Figure:
        """Input | target for ``rows`` chips of ``split``, in the rasters' units as the networks see them.

        Training chips come in the order of training's first epoch, without augmentation
        (the 8 flips and rotations); validation chips in file order.
        """
        if split not in SPLITS:
            raise Pix2PixError(f"split '{split}' is unknown; use {' or '.join(SPLITS)}.")
        if rows < 1:
            raise Pix2PixError(f"rows {rows} must be at least 1.")
        dataset = ChipDataset(self.chips, split, with_units=True, seed=self.seed)
        if not len(dataset):
            raise Pix2PixError(f"The chips folder {self.path} has no {split} chips.")
        order = epoch_order(len(dataset), self.seed, 1) if split == "train" else range(len(dataset))
        views = [dataset.view(dataset[index]) for index in list(order)[:rows]]
        return _shown(plots.chips_figure(views, *self.displays(bands_a, bands_b), title=f"{split} chips"))

    def __repr__(self) -> str:
        return (f"Pix2PixData({self.path}, {len(self.chips.train)} train / {len(self.chips.validation)} validation "
                f"chips of {self.chip_size} px, {self.chips.bands_a}→{self.chips.bands_b} bands)")


def prepare_data(path: str | Path, batch_size: int = TRAIN["BATCH_SIZE"].default,
                 val_split_pct: float = TRAIN["VALIDATION"].default, seed: int = TRAIN["SEED"].default,
                 num_workers: int | None = None) -> Pix2PixData:
    """Open a chips folder; ``val_split_pct`` applies only to an Esri folder without chips.json."""
    TRAIN.check(batch_size=batch_size, validation=val_split_pct, seed=seed, num_workers=num_workers)
    chips = open_chips(path, validation=val_split_pct, seed=seed)
    return Pix2PixData(chips, batch_size, num_workers, seed, val_split_pct)


class _PackagedModel:
    """What every notebook model does with its ``.p2p``: train into a private one, save it, translate rasters."""

    _package: Path | None = None
    _workdir: Path | None = None
    _options: dict[str, Any]

    def _work_package(self) -> Path:
        """The private ``.p2p`` that fits train into (its folder is removed with the object)."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="pix2pix-"))
            weakref.finalize(self, shutil.rmtree, self._workdir, True)
        return self._workdir / "model.p2p"

    def save(self, path: str | Path) -> Path:
        """Copy the model package (best epoch; both directions of a CycleGAN) to ``path`` (.p2p)."""
        if self._package is None:
            raise Pix2PixError("There is nothing to save yet; call fit() first.")
        target = Path(path).absolute()
        if target.suffix.lower() != ".p2p":
            raise Pix2PixError(f"{target} must end in .p2p.")
        check_run_paths(inputs={"trained model": self._package}, files={"model": target})
        with staged_file(target) as staging:
            shutil.copyfile(self._package, staging)
        return target

    def translate_raster(self, input_raster: str | Path, output_raster: str | Path,
                         progress: Progress | None = None, **options: Any) -> dict[str, Any]:
        """Translate a whole raster of any size into a GeoTIFF on its grid, as ``pix2pix-qgis translate``.

        ``options`` are :class:`TranslateSpec` fields: tile_size, overlap, margin, batch_size,
        device (default: the model's), bands, extent, extent_crs, blend, tta, dtype, cog,
        creation_options, and direction (b2a: a CycleGAN's B→A generator). Returns the translation's summary.
        """
        if self._package is None:
            raise Pix2PixError("The model is not trained, so there is nothing to translate with; call fit() or "
                               "Pix2Pix.from_model() first.")
        known = [field.name for field in dataclasses.fields(TranslateSpec) if field.name != "part"]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise Pix2PixError(f"translate_raster has no option(s) {', '.join(unknown)}; use {', '.join(known)}.")
        spec = TranslateSpec(**{"device": self._options.get("device", "auto"), **options})
        return translate_file(input_raster, self._package, output_raster, spec, progress)


class Pix2Pix(_PackagedModel):
    """A Pix2Pix model: :meth:`lr_find`, :meth:`fit`, look at it, :meth:`save`, apply it.

    Keyword options are :class:`TrainConfig` fields (ngf, ndf, depth, norm, dropout,
    gan_mode, lambda_l1, lr, device, and the pix2pixHD options upsample, d_scales, lambda_feat,
    spectral_norm, ...). ``precision`` is float32, bfloat16 or float16 (None, the default: as
    ``amp``, mixed on CUDA and float32 on the CPU; ``amp=False`` still trains in float32).
    Each ``fit(n)`` trains n more epochs, continuing
    the previous fit's state (optimizers included).
    """

    def __init__(self, data: Pix2PixData | None = None, **options: Any) -> None:
        self.data = data
        self._options = options
        self._epochs_done = 0
        self._generator: Generator | None = None
        self.card: ModelCard | None = None  # the model card of the trained or loaded package
        self._from_file = False
        self.lr_finding: LRFinding | None = None  # the last lr_find's curve
        TrainConfig(**options)  # validate now, not after the first epoch

    def _config(self, epochs: int) -> TrainConfig:
        data = self._need_data("train")
        return TrainConfig(**{
            "batch_size": data.batch_size, "num_workers": data.num_workers, "seed": data.seed,
            "validation": data.val_split_pct, **self._options, "epochs": epochs,
        })

    def _need_data(self, call: str) -> Pix2PixData:
        if self.data is None:
            raise Pix2PixError(f"This model has no data to {call} on; create it with Pix2Pix(prepare_data(...)) "
                               "or Pix2Pix.from_model(path, data=prepare_data(...)).")
        return self.data

    def _need_model(self, call: str) -> tuple[Generator, ModelCard]:
        if self._generator is None or self.card is None:
            raise Pix2PixError(f"The model is not trained, so there is nothing to {call}; call fit() or "
                               "Pix2Pix.from_model() first.")
        return self._generator, self.card

    @property
    def _device(self) -> torch.device:
        return resolve_device(self._options.get("device", "auto"))

    def lr_find(self, start_lr: float = 1e-6, end_lr: float = 1e-1, steps: int = 100,
                progress: Progress | None = None) -> float:
        """The suggested learning rate of a range test; :meth:`plot_lr_find` draws its curve.

        A throw-away copy of the trainer takes ``steps`` training steps at rates growing
        geometrically from ``start_lr`` to ``end_lr`` (stopping early once the loss diverges);
        the suggestion is a tenth of the rate where the smoothed generator loss is lowest
        (``train.lr_find`` says why).
        The model itself is not changed: after a fit the copy starts from its current state.
        """
        data = self._need_data("lr_find")
        if self._from_file:
            raise Pix2PixError("lr_find advises a training; a model read with from_model() is not trained here.")
        config = self._config(self._epochs_done + 1)
        checkpoint = checkpoint_path(self._package) if self._package is not None else None  # after a fit
        self.lr_finding = lr_range_test(data.chips, config, resolve_device(config.device), start_lr, end_lr,
                                        steps, checkpoint, progress)
        return self.lr_finding.suggestion

    def plot_lr_find(self) -> Figure:
        """The last :meth:`lr_find`'s loss against learning rate, the suggestion marked."""
        if self.lr_finding is None:
            raise Pix2PixError("There is no range test to plot yet; call lr_find() first.")
        found = self.lr_finding
        return _shown(plots.lr_figure(found.lrs, found.losses, found.suggestion))

    def fit(self, epochs: int = 10, lr: float | None = None, progress: Progress | None = None,
            **options: Any) -> dict[str, Any]:
        """Train ``epochs`` more epochs; returns the training summary (best epoch, validation metrics).

        Without ``lr`` the rate given before (to the constructor or an earlier fit) is kept;
        when none was ever given, :meth:`lr_find` chooses it first, as in arcgis.learn.
        """
        data = self._need_data("train")
        if self._from_file:
            raise Pix2PixError("A model read with from_model() does not train further in the API; fit a new "
                               "Pix2Pix(data), or resume its checkpoint with 'pix2pix-qgis train --resume'.")
        self._options.update(options)
        if lr is not None:
            self._options["lr"] = lr
        elif "lr" not in self._options:
            self._options["lr"] = self.lr_find(progress=progress)
            (progress or Progress()).info(f"lr_find suggests a learning rate of {self._options['lr']:.2e}; "
                                          "fit uses it (give lr to choose one).")
        config = self._config(self._epochs_done + epochs)
        package = self._work_package()
        result = train(data.path, package, config, progress, resume=self._epochs_done > 0)
        self._epochs_done = config.epochs
        self._package = package
        self._generator, self.card = load_model(package, self._device)
        return result

    def plot_losses(self) -> Figure:
        """The per-epoch losses of the fits so far (or of the model read): adversarial terms, and
        training and validation L1 with the best epoch marked."""
        metrics = self._need_model("plot")[1].metrics
        return _shown(plots.losses_figure(metrics.history, metrics.best_epoch))

    def _model_chips(self, call: str) -> ChipsFolder:
        """The data's chips with the model's own normalisation, so a model read from a file sees its
        input scaled and its output mapped back exactly as in its training."""
        data, (_, card) = self._need_data(call), self._need_model(call)
        norm_in, norm_out = card.input.normalization, card.output.normalization
        if (norm_in.bands, norm_out.bands) != (data.chips.bands_a, data.chips.bands_b):
            raise Pix2PixError(f"The model maps {norm_in.bands} band(s) to {norm_out.bands}, but the chips in "
                               f"{data.path} have {data.chips.bands_a} and {data.chips.bands_b}. Give chips "
                               "exported with the model's bands.")
        card.generator.check_size(data.chip_size, data.chip_size)
        return dataclasses.replace(data.chips, norm_a=norm_in, norm_b=norm_out)

    def show_results(self, rows: int = 4, bands_a: Bands = None, bands_b: Bands = None) -> Figure:
        """Input | target | prediction for the first ``rows`` validation chips (training chips when
        there are none), in the rasters' units; target and prediction share one stretch."""
        if rows < 1:
            raise Pix2PixError(f"rows {rows} must be at least 1.")
        chips = self._model_chips("show results")
        views = predict_chips(self._need_model("show")[0], chips, rows, self._device)
        split = "validation" if chips.validation else "training (there are no validation chips)"
        displays = self._need_data("show results").displays(bands_a, bands_b)
        return _shown(plots.chips_figure(views, *displays, title=f"{split} chips"))

    def compute_metrics(self) -> dict[str, Any]:
        """Metrics of the model on the validation chips, over their valid pixels, in the target's units.

        Returns ``mae``, ``rmse``, ``psnr`` (dB), ``ssim``, ``bias`` and ``r2`` as the mean over
        bands, ``bands`` (the same per band, with its ``data_range``), ``pixels``, and ``l1``
        (training's validation L1, normalised units). These are training's validation numbers
        (``train.trainer.evaluate``), so after a fit they equal the best epoch's.

        The definitions are the standard ones: MAE and RMSE of the errors in target units;
        PSNR = 10·log10(L² / MSE) with L the target band's p01–p99 span (the range the model
        can produce); SSIM with an 11×11 Gaussian window (σ 1.5) on that L, over windows with
        no nodata pixel. arcgis.learn's ``compute_metrics`` reports a "PSNR" of
        10·log10(1 / mean|error|) on values scaled to [-1, 1] (an L1, not a mean squared
        error, and no data range) and SSIM on [-1, 1]; its numbers are not comparable to these.
        """
        chips, data = self._model_chips("compute metrics"), self._need_data("compute metrics")
        if not chips.validation:
            raise Pix2PixError(f"{data.path} has no validation chips to compute metrics on. Export with "
                               "VALIDATION above 0, or evaluate a translated raster with evaluate_rasters.")
        dataset = ChipDataset(chips, "validation", with_units=True, seed=data.seed)
        loader = make_loader(dataset, data.batch_size, num_workers=data.num_workers or 0)
        return evaluate(self._need_model("evaluate")[0], loader, chips, self._device)

    @classmethod
    def from_model(cls, path: str | Path, data: Pix2PixData | None = None, device: str = "cpu") -> Pix2Pix:
        """A model from a ``.p2p`` file (arcgis.learn's ``from_model``): it predicts, translates
        rasters and plots its losses; with ``data`` it also shows results and computes metrics on
        those chips. It does not train further."""
        model = cls(data, device=device)
        model._generator, model.card = load_model(path, model._device)
        model._package = Path(path).absolute()
        model._from_file = True
        return model

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Pix2Pix:
        """:meth:`from_model` without data."""
        return cls.from_model(path, device=device)

    def predict(self, array: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """(C_in, H, W) or (B, C_in, H, W) in the input's units → float32 in the target's units.

        Any H and W: the array is reflect-padded to the U-Net's multiple and cropped back.
        Pixels that are NaN, equal to the input's nodata, or False in ``valid`` come out NaN.
        For whole rasters use :meth:`translate_raster`, which tiles and blends.
        """
        generator, card = self._need_model("predict with")
        data = np.asarray(array, dtype=np.float32)
        single = data.ndim == 3
        batch = data[None] if single else data
        norm_in = card.input.normalization
        if batch.ndim != 4 or batch.shape[1] != norm_in.bands:
            raise Pix2PixError(f"predict needs ({norm_in.bands}, H, W) arrays (the input bands), not {data.shape}.")
        ok = np.all(np.isfinite(batch), axis=1)  # (B, H, W)
        nodata = card.input.nodata
        if nodata is not None:
            ok &= ~(batch == np.float32(nodata)).any(axis=1)
        if valid is not None:
            ok &= np.broadcast_to(np.asarray(valid, dtype=bool), ok.shape)
        normalised = np.stack([norm_in.apply(np.nan_to_num(chip)) for chip in batch])
        normalised[np.broadcast_to(~ok[:, None], normalised.shape)] = 0.0
        tensor = torch.from_numpy(normalised)
        height, width = tensor.shape[-2:]
        multiple = card.generator.multiple
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            tensor = F.pad(tensor, (0, pad_w, 0, pad_h), mode=mode)
        out = predict(generator, tensor, card.output.normalization)
        result = out[..., :height, :width].cpu().numpy().astype(np.float32)
        result[np.broadcast_to(~ok[:, None], result.shape)] = np.nan
        return result[0] if single else result


class CycleGAN(_PackagedModel):
    """An unpaired CycleGAN (arcgis.learn's ``CycleGAN``): :meth:`fit` on an unpaired chips folder, :meth:`save`,
    and translate rasters both ways (``direction`` a2b or b2a).

    ``chips`` is the folder of ``export-unpaired`` (or Esri's ``A/images`` + ``B/images``).
    Keyword options are :class:`TrainConfig` fields (generator, resnet_blocks, ngf, ndf,
    lambda_cycle, lambda_identity, pool_size, gan_mode, lr, batch_size, device, precision as
    :class:`Pix2Pix`'s, ...); the defaults are the reference CycleGAN's. Each ``fit(n)`` trains
    n more epochs, continuing the previous fit's state (optimizers and image pools included):
    ``train.cyclegan``.
    """

    def __init__(self, chips: str | Path | None = None, **options: Any) -> None:
        self.chips = None if chips is None else Path(chips)
        self._options = {**options, "model_type": "cyclegan"}
        self._epochs_done = 0
        self.card: ModelCard | None = None  # the card of the trained or loaded package (A→B; .direction("b2a"))
        TrainConfig(**self._options)  # validate now, not after the first epoch

    def fit(self, epochs: int = 10, progress: Progress | None = None, **options: Any) -> dict[str, Any]:
        """Train ``epochs`` more epochs; returns the training summary (cycle errors of the validation chips)."""
        if self.chips is None:
            raise Pix2PixError("This model has no chips to train on; create it with CycleGAN('unpaired_chips').")
        self._options.update(options)
        config = TrainConfig(**{**self._options, "epochs": self._epochs_done + epochs})
        package = self._work_package()
        result = train_cyclegan(self.chips, package, config, progress, resume=self._epochs_done > 0)
        self._epochs_done = config.epochs
        self._package = package
        self.card = load_model(package)[1]
        return result

    @classmethod
    def from_model(cls, path: str | Path, device: str = "cpu") -> CycleGAN:
        """A CycleGAN read from its ``.p2p``: it translates both ways; a Pix2Pix package is refused."""
        model = cls(device=device)
        card = load_model(path)[1]
        if card.model_type != "cyclegan":
            raise Pix2PixError(f"{path} is a {card.model_type} model, not a CycleGAN; read it with "
                               "Pix2Pix.from_model().")
        model._package, model.card = Path(path).absolute(), card
        return model

    def plot_losses(self) -> Figure:
        """The per-epoch losses: both generators' and discriminators' adversarial terms, and the cycle errors."""
        if self.card is None:
            raise Pix2PixError("The model is not trained, so there are no losses to plot; call fit() first.")
        return _shown(plots.losses_figure(self.card.metrics.history, self.card.metrics.best_epoch))
