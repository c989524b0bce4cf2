"""An unpaired chips folder on disk, checked and described: two domains, each with its own chips, split,
bands and normalisation (:class:`UnpairedChips`), and one domain's chips as normalised tensors
(:class:`DomainDataset`).

Two layouts are read: our ``export-unpaired`` (``chips.json`` names every chip of each domain,
its spatial split and the per-band statistics of the domain's training chips) and Esri's
CycleGAN layout (``A/images`` and ``B/images``, as ArcGIS Pro's *Export Training Data For Deep
Learning* writes with metadata format CycleGAN), whose chips are split by a seeded hold-out
per domain and normalised by Pro's Min/Max per band (``A/esri_model_definition.emd``
``AllTilesStats``, what arcgis.learn scales by) or, without them, by percentiles of a sample.
The domains are independent: they need not have the same number of chips, bands, dtype, CRS
or cell size; only the chip size is shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch

from ..chips.esri import domain_range
from ..chips.manifest import UNPAIRED, is_chips_folder, load_manifest
from ..contract.errors import Pix2PixError
from .epoch_keyed import EpochKeyedDataset
from .folder import SPLITS, STATS_CHIPS, STATS_PIXELS, chip_names, random_holdout, read_chip, some_names
from .normalization import Normalization

DOMAINS = ("A", "B")


@dataclass(frozen=True)
class Domain:
    """One domain's chips, checked: names per split, bands, nodata and normalisation.

    ``folder`` holds the chips (``…/A/images``); every chip is ``tile_size`` × ``tile_size``
    pixels with ``channels`` bands. ``norm`` maps the domain's raster units to [-1, 1] per
    band. ``grid`` is the chips' CRS and cell size (map units), None when unknown.
    """

    name: str  # "A" or "B"
    folder: Path
    tile_size: int
    train: tuple[str, ...]
    validation: tuple[str, ...]
    norm: Normalization
    bands: tuple[int, ...]  # the source raster's 1-based band numbers, in chip order
    dtype: str  # the chips' data type, e.g. "uint8"
    nodata: float | None
    grid: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()  # what the reader decided (which statistics), for the training log

    @property
    def channels(self) -> int:
        """Bands per chip: a generator's input channels from this domain, or output channels into it."""
        return self.norm.bands

    def names(self, split: str) -> tuple[str, ...]:
        """Chip file names of ``split`` ("train" or "validation")."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}")
        return self.train if split == "train" else self.validation

    def read(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Chip ``name`` in raster units: float32 (C, H, W) and its (H, W) bool validity mask."""
        return read_chip(self.folder / name, self.tile_size, self.channels, f"domain {self.name}")

    def describe(self) -> dict[str, Any]:
        """What a model trained on this domain must record to read or write its rasters later."""
        return {"bands": list(self.bands), "dtype": self.dtype, "nodata": self.nodata,
                "normalization": self.norm.to_dict(), "grid": self.grid}


@dataclass(frozen=True)
class UnpairedChips:
    """An unpaired chips folder: domain ``a`` and domain ``b`` with chips of one size (pixels)."""

    root: Path
    a: Domain
    b: Domain
    tile_size: int
    layout: str = "chips.json"  # or "esri-cyclegan"
    notes: tuple[str, ...] = field(default=())

    def domain(self, name: str) -> Domain:
        """Domain "A" or "B"."""
        if name not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}")
        return self.a if name == "A" else self.b

    def describe(self) -> dict[str, Any]:
        """What a model trained on these chips must record: chip size, each domain, where the chips were."""
        return {
            "chip_size": self.tile_size,
            "a": self.a.describe(),
            "b": self.b.describe(),
            "chips": {"path": str(self.root), "layout": self.layout,
                      **{f"{d.name.lower()}_{split}": len(d.names(split)) for d in (self.a, self.b)
                         for split in SPLITS}},
        }


