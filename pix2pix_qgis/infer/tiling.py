"""The tile plan for whole-raster translation: tile windows plus blend weights, and the row bands of parts.

Per axis, tiles of ``tile`` pixels overlap by at least ``overlap``; they are spread evenly
so the last one ends exactly at the raster edge. Between two neighbours, each discards its
outer ``margin`` (where a convolutional net sees padding and is least reliable) and the
rest of the overlap is cross-faded with a raised-cosine (Hann) ramp. Weights are
normalised per axis, so in 2-D (their outer product) they sum to exactly one at every
pixel, and sides that touch the raster border stay flat at one. A raster smaller than a
tile gets one tile, reflect-padded by the reader. ``blend="crop"`` gives hard cuts in the
middle of each overlap instead (for comparison).

With ``align`` (translate uses 2^depth of the model), every tile starts on a multiple of
``align`` px, and the last tile may pass the raster's end (the reader pads it). A U-Net's
stride-2 layers make its output change when the input moves by anything but a multiple of
2^depth, so unaligned tiles differ from a single pass everywhere, not only near their edges;
aligned tiles differ only by their edges' lack of context (BENCHMARKS.md, "Seams").

Output rows are written in whole blocks of ``BLOCK`` rows; a distributed translation
(``scale.parts``) gives each part a band of whole blocks (:func:`part_rows`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from ..contract.errors import Pix2PixError
from ..contract.params import check
from ..contract.tables import TRANSLATE


@dataclass(frozen=True)
class AxisPlan:
    """Tiles along one axis: ``starts[i]`` in pixels, ``weights[i]`` over the tile's pixels."""

    length: int
    tile: int
    starts: tuple[int, ...]
    weights: np.ndarray  # (n_tiles, tile) float64; zero beyond ``length``

    def span(self, index: int) -> tuple[int, int]:
        """Pixels [start, stop) of tile ``index`` that lie inside the raster."""
        start = self.starts[index]
        return start, min(start + self.tile, self.length)


