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
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import rasterio
from rasterio.windows import Window

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
)
from ..core.mask import inside_mask, load_mask
from ..core.outputs import staged_directory
from ..core.paths import check_run_paths
from ..core.progress import Progress
from .esri import arcgis_learn_caveats, write_esri_files
from .manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    PAIRED,
    is_previous_export,
    refuse_foreign_entries,
    write_manifest,
)
from .spec import ChipSpec, chip_bounds, plan_origins, select_bands
from .split import spatial_split
from .writer import ChipSource, ChipWriter, carry_over, drop_buffer_chips, dtype_of, manifest_nodata, write_chips


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
            sources = [ChipSource(a, bands_a, staging / "images", a.nodata),
                       ChipSource(b_reader, bands_b, staging / "images2", b.nodata)]
            writer = ChipWriter(grid, spec.tile_size, sources, len(origins), spec.seed)
            try:
                skipped_nodata = write_chips(writer, origins, spec.max_nodata, progress)
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
            drop_buffer_chips([source.folder for source in sources], writer.chips, split.splits)
            manifest = _manifest(
                input_a, input_b, a, b, grid, window, spec, bands_a, bands_b, resampled, writer, split,
                skipped_nodata, skipped_mask,
            )
            exported = [i for i, s in enumerate(split.splits) if s != "buffer"]
            write_esri_files(staging, manifest, writer.stats[0].summarize(exported),
                             writer.stats[1].summarize(exported))
            carried = carry_over(Path(output), staging, PAIRED)
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


def _manifest(
    input_a: Any, input_b: Any, a: Any, b: Any, grid: Grid, window: Window, spec: ChipSpec,
    bands_a: list[int], bands_b: list[int], resampled: bool, writer: ChipWriter, split: Any,
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
            "bands": bands_a, "dtype": dtype_of(a, bands_a), "nodata": manifest_nodata(a.nodata),
            "statistics": writer.stats[0].summarize(train),
        },
        "b": {
            "role": "target", "folder": "images2", "path": str(Path(input_b).absolute()),
            "bands": bands_b, "dtype": dtype_of(b, bands_b), "nodata": manifest_nodata(b.nodata),
            "source_grid": Grid.of(b).describe(), "resampled": resampled,
            "resampling": spec.resampling if resampled else None,
            "statistics": writer.stats[1].summarize(train),
        },
        "statistics_scope": "valid pixels (in both A and B) of training chips; p01/p99 from a pixel sample",
        "counts": {
            "train": split.count("train"), "validation": split.count("validation"),
            "skipped_nodata": skipped_nodata, "skipped_mask": skipped_mask,
            "dropped_split_buffer": split.count("buffer"),
        },
        "chips": chips,
    }