def open_unpaired(folder: str | Path, validation: float = 0.1, seed: int = 0) -> UnpairedChips:
    """Check and describe an unpaired chips folder: ours (``chips.json``) or Esri's CycleGAN layout.

    Returns each domain's train and validation chip names, bands, nodata and normalisation.
    ``validation`` and ``seed`` apply only to an Esri folder (ours carries a spatial split per
    domain). Anything unusable (a missing domain, an empty one, a damaged or newer
    ``chips.json``, chips of two sizes) raises :class:`Pix2PixError` naming it and the fix.
    """
    root = Path(folder).absolute()
    if not root.is_dir():
        raise Pix2PixError(f"The chips folder {root} does not exist. Give the OUTPUT folder of 'export-unpaired'.")
    if is_chips_folder(root):
        return _open_manifest(root)
    present = [d for d in DOMAINS if (root / d / "images").is_dir()]
    if len(present) == 2:
        return _open_esri(root, validation, seed)
    missing = [f"{d}/images" for d in DOMAINS if d not in present]
    raise Pix2PixError(
        f"{root} is not an unpaired chips folder: it has no chips.json and lacks {' and '.join(missing)} (Esri's "
        "CycleGAN layout has A/images and B/images). Run 'export-unpaired' first, or point at the folder that holds "
        "A/ and B/."
    )


def _open_manifest(root: Path) -> UnpairedChips:
    manifest = load_manifest(root, UNPAIRED)
    tile = int(manifest["tile_size"])
    domains = []
    for name in DOMAINS:
        side = manifest[name.lower()]
        names: dict[str, list[str]] = {"train": [], "validation": []}
        for chip in side["chips"]:
            names[chip.get("split", "train")].append(chip["name"])
        where = f"{root / 'chips.json'} (domain {name})"
        if not names["train"]:
            raise Pix2PixError(f"{where} lists no training chips. Export with a smaller VALIDATION.")
        if len(side["statistics"]) != len(side["bands"]):
            raise Pix2PixError(f"{where} lists {len(side['bands'])} band(s) but statistics for "
                               f"{len(side['statistics'])}. Re-run the export.")
        folder = root / name / "images"
        listed = names["train"] + names["validation"]
        missing = [n for n in listed if not (folder / n).is_file()]
        if missing:
            raise Pix2PixError(f"{where} lists {len(listed)} chips but {name}/images lacks {len(missing)} of them: "
                               f"{some_names(missing)}. Re-run the export.")
        domains.append(Domain(
            name=name, folder=folder, tile_size=tile, train=tuple(names["train"]),
            validation=tuple(names["validation"]),
            norm=Normalization.from_statistics(side["statistics"], f"domain {name}"),
            bands=tuple(side["bands"]), dtype=side["dtype"], nodata=side.get("nodata"), grid=side["grid"],
        ))
    return UnpairedChips(root, domains[0], domains[1], tile, "chips.json")


def _open_esri(root: Path, validation: float, seed: int) -> UnpairedChips:
    rng = np.random.default_rng(seed)
    listed = {}
    for name in DOMAINS:
        folder = root / name / "images"
        listed[name] = chip_names(folder)
        if not listed[name]:
            raise Pix2PixError(f"{folder} holds no chips; domain {name} is empty. Export both domains again.")
    tiles = {name: _first_chip(root / name / "images" / listed[name][0]) for name in DOMAINS}
    if tiles["A"][0] != tiles["B"][0]:
        raise Pix2PixError(f"The chips of A are {tiles['A'][0]} px and those of B {tiles['B'][0]} px; CycleGAN needs "
                           "one chip size in both domains. Export both with the same tile size.")
    domains, notes = [], []
    for name in DOMAINS:
        tile, info = tiles[name]
        train, val = random_holdout(listed[name], validation, rng)
        folder = root / name / "images"
        pro, found = domain_range(root / name, len(info["bands"]), f"domain {name}")
        notes += found
        if pro is not None:
            norm = Normalization(pro.low, pro.high, "fixed-range", pro.source)
        else:
            norm = _sampled_percentiles(folder, train, tile, len(info["bands"]), name, rng, notes)
        domains.append(Domain(name=name, folder=folder, tile_size=tile, train=train, validation=val, norm=norm,
                              bands=tuple(info["bands"]), dtype=info["dtype"], nodata=info["nodata"],
                              grid=info["grid"], notes=tuple(found)))
    return UnpairedChips(root, domains[0], domains[1], tiles["A"][0], "esri-cyclegan", tuple(notes))


