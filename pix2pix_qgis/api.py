"""A small notebook API in the spirit of ``arcgis.learn``, over the engine's functions.

    data = prepare_data("chips", batch_size=4)
    model = Pix2Pix(data, ngf=32)
    model.fit(20)
    model.save("roads.p2p")
    model = Pix2Pix.load("roads.p2p")
    prediction = model.predict(array)          # (C, H, W) in A's units → B's units

Unlike arcgis.learn, chips are paired by name, the split is the export's spatial one,
and ``predict`` returns numbers in the target's units instead of showing a picture.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .contract.errors import Pix2PixError
from .contract.tables import TRAIN
from .core.outputs import staged_file
from .core.progress import Progress
from .data.dataset import ChipDataset
from .data.folder import ChipsFolder, open_chips
from .data.sampling import make_loader
from .model.card import ModelCard
from .model.networks import UnetGenerator
from .model.package import load_model, predict
from .train.config import TrainConfig
from .train.loop import train


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


class Pix2Pix:
    """A Pix2Pix model: train it with :meth:`fit`, keep it with :meth:`save`, apply it with :meth:`predict`.

    Keyword options are :class:`TrainConfig` fields (ngf, ndf, depth, norm, dropout,
    gan_mode, lambda_l1, device, ...). Each ``fit(n)`` trains n more epochs, continuing
    the previous fit's state (optimizers included).
    """

    def __init__(self, data: Pix2PixData | None = None, **options: Any) -> None:
        self.data = data
        self._options = options
        self._epochs_done = 0
        self._generator: UnetGenerator | None = None
        self.card: ModelCard | None = None  # the model card of the trained or loaded package
        self._package: Path | None = None
        self._workdir: Path | None = None
        TrainConfig(**options)  # validate now, not after the first epoch

    def fit(self, epochs: int = 10, lr: float | None = None, progress: Progress | None = None,
            **options: Any) -> dict[str, Any]:
        """Train ``epochs`` more epochs; returns the training summary (best epoch, validation metrics)."""
        if self.data is None:
            raise Pix2PixError("This model has no data to train on; create it with Pix2Pix(prepare_data(...)).")
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="pix2pix-"))
            weakref.finalize(self, shutil.rmtree, self._workdir, True)
        self._options.update(options)
        if lr is not None:
            self._options["lr"] = lr
        config = TrainConfig(**{
            "batch_size": self.data.batch_size, "num_workers": self.data.num_workers, "seed": self.data.seed,
            "validation": self.data.val_split_pct, **self._options, "epochs": self._epochs_done + epochs,
        })
        package = self._workdir / "model.p2p"
        result = train(self.data.path, package, config, progress, resume=self._epochs_done > 0)
        self._epochs_done = config.epochs
        self._package = package
        self._generator, self.card = load_model(package, self._device())
        return result

    def _device(self) -> torch.device:
        device = self._options.get("device", "auto")
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(device)

    def save(self, path: str | Path) -> Path:
        """Copy the model package (best epoch) to ``path`` (.p2p)."""
        if self._package is None:
            raise Pix2PixError("There is nothing to save yet; call fit() first.")
        target = Path(path).absolute()
        if target.suffix.lower() != ".p2p":
            raise Pix2PixError(f"{target} must end in .p2p.")
        with staged_file(target) as staging:
            shutil.copyfile(self._package, staging)
        return target

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Pix2Pix:
        """A model from a ``.p2p`` file, ready to predict (it cannot fit without data)."""
        model = cls(device=device)
        model._generator, model.card = load_model(path, device)
        model._package = Path(path).absolute()
        return model

    def predict(self, array: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """(C_in, H, W) or (B, C_in, H, W) in the input's units → float32 in the target's units.

        Any H and W: the array is reflect-padded to the U-Net's multiple and cropped back.
        Pixels that are NaN, equal to the input's nodata, or False in ``valid`` come out NaN.
        For whole rasters use the translate command, which tiles and blends.
        """
        if self._generator is None or self.card is None:
            raise Pix2PixError("The model is not trained; call fit() or Pix2Pix.load() first.")
        data = np.asarray(array, dtype=np.float32)
        single = data.ndim == 3
        batch = data[None] if single else data
        norm_in = self.card.input.normalization
        if batch.ndim != 4 or batch.shape[1] != norm_in.bands:
            raise Pix2PixError(f"predict needs ({norm_in.bands}, H, W) arrays (the input bands), not {data.shape}.")
        ok = np.all(np.isfinite(batch), axis=1)  # (B, H, W)
        nodata = self.card.input.nodata
        if nodata is not None:
            ok &= ~(batch == np.float32(nodata)).any(axis=1)
        if valid is not None:
            ok &= np.broadcast_to(np.asarray(valid, dtype=bool), ok.shape)
        normalised = np.stack([norm_in.apply(np.nan_to_num(chip)) for chip in batch])
        normalised[np.broadcast_to(~ok[:, None], normalised.shape)] = 0.0
        tensor = torch.from_numpy(normalised)
        height, width = tensor.shape[-2:]
        multiple = self.card.generator.multiple
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            tensor = F.pad(tensor, (0, pad_w, 0, pad_h), mode=mode)
        out = predict(self._generator, tensor, self.card.output.normalization)
        result = out[..., :height, :width].cpu().numpy().astype(np.float32)
        result[np.broadcast_to(~ok[:, None], result.shape)] = np.nan
        return result[0] if single else result
