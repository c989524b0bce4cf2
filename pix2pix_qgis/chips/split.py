"""Spatial train/validation split that cannot leak.

Overlapping chips (stride < tile) share pixels, so a random split puts the same ground in
both sets and flatters validation metrics. Instead, chips are grouped into square blocks
of ``block`` pixels by their origin; whole blocks are drawn (seeded) for validation until
the requested fraction is reached; then every training chip that overlaps any validation
chip is dropped. No training pixel is ever a validation pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract.errors import Pix2PixError


@dataclass(frozen=True)
class SplitResult:
    """The spatial split: one split name per chip, in plan order, and the block side used (pixels)."""
    splits: list[str]  # "train", "validation" or "buffer" (dropped) per chip
    block_size: int

    def count(self, name: str) -> int:
        """How many chips are in split ``name``."""
        return sum(1 for split in self.splits if split == name)


def default_block_size(tile_size: int, stride: int) -> int:
    """Two tiles wide, rounded up to whole strides, so a block holds several chips."""
    return int(np.ceil(2 * tile_size / stride) * stride)


def spatial_split(
    origins: list[tuple[int, int]],
    tile_size: int,
    stride: int,
    fraction: float,
    seed: int,
    block_size: int | None = None,
) -> SplitResult:
    """Assign each chip origin (row_off, col_off) to train, validation or buffer."""
    block = block_size or default_block_size(tile_size, stride)
    n = len(origins)
    if fraction <= 0 or n == 0:
        return SplitResult(["train"] * n, block)
    rows = np.array([o[0] for o in origins], dtype=np.int64)
    cols = np.array([o[1] for o in origins], dtype=np.int64)
    block_ids = (rows // block) * (int(cols.max()) // block + 1) + cols // block
    unique_blocks = np.unique(block_ids)
    rng = np.random.default_rng(seed)
    order = rng.permutation(unique_blocks)
    target = max(1, int(round(fraction * n)))
    is_validation = np.zeros(n, dtype=bool)
    for block_id in order:
        if is_validation.sum() >= target:
            break
        is_validation |= block_ids == block_id
    overlaps = _overlaps_any(rows, cols, is_validation, tile_size)
    splits = ["validation" if v else ("buffer" if o else "train") for v, o in zip(is_validation, overlaps)]
    if "train" not in splits:
        raise Pix2PixError(
            f"A spatial validation split of {fraction:.0%} leaves no training chips ({n} chips in "
            f"{len(unique_blocks)} blocks of {block} px). Lower VALIDATION, export a larger area, "
            "or use a smaller tile size."
        )
    return SplitResult(splits, block)


def _overlaps_any(rows: np.ndarray, cols: np.ndarray, selected: np.ndarray, tile: int) -> np.ndarray:
    """For each chip, whether its window overlaps any selected chip's window (itself excluded)."""
    result = np.zeros(len(rows), dtype=bool)
    if not selected.any():
        return result
    sel_rows, sel_cols = rows[selected], cols[selected]
    order = np.argsort(sel_rows)
    sel_rows, sel_cols = sel_rows[order], sel_cols[order]
    for i in np.flatnonzero(~selected):
        lo = np.searchsorted(sel_rows, rows[i] - tile + 1, side="left")
        hi = np.searchsorted(sel_rows, rows[i] + tile - 1, side="right")
        if lo < hi and np.any(np.abs(sel_cols[lo:hi] - cols[i]) < tile):
            result[i] = True
    return result
