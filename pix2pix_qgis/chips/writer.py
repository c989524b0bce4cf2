"""Chips of one or more rasters on one grid: read in strips, filtered by nodata, written as GeoTIFFs.

Shared by both exports. The paired export writes two sources per chip (A into ``images/``, B
resampled onto A's grid into ``images2/``) and keeps a chip only where both are valid enough;
the unpaired export runs once per domain with one source. Memory stays bounded: one strip of
chips is read at a time (``STRIP_BUDGET_BYTES`` per raster) and at most ``IN_FLIGHT`` chips
wait to be written. Also here: dropping the chips a spatial split leaves out, and carrying
over what arcgis.learn saved in a previous export's folder.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from ..core.grid import Grid, valid_mask
from ..core.outputs import check_written
from ..core.progress import Progress
from .manifest import Layout, arcgis_learn_entries
from .stats import BandStatsAccumulator

STRIP_BUDGET_BYTES = 256 * 2**20  # per raster; wider rasters are read in several segments
SAMPLE_BUDGET = 2_000_000  # pooled pixels per band kept for percentiles


@dataclass(frozen=True)
class ChipSource:
    """One raster whose chips go into ``folder``: a reader on the chips' grid, its bands, its nodata value."""

    reader: Any  # an open rasterio dataset or WarpedVRT on the chips' grid
    bands: list[int]  # 1-based, in chip order
    folder: Path
    nodata: Any


