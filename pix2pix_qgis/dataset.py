"""Chips on disk → normalised tensors with a validity mask, for training and validation.

Two layouts are read: our export (``chips.json`` names every chip, its split and the
per-band statistics) and a bare Esri "Export Tiles" folder (``images/`` + ``images2/``),
whose chips are paired strictly by file name and split by a seeded hold-out. Each band is
mapped from its robust range [p01, p99] onto [-1, 1] and clipped, so a few outliers do not
squash the rest of the histogram into a sliver of the Tanh range; the model can therefore
not produce target values outside [p01, p99] of the training target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import rasterio
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .errors import Pix2PixError
from .grid import valid_mask
from .manifest import is_chips_folder, load_manifest

CHIP_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".mrf")
STATS_CHIPS = 500  # training chips read to estimate an Esri folder's percentiles
STATS_PIXELS = 20_000  # pixels per band kept from each of those chips
SPLITS = ("train", "validation")


NORMALIZATION_METHODS = ("percentile-clip", "fixed-range")


@dataclass(frozen=True)
class Normalization:
    """Per-band linear map of [low, high] (target or input units) onto [-1, 1], clipped.

    ``method`` says what [low, high] is: the robust range [p01, p99] of the training data
    ("percentile-clip", possibly estimated, see ``source``) or a fixed range such as the
    reference pix2pix's [0, 255] ("fixed-range"). The map itself is the same for both.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    method: str = "percentile-clip"
    source: str | None = None  # where low/high came from, recorded in model.json

    @classmethod
    def from_statistics(cls, statistics: Sequence[dict[str, Any]], role: str) -> Normalization:
        low, high = [], []
        for band in statistics:
            if band.get("p01") is None or band.get("p99") is None:
                raise Pix2PixError(
                    f"Band {band.get('band')} of the {role} has no valid pixel in the training chips, so it "
                    "cannot be normalised. Check its nodata value, or export without that band."
                )
            lo, hi = float(band["p01"]), float(band["p99"])
            if hi <= lo:  # a constant band: centre it instead of dividing by zero
                lo, hi = lo - 0.5, hi + 0.5
            low.append(lo)
            high.append(hi)
        return cls(tuple(low), tuple(high))

    @property
    def bands(self) -> int:
        return len(self.low)

    def _scale(self, like: Any) -> tuple[Any, Any]:
        low = np.asarray(self.low, dtype=np.float64)
        span = np.asarray(self.high, dtype=np.float64) - low
        if isinstance(like, torch.Tensor):
            shape = (-1, 1, 1)
            return (torch.as_tensor(low, dtype=like.dtype, device=like.device).view(shape),
                    torch.as_tensor(span, dtype=like.dtype, device=like.device).view(shape))
        return low[:, None, None], span[:, None, None]

    def apply(self, data: np.ndarray) -> np.ndarray:
        """(C, H, W) in source units → float32 in [-1, 1]."""
        low, span = self._scale(data)
        return np.clip((data - low) / span * 2.0 - 1.0, -1.0, 1.0).astype(np.float32)

    def invert(self, data: Any) -> Any:
        """(…, C, H, W) in [-1, 1] (numpy or torch) → source units."""
        low, span = self._scale(data)
        return (data + 1.0) * 0.5 * span + low

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"method": self.method}
        if self.method == "percentile-clip":
            data["percentiles"] = [1, 99]
        data.update({"low": list(self.low), "high": list(self.high), "to": [-1.0, 1.0]})
        if self.source:
            data["source"] = self.source
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        if data.get("method") not in NORMALIZATION_METHODS or len(data.get("low", [])) != len(data.get("high", [])):
            raise Pix2PixError(f"Normalisation {data!r} is not understood by this engine; update the plugin.")
        return cls(tuple(float(v) for v in data["low"]), tuple(float(v) for v in data["high"]), data["method"],
                   data.get("source"))


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
        return self.norm_a.bands

    @property
    def bands_b(self) -> int:
        return self.norm_b.bands

    def names(self, split: str) -> tuple[str, ...]:
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
        parts = [f"{folder.name}/ lacks {len(miss)} of them: {_some(miss)}"
                 for folder, miss in ((folder_a, missing_a), (folder_b, missing_b)) if miss]
        raise Pix2PixError(f"chips.json lists {len(listed)} chips but {'; '.join(parts)}. Re-run the export.")
    info = {role: {"bands": list(manifest[role]["bands"]), "dtype": manifest[role]["dtype"],
                   "nodata": manifest[role].get("nodata")} for role in ("a", "b")}
    return ChipsFolder(
        root=root, folder_a=folder_a, folder_b=folder_b, tile_size=int(manifest["tile_size"]),
        train=tuple(names["train"]), validation=tuple(names["validation"]),
        norm_a=Normalization.from_statistics(manifest["a"]["statistics"], "input (A)"),
        norm_b=Normalization.from_statistics(manifest["b"]["statistics"], "target (B)"),
        band_info=info, grid=manifest["grid"], layout="chips.json",
    )


