"""Evaluate a translated raster against a reference: MAE, RMSE, bias, PSNR, SSIM, R² per band.

Both rasters must share CRS and cell size and be aligned to whole pixels; the evaluation
covers their overlap (∩ ``EXTENT``, ∩ ``MASK`` polygons), read in strips so memory does not
depend on raster size. A pixel counts when it is valid in both rasters. Pixel metrics use
each strip exactly; SSIM's 11×11 windows read a 5-row halo, so every window position is
counted once, as if the raster were processed whole. PSNR and SSIM use a stated data range
per band: 255 for 8-bit references, else the reference's valid max − min (or ``data_range``).
"""

from __future__ import annotations

import json
import math
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.features import geometry_mask
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from ..contract.errors import Pix2PixError
from ..contract.tables import EVALUATE
from ..core.grid import Bounds, Grid, extent_in, format_bounds, intersect, open_raster, valid_mask
from ..core.mask import load_mask
from ..core.outputs import staged_file
from ..core.paths import check_run_paths
from ..core.progress import Progress
from .metrics import SSIM_WINDOW, MetricAccumulator

STRIP = 512
HALO = SSIM_WINDOW // 2


def _aligned_windows(pred: Any, ref: Any, extent: Bounds | None) -> tuple[Window, Window]:
    """Matching windows of both rasters over their overlap; refuses grids that do not align."""
    gp, gr = Grid.of(pred), Grid.of(ref)
    described = (f"prediction {pred.name}: {pred.crs}, cell {gp.cell_size}, {gp.width}×{gp.height}, "
                 f"origin ({gp.transform.c:.6g}, {gp.transform.f:.6g}); reference {ref.name}: {ref.crs}, "
                 f"cell {gr.cell_size}, {gr.width}×{gr.height}, origin ({gr.transform.c:.6g}, {gr.transform.f:.6g})")
    if pred.crs != ref.crs or not np.allclose(gp.cell_size, gr.cell_size, rtol=1e-9, atol=0):
        raise Pix2PixError(f"The rasters are on different grids ({described}). Evaluate on one grid: "
                           "translate the reference's area, or warp one raster onto the other first.")
    if (gp.transform.a > 0) != (gr.transform.a > 0) or (gp.transform.e > 0) != (gr.transform.e > 0):
        raise Pix2PixError(f"One raster is stored south-up or mirrored and the other is not ({described}), so their "
                           "rows or columns run in opposite directions. Warp one onto the other's grid first.")
    offset = ~gr.transform * (gp.transform.c, gp.transform.f)  # prediction origin in reference pixels
    if not all(abs(v - round(v)) < 1e-6 for v in offset):
        raise Pix2PixError(f"The rasters' pixels are not aligned ({described}). Warp one onto the other's grid.")
    overlap = intersect(gp.bounds, gr.bounds)
    if extent is not None and overlap is not None:
        overlap = intersect(overlap, extent)
    if overlap is None:
        raise Pix2PixError(f"The rasters do not overlap{' inside the extent' if extent else ''} ({described}).")
    wp, wr = gp.window_of(overlap), gr.window_of(overlap)
    if (wp.width, wp.height) != (wr.width, wr.height) or wp.width < 1 or wp.height < 1:
        raise Pix2PixError(f"The overlap of the rasters holds no whole pixel ({described}).")
    return wp, wr


def _data_range(ref: Any, window: Window, given: list[float] | None, progress: Progress) -> list[float]:
    if given:
        if len(given) == 1:
            return given * ref.count
        if len(given) != ref.count:
            raise Pix2PixError(f"Give one data range, or one per band ({ref.count}), not {len(given)}.")
        return given
    if ref.dtypes[0] == "uint8":
        return [255.0] * ref.count
    low = np.full(ref.count, np.inf)
    high = np.full(ref.count, -np.inf)
    for row in range(0, int(window.height), STRIP):
        progress.check_cancelled()
        strip = Window(window.col_off, window.row_off + row, window.width, min(STRIP, int(window.height) - row))
        data = ref.read(window=strip)
        valid = valid_mask(ref, data, window=strip)
        if valid.any():
            values = data[:, valid]
            low = np.minimum(low, values.min(axis=1))
            high = np.maximum(high, values.max(axis=1))
    return [float(h - lo) if np.isfinite(h - lo) else 0.0 for lo, h in zip(low, high)]


