"""A chips folder on disk, checked and described (:class:`ChipsFolder`), and one chip pair read from it.

Two layouts are read: our export (``chips.json`` names every chip, its split and the
per-band statistics) and a bare Esri "Export Tiles" folder (``images/`` + ``images2/``),
whose chips are paired strictly by file name and split by a seeded hold-out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import rasterio

from ..chips.esri import pro_ranges
from ..chips.manifest import is_chips_folder, load_manifest
from ..contract.errors import Pix2PixError
from ..core.grid import valid_mask
from .normalization import Normalization

CHIP_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".mrf")


STATS_CHIPS = 500  # training chips read to estimate an Esri folder's percentiles


STATS_PIXELS = 20_000  # pixels per band kept from each of those chips


SPLITS = ("train", "validation")


@dataclass(frozen=True)
class ChipsFolder:
    """A paired chips folder, checked: names per split, chip size, bands and normalisation."""

    root: Path
    folder_a: Path
    folder_b: Path
    tile_size: int
    train: tuple[str, ...]
    validation: tuple[str, ...]
    norm_a: Normalization
    norm_b: Normalization
    band_info: dict[str, Any] = field(default_factory=dict)  # per role: bands, dtype, nodata
    grid: dict[str, Any] | None = None  # the training grid (CRS, cell size) from chips.json
    layout: str = "chips.json"
    notes: tuple[str, ...] = ()  # what the reader decided (e.g. which statistics), for the training log

    @property
    def bands_a(self) -> int:
        """Number of input (A) bands, the generator's input channels."""
        return self.norm_a.bands

    @property
    def bands_b(self) -> int:
        """Number of target (B) bands, the generator's output channels."""
        return self.norm_b.bands

    def names(self, split: str) -> tuple[str, ...]:
        """Chip file names of ``split`` ("train" or "validation")."""
        return self.train if split == "train" else self.validation

    def describe(self) -> dict[str, Any]:
        """What a model trained on these chips must record to be applied later."""
        return {
            "chip_size": self.tile_size,
            "input": {**self.band_info["a"], "normalization": self.norm_a.to_dict()},
            "output": {**self.band_info["b"], "normalization": self.norm_b.to_dict()},
            "grid": self.grid,
            "chips": {"path": str(self.root), "layout": self.layout, "train": len(self.train),
                      "validation": len(self.validation)},
        }


def open_chips(folder: str | Path, validation: float = 0.1, seed: int = 0) -> ChipsFolder:
    """Check and describe a chips folder: our export, or a bare Esri ``images``/``images2`` folder.

    ``validation`` and ``seed`` apply only to an Esri folder (ours carries its spatial split).
    """
    root = Path(folder).absolute()
    if not root.is_dir():
        raise Pix2PixError(f"The chips folder {root} does not exist. Give the OUTPUT folder of 'export'.")
    if is_chips_folder(root):
        return _open_manifest(root)
    if (root / "images").is_dir() and (root / "images2").is_dir():
        return _open_esri(root, validation, seed)
    raise Pix2PixError(
        f"{root} is not a chips folder: it has neither chips.json nor the images/ and images2/ folders of an "
        "Esri Export Tiles export. Run 'export' first, or point at the folder that holds images/ and images2/."
    )


def _open_manifest(root: Path) -> ChipsFolder:
    manifest = load_manifest(root)
    folder_a = root / manifest["a"].get("folder", "images")
    folder_b = root / manifest["b"].get("folder", "images2")
    names: dict[str, list[str]] = {"train": [], "validation": []}
    for chip in manifest["chips"]:
        split = chip.get("split", "train")
        if split not in names:
            raise Pix2PixError(f"Chip {chip.get('name')} in {root / 'chips.json'} has unknown split {split!r}.")
        names[split].append(chip["name"])
    if not names["train"]:
        raise Pix2PixError(f"{root / 'chips.json'} lists no training chips. Export with a smaller VALIDATION.")
    listed = names["train"] + names["validation"]
    missing_a = [n for n in listed if not (folder_a / n).is_file()]
    missing_b = [n for n in listed if not (folder_b / n).is_file()]
    if missing_a or missing_b:
        parts = [f"{folder.name}/ lacks {len(miss)} of them: {some_names(miss)}"
                 for folder, miss in ((folder_a, missing_a), (folder_b, missing_b)) if miss]
        raise Pix2PixError(f"chips.json lists {len(listed)} chips but {'; '.join(parts)}. Re-run the export.")
    info = {role: {"bands": list(manifest[role]["bands"]), "dtype": manifest[role]["dtype"],
                   "nodata": manifest[role].get("nodata")} for role in ("a", "b")}
    for role in ("a", "b"):
        if len(manifest[role]["statistics"]) != len(manifest[role]["bands"]):
            raise Pix2PixError(f"{root / 'chips.json'} lists {len(manifest[role]['bands'])} band(s) for {role} but "
                               f"statistics for {len(manifest[role]['statistics'])}. Re-run the export.")
    return ChipsFolder(
        root=root, folder_a=folder_a, folder_b=folder_b, tile_size=int(manifest["tile_size"]),
        train=tuple(names["train"]), validation=tuple(names["validation"]),
        norm_a=Normalization.from_statistics(manifest["a"]["statistics"], "input (A)"),
        norm_b=Normalization.from_statistics(manifest["b"]["statistics"], "target (B)"),
        band_info=info, grid=manifest["grid"], layout="chips.json",
    )