def _some(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _chip_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in CHIP_SUFFIXES)


def pair_by_name(folder_a: Path, folder_b: Path) -> list[str]:
    """The chip names present in both folders; any name in only one is an error that lists it.

    Pairing by sorted position (what arcgis.learn does) silently shifts every later pair
    by one when a single file is missing, so it is never done here.
    """
    names_a, names_b = _chip_names(folder_a), _chip_names(folder_b)
    if not names_a:
        raise Pix2PixError(f"{folder_a} holds no chips ({', '.join(CHIP_SUFFIXES)} files).")
    only_a = sorted(set(names_a) - set(names_b))
    only_b = sorted(set(names_b) - set(names_a))
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} in {folder_a.name}/ have no partner in {folder_b.name}/: {_some(only_a)}")
        if only_b:
            parts.append(f"{len(only_b)} in {folder_b.name}/ have no partner in {folder_a.name}/: {_some(only_b)}")
        raise Pix2PixError(
            f"{folder_a.name}/ has {len(names_a)} chips and {folder_b.name}/ has {len(names_b)}; chips are paired by "
            f"file name and {'; '.join(parts)}. Remove the unpaired chips or re-export both folders together."
        )
    return names_a


def _open_esri(root: Path, validation: float, seed: int) -> ChipsFolder:
    if not 0.0 <= validation < 1.0:
        raise Pix2PixError(f"VALIDATION {validation} must be a fraction in [0, 1), e.g. 0.1.")
    folder_a, folder_b = root / "images", root / "images2"
    names = pair_by_name(folder_a, folder_b)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    held = 0
    if validation > 0 and len(names) > 1:  # at least one chip each side
        held = min(max(int(round(validation * len(names))), 1), len(names) - 1)
    val_idx = set(order[:held].tolist())
    train = tuple(n for i, n in enumerate(names) if i not in val_idx)
    val = tuple(n for i, n in enumerate(names) if i in val_idx)
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
    from .esri_import import pro_normalizations

    norm_a, norm_b, notes = pro_normalizations(root, len(info["a"]["bands"]), len(info["b"]["bands"]))
    if norm_a is None or norm_b is None:
        sample = [train[i] for i in rng.permutation(len(train))[:STATS_CHIPS]]
        stats_a, stats_b = _percentiles(folder_a, folder_b, sample, tile, rng)
        norm_a = norm_a or Normalization.from_statistics(stats_a, "input (A)")
        norm_b = norm_b or Normalization.from_statistics(stats_b, "target (B)")
    return ChipsFolder(
        root=root, folder_a=folder_a, folder_b=folder_b, tile_size=tile, train=train, validation=val,
        norm_a=norm_a, norm_b=norm_b, band_info=info, grid=grid, layout="esri", notes=tuple(notes),
    )