def _first_chip(path: Path) -> tuple[int, dict[str, Any]]:
    """The chip size (pixels) and band info of a domain, from its first chip."""
    try:
        with rasterio.open(path) as src:
            if src.width != src.height:
                raise Pix2PixError(f"Chip {path} is {src.width}×{src.height} px; chips must be square.")
            grid = None
            if src.crs is not None or not src.transform.is_identity:
                grid = {"crs": src.crs.to_string() if src.crs else None,
                        "crs_wkt": src.crs.to_wkt() if src.crs else None,
                        "cell_size": [abs(src.transform.a), abs(src.transform.e)]}
            # A NaN nodata is implied by the validity rule (non-finite = invalid); JSON cannot hold it.
            nodata = None if src.nodata is None or np.isnan(src.nodata) else src.nodata
            return src.width, {"bands": list(range(1, src.count + 1)), "dtype": src.dtypes[0], "nodata": nodata,
                               "grid": grid}
    except rasterio.errors.RasterioError as exc:
        raise Pix2PixError(f"Chip {path} cannot be read ({exc}); it is damaged or truncated. Re-export.") from exc


def _sampled_percentiles(folder: Path, names: tuple[str, ...], tile: int, count: int, domain: str,
                         rng: np.random.Generator, notes: list[str]) -> Normalization:
    """The [p01, p99] map of a domain from the valid pixels of up to STATS_CHIPS training chips."""
    sample = [names[i] for i in rng.permutation(len(names))[:STATS_CHIPS]]
    pooled: list[list[np.ndarray]] = [[] for _ in range(count)]
    for name in sample:
        data, valid = read_chip(folder / name, tile, count, f"domain {domain}")
        picked = np.flatnonzero(valid.ravel())
        if picked.size > STATS_PIXELS:
            picked = rng.choice(picked, STATS_PIXELS, replace=False)
        for band in range(count):
            pooled[band].append(data[band].ravel()[picked])
    statistics = []
    for band, parts in enumerate(pooled, 1):
        values = np.concatenate(parts)
        p01, p99 = (float(v) for v in np.percentile(values, [1, 99])) if values.size else (None, None)
        statistics.append({"band": band, "p01": p01, "p99": p99})
    notes.append(f"Domain {domain}'s 1st–99th percentiles over {len(sample)} training chips: " + "; ".join(
        f"band {s['band']} [{s['p01']:.6g}, {s['p99']:.6g}]" if s["p01"] is not None else
        f"band {s['band']} has no valid pixel" for s in statistics) + ".")
    return Normalization.from_statistics(statistics, f"domain {domain}")


class DomainDataset(EpochKeyedDataset):
    """One split of one domain as dicts of tensors, for unpaired training.

    ``image`` (C, H, W) float32 is normalised to [-1, 1] with invalid pixels set to 0
    (mid-range); ``mask`` (1, H, W) is 1.0 where the chip is valid; ``index`` is the chip's
    position in the split. With ``augment`` each sample gets one of the 8 dihedral transforms,
    chosen from (seed, epoch, index) by :class:`~.epoch_keyed.EpochKeyedDataset`, as for
    :class:`~.dataset.ChipDataset`, so a resumed run sees the same ones. Unpaired training
    draws A and B samples independently (two loaders).
    """

    def __init__(self, domain: Domain, split: str, augment: bool = False, seed: int = 0) -> None:
        super().__init__(domain.names(split), augment, seed)
        self.domain = domain

    def read(self, index: int) -> dict[str, torch.Tensor]:
        """Chip ``index`` normalised, invalid pixels 0, with its mask, unaugmented."""
        data, valid = self.domain.read(self.names[index])
        image = self.domain.norm.apply(np.nan_to_num(data))
        image[:, ~valid] = 0.0
        return {"image": torch.from_numpy(image), "mask": torch.from_numpy(valid[None].astype(np.float32))}