class ChipWriter:
    """Writes the chips of every source as georeferenced GeoTIFFs and accumulates their statistics.

    Statistics count the pixels valid in every source (a pair's common pixels). GeoTIFF writes
    run on one background thread (GDAL releases the GIL while writing), so they overlap with
    the next strip's reads and the statistics; at most ``IN_FLIGHT`` chips wait in memory, and
    the first write error is raised in the caller's thread.
    """

    IN_FLIGHT = 16

    def __init__(self, grid: Grid, tile: int, sources: list[ChipSource], expected: int, seed: int) -> None:
        self.grid, self.tile, self.sources = grid, tile, sources
        for source in sources:
            source.folder.mkdir(parents=True)
        rng = np.random.default_rng(seed)
        per_chip = int(np.clip(SAMPLE_BUDGET // max(1, expected), 64, tile * tile))
        self.stats = [BandStatsAccumulator(len(source.bands), per_chip, rng) for source in sources]
        self.chips: list[dict[str, Any]] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chip-writer")
        self._pending: deque[Future[None]] = deque()

    def close(self) -> None:
        """Wait for every queued write (raising the first failure) and stop the thread."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, *args: Any) -> None:
        while len(self._pending) >= self.IN_FLIGHT:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._write_tif, *args))

    def write(self, row: int, col: int, data: list[np.ndarray], valid: list[np.ndarray], common: np.ndarray,
              nodata_fraction: float) -> None:
        """Queue one chip of every source: ``data`` (C, T, T) and ``valid`` (T, T) per source, ``common`` all-valid."""
        name = f"{len(self.chips):09d}.tif"
        transform = window_transform(Window(col, row, self.tile, self.tile), self.grid.transform)
        for source, stats, values, mask in zip(self.sources, self.stats, data, valid):
            self._submit(source.folder / name, values.copy(), mask.copy(), source.nodata, transform)
            stats.add(values, common)
        self.chips.append({"name": name, "row_off": row, "col_off": col,
                           "nodata_fraction": round(nodata_fraction, 6)})

    def _write_tif(self, path: Path, data: np.ndarray, valid: np.ndarray, nodata: Any, transform: Any) -> None:
        profile = {
            "driver": "GTiff", "width": self.tile, "height": self.tile, "count": data.shape[0],
            "dtype": data.dtype, "crs": self.grid.crs, "transform": transform, "nodata": nodata,
        }
        if data.shape[0] != 3:
            # Else GDAL calls a 4th byte band (say near-infrared) alpha and masks pixels with it.
            profile["photometric"] = "MINISBLACK"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            if nodata is None and not valid.all():
                dst.write_mask(valid.astype(np.uint8) * 255)
        check_written(path, data.nbytes)  # GDAL only logs a failed flush (a full disk) at close


def write_chips(writer: ChipWriter, origins: list[tuple[int, int]], max_nodata: float, progress: Progress) -> int:
    """Read strips of chips at ``origins`` (row_off, col_off), keep those valid enough in every source, write them.

    Returns how many were skipped for having more than ``max_nodata`` invalid pixels (a pixel
    counts as valid where every source is valid). Progress runs to 0.95.
    """
    tile = writer.tile
    by_row: dict[int, list[int]] = defaultdict(list)
    for row, col in origins:
        by_row[row].append(col)
    itemsize = max(np.dtype(s.reader.dtypes[0]).itemsize * len(s.bands) for s in writer.sources)
    max_span = max(tile, STRIP_BUDGET_BYTES // (tile * itemsize))
    done = skipped = 0
    total = len(origins)
    for row in sorted(by_row):
        for cols in _segments(sorted(by_row[row]), tile, max_span):
            progress.check_cancelled()
            strip = Window(cols[0], row, cols[-1] + tile - cols[0], tile)
            data = [s.reader.read(s.bands, window=strip) for s in writer.sources]
            valid = [valid_mask(s.reader, d, s.bands, strip) for s, d in zip(writer.sources, data)]
            for col in cols:
                x = slice(col - cols[0], col - cols[0] + tile)
                common = np.logical_and.reduce([v[:, x] for v in valid])
                nodata_fraction = 1.0 - float(common.mean())
                if nodata_fraction > max_nodata:
                    skipped += 1
                else:
                    writer.write(row, col, [d[:, :, x] for d in data], [v[:, x] for v in valid], common,
                                 nodata_fraction)
                done += 1
                progress.update(done / total * 0.95, f"chip {done} of {total}")
    return skipped


def _segments(cols: list[int], tile: int, max_span: int) -> list[list[int]]:
    """Split a row's chip columns into runs whose strip is at most ``max_span`` px wide."""
    segments: list[list[int]] = [[cols[0]]]
    for col in cols[1:]:
        if col + tile - segments[-1][0] > max_span:
            segments.append([col])
        else:
            segments[-1].append(col)
    return segments


def drop_buffer_chips(folders: list[Path], chips: list[dict[str, Any]], splits: list[str]) -> None:
    """Delete the chips the split dropped (from every folder) and renumber the rest so names stay contiguous."""
    kept = 0
    for chip, split in zip(chips, splits):
        old = chip["name"]
        if split == "buffer":
            for folder in folders:
                (folder / old).unlink()
            continue
        new = f"{kept:09d}.tif"
        if new != old:
            for folder in folders:
                (folder / old).rename(folder / new)
        chip["name"] = new
        kept += 1


def manifest_nodata(nodata: float | None) -> float | None:
    """NaN nodata is implied by the validity rule (non-finite = invalid) and is not valid JSON."""
    return None if nodata is None or np.isnan(nodata) else nodata


def dtype_of(reader: Any, bands: list[int]) -> str:
    """The one dtype that holds every chosen band of ``reader``."""
    return str(np.result_type(*[reader.dtypes[i - 1] for i in bands]))


def _link_or_copy(source: str | Path, destination: str | Path) -> None:
    """A hard link (instant; the data stays where it is) or, where the file system has none, a copy."""
    try:
        os.link(source, destination, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, destination, follow_symlinks=False)


def carry_over(previous: Path, staging: Path, layout: Layout) -> list[str]:
    """Put into the new export what arcgis.learn saved in ``previous``; returns the paths relative to it.

    Only arcgis.learn's entries come across: anything else was refused before any work
    (and again by :func:`~..core.outputs.staged_directory` just before the swap). Links, not
    moves: until the new folder replaces the old one, the old one stays whole, so a failed or
    cancelled export loses nothing.
    """
    if not previous.is_dir():
        return []
    carried = []
    for name in arcgis_learn_entries(previous, layout):
        entry, destination = previous / name, staging / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if entry.is_dir():
            shutil.copytree(entry, destination, symlinks=True, copy_function=_link_or_copy)
            carried.append(name + "/")
        else:
            _link_or_copy(entry, destination)
            carried.append(name)
    return carried
