"""Export paired chips: pixel-exact windows of A and of B on A's grid, plus the manifest.

Data flow: open both rasters → processing window (overlap ∩ extent) → chip origins on a
stride lattice → mask filter → read one strip of chips at a time (bounded memory) → nodata
filter → write chips into a staging folder → spatial split → statistics over training
chips (``chips.json``) and over all chips (the Esri side files) → carry over what arcgis.learn
saved in a previous export's folder → rename the staging folder into place.

A re-export replaces only what an export wrote. arcgis.learn trains in the data folder and
saves there (``models/``, ``esri_normalization_stats_{a,b}.json``:
:func:`~.manifest.arcgis_learn_entries`); those are kept untouched and logged. Anything else
in the folder (the user's files) makes the export refuse before any work, naming the entries
(:func:`~.manifest.refuse_foreign_entries`), so nothing of the user's is ever deleted.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from .. import __version__
from ..contract.errors import Pix2PixError
from ..core.grid import (
    Grid,
    bounds_in,
    extent_in,
    format_bounds,
    gdal_cache_mb,
    intersect,
    on_grid,
    open_raster,
    valid_mask,
)
from ..core.mask import inside_mask, load_mask
from ..core.outputs import check_written, staged_directory
from ..core.paths import check_run_paths
from ..core.progress import Progress
from .esri import arcgis_learn_caveats, write_esri_files
from .manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    arcgis_learn_entries,
    is_previous_export,
    refuse_foreign_entries,
    write_manifest,
)
from .spec import ChipSpec, chip_bounds, plan_origins, select_bands
from .split import spatial_split
from .stats import BandStatsAccumulator

STRIP_BUDGET_BYTES = 256 * 2**20  # per raster; wider rasters are read in several segments
SAMPLE_BUDGET = 2_000_000  # pooled pixels per band kept for percentiles


def export_chips(
    input_a: str | Path,
    input_b: str | Path,
    output: str | Path,
    spec: ChipSpec | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Export paired chips of ``input_a`` (model input) and ``input_b`` (target) to ``output``.

    Returns a summary (counts, paths). Raises :class:`Pix2PixError` for bad input; on any
    failure or cancellation nothing is left at ``output``.
    """
    spec = spec or ChipSpec()
    progress = progress or Progress()
    check_run_paths(rasters={"input raster (A)": input_a, "target raster (B)": input_b}, inputs={"mask": spec.mask},
                    folders={"output folder": output})
    refuse_foreign_entries(Path(output))
    with ExitStack() as stack:
        # Chip masks inside the .tif; a block cache sized for strips, not GDAL's 5 % of RAM.
        stack.enter_context(rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True, GDAL_CACHEMAX=gdal_cache_mb()))
        a = stack.enter_context(open_raster(input_a, "input (A)"))
        b = stack.enter_context(open_raster(input_b, "target (B)"))
        bands_a = select_bands(spec.bands_a, a.count, "input (A)")
        bands_b = select_bands(spec.bands_b, b.count, "target (B)")
        _check_esri_compatibility(spec, len(bands_a), len(bands_b), progress)
        grid = Grid.of(a)
        window = _processing_window(grid, a, b, spec)
        b_reader, resampled = on_grid(b, grid, spec.resampling)
        if resampled:
            stack.enter_context(b_reader)
            progress.info(
                f"Target (B) is on another grid ({b.crs}, cell {b.res[0]:.6g}×{b.res[1]:.6g}); "
                f"resampling it onto A's grid ({grid.crs}, cell {grid.cell_size[0]:.6g}×{grid.cell_size[1]:.6g}) "
                f"with {spec.resampling}."
            )
        origins = plan_origins(window, spec.tile_size, spec.stride)
        skipped_mask = 0
        if spec.mask is not None:
            mask = load_mask(spec.mask, grid.crs)
            kept = [o for o in origins if inside_mask(mask, chip_bounds(grid, *o, spec.tile_size))]
            skipped_mask = len(origins) - len(kept)
            origins = kept
        if not origins:
            raise Pix2PixError(
                "No chip fits: every candidate window falls outside the mask polygons. "
                "Check that the mask covers the rasters, or lower the tile size."
            )
        progress.info(f"{len(origins)} candidate chips of {spec.tile_size} px at stride {spec.stride} px.")
        with staged_directory(Path(output), may_replace=is_previous_export) as staging:
            writer = _ChipWriter(staging, grid, spec.tile_size, a, b_reader, bands_a, bands_b, len(origins), spec.seed)
            try:
                skipped_nodata = _export_all(writer, a, b_reader, bands_a, bands_b, origins, spec, progress)
            finally:
                writer.close()
            if not writer.chips:
                raise Pix2PixError(
                    f"All {len(origins)} candidate chips have more than {spec.max_nodata:.0%} nodata. "
                    "Raise MAX_NODATA, or check the rasters' nodata values and overlap."
                )
            split = spatial_split(
                [(c["row_off"], c["col_off"]) for c in writer.chips],
                spec.tile_size, spec.stride, spec.validation, spec.seed,
            )
            _drop_buffer_chips(staging, writer.chips, split.splits)
            manifest = _manifest(
                input_a, input_b, a, b, grid, window, spec, bands_a, bands_b, resampled, writer, split,
                skipped_nodata, skipped_mask,
            )
            exported = [i for i, s in enumerate(split.splits) if s != "buffer"]
            write_esri_files(staging, manifest, writer.stats_a.summarize(exported),
                             writer.stats_b.summarize(exported))
            carried = _carry_over(Path(output), staging)
            write_manifest(staging, manifest)
    if carried:
        progress.info(f"Kept what arcgis.learn saved in the previous export's folder: {', '.join(carried)}.")
    counts = manifest["counts"]
    if counts["dropped_split_buffer"]:
        progress.warning(
            f"{counts['dropped_split_buffer']} chips overlapping validation chips were dropped so that "
            "no training pixel is also a validation pixel."
        )
    progress.update(1.0, "done")
    return {
        "output": str(Path(output).absolute()),
        "manifest": str(Path(output).absolute() / "chips.json"),
        "chips": len(manifest["chips"]),
        **counts,
        "resampled": resampled,
    }