def _percentiles(
    folder_a: Path, folder_b: Path, names: Sequence[str], tile: int, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """p01/p99 per band over valid pixels (valid in A and B) of a sample of training chips."""
    pooled_a: list[list[np.ndarray]] = []
    pooled_b: list[list[np.ndarray]] = []
    for name in names:
        a, b, valid = read_pair(folder_a, folder_b, name, tile)
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


def read_pair(folder_a: Path, folder_b: Path, name: str, tile: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One chip pair in source units as float32 (C, H, W) arrays plus the (H, W) mask valid in both."""
    arrays, masks = [], []
    for folder in (folder_a, folder_b):
        path = folder / name
        try:
            with rasterio.open(path) as src:
                data = src.read()
                masks.append(valid_mask(src, data))
        except rasterio.errors.RasterioError as exc:  # truncated or damaged chip
            raise Pix2PixError(f"Chip {path} cannot be read ({exc}); it is damaged or truncated. Re-run the export.") \
                from exc
        if data.shape[1:] != (tile, tile):
            raise Pix2PixError(
                f"Chip {path} is {data.shape[2]}×{data.shape[1]} px but the folder's chips are {tile}×{tile}. "
                "All chips must have the same size; re-export."
            )
        arrays.append(data.astype(np.float32))
    return arrays[0], arrays[1], masks[0] & masks[1]


def dihedral(tensor: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 symmetries of the square on the last two axes: rotate k % 4 quarter turns, flip if k ≥ 4."""
    out = torch.rot90(tensor, k % 4, dims=(-2, -1))
    return torch.flip(out, dims=(-1,)) if k >= 4 else out


class ChipDataset(Dataset):
    """Samples of one split as dicts of tensors.

    ``a`` (C_a, H, W) and ``b`` (C_b, H, W) are normalised to [-1, 1] with invalid pixels set
    to 0 (mid-range), ``mask`` (1, H, W) is 1.0 where A and B are both valid, and with
    ``with_units`` ``b_units`` is the target in its own units (0 where invalid) for metrics.
    With ``augment`` each sample gets one of the 8 dihedral transforms, chosen from
    (seed, epoch, index) so that a resumed run, or a worker process, sees the same
    augmentation; nothing radiometric is ever applied, so the target's values stay what
    they were.
    """

    def __init__(self, chips: ChipsFolder, split: str, augment: bool = False, with_units: bool = False,
                 seed: int = 0) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}")
        self.chips, self.names = chips, chips.names(split)
        self.augment, self.with_units, self.seed = augment, with_units, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """A sample by index, or by (epoch, index) as :class:`EpochSampler` yields them."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        chips = self.chips
        a, b, valid = read_pair(chips.folder_a, chips.folder_b, self.names[index], chips.tile_size)
        invalid = ~valid
        a_norm = chips.norm_a.apply(np.nan_to_num(a))
        b_norm = chips.norm_b.apply(np.nan_to_num(b))
        a_norm[:, invalid] = 0.0
        b_norm[:, invalid] = 0.0
        sample = {"a": torch.from_numpy(a_norm), "b": torch.from_numpy(b_norm),
                  "mask": torch.from_numpy(valid[None].astype(np.float32))}
        if self.with_units:
            b[:, invalid] = 0.0
            sample["b_units"] = torch.from_numpy(b)
        if self.augment:
            k = int(np.random.default_rng([self.seed, epoch, index]).integers(8))
            sample = {name: dihedral(value, k) for name, value in sample.items()}
        sample["index"] = torch.tensor(index)
        return sample


def epoch_order(count: int, seed: int, epoch: int) -> list[int]:
    """The shuffled sample order of one epoch, a pure function of (seed, epoch) so resume can skip into it."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator).tolist()


def make_loader(
    dataset: ChipDataset,
    batch_size: int,
    order: Sequence[int] | None = None,
    num_workers: int = 0,
    seed: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over ``order`` (default: the dataset in order), e.g. for validation.

    A private generator keeps the loader from drawing on torch's global RNG, so dropout
    draws are the same with or without workers and after a resume. Workers stay alive
    between passes, so validating every epoch does not start processes every epoch.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=list(order) if order is not None else list(range(len(dataset))),
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=num_workers > 0,
    )


class EpochSampler(Sampler):
    """Yields (epoch, index) in the seeded order of the current epoch, from a given batch on.

    Set the epoch (and, to resume mid-epoch, the batches to skip) before iterating the
    loader; because the epoch travels with each index, worker processes can stay alive
    across epochs and still augment by (seed, epoch, index).

    With ``world_size`` > 1 (data-parallel training) one step takes the next
    ``batch_size × world_size`` chips of the epoch's order and process ``rank`` gets the
    ``rank``-th slice of ``batch_size``, so the ranks' shards are disjoint, one step of all
    ranks sees exactly the chips of one single-process step of the global batch, and a step
    count still says where an epoch stands. The last, short step is split evenly and padded
    with chips from the start of the order, so every rank runs the same number of steps on
    batches of the same size (DDP needs both).
    """

    def __init__(self, count: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} must be in [0, {world_size})")
        self.count, self.batch_size, self.seed = count, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip_batches = 1, 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip_batches = epoch, skip_batches

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.count / (self.batch_size * self.world_size))

    def shard(self) -> list[int]:
        """This rank's indices of the current epoch from the skipped batches on, in order."""
        order = epoch_order(self.count, self.seed, self.epoch)
        if self.world_size == 1:
            return order[self.skip_batches * self.batch_size:]
        step = self.batch_size * self.world_size
        mine: list[int] = []
        for start in range(self.skip_batches * step, self.count, step):
            chunk = order[start:start + step]
            per_rank = math.ceil(len(chunk) / self.world_size)
            padding = per_rank * self.world_size - len(chunk)
            chunk += [order[i % self.count] for i in range(padding)]
            mine += chunk[self.rank * per_rank:(self.rank + 1) * per_rank]
        return mine

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, index) for index in self.shard()])

    def __len__(self) -> int:
        return len(self.shard())


def training_loader(
    dataset: ChipDataset, batch_size: int, seed: int = 0, num_workers: int = 0, pin_memory: bool = False,
    rank: int = 0, world_size: int = 1,
) -> tuple[DataLoader, EpochSampler]:
    """The training DataLoader (workers kept alive across epochs) and the sampler that steers it."""
    sampler = EpochSampler(len(dataset), batch_size, seed, rank, world_size)
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, pin_memory=pin_memory,
        persistent_workers=num_workers > 0, generator=torch.Generator().manual_seed(seed),
    )
    return loader, sampler
