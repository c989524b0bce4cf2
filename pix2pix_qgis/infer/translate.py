"""Translate a whole raster with a ``.p2p`` model: seamless tiles, bounded memory, exact grid.

Data flow (one pass, top to bottom):

    reader thread: strip of tile rows (input bands, validity)  ─┐
    main thread:   normalise → fill nodata → batch → generator (eval, inference_mode)
                   → weighted add into a float32 accumulator of the still-open rows
    writer thread: finished rows, in whole output blocks, each block written once
                   (values clipped to the output dtype; nodata or internal mask where
                   the input was invalid)

Memory holds one input strip, a (tile + block) × width accumulator and a batch: it does not
depend on the raster's height and grows linearly with its width. The output has the
input's CRS, transform (or the ``EXTENT`` window's), width and height, and is written under
a temporary name that is renamed only on success.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from ..contract.errors import Pix2PixError
from ..contract.protocol import partial_path
from ..contract.tables import TRANSLATE
from ..core.grid import Bounds, Grid, extent_in, format_bounds, gdal_cache_mb, intersect, open_raster
from ..core.outputs import staged_file
from ..core.paths import check_run_paths
from ..core.progress import Progress
from ..model.card import ModelCard
from ..model.device import resolve_device
from ..model.guards import BatchBackoff, check_translation_memory
from ..model.package import load_model
from .backends import TorchBackend, make_backend
from .mosaic import Accumulator, BlockWriter, output_nodata, read_strip
from .tiling import BLOCK, TilePlan, check_part, part_rows


@dataclass(frozen=True)
class TranslateSpec:
    """Validated translation options (pixels unless stated)."""

    tile_size: int | None = None  # default: default_tiling (a multiple of the chip, two chips to 1024 px)
    overlap: int | None = None  # default: default_tiling (half a chip; a quarter chip with a given tile_size)
    margin: int | None = None  # discarded per side in overlaps; default: a quarter of the overlap
    batch_size: int = TRANSLATE["BATCH_SIZE"].default
    device: str = TRANSLATE["DEVICE"].default
    bands: tuple[int, ...] | None = None
    extent: Bounds | None = None
    extent_crs: str | None = None
    blend: str = TRANSLATE["BLEND"].default
    tta: bool = TRANSLATE["TTA"].default
    dtype: str | None = None  # default: the target's dtype recorded in the model
    cog: bool = TRANSLATE["COG"].default
    creation_options: dict[str, str] = field(default_factory=dict)  # none: {}
    part: tuple[int, int] | None = None  # (index, count): only that band of rows, for distributed runs (parts.py)
    backend: str = TRANSLATE["BACKEND"].default
    precision: str = TRANSLATE["PRECISION"].default
    direction: str = TRANSLATE["DIRECTION"].default  # b2a: a CycleGAN model's B→A generator

    def __post_init__(self) -> None:
        if self.part is not None:  # first: its messages explain job-array indices
            check_part(*self.part, cog=self.cog)
        TRANSLATE.check_object(self)  # ranges, choices and their messages: contract.tables


def parse_creation_options(items: list[str] | None) -> dict[str, str]:
    """GDAL creation options from ``KEY=VALUE`` items (keys upper-cased); a malformed item is an error."""
    options = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise Pix2PixError(f"Creation option '{item}' must look like KEY=VALUE, e.g. COMPRESS=ZSTD.")
        options[key.strip().upper()] = value.strip()
    return options


def _input_bands(src: Any, card: ModelCard, requested: tuple[int, ...] | None) -> list[int]:
    expected = card.generator.in_channels
    trained = list(card.input.bands or ())  # the card holds as many as the generator's channels, or none
    if requested:
        bands = list(requested)
    elif trained and max(trained) <= src.count:
        bands = trained
    elif src.count == expected:
        bands = list(range(1, expected + 1))
    else:
        raise Pix2PixError(
            f"The model takes {expected} input band(s) (bands {trained} of its training raster) but the raster "
            f"has {src.count}. Choose {expected} band(s) with BANDS (--bands)."
        )
    if len(bands) != expected:
        raise Pix2PixError(f"The model takes {expected} input band(s) but {len(bands)} were selected ({bands}).")
    bad = [b for b in bands if not 1 <= b <= src.count]
    if bad:
        raise Pix2PixError(f"The raster has {src.count} band(s); band(s) {bad} do not exist.")
    return bands


def _window(src: Any, spec: TranslateSpec) -> Window:
    grid = Grid.of(src)
    if spec.extent is None:
        return Window(0, 0, src.width, src.height)
    extent = extent_in(spec.extent, spec.extent_crs, src.crs)
    if intersect(extent, grid.bounds) is None:
        raise Pix2PixError(f"The extent {format_bounds(extent, src.crs)} does not meet the raster "
                           f"{format_bounds(grid.bounds, src.crs)}. Choose an extent inside the raster.")
    window = grid.window_of(extent)
    if window.width < 1 or window.height < 1:
        raise Pix2PixError("The extent covers no whole pixel of the raster.")
    return window


def _create_output(path: Path, profile: dict[str, Any], options: dict[str, str]) -> Any:
    """The output dataset open for writing; GDAL's refusal of the user's creation options becomes their fix."""
    try:
        return rasterio.open(path, "w", **profile)
    except (rasterio.errors.RasterioError, CPLE_BaseError) as exc:
        if not options:
            raise
        given = " ".join(f"{key}={value}" for key, value in options.items())
        raise Pix2PixError(f"GDAL cannot create the output with the creation options {given} ({exc}). Fix or remove "
                           "them (--co, CREATION_OPTIONS); see https://gdal.org/drivers/raster/gtiff.html.") from exc


# Default inference tile: the multiple of the chip, from MIN_TILE_CHIPS chips to MAX_DEFAULT_TILE
# px (a wide raster's strips and accumulator grow with the tile), that covers the raster with
# the least compute. A U-Net of depth d takes any multiple of 2^d, and in eval mode its BatchNorm uses
# running statistics, so a larger tile changes only how much context each pixel sees. The
# default overlap is half a chip and tiles start on multiples of 2^(depth-1) px, both at most
# DEFAULT_LATTICE px: measured on the demo's chip-128 model (BENCHMARKS.md, "Seams of the
# default tiling", issue 14); more for deeper nets would exceed the compute the issue allows
# at tiles of at most MAX_DEFAULT_TILE px.
MIN_TILE_CHIPS = 2
MAX_DEFAULT_TILE = 1024
DEFAULT_LATTICE = 64


@dataclass(frozen=True)
class Tiling:
    """Tile side, overlap and start lattice in pixels (``align`` 1: evenly spread, see ``tiling``)."""

    tile: int
    overlap: int
    align: int = 1


def default_tiling(card: ModelCard, tile_size: int | None, overlap: int | None, height: int = 0,
                   width: int = 0) -> Tiling:
    """The tiling of a ``height`` × ``width`` raster: the given tile and overlap, else the defaults.

    Default tile: the multiple of the chip from ``MIN_TILE_CHIPS`` chips to ``MAX_DEFAULT_TILE``
    px with the smallest compute factor on this raster (the larger on a tie: more context); a
    raster smaller than that is one tile (rounded up to whole chips); if no multiple fits, the
    chip. With it the overlap defaults to half a chip and tiles start on multiples of
    2^(depth-1) px (both at most ``DEFAULT_LATTICE``), so neighbouring tiles see the input on
    the same lattice of the network's stride-2 layers (all but the deepest) and differ from a
    single pass less. A given tile size keeps evenly spread tiles and a quarter chip of
    overlap, as before. Generators that normalise
    with each tile's own statistics (instance norm) keep the chip size, the only tile size
    whose statistics match training.
    """
    chip, multiple = card.chip_size, card.generator.multiple
    if tile_size is not None or card.generator.norm != "batch":
        tile = chip if tile_size is None else tile_size
        return Tiling(tile, min(tile, chip) // 4 if overlap is None else overlap)
    overlap = min(chip // 2, DEFAULT_LATTICE) if overlap is None else overlap
    align = min(max(multiple // 2, 1), DEFAULT_LATTICE)  # U-Net: 2^(depth-1)
    needed = -(-max(height, width, 1) // chip) * chip  # the raster, rounded up to whole chips
    sizes = list(range(MIN_TILE_CHIPS * chip, min(MAX_DEFAULT_TILE, needed) + 1, chip))
    if needed < MIN_TILE_CHIPS * chip:
        sizes = [needed]  # one tile: the whole raster in a single pass
    elif not sizes:
        sizes = [chip]
    # A given overlap no candidate can hold is left to TilePlan, whose error names the fix.
    sizes = [size for size in sizes if size > overlap] or sizes[-1:]
    tile = min(sizes, key=lambda size: (TilePlan.build(max(height, 1), max(width, 1), size, min(overlap, size - 1),
                                                       align=align).compute_factor, -size))
    return Tiling(tile, overlap, align)


@dataclass
class _Counters:
    tiles: int = 0
    skipped: int = 0
    model_seconds: float = 0.0


def translate_raster(
    input_path: str | Path,
    model_path: str | Path,
    output_path: str | Path,
    spec: TranslateSpec | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Translate ``input_path`` with the model at ``model_path`` into ``output_path`` (GeoTIFF/COG)."""
    spec = spec or TranslateSpec()
    progress = progress or Progress()
    check_run_paths(rasters={"input raster": input_path}, inputs={"model": model_path}, files={"output": output_path})
    started = time.perf_counter()
    device = resolve_device(spec.device)
    generator, card = load_model(model_path, device, spec.direction)  # the card of that direction
    out_bands = card.generator.out_channels
    dtype = spec.dtype or card.output.dtype or "float32"
    nodata = output_nodata(card.output.nodata, dtype)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True, GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=gdal_cache_mb()), \
            open_raster(input_path, "input") as src:
        bands = _input_bands(src, card, spec.bands)
        window = _window(src, spec)
        height, width = int(window.height), int(window.width)
        tiling = default_tiling(card, spec.tile_size, spec.overlap, height, width)
        tile, overlap = tiling.tile, tiling.overlap
        card.generator.check_size(tile, tile)
        plan = TilePlan.build(height, width, tile, overlap, spec.margin, spec.blend, tiling.align)
        rows = part_rows(height, *spec.part) if spec.part else (0, height)
        band = Window(window.col_off, window.row_off + rows[0], width, rows[1] - rows[0])
        model = make_backend(spec.backend, generator, card, device, spec.tta, spec.batch_size, tile, progress,
                             spec.precision, len(plan))
        check_translation_memory(card.generator, tile, model.batch, width, len(plan.cols.starts),
                                 src.dtypes[bands[0] - 1], device, spec.tta, generator)
        setup_seconds = time.perf_counter() - started  # load, backend, memory check: once per run
        progress.info(
            f"{height}×{width} px in {len(plan)} tiles of {tile} px, overlap {overlap} px"
            + (f", starting on multiples of {tiling.align} px" if tiling.align > 1 else "") + " "
            f"(compute factor {plan.compute_factor:.2f}); device {device}, {model.batch} tiles per call, "
            f"{spec.precision}" + (", 8-view TTA" if spec.tta else "")
        )
        may_be_invalid = (any(flag.name != "all_valid" for flags in src.mask_flag_enums for flag in flags)
                          or np.issubdtype(np.dtype(src.dtypes[bands[0] - 1]), np.floating))
        profile = {
            "driver": "GTiff", "width": width, "height": int(band.height), "count": out_bands, "dtype": dtype,
            "crs": src.crs, "transform": window_transform(band, src.transform), "nodata": nodata,
            "tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK, "compress": "deflate",
            "predictor": 3 if np.issubdtype(np.dtype(dtype), np.floating) else 2, "bigtiff": "IF_SAFER",
            "photometric": "RGB" if out_bands == 3 and dtype == "uint8" else "MINISBLACK",
            **{k.lower(): v for k, v in spec.creation_options.items()},
        }
        needed = width * band.height * out_bands * np.dtype(dtype).itemsize  # uncompressed: an upper bound
        with staged_file(Path(output_path), needed_bytes=needed) as staging:
            # A COG is copied from a plain GeoTIFF written first under the other staging name: no longer than
            # the names core.paths checks, and removed by the provider if it has to kill the engine.
            target = partial_path(Path(output_path).absolute()) if spec.cog else staging
            try:
                with _create_output(target, profile, spec.creation_options) as dst:
                    writer = BlockWriter(dst, nodata, may_be_invalid)
                    try:
                        counters = _Translator(plan, src, bands, window, card.input.normalization, model, writer,
                                               out_bands, progress, rows).run()
                    finally:
                        writer.close()
                if spec.cog:
                    progress.info("Writing a Cloud Optimized GeoTIFF.")
                    rasterio.shutil.copy(target, staging, driver="COG", compress="DEFLATE", bigtiff="IF_SAFER")
            finally:
                if spec.cog:
                    target.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    progress.update(1.0, "done")
    return {
        "output": str(Path(output_path).absolute()), "width": width, "height": height, "bands": out_bands,
        "dtype": dtype, "nodata": nodata, "tiles": counters.tiles, "skipped_nodata_tiles": counters.skipped,
        "tile_size": tile, "overlap": overlap, "tile_align": tiling.align,
        "compute_factor": round(plan.compute_factor, 4),
        "device": str(device), "backend": spec.backend, "precision": spec.precision, "direction": spec.direction,
        "seconds": round(seconds, 3),
        "megapixels_per_second": round(width * height / 1e6 / seconds, 4),
        "model_seconds": round(counters.model_seconds, 3), "setup_seconds": round(setup_seconds, 3),
        **({"part": list(spec.part), "rows": list(rows), "height": int(band.height), "raster_height": height}
           if spec.part else {}),
    }