def _check_esri_compatibility(spec: ChipSpec, bands_a: int, bands_b: int, progress: Progress) -> None:
    """Warn (or, with ``esri_compatible``, refuse) when arcgis.learn would not train on this export as we do."""
    caveats = arcgis_learn_caveats(spec.tile_size, bands_a, bands_b)
    if caveats and spec.esri_compatible:
        raise Pix2PixError("ESRI_COMPATIBLE is set, but arcgis.learn's Pix2Pix would not train on this export as "
                           "this engine does: " + " ".join(caveats) + " Change the export, or turn "
                           "ESRI_COMPATIBLE off; nothing was written.")
    for caveat in caveats:
        progress.warning(caveat)


def _link_or_copy(source: str | Path, destination: str | Path) -> None:
    """A hard link (instant; the data stays where it is) or, where the file system has none, a copy."""
    try:
        os.link(source, destination, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, destination, follow_symlinks=False)


def _carry_over(previous: Path, staging: Path) -> list[str]:
    """Put into the new export what arcgis.learn saved in ``previous``; returns the names.

    Only arcgis.learn's entries come across: anything else was refused before any work
    (and again by :func:`staged_directory` just before the swap). Links, not moves: until
    the new folder replaces the old one, the old one stays whole, so a failed or
    cancelled export loses nothing.
    """
    if not previous.is_dir():
        return []
    carried = []
    for name in arcgis_learn_entries(previous):
        entry = previous / name
        if entry.is_dir():
            shutil.copytree(entry, staging / name, symlinks=True, copy_function=_link_or_copy)
            carried.append(name + "/")
        else:
            _link_or_copy(entry, staging / name)
            carried.append(name)
    return carried