def some_names(names: Sequence[str], limit: int = 10) -> str:
    """The first ``limit`` names, and how many more, for messages."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def chip_names(folder: Path) -> list[str]:
    """The sorted names of the chip files (CHIP_SUFFIXES) directly in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in CHIP_SUFFIXES)


def pair_by_name(folder_a: Path, folder_b: Path) -> list[str]:
    """The chip names present in both folders; any name in only one is an error that lists it.

    Pairing by sorted position (what arcgis.learn does) silently shifts every later pair
    by one when a single file is missing, so it is never done here.
    """
    names_a, names_b = chip_names(folder_a), chip_names(folder_b)
    if not names_a:
        raise Pix2PixError(f"{folder_a} holds no chips ({', '.join(CHIP_SUFFIXES)} files).")
    only_a = sorted(set(names_a) - set(names_b))
    only_b = sorted(set(names_b) - set(names_a))
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} in {folder_a.name}/ have no partner in {folder_b.name}/: {some_names(only_a)}")
        if only_b:
            parts.append(f"{len(only_b)} in {folder_b.name}/ have no partner in {folder_a.name}/: {some_names(only_b)}")
        raise Pix2PixError(
            f"{folder_a.name}/ has {len(names_a)} chips and {folder_b.name}/ has {len(names_b)}; chips are paired by "
            f"file name and {'; '.join(parts)}. Remove the unpaired chips or re-export both folders together."
        )
    return names_a