def batch_group(batch: int, tiles_per_row: int) -> int:
    """Tile rows batched together: a group's tiles fill ``batch``-tile calls with the least padding.

    At most one batch's worth of rows plus one, so the rows kept open for waiting tiles stay
    few; a narrow raster (fewer tiles per row than a batch) gets enough rows to fill one.
    """
    most = -(-batch // tiles_per_row) + 1
    return min(range(1, most + 1), key=lambda rows: (-rows * tiles_per_row % batch / (rows * tiles_per_row), rows))


def _lookup_table(input_norm: Any, dtype: str, bands: int) -> np.ndarray | None:
    """(bands, 2^bits) float32: ``input_norm.apply`` of every value of an 8- or 16-bit integer ``dtype``, else None.

    The map is per value, so looking values up gives the same bits as computing them, in one pass.
    """
    kind = np.dtype(dtype)
    if kind not in (np.dtype("uint8"), np.dtype("int8"), np.dtype("uint16"), np.dtype("int16")):
        return None
    info = np.iinfo(kind)
    values = np.arange(info.min, info.max + 1).astype(kind)
    table = input_norm.apply(np.broadcast_to(values, (bands, 1, len(values))))[:, 0]
    return np.roll(table, info.min, axis=1) if info.min else table  # index by the value's unsigned bits


class _Translator:
    """Walks the tile plan row by row: predict in full batches, blend into the accumulator, hand off finished rows.

    Tile rows go in groups of ``batch_group`` rows counted from the raster's top; a group's
    tiles wait in a queue and are predicted ``model.batch`` at a time, the last batch of the
    group padded, so narrow rasters fill batches too and a part of a distributed run forms
    the same batches as the whole run. Rows are handed to the writer once no queued tile can
    touch them. The batches depend on the tile plan and the input's validity, never on BATCH_SIZE.
    """

    def __init__(self, plan: TilePlan, src: Any, bands: list[int], window: Window, input_norm: Any,
                 model: TorchBackend, writer: BlockWriter, out_bands: int, progress: Progress,
                 rows: tuple[int, int] | None = None) -> None:
        self.plan, self.src, self.bands, self.window = plan, src, bands, window
        self.input_norm, self.model, self.writer, self.progress = input_norm, model, writer, progress
        self.tile = plan.rows.tile
        self.height, self.width = int(window.height), int(window.width)
        self.batch = int(model.batch)
        self.group = batch_group(self.batch, len(plan.cols.starts))
        self.accumulator = Accumulator(out_bands, self.group * self.tile + BLOCK, self.width)
        self.row_weights = plan.rows.weights.astype(np.float32)
        self.col_weights = plan.cols.weights.astype(np.float32)
        self.counters = _Counters()
        # Output rows [first, stop) are written, at rows counted from `first`; a part of a
        # distributed run computes every tile touching them, from the start of their group, in
        # the same batches, so its pixels equal the single run's bit for bit (parts.py).
        self.first, self.stop = rows or (0, self.height)
        starts = self.plan.rows.starts
        touching = [i for i, row in enumerate(starts) if row < self.stop and row + self.tile > self.first]
        self.tile_rows = list(range(touching[0] // self.group * self.group, touching[-1] + 1))
        self.total = len(self.tile_rows) * len(self.plan.cols.starts)
        self.queue: list[tuple[int, int, np.ndarray]] = []  # (tile row, tile column, normalised tile)
        self.lookup = _lookup_table(input_norm, src.dtypes[bands[0] - 1], len(bands))
        self.written = self.first
        self.backoff = BatchBackoff(progress)  # CUDA out-of-memory: halve the batch and retry

    def run(self) -> _Counters:
        starts, todo = self.plan.rows.starts, self.tile_rows
        self.accumulator.origin = starts[todo[0]]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="strip-reader") as reader:
            upcoming = reader.submit(read_strip, self.src, self.bands, self.window, starts[todo[0]], self.tile,
                                     self.plan.padded_width)
            for k, i in enumerate(todo):
                row = starts[i]
                data, valid = upcoming.result()
                if k + 1 < len(todo):
                    upcoming = reader.submit(read_strip, self.src, self.bands, self.window, starts[todo[k + 1]],
                                             self.tile, self.plan.padded_width)
                self.accumulator.mark_valid(row, valid[: min(self.tile, self.height - row), : self.width])
                self._enqueue(i, data, valid)
                if (i + 1) % self.group == 0 or k + 1 == len(todo):
                    self._predict(len(self.queue))  # the group's last batch, padded by the backend
                self._hand_off(self.queue[0][0] - 1 if self.queue else i)
        self.progress.check_cancelled()
        return self.counters

    def _enqueue(self, i: int, data: np.ndarray, valid: np.ndarray) -> None:
        """Queue tile row ``i``'s tiles that hold a valid pixel, normalised; predict each full batch."""
        for j, col in enumerate(self.plan.cols.starts):
            self.counters.tiles += 1
            tile_valid = valid[:, col:col + self.tile]
            if tile_valid.any():
                # Per tile, not per strip: a normalised float strip of a wide raster would cost
                # 4-8× the input strip's memory, and queued tiles would keep it alive.
                x = self._normalise(data[:, :, col:col + self.tile])
                if not tile_valid.all():
                    x[:, ~tile_valid] = 0.0  # mid-range of the training data: in distribution
                self.queue.append((i, j, x))
            else:
                self.counters.skipped += 1  # all nodata: its pixels are masked in the output anyway
            if len(self.queue) == self.batch:
                self._predict(self.batch)
        self.progress.update(self.counters.tiles / self.total * 0.98, f"tile {self.counters.tiles} of {self.total}")

    def _normalise(self, data: np.ndarray) -> np.ndarray:
        """(C, T, T) source units → float32 in [-1, 1]: the input normalisation, by table for 8- and 16-bit data."""
        if self.lookup is None:
            return self.input_norm.apply(data)
        x = np.empty(data.shape, dtype=np.float32)
        indices = data.view(f"u{data.dtype.itemsize}")  # a signed value's table position is its unsigned bits
        for band, table in enumerate(self.lookup):
            np.take(table, indices[band], out=x[band], mode="clip")  # never clips: the table spans the dtype
        return x

    def _predict(self, count: int) -> None:
        """Predict the first ``count`` queued tiles and add them, weighted, into the accumulator."""
        if not count:
            return
        self.progress.check_cancelled()
        started = time.perf_counter()
        predictions = self.backoff(self.model, np.stack([x for _, _, x in self.queue[:count]]))
        self.counters.model_seconds += time.perf_counter() - started
        for (i, j, _), prediction in zip(self.queue[:count], predictions):
            row, col = self.plan.rows.starts[i], self.plan.cols.starts[j]
            height, width = min(self.tile, self.height - row), min(self.tile, self.width - col)
            weight = np.outer(self.row_weights[i, :height], self.col_weights[j, :width])
            self.accumulator.add(prediction[:, :height, :width] * weight, row, col)
        del self.queue[:count]

    def _hand_off(self, done: int) -> None:
        """Pass on the rows finished by tile rows up to ``done``: whole blocks to the writer, the part above dropped."""
        starts = self.plan.rows.starts
        finished = min(starts[done + 1] if done + 1 < len(starts) else self.height, self.stop)
        above = min(finished, self.first) - self.accumulator.origin
        if above > 0:
            self.accumulator.take(above)  # finished rows of the part above: not ours to write
        if finished < self.stop:
            finished -= (finished - self.written) % BLOCK  # whole blocks only, each written once
        if finished > self.written:
            self.writer.submit(self.written - self.first, *self.accumulator.take(finished - self.written))
            self.written = finished
