"""Export unpaired chips: chips of A and chips of B, two rasters that need not overlap, share a CRS or a cell size.

Each domain is exported on its own grid, with its own bands, nodata, mask, statistics and
spatial validation split: A on its native grid; B in its own CRS, resampled to A's cell size
measured on the ground (or to ``cell_size_b``), so that a chip covers about the same ground
in both. Chips are written with the paired export's machinery (:mod:`.writer`), one source per
domain, into Esri's CycleGAN layout: ``A/images`` and ``B/images``, each domain folder with
its own Esri side files (:func:`~.esri.write_esri_domain_files`), plus our ``chips.json``
(format ``pix2pix-unpaired-chips``, ``docs/chips-format.md``). The output folder follows
the paired export's rules: staged and renamed on success, a previous unpaired export is
replaced keeping what arcgis.learn saved, anything else refuses the run naming it.
"""

from __future__ import annotations

import datetime as _dt
import math
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.windows import Window

from .. import __version__
from ..contract.errors import Pix2PixError
from ..contract.tables import EXPORT_UNPAIRED
from ..core.grid import Grid, gdal_cache_mb, on_grid, open_raster
from ..core.mask import inside_mask, load_mask
from ..core.outputs import staged_directory
from ..core.paths import check_run_paths
from ..core.progress import Progress
from .esri import write_esri_domain_files
from .manifest import (
    UNPAIRED,
    UNPAIRED_FORMAT_NAME,
    UNPAIRED_FORMAT_VERSION,
    is_previous_export,
    refuse_foreign_entries,
    write_manifest,
)
from .spec import chip_bounds, plan_origins, select_bands
from .split import spatial_split
from .writer import ChipSource, ChipWriter, carry_over, drop_buffer_chips, dtype_of, manifest_nodata, write_chips

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), for a degree's length on the ground
SAME_CELL_TOLERANCE = 0.01  # B keeps its own cell size when within 1 % of the target (no needless resampling)
UPSAMPLING_WARNING = 4.0  # warn when B's cells become more than this many times finer than its own


@dataclass(frozen=True)
class UnpairedSpec:
    """Options of ``export-unpaired``, checked against its table (``contract.tables.EXPORT_UNPAIRED``).

    ``cell_size_b`` is B's cell size in B's CRS units; None or 0 means A's cell size on the ground.
    """

    bands_a: tuple[int, ...] | None = None
    bands_b: tuple[int, ...] | None = None
    tile_size: int = EXPORT_UNPAIRED["TILE_SIZE"].default
    stride: int = EXPORT_UNPAIRED["STRIDE"].default
    cell_size_b: float | None = None
    mask: Path | None = None  # GeoJSON polygons over A; only chips fully inside are kept
    mask_b: Path | None = None  # the same over B
    max_nodata: float = EXPORT_UNPAIRED["MAX_NODATA"].default
    validation: float = EXPORT_UNPAIRED["VALIDATION"].default
    seed: int = EXPORT_UNPAIRED["SEED"].default
    resampling: str = EXPORT_UNPAIRED["RESAMPLING"].default

    def __post_init__(self) -> None:
        EXPORT_UNPAIRED.check_object(self)


@dataclass
class _Domain:
    """One domain while it is exported: its raster, the reader on its chips' grid, and what came of it."""

    name: str  # "A" or "B"
    path: Path
    source: Any  # the raster as opened
    reader: Any  # the raster on ``grid`` (the source itself, or a WarpedVRT)
    grid: Grid
    bands: list[int]
    mask: Path | None
    resampled: bool = False