def random_holdout(names: Sequence[str], validation: float, rng: np.random.Generator
                   ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train, validation) names: a seeded random ``validation`` share held out, at least one chip each side.

    For folders without our manifest (an Esri export), whose chips' places are unknown, so a
    spatial split cannot be made; names keep their sorted order within each split.
    """
    if not 0.0 <= validation < 1.0:
        raise Pix2PixError(f"VALIDATION {validation} must be a fraction in [0, 1), e.g. 0.1.")
    order = rng.permutation(len(names))
    held = 0
    if validation > 0 and len(names) > 1:
        held = min(max(int(round(validation * len(names))), 1), len(names) - 1)
    val_idx = set(order[:held].tolist())
    train = tuple(n for i, n in enumerate(names) if i not in val_idx)
    return train, tuple(n for i, n in enumerate(names) if i in val_idx)


def _open_esri(root: Path, validation: float, seed: int) -> ChipsFolder:
    folder_a, folder_b = root / "images", root / "images2"
    names = pair_by_name(folder_a, folder_b)
    rng = np.random.default_rng(seed)
    train, val = random_holdout(names, validation, rng)
    with rasterio.open(folder_a / names[0]) as src_a, rasterio.open(folder_b / names[0]) as src_b:
        if src_a.width != src_a.height:
            raise Pix2PixError(f"Chip {folder_a / names[0]} is {src_a.width}×{src_a.height} px; chips must be square.")
        tile = src_a.width
        # A NaN nodata (common for float chips) is implied by the validity rule (non-finite = invalid),
        # and JSON cannot hold it: recorded as none.
        info = {role: {"bands": list(range(1, src.count + 1)), "dtype": src.dtypes[0],
                       "nodata": None if src.nodata is None or np.isnan(src.nodata) else src.nodata}
                for role, src in (("a", src_a), ("b", src_b))}
        grid = None
        if src_a.crs is not None or not src_a.transform.is_identity:
            grid = {"crs": src_a.crs.to_string() if src_a.crs else None,
                    "crs_wkt": src_a.crs.to_wkt() if src_a.crs else None,
                    "cell_size": [abs(src_a.transform.a), abs(src_a.transform.e)]}
    range_a, range_b, notes = pro_ranges(root, len(info["a"]["bands"]), len(info["b"]["bands"]))
    norm_a, norm_b = (Normalization(r.low, r.high, "fixed-range", r.source) if r else None
                      for r in (range_a, range_b))
    if norm_a is None or norm_b is None:
        sample = [train[i] for i in rng.permutation(len(train))[:STATS_CHIPS]]
        counts = (len(info["a"]["bands"]), len(info["b"]["bands"]))
        stats_a, stats_b = _percentiles(folder_a, folder_b, sample, tile, counts, rng)
        for role, norm, stats in (("input", norm_a, stats_a), ("target", norm_b, stats_b)):
            if norm is None:
                notes.append(f"The {role}'s 1st–99th percentiles over {len(sample)} training chips: " + "; ".join(
                    f"band {s['band']} [{s['p01']:.6g}, {s['p99']:.6g}]" if s["p01"] is not None else
                    f"band {s['band']} has no valid pixel" for s in stats) + ".")
        norm_a = norm_a or Normalization.from_statistics(stats_a, "input (A)")
        norm_b = norm_b or Normalization.from_statistics(stats_b, "target (B)")
    return ChipsFolder(
        root=root, folder_a=folder_a, folder_b=folder_b, tile_size=tile, train=train, validation=val,
        norm_a=norm_a, norm_b=norm_b, band_info=info, grid=grid, layout="esri", notes=tuple(notes),
    )


def _percentiles(
    folder_a: Path, folder_b: Path, names: Sequence[str], tile: int, bands: tuple[int, int], rng: np.random.Generator
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """p01/p99 per band over valid pixels (valid in A and B) of a sample of training chips."""
    pooled_a: list[list[np.ndarray]] = []
    pooled_b: list[list[np.ndarray]] = []
    for name in names:
        a, b, valid = read_pair(folder_a, folder_b, name, tile, bands)
        values = np.flatnonzero(valid.ravel())
        if values.size > STATS_PIXELS:
            values = rng.choice(values, STATS_PIXELS, replace=False)
        pooled_a.append([band.ravel()[values] for band in a])
        pooled_b.append([band.ravel()[values] for band in b])

    def summarize(pooled: list[list[np.ndarray]]) -> list[dict[str, Any]]:
        result = []
        for band in range(len(pooled[0])):
            values = np.concatenate([chip[band] for chip in pooled])
            p01, p99 = np.percentile(values, [1, 99]) if values.size else (None, None)
            result.append({"band": band + 1, "p01": None if p01 is None else float(p01),
                           "p99": None if p99 is None else float(p99)})
        return result

    return summarize(pooled_a), summarize(pooled_b)


def read_pair(folder_a: Path, folder_b: Path, name: str, tile: int,
              bands: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One chip pair in source units as float32 (C, H, W) arrays plus the (H, W) mask valid in both.

    ``bands`` is the folder's (A, B) band counts: a chip with other bands is refused by
    name, never broadcast (a 1-band chip in a 3-band folder) or failed on deep in training.
    """
    a, valid_a = read_chip(folder_a / name, tile, bands[0], "input (A)")
    b, valid_b = read_chip(folder_b / name, tile, bands[1], "target (B)")
    return a, b, valid_a & valid_b


def read_chip(path: Path, tile: int, count: int, role: str) -> tuple[np.ndarray, np.ndarray]:
    """One chip in source units as a float32 (C, H, W) array plus its (H, W) validity mask.

    A chip of another size or band count than its folder's (``tile`` px, ``count`` bands of
    ``role``), a damaged one or one of complex pixels is refused by name.
    """
    try:
        with rasterio.open(path) as src:
            data = src.read()
            valid = valid_mask(src, data)
    except rasterio.errors.RasterioError as exc:  # truncated or damaged chip
        raise Pix2PixError(f"Chip {path} cannot be read ({exc}); it is damaged or truncated. Re-run the export.") \
            from exc
    if data.shape[1:] != (tile, tile):
        raise Pix2PixError(
            f"Chip {path} is {data.shape[2]}×{data.shape[1]} px but the folder's chips are {tile}×{tile}. "
            "All chips must have the same size; re-export."
        )
    if data.shape[0] != count:
        raise Pix2PixError(
            f"Chip {path} has {data.shape[0]} band(s) but the folder's {role} chips have {count}. All chips of a "
            "folder must have the same bands; remove that chip or re-export."
        )
    if np.iscomplexobj(data):
        raise Pix2PixError(f"Chip {path} has complex pixels ({data.dtype}); chips must hold real numbers. "
                           "Re-export from real bands (e.g. the amplitude).")
    return data.astype(np.float32), valid