def _processing_window(grid: Grid, a: Any, b: Any, spec: ChipSpec) -> Window:
    b_bounds = bounds_in(Grid.of(b).bounds, b.crs, a.crs)
    overlap = intersect(grid.bounds, b_bounds)
    if overlap is None:
        raise Pix2PixError(
            "The rasters do not overlap: input (A) covers "
            f"{format_bounds(grid.bounds, a.crs)} and target (B) covers {format_bounds(Grid.of(b).bounds, b.crs)}"
            f" ({format_bounds(b_bounds, a.crs)} in A's CRS). Choose rasters of the same area."
        )
    if spec.extent is not None:
        extent = extent_in(spec.extent, spec.extent_crs, a.crs)
        clipped = intersect(overlap, extent)
        if clipped is None:
            raise Pix2PixError(
                f"The extent {format_bounds(extent, a.crs)} does not meet the rasters' overlap "
                f"{format_bounds(overlap, a.crs)}. Choose an extent inside both rasters."
            )
        overlap = clipped
    window = grid.window_of(overlap)
    if window.width < spec.tile_size or window.height < spec.tile_size:
        raise Pix2PixError(
            f"Tile size {spec.tile_size} px is larger than the area to export "
            f"({int(window.width)}×{int(window.height)} px of A's grid). Use a smaller tile size "
            "or a larger extent."
        )
    return window