def export_unpaired(
    input_a: str | Path,
    input_b: str | Path,
    output: str | Path,
    spec: UnpairedSpec | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Export the chips of ``input_a`` (domain A) and ``input_b`` (domain B) to ``output``, unpaired.

    Returns a summary (chip counts per domain and split, paths). Raises :class:`Pix2PixError`
    for bad input; on any failure or cancellation nothing is left at ``output`` and a
    previous export there is unchanged.
    """
    spec = spec or UnpairedSpec()
    progress = progress or Progress()
    output = Path(output)
    check_run_paths(rasters={"raster of domain A": input_a, "raster of domain B": input_b},
                    inputs={"mask of A": spec.mask, "mask of B": spec.mask_b}, folders={"output folder": output})
    refuse_foreign_entries(output, UNPAIRED)
    with ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True, GDAL_CACHEMAX=gdal_cache_mb()))
        a = stack.enter_context(open_raster(input_a, "domain A"))
        b = stack.enter_context(open_raster(input_b, "domain B"))
        domain_a = _Domain("A", Path(input_a), a, a, Grid.of(a), select_bands(spec.bands_a, a.count, "domain A"),
                           spec.mask)
        grid_b, how = grid_of_b(b, domain_a.grid, spec.cell_size_b)
        reader_b, resampled = on_grid(b, grid_b, spec.resampling)
        if resampled:
            stack.enter_context(reader_b)
        progress.info(how + (f", resampled with {spec.resampling}." if resampled else ", read as it is."))
        finer = max(own / new for own, new in zip(Grid.of(b).cell_size, grid_b.cell_size))
        if finer > UPSAMPLING_WARNING:
            progress.warning(
                f"B's cells become {finer:.3g}× finer than its own ({_pair(Grid.of(b).cell_size)} → "
                f"{_pair(grid_b.cell_size)} in {b.crs}): its chips hold no detail finer than its own cells, and "
                f"there are about {finer ** 2:.3g}× more of them. To export B at its own resolution give "
                f"CELL_SIZE2 {Grid.of(b).cell_size[0]:.6g}; a chip of B then covers more ground than one of A."
            )
        domain_b = _Domain("B", Path(input_b), b, reader_b, grid_b, select_bands(spec.bands_b, b.count, "domain B"),
                           spec.mask_b, resampled)
        plans = {d.name: _plan(d, spec) for d in (domain_a, domain_b)}
        with staged_directory(output, may_replace=partial(is_previous_export, layout=UNPAIRED)) as staging:
            sides = {}
            for i, domain in enumerate((domain_a, domain_b)):
                stage = progress.stage(0.5 * i, 0.5 * (i + 1))
                sides[domain.name.lower()] = _export_domain(domain, plans[domain.name], spec, staging, stage)
            manifest = {
                "format": UNPAIRED_FORMAT_NAME,
                "format_version": UNPAIRED_FORMAT_VERSION,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "software": {"pix2pix_qgis": __version__, "rasterio": rasterio.__version__,
                             "gdal": rasterio.__gdal_version__},
                "tile_size": spec.tile_size,
                "stride": spec.stride,
                "max_nodata": spec.max_nodata,
                "validation": spec.validation,
                "seed": spec.seed,
                "statistics_scope": "valid pixels of each domain's training chips; p01/p99 from a pixel sample",
                **sides,
            }
            carried = carry_over(output, staging, UNPAIRED)
            write_manifest(staging, manifest)
    if carried:
        progress.info(f"Kept what arcgis.learn saved in the previous export's folder: {', '.join(carried)}.")
    for side in sides.values():
        if side["counts"]["dropped_split_buffer"]:
            progress.warning(
                f"{side['counts']['dropped_split_buffer']} chips of {side['role']} overlapping its validation chips "
                "were dropped so that no training pixel is also a validation pixel."
            )
    progress.update(1.0, "done")
    return {
        "output": str(output.absolute()),
        "manifest": str(output.absolute() / "chips.json"),
        **{f"{key}_{name}": value for key, side in sides.items() for name, value in side["counts"].items()},
        "resampled_b": domain_b.resampled,
        "cell_size_b": list(grid_b.cell_size),
    }


def _plan(domain: _Domain, spec: UnpairedSpec) -> tuple[list[tuple[int, int]], int]:
    """Chip origins of a domain on its whole grid, those outside its mask removed; and how many were."""
    grid = domain.grid
    if grid.width < spec.tile_size or grid.height < spec.tile_size:
        raise Pix2PixError(
            f"Tile size {spec.tile_size} px is larger than domain {domain.name} ({grid.width}×{grid.height} px"
            f"{' at the cell size it is resampled to' if domain.resampled else ''}). Use a smaller tile size"
            + (" or a smaller cell size of B (CELL_SIZE2)." if domain.name == "B" else ".")
        )
    origins = plan_origins(Window(0, 0, grid.width, grid.height), spec.tile_size, spec.stride)
    if domain.mask is None:
        return origins, 0
    polygons = load_mask(domain.mask, grid.crs)
    kept = [o for o in origins if inside_mask(polygons, chip_bounds(grid, *o, spec.tile_size))]
    if not kept:
        raise Pix2PixError(
            f"No chip of domain {domain.name} fits: every candidate window falls outside its mask polygons "
            f"({domain.mask}). Check that the mask covers raster {domain.name}, or lower the tile size."
        )
    return kept, len(origins) - len(kept)


def _export_domain(domain: _Domain, plan: tuple[list[tuple[int, int]], int], spec: UnpairedSpec, staging: Path,
                   progress: Progress) -> dict[str, Any]:
    """Write one domain's chips, split and Esri files into ``staging/<name>/``; returns its manifest entry."""
    origins, skipped_mask = plan
    progress.info(f"Domain {domain.name}: {len(origins)} candidate chips of {spec.tile_size} px at stride "
                  f"{spec.stride} px.")
    folder = staging / domain.name / "images"
    source = ChipSource(domain.reader, domain.bands, folder, domain.source.nodata)
    writer = ChipWriter(domain.grid, spec.tile_size, [source], len(origins), spec.seed)
    try:
        skipped_nodata = write_chips(writer, origins, spec.max_nodata, progress)
    finally:
        writer.close()
    if not writer.chips:
        raise Pix2PixError(
            f"All {len(origins)} candidate chips of domain {domain.name} have more than {spec.max_nodata:.0%} "
            f"nodata. Raise MAX_NODATA, or check raster {domain.name}'s nodata value."
        )
    try:
        split = spatial_split([(c["row_off"], c["col_off"]) for c in writer.chips], spec.tile_size, spec.stride,
                              spec.validation, spec.seed)
    except Pix2PixError as exc:
        raise Pix2PixError(f"Domain {domain.name}: {exc}") from None
    drop_buffer_chips([folder], writer.chips, split.splits)
    chips = [{**chip, "split": s} for chip, s in zip(writer.chips, split.splits) if s != "buffer"]
    exported = [i for i, s in enumerate(split.splits) if s != "buffer"]
    train = [i for i, s in enumerate(split.splits) if s == "train"]
    write_esri_domain_files(staging / domain.name, [c["name"] for c in chips], spec.tile_size,
                            domain.grid.describe(), writer.stats[0].summarize(exported))
    return {
        "role": f"domain {domain.name}",
        "folder": f"{domain.name}/images",
        "path": str(domain.path.absolute()),
        "bands": domain.bands,
        "dtype": dtype_of(domain.source, domain.bands),
        "nodata": manifest_nodata(domain.source.nodata),
        "grid": domain.grid.describe(),
        "source_grid": Grid.of(domain.source).describe(),
        "resampled": domain.resampled,
        "resampling": spec.resampling if domain.resampled else None,
        "split": {"method": "spatial-blocks", "block_size": split.block_size},
        "statistics": writer.stats[0].summarize(train),
        "counts": {"train": split.count("train"), "validation": split.count("validation"),
                   "skipped_nodata": skipped_nodata, "skipped_mask": skipped_mask,
                   "dropped_split_buffer": split.count("buffer")},
        "chips": chips,
    }


def metres_per_unit(crs: CRS | None, latitude: float) -> tuple[float, float] | None:
    """Ground metres per map unit along x and y at ``latitude`` (degrees), or None for a raster without a CRS.

    A geographic CRS: a degree on a sphere of the mean Earth radius (x shrinks by cos φ). A
    projected one: its linear unit (1 for metres, 0.3048 for feet), ignoring the projection's
    scale factor (under 0.1 % in UTM); an unknown unit counts as metres.
    """
    if crs is None:
        return None
    if crs.is_geographic:
        degree = math.pi / 180.0 * EARTH_RADIUS_M
        return (degree * max(math.cos(math.radians(latitude)), 1e-6), degree)
    try:
        factor = float(crs.linear_units_factor[1])
    except (CRSError, TypeError, ValueError):
        factor = 1.0
    return (factor, factor)


def grid_of_b(b: Any, grid_a: Grid, cell_size: float | None) -> tuple[Grid, str]:
    """B's chip grid, in B's CRS over B's extent, and a sentence for the log saying how its cell size was chosen.

    ``cell_size`` (B's CRS units) when given and positive; else A's cell size on the ground at
    A's centre expressed in B's units at B's centre, or B's own where it is within
    ``SAME_CELL_TOLERANCE`` of that (then B is read as it is, bit for bit).
    """
    own = Grid.of(b)
    if cell_size:
        target = (cell_size, cell_size)
        how = f"Domain B: cell {cell_size:.6g} (CELL_SIZE2) in {b.crs}"
    else:
        a_units = metres_per_unit(grid_a.crs, (grid_a.bounds[1] + grid_a.bounds[3]) / 2)
        b_units = metres_per_unit(own.crs, (own.bounds[1] + own.bounds[3]) / 2)
        if a_units is None or b_units is None:  # no CRS on one side: assume the same units
            target = grid_a.cell_size
            how = f"Domain B: A's cell size {_pair(target)} (a raster without a CRS: units taken as equal)"
        else:
            ground = (grid_a.cell_size[0] * a_units[0], grid_a.cell_size[1] * a_units[1])
            target = (ground[0] / b_units[0], ground[1] / b_units[1])
            how = (f"Domain B: A's cell {_pair(grid_a.cell_size)} in {grid_a.crs} is {_pair(ground)} m on the ground, "
                   f"{_pair(target)} in {b.crs}")
        if all(abs(o - t) <= SAME_CELL_TOLERANCE * t for o, t in zip(own.cell_size, target)):
            return own, how + f"; B's own cell {_pair(own.cell_size)} is within 1 % of it"
    left, bottom, right, top = own.bounds
    width, height = math.ceil((right - left) / target[0] - 1e-9), math.ceil((top - bottom) / target[1] - 1e-9)
    if width * height > 2**34:
        raise Pix2PixError(f"At cell size {_pair(target)} raster B would be {width}×{height} px. Give a larger cell "
                           "size of B (CELL_SIZE2), in B's CRS units.")
    return Grid(own.crs, Affine(target[0], 0.0, left, 0.0, -target[1], top), width, height), how


def _pair(values: tuple[float, float]) -> str:
    return f"{values[0]:.6g}×{values[1]:.6g}"
