"""The pieces of a translation that touch pixels outside the network: strips in, blended rows out.

``read_strip`` reads one row of tiles with its validity; ``Accumulator`` holds the
weighted sum of overlapping predictions for the rows still open; ``BlockWriter`` writes
finished rows on its own thread (clip, cast, nodata or internal mask).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
from rasterio.windows import Window

from ..core.grid import valid_mask


def dtype_range(dtype: str) -> tuple[float, float]:
    """The smallest and largest value the numpy dtype ``dtype`` holds, as floats (for clipping)."""
    info = np.iinfo(dtype) if np.issubdtype(np.dtype(dtype), np.integer) else np.finfo(dtype)
    return float(info.min), float(info.max)


def output_nodata(nodata: float | None, dtype: str) -> float | None:
    """The target's nodata value (the model card's ``output.nodata``) if ``dtype`` can hold it, else None."""
    if nodata is None:
        return None
    low, high = dtype_range(dtype)
    if np.isnan(nodata):
        return nodata if np.issubdtype(np.dtype(dtype), np.floating) else None
    return nodata if low <= nodata <= high else None


def read_strip(src: Any, bands: list[int], window: Window, row: int, tile: int,
               columns: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows [row, row + tile) of ``window`` (all columns): data and validity, reflect-padded to ≥ tile rows and
    ≥ max(tile, ``columns``) columns (padding is invalid: the translator fills it with mid-range zeros)."""
    height = min(tile, int(window.height) - row)
    strip = Window(window.col_off, window.row_off + row, window.width, height)
    data = src.read(bands, window=strip)
    valid = valid_mask(src, data, bands, strip)
    pad_rows, pad_cols = tile - height, max(0, tile - int(window.width), columns - int(window.width))
    if pad_rows or pad_cols:
        mode: Literal["reflect", "edge"] = "reflect" if min(data.shape[1:]) > 1 else "edge"
        data = np.pad(data, ((0, 0), (0, pad_rows), (0, pad_cols)), mode=mode)
        valid = np.pad(valid, ((0, pad_rows), (0, pad_cols)), mode="constant", constant_values=False)
    return data, valid


class Accumulator:
    """Weighted sum of predictions and input validity for the rows not yet written (rolling buffer)."""

    def __init__(self, bands: int, rows: int, width: int) -> None:
        self.sum = np.zeros((bands, rows, width), dtype=np.float32)
        self.valid = np.zeros((rows, width), dtype=bool)
        self.origin = 0  # output row of self.sum[:, 0]

    def add(self, weighted: np.ndarray, row: int, col: int) -> None:
        """Add a weighted prediction (bands, h, w), already cut to the raster, at output pixel (row, col)."""
        r = row - self.origin
        self.sum[:, r:r + weighted.shape[1], col:col + weighted.shape[2]] += weighted

    def mark_valid(self, row: int, valid: np.ndarray) -> None:
        """Record the input's validity for rows [row, row + len(valid)) (a strip, padding cut off)."""
        r = row - self.origin
        self.valid[r:r + valid.shape[0]] = valid

    def take(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Remove and return the first ``rows`` rows: (values, validity)."""
        done = self.sum[:, :rows].copy(), self.valid[:rows].copy()
        keep = self.sum.shape[1] - rows
        self.sum[:, :keep] = self.sum[:, rows:]  # numpy buffers overlapping copies
        self.sum[:, keep:] = 0
        self.valid[:keep] = self.valid[rows:]
        self.valid[keep:] = False
        self.origin += rows
        return done


MAX_PENDING_WRITES = 1  # bands in the writer at once: one is written while the network computes the next


class BlockWriter:
    """Writes finished row bands on a background thread (clip, cast, nodata/mask).

    Only this thread touches ``dst``; the input dataset is never used here, so no GDAL
    dataset is shared between threads.
    """

    def __init__(self, dst: Any, nodata: float | None, may_be_invalid: bool) -> None:
        self.dst, self.nodata, self.may_be_invalid = dst, nodata, may_be_invalid
        self.dtype = np.dtype(dst.dtypes[0])
        self.low, self.high = dtype_range(dst.dtypes[0])
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer")
        self.futures: list[Future[None]] = []

    def submit(self, row: int, values: np.ndarray, valid: np.ndarray) -> None:
        """Queue finished rows from ``row`` (values (C, H, W) float32, handed over: the writer changes them in place;
        validity (H, W)); raises an earlier write's error."""
        for future in [f for f in self.futures if f.done()]:
            future.result()  # surface a write error now, not at the end
        self.futures = [f for f in self.futures if not f.done()]
        # Back-pressure: a writer slower than the network (deflate of wide rows on a busy
        # machine) would otherwise queue band after band of float32 rows in memory.
        while len(self.futures) >= MAX_PENDING_WRITES:
            self.futures.pop(0).result()
        self.futures.append(self.pool.submit(self._write, row, values, valid))

    def _write(self, row: int, values: np.ndarray, valid: np.ndarray) -> None:
        # In place: ``values`` is this writer's own copy, and a 30000 px wide band of rows
        # would otherwise hold two more float32 copies of itself (BENCHMARKS.md, memory).
        if np.issubdtype(self.dtype, np.integer):
            np.rint(values, out=values)
        out = np.clip(values, self.low, self.high, out=values).astype(self.dtype)
        if self.nodata is not None:
            if not np.isnan(self.nodata):
                # A real prediction must not read as nodata: move it one step into the valid range.
                step = 1 if self.nodata < self.high else -1
                clash = (out == self.nodata) & valid
                if np.issubdtype(self.dtype, np.integer):
                    # Subtract 1 rather than add -1: NumPy 2 refuses a Python -1 beside unsigned values (NEP 50).
                    out[clash] = out[clash] + 1 if step > 0 else out[clash] - 1
                else:
                    out[clash] = np.nextafter(out[clash], self.high if step > 0 else self.low)
            out[:, ~valid] = self.nodata
        window = Window(0, row, out.shape[2], out.shape[1])
        self.dst.write(out, window=window)
        if self.nodata is None and self.may_be_invalid:
            self.dst.write_mask(np.where(valid, 255, 0).astype(np.uint8), window=window)

    def close(self) -> None:
        """Wait for every queued write (raising the first error) and stop the writer thread."""
        try:
            for future in self.futures:
                future.result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