def _export_all(
    writer: _ChipWriter, a: Any, b: Any, bands_a: list[int], bands_b: list[int],
    origins: list[tuple[int, int]], spec: ChipSpec, progress: Progress,
) -> int:
    """Read strips of chips, filter by nodata, hand survivors to the writer. Returns skips."""
    tile = spec.tile_size
    by_row: dict[int, list[int]] = defaultdict(list)
    for row, col in origins:
        by_row[row].append(col)
    itemsize = max(np.dtype(a.dtypes[0]).itemsize * len(bands_a), np.dtype(b.dtypes[0]).itemsize * len(bands_b))
    max_span = max(tile, STRIP_BUDGET_BYTES // (tile * itemsize))
    done = skipped = 0
    total = len(origins)
    for row in sorted(by_row):
        for cols in _segments(sorted(by_row[row]), tile, max_span):
            progress.check_cancelled()
            strip = Window(cols[0], row, cols[-1] + tile - cols[0], tile)
            data_a = a.read(bands_a, window=strip)
            data_b = b.read(bands_b, window=strip)
            valid_a = valid_mask(a, data_a, bands_a, strip)
            valid_b = valid_mask(b, data_b, bands_b, strip)
            for col in cols:
                x = slice(col - cols[0], col - cols[0] + tile)
                both = valid_a[:, x] & valid_b[:, x]
                nodata_fraction = 1.0 - float(both.mean())
                if nodata_fraction > spec.max_nodata:
                    skipped += 1
                else:
                    writer.write(row, col, data_a[:, :, x], valid_a[:, x], data_b[:, :, x], valid_b[:, x],
                                 both, nodata_fraction)
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


class _ChipWriter:
    """Writes chip pairs as georeferenced GeoTIFFs and accumulates their statistics.

    GeoTIFF writes run on one background thread (GDAL releases the GIL while writing), so
    they overlap with the next strip's reads and the statistics; at most ``IN_FLIGHT``
    chips wait in memory, and the first write error is raised in the caller's thread.
    """

    IN_FLIGHT = 16

    def __init__(self, folder: Path, grid: Grid, tile: int, a: Any, b: Any,
                 bands_a: list[int], bands_b: list[int], expected: int, seed: int) -> None:
        self.grid, self.tile = grid, tile
        self.nodata_a, self.nodata_b = a.nodata, b.nodata
        self.folder_a, self.folder_b = folder / "images", folder / "images2"
        self.folder_a.mkdir()
        self.folder_b.mkdir()
        rng = np.random.default_rng(seed)
        per_chip = int(np.clip(SAMPLE_BUDGET // max(1, expected), 64, tile * tile))
        self.stats_a = BandStatsAccumulator(len(bands_a), per_chip, rng)
        self.stats_b = BandStatsAccumulator(len(bands_b), per_chip, rng)
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

    def write(self, row: int, col: int, data_a: np.ndarray, valid_a: np.ndarray, data_b: np.ndarray,
              valid_b: np.ndarray, both: np.ndarray, nodata_fraction: float) -> None:
        name = f"{len(self.chips):09d}.tif"
        transform = window_transform(Window(col, row, self.tile, self.tile), self.grid.transform)
        self._submit(self.folder_a / name, data_a.copy(), valid_a.copy(), self.nodata_a, transform)
        self._submit(self.folder_b / name, data_b.copy(), valid_b.copy(), self.nodata_b, transform)
        self.stats_a.add(data_a, both)
        self.stats_b.add(data_b, both)
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


def _drop_buffer_chips(folder: Path, chips: list[dict[str, Any]], splits: list[str]) -> None:
    """Delete the chips the split dropped and renumber the rest so names stay contiguous."""
    kept = 0
    for chip, split in zip(chips, splits):
        old = chip["name"]
        if split == "buffer":
            (folder / "images" / old).unlink()
            (folder / "images2" / old).unlink()
            continue
        new = f"{kept:09d}.tif"
        if new != old:
            (folder / "images" / old).rename(folder / "images" / new)
            (folder / "images2" / old).rename(folder / "images2" / new)
        chip["name"] = new
        kept += 1


def _manifest_nodata(nodata: float | None) -> float | None:
    """NaN nodata is implied by the validity rule (non-finite = invalid) and is not valid JSON."""
    return None if nodata is None or np.isnan(nodata) else nodata


def _dtype_of(reader: Any, bands: list[int]) -> str:
    return str(np.result_type(*[reader.dtypes[i - 1] for i in bands]))


def _manifest(
    input_a: Any, input_b: Any, a: Any, b: Any, grid: Grid, window: Window, spec: ChipSpec,
    bands_a: list[int], bands_b: list[int], resampled: bool, writer: _ChipWriter, split: Any,
    skipped_nodata: int, skipped_mask: int,
) -> dict[str, Any]:
    train = [i for i, s in enumerate(split.splits) if s == "train"]
    chips = []
    for chip, s in zip(writer.chips, split.splits):
        if s != "buffer":
            chips.append({**chip, "split": s})
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "software": {"pix2pix_qgis": __version__, "rasterio": rasterio.__version__,
                     "gdal": rasterio.__gdal_version__},
        "grid": grid.describe(),
        "window": {"col_off": int(window.col_off), "row_off": int(window.row_off),
                   "width": int(window.width), "height": int(window.height)},
        "tile_size": spec.tile_size,
        "stride": spec.stride,
        "max_nodata": spec.max_nodata,
        "validation": spec.validation,
        "seed": spec.seed,
        "split": {"method": "spatial-blocks", "block_size": split.block_size},
        "a": {
            "role": "input", "folder": "images", "path": str(Path(input_a).absolute()),
            "bands": bands_a, "dtype": _dtype_of(a, bands_a), "nodata": _manifest_nodata(a.nodata),
            "statistics": writer.stats_a.summarize(train),
        },
        "b": {
            "role": "target", "folder": "images2", "path": str(Path(input_b).absolute()),
            "bands": bands_b, "dtype": _dtype_of(b, bands_b), "nodata": _manifest_nodata(b.nodata),
            "source_grid": Grid.of(b).describe(), "resampled": resampled,
            "resampling": spec.resampling if resampled else None,
            "statistics": writer.stats_b.summarize(train),
        },
        "statistics_scope": "valid pixels (in both A and B) of training chips; p01/p99 from a pixel sample",
        "counts": {
            "train": split.count("train"), "validation": split.count("validation"),
            "skipped_nodata": skipped_nodata, "skipped_mask": skipped_mask,
            "dropped_split_buffer": split.count("buffer"),
        },
        "chips": chips,
    }