def evaluate_rasters(
    prediction: str | Path,
    reference: str | Path,
    mask: Path | None = None,
    extent: Bounds | None = None,
    extent_crs: str | None = None,
    data_range: list[float] | None = None,
    error_raster: str | Path | None = None,
    report: str | Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Compare ``prediction`` with ``reference``; optionally write an absolute-error raster and a JSON report."""
    EVALUATE.check(extent=extent, extent_crs=extent_crs, data_range=data_range)
    progress = progress or Progress()
    check_run_paths(rasters={"prediction": prediction, "reference": reference}, inputs={"mask": mask},
                    files={"error raster": error_raster, "report": report})
    with ExitStack() as stack:
        pred = stack.enter_context(open_raster(prediction, "prediction"))
        ref = stack.enter_context(open_raster(reference, "reference"))
        if pred.count != ref.count:
            raise Pix2PixError(f"The prediction has {pred.count} band(s) and the reference {ref.count}; "
                               "they must match.")
        if extent is not None:
            extent = extent_in(extent, extent_crs, ref.crs)
        wp, wr = _aligned_windows(pred, ref, extent)
        polygons = load_mask(mask, ref.crs) if mask is not None else None
        ranges = _data_range(ref, wr, data_range, progress.stage(0.0, 0.1))
        metrics = MetricAccumulator(ranges)
        height, width = int(wr.height), int(wr.width)
        profile = {"driver": "GTiff", "width": width, "height": height, "count": ref.count, "dtype": "float32",
                   "crs": ref.crs, "transform": window_transform(wr, ref.transform), "nodata": float("nan"),
                   "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 3}
        errors = None
        if error_raster is not None:
            staging = stack.enter_context(staged_file(Path(error_raster)))
            errors = stack.enter_context(rasterio.open(staging, "w", **profile))
        for row in range(0, height, STRIP):
            progress.check_cancelled()
            rows = min(STRIP, height - row)
            top, bottom = max(0, row - HALO), min(height, row + rows + HALO)
            p_win = Window(wp.col_off, wp.row_off + top, width, bottom - top)
            r_win = Window(wr.col_off, wr.row_off + top, width, bottom - top)
            p_data, r_data = pred.read(window=p_win), ref.read(window=r_win)
            valid = valid_mask(pred, p_data, window=p_win) & valid_mask(ref, r_data, window=r_win)
            if polygons is not None:
                inside = ~geometry_mask([polygons.context], out_shape=valid.shape,
                                        transform=window_transform(r_win, ref.transform))
                valid &= inside
            core = slice(row - top, row - top + rows)
            p_core, r_core, v_core = p_data[:, core], r_data[:, core], valid[core]
            metrics.add(p_core, r_core, v_core, ssim=False)
            metrics.add_ssim(p_data, r_data, valid)  # window centres: exactly this strip's rows
            if errors is not None:
                diff = np.abs(p_core.astype(np.float64) - r_core.astype(np.float64)).astype(np.float32)
                diff[:, ~v_core] = np.nan
                errors.write(diff, window=Window(0, row, width, rows))
            progress.update(0.1 + 0.9 * (row + rows) / height, f"row {row + rows} of {height}")
        result = metrics.result()
        if result["pixels"] == 0:
            raise Pix2PixError("No pixel is valid in both rasters (and inside the mask); nothing to evaluate.")
    result.update({
        "prediction": str(Path(prediction).absolute()), "reference": str(Path(reference).absolute()),
        "window": {"col_off": int(wr.col_off), "row_off": int(wr.row_off), "width": width, "height": height},
        "extent": format_bounds(Grid(ref.crs, window_transform(wr, ref.transform), width, height).bounds, ref.crs),
        "data_range": ranges,
    })
    if error_raster is not None:
        result["error_raster"] = str(Path(error_raster).absolute())
    if report is not None:
        write_report(result, report)
    progress.update(1.0, "done")
    return result


def write_report(result: dict[str, Any], report: str | Path) -> None:
    """Write ``result`` as the JSON report ``report`` (staged, then renamed) and record its path in ``result``.

    Non-finite numbers become ``null`` (:func:`finite`), so the file is strict JSON.
    """
    with staged_file(Path(report)) as staging:
        staging.write_text(json.dumps(finite(result), indent=2), encoding="utf-8")
    result["report"] = str(Path(report).absolute())


def finite(value: Any) -> Any:
    """JSON has no NaN/inf: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