def _starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Tile starts, evenly spread; with ``align`` > 1, multiples of it, the last tile ending past the raster."""
    if length <= tile:
        return [0]
    if align == 1 or tile - overlap < align:  # no step on the lattice keeps the overlap: spread evenly
        stride = tile - overlap
        count = max(math.ceil((length - overlap) / stride), 2)
        return [round(i * (length - tile) / (count - 1)) for i in range(count)]
    # Rounding evenly spread starts up to the lattice keeps every step within `stride`, and the
    # last tile reaches the raster's end (passing it by less than `align`).
    stride = (tile - overlap) // align * align
    count = math.ceil((length - tile) / stride) + 1
    return [-(-i * (length - tile) // ((count - 1) * align)) * align for i in range(count)]  # exact ceilings


def _ramp(width: int) -> np.ndarray:
    """Rising half of a Hann window over ``width`` pixels, sampled at pixel centres."""
    x = (np.arange(width) + 0.5) / width
    return np.sin(0.5 * np.pi * x) ** 2


def plan_axis(length: int, tile: int, overlap: int, margin: int | None = None, blend: str = "hann",
              align: int = 1) -> AxisPlan:
    """Tile starts and blend weights along one axis of ``length`` px; the weights of every pixel sum to 1.

    ``align`` > 1 puts every tile start on a multiple of ``align`` px (see the module's text);
    the overlap is then at least ``overlap``, rounded up to the lattice. Where no step on the
    lattice keeps ``overlap`` (tile − overlap < align), tiles are spread evenly instead.
    """
    if length < 1 or tile < 1:
        raise Pix2PixError(f"Cannot tile a length of {length} px with tiles of {tile} px.")
    if not 0 <= overlap < tile:
        raise Pix2PixError(f"OVERLAP {overlap} px must be at least 0 and smaller than the tile size ({tile} px).")
    check(TRANSLATE["BLEND"], blend)
    margin = overlap // 4 if margin is None else margin
    if align < 1:
        raise Pix2PixError(f"Tile alignment must be at least 1 px, not {align}.")
    starts = _starts(length, tile, overlap, align)
    raw = np.ones((len(starts), tile))
    for i, start in enumerate(starts):
        raw[i, max(0, length - start):] = 0.0  # beyond the raster (padding of a small raster)
        for neighbour, side in ((i - 1, "left"), (i + 1, "right")):
            if not 0 <= neighbour < len(starts):
                continue
            if side == "left":
                shared = starts[neighbour] + tile - start
            else:
                shared = start + tile - starts[neighbour]
            _fade(raw[i], shared, margin, blend, side)
    # Normalise through global pixel positions so overlapping tiles share each pixel's weight.
    weights = np.zeros_like(raw)
    coverage = np.zeros(length)
    for i, start in enumerate(starts):
        stop = min(start + tile, length)
        coverage[start:stop] += raw[i, : stop - start]
    if np.any(coverage <= 0):
        raise Pix2PixError(f"OVERLAP {overlap} px leaves pixels uncovered with margin {margin}; raise the overlap.")
    for i, start in enumerate(starts):
        stop = min(start + tile, length)
        weights[i, : stop - start] = raw[i, : stop - start] / coverage[start:stop]
    return AxisPlan(length, tile, tuple(starts), weights)


def _fade(weights: np.ndarray, shared: int, margin: int, blend: str, side: str) -> None:
    """Fade ``weights`` towards a neighbour that shares ``shared`` pixels on ``side``."""
    tile = len(weights)
    shared = min(shared, tile)
    if blend == "crop" or shared - 2 * margin <= 0:
        cut = shared // 2
        profile = np.concatenate([np.zeros(cut), np.ones(tile - cut)])
    else:
        width = shared - 2 * margin
        profile = np.concatenate([np.zeros(margin), _ramp(width), np.ones(tile - margin - width)])
    weights *= profile if side == "left" else profile[::-1]


@dataclass(frozen=True)
class TilePlan:
    """Row and column plans; tile (i, j) is the window at (row start i, col start j)."""

    rows: AxisPlan
    cols: AxisPlan

    @classmethod
    def build(cls, height: int, width: int, tile: int, overlap: int, margin: int | None = None,
              blend: str = "hann", align: int = 1) -> TilePlan:
        """The plan for a height × width px window: :func:`plan_axis` on rows and on columns."""
        return cls(plan_axis(height, tile, overlap, margin, blend, align),
                   plan_axis(width, tile, overlap, margin, blend, align))

    @property
    def padded_width(self) -> int:
        """Columns the tiles span (the raster's width, or more where the last tile passes its edge)."""
        return max(self.cols.length, self.cols.starts[-1] + self.cols.tile)

    def __len__(self) -> int:
        return len(self.rows.starts) * len(self.cols.starts)

    def windows(self) -> Iterator[tuple[int, int, Window]]:
        """(row index, col index, window) in row-major order; windows may extend past the raster."""
        for i, row in enumerate(self.rows.starts):
            for j, col in enumerate(self.cols.starts):
                yield i, j, Window(col, row, self.cols.tile, self.rows.tile)

    def weight(self, i: int, j: int) -> np.ndarray:
        """(tile, tile) blend weights of tile (i, j); they sum to one over tiles at every pixel."""
        return np.outer(self.rows.weights[i], self.cols.weights[j])

    @property
    def compute_factor(self) -> float:
        """Pixels the model processes per output pixel (1.0 means no overlap cost)."""
        return len(self) * self.rows.tile * self.cols.tile / (self.rows.length * self.cols.length)


BLOCK = 256  # rows per band unit: the block height translate writes (translate.BLOCK)


def check_part(index: int, count: int, cog: bool = False) -> None:
    """Raise unless ``index``/``count`` names a part (0 ≤ index < count) and no COG is asked of a part."""
    if count < 1:
        raise Pix2PixError(f"Part {index}/{count}: the number of parts must be at least 1.")
    if not 0 <= index < count:
        raise Pix2PixError(
            f"Part {index}/{count} does not exist: parts count from 0, so the index must be 0 to {count - 1} "
            f"(e.g. SLURM --array=0-{count - 1} with --part $SLURM_ARRAY_TASK_ID/{count})."
        )
    if cog:
        raise Pix2PixError("A part cannot be a COG: give --cog to 'assemble', which builds the whole raster.")


def part_rows(height: int, index: int, count: int) -> tuple[int, int]:
    """Output rows [start, stop) of part ``index`` of ``count``: whole blocks, spread evenly."""
    check_part(index, count)
    blocks = math.ceil(height / BLOCK)
    if count > blocks:
        raise Pix2PixError(
            f"The output's {height} rows make {blocks} band(s) of {BLOCK} rows, too few for {count} parts. "
            f"Use at most {blocks} part(s) (processes or array tasks) for this raster."
        )
    return index * blocks // count * BLOCK, min((index + 1) * blocks // count * BLOCK, height)
