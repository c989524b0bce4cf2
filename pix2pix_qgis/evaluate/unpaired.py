"""Evaluate a translation without an aligned reference: distributions against held-out target chips, and the cycle.

An unpaired model (CycleGAN) is usually applied where no truth exists, so its output is
judged by how well its pixel values match the target domain's, band by band: the 1-D
Wasserstein distance (earth mover's distance: the mean shift, in the target's units, that
turns one histogram into the other) between the prediction's valid pixels and the valid
pixels of the target domain's held-out chips, with each side's mean and standard deviation.
``wasserstein_relative`` divides it by the target's standard deviation, to compare bands
and datasets. Pixels are sampled (seeded, at most ``sample_pixels`` per band and side); the
measures are exact below that. Beside them:

- the **cycle-reconstruction error**: A translated to B and back (A→B→A) against A, with
  the usual metrics (:func:`cycle_error` for rasters, :func:`cycle_metrics` for arrays and a
  model's two directions as functions);
- where an aligned **reference** exists, the usual metrics against it
  (:func:`~.rasters.evaluate_rasters`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from ..contract.errors import Pix2PixError
from ..contract.tables import EVALUATE_UNPAIRED
from ..core.grid import open_raster, valid_mask
from ..core.paths import check_run_paths
from ..core.progress import Progress
from ..data.unpaired import Domain, open_unpaired
from .metrics import compute_metrics
from .rasters import STRIP, evaluate_rasters, write_report


def wasserstein_1d(u: np.ndarray, v: np.ndarray) -> float:
    """The 1-Wasserstein distance between the empirical distributions of ``u`` and ``v`` (1-D, any lengths).

    ∫ |F_u(x) − F_v(x)| dx over the pooled sorted values, in the values' units: for two
    samples of equal size it is the mean absolute difference of their sorted values. The
    same definition as ``scipy.stats.wasserstein_distance`` (not a dependency here).
    """
    u, v = np.sort(np.asarray(u, np.float64).ravel()), np.sort(np.asarray(v, np.float64).ravel())
    if u.size == 0 or v.size == 0:
        raise ValueError("both samples need at least one value")
    pooled = np.sort(np.concatenate([u, v]))
    widths = np.diff(pooled)
    cdf_u = np.searchsorted(u, pooled[:-1], side="right") / u.size
    cdf_v = np.searchsorted(v, pooled[:-1], side="right") / v.size
    return float(np.sum(np.abs(cdf_u - cdf_v) * widths))


def distribution_metrics(prediction: list[np.ndarray], target: list[np.ndarray]) -> dict[str, Any]:
    """Per band: Wasserstein distance, means and standard deviations of two samples (one 1-D array per band).

    Returns {"wasserstein", "wasserstein_relative"} (means over bands) and "bands" (per band:
    wasserstein, wasserstein_relative, prediction_mean, prediction_std, target_mean,
    target_std, mean_difference, std_ratio, prediction_pixels, target_pixels), in target units.
    """
    if len(prediction) != len(target):
        raise ValueError(f"{len(prediction)} prediction bands, {len(target)} target bands")
    bands = []
    for band, (p, t) in enumerate(zip(prediction, target), 1):
        if p.size == 0 or t.size == 0:
            where = "prediction" if p.size == 0 else "target chips"
            raise Pix2PixError(f"Band {band} has no valid pixel in the {where}; nothing to compare. Check its nodata "
                               "value, or the chips' split.")
        distance = wasserstein_1d(p, t)
        t_std, p_std = float(np.std(t)), float(np.std(p))
        bands.append({
            "band": band,
            "wasserstein": distance,
            "wasserstein_relative": distance / t_std if t_std > 0 else None,
            "prediction_mean": float(np.mean(p)), "prediction_std": p_std,
            "target_mean": float(np.mean(t)), "target_std": t_std,
            "mean_difference": float(np.mean(p) - np.mean(t)),
            "std_ratio": p_std / t_std if t_std > 0 else None,
            "prediction_pixels": int(p.size), "target_pixels": int(t.size),
        })
    relative = [b["wasserstein_relative"] for b in bands if b["wasserstein_relative"] is not None]
    return {"wasserstein": float(np.mean([b["wasserstein"] for b in bands])),
            "wasserstein_relative": float(np.mean(relative)) if relative else None, "bands": bands}


def _share(budget: int, pixels: int) -> float:
    """The probability to keep each pixel so that about 1.5 × ``budget`` + 100 of ``pixels`` are kept.

    Drawn on purpose above the budget, so that :func:`_keep` almost surely has ``budget`` to
    draw from when every pixel is valid (an exact count without a second pass).
    """
    return min(1.0, (1.5 * budget + 100) / max(1, pixels))


def _keep(values: list[np.ndarray], budget: int, rng: np.random.Generator) -> list[np.ndarray]:
    """At most ``budget`` values per band, drawn without replacement (the same pixels in every band)."""
    if not values or values[0].size <= budget:
        return values
    picked = np.sort(rng.choice(values[0].size, budget, replace=False))
    return [band[picked] for band in values]


def sample_raster(path: str | Path, budget: int, rng: np.random.Generator, progress: Progress,
                  role: str = "prediction") -> list[np.ndarray]:
    """Up to ``budget`` valid pixels per band of a raster (float64, raster units), read in strips.

    Each strip keeps each valid pixel with a fixed probability (:func:`_share` of width × height),
    so memory stays near ``budget`` whatever the raster's size; the rest is drawn down to ``budget``.
    """
    with open_raster(path, role) as src:
        share = _share(budget, src.width * src.height)
        parts: list[list[np.ndarray]] = [[] for _ in range(src.count)]
        for row in range(0, src.height, STRIP):
            progress.check_cancelled()
            window = Window(0, row, src.width, min(STRIP, src.height - row))
            data = src.read(window=window)
            keep = valid_mask(src, data, window=window)
            if share < 1.0:
                keep &= rng.random(keep.shape) < share
            for band in range(src.count):
                parts[band].append(data[band][keep].astype(np.float64))
            progress.update((row + window.height) / src.height, f"row {row + window.height} of {src.height}")
    return _keep([np.concatenate(p) for p in parts], budget, rng)


def sample_chips(domain: Domain, split: str, budget: int, rng: np.random.Generator,
                 progress: Progress) -> list[np.ndarray]:
    """Up to ``budget`` valid pixels per band of a domain's chips of ``split`` ("train", "validation", "all")."""
    names = domain.train + domain.validation if split == "all" else domain.names(split)
    if not names:
        raise Pix2PixError(f"Domain {domain.name} has no {split} chips. Choose another SPLIT (train or all), or "
                           "export with VALIDATION above 0.")
    share = _share(budget, len(names) * domain.tile_size**2)
    parts: list[list[np.ndarray]] = [[] for _ in range(domain.channels)]
    for i, name in enumerate(names, 1):
        progress.check_cancelled()
        data, keep = domain.read(name)
        if share < 1.0:
            keep &= rng.random(keep.shape) < share
        for band in range(domain.channels):
            parts[band].append(data[band][keep].astype(np.float64))
        progress.update(i / len(names), f"chip {i} of {len(names)}")
    return _keep([np.concatenate(p) for p in parts], budget, rng)


def cycle_metrics(original: np.ndarray, forward: Callable[[np.ndarray], np.ndarray],
                  backward: Callable[[np.ndarray], np.ndarray], valid: np.ndarray | None = None,
                  data_range: list[float] | float | None = None) -> dict[str, Any]:
    """The cycle-reconstruction error of arrays: metrics of ``backward(forward(original))`` against ``original``.

    ``original`` (C, H, W) or (B, C, H, W) in its raster's units; ``forward`` (e.g. a
    CycleGAN's A→B) and ``backward`` (B→A) take and return arrays in raster units of their
    domains. ``valid`` (H, W) or (B, H, W) bool limits the pixels; returns
    :func:`~.metrics.compute_metrics`'s dict (MAE, RMSE, bias, R², PSNR, SSIM per band).
    """
    reconstruction = np.asarray(backward(np.asarray(forward(original))))
    if reconstruction.shape != np.shape(original):
        raise ValueError(f"the reconstruction is {reconstruction.shape}, the original {np.shape(original)}")
    return compute_metrics(reconstruction, original, valid, data_range)


def cycle_error(original: str | Path, reconstruction: str | Path, data_range: list[float] | None = None,
                progress: Progress | None = None) -> dict[str, Any]:
    """The cycle-reconstruction error of rasters: ``reconstruction`` (A→B→A, on A's grid) against ``original`` (A)."""
    return evaluate_rasters(reconstruction, original, data_range=data_range, progress=progress)


def evaluate_unpaired(
    prediction: str | Path,
    chips: str | Path,
    domain: str = EVALUATE_UNPAIRED["DOMAIN"].default,
    split: str = EVALUATE_UNPAIRED["SPLIT"].default,
    sample_pixels: int = EVALUATE_UNPAIRED["SAMPLE_PIXELS"].default,
    reference: str | Path | None = None,
    original: str | Path | None = None,
    reconstruction: str | Path | None = None,
    data_range: list[float] | None = None,
    seed: int = EVALUATE_UNPAIRED["SEED"].default,
    report: str | Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Distribution measures of ``prediction`` against the ``domain`` chips of ``chips``, plus the optional ones.

    ``prediction`` is a translated raster in ``domain``'s units; ``chips`` an unpaired chips
    folder (ours or Esri's CycleGAN layout). With ``reference`` the usual metrics against it
    ("reference"); with ``original`` and ``reconstruction`` the cycle error ("cycle"). The
    result is also written as JSON to ``report``.
    """
    EVALUATE_UNPAIRED.check(domain=domain, split=split, sample_pixels=sample_pixels, data_range=data_range,
                            seed=seed)
    progress = progress or Progress()
    if (original is None) != (reconstruction is None):
        raise Pix2PixError("The cycle-reconstruction error needs both ORIGINAL (--original, the raster translated) "
                           "and RECONSTRUCTION (--reconstruction, it translated there and back). Give both, or "
                           "neither.")
    check_run_paths(rasters={"prediction": prediction, "reference": reference, "original": original,
                             "reconstruction": reconstruction}, inputs={"chips folder": chips},
                    files={"report": report})
    target = open_unpaired(chips).domain(domain)
    with open_raster(prediction, "prediction") as src:
        if src.count != target.channels:
            raise Pix2PixError(f"The prediction has {src.count} band(s) but domain {domain}'s chips have "
                               f"{target.channels}. Give the raster translated into domain {domain} (DOMAIN "
                               f"{'A' if domain == 'B' else 'B'} if it was translated the other way).")
    rng = np.random.default_rng(seed)
    predicted = sample_raster(prediction, sample_pixels, rng, progress.stage(0.0, 0.3))
    wanted = sample_chips(target, split, sample_pixels, rng, progress.stage(0.3, 0.6))
    result: dict[str, Any] = {
        "prediction": str(Path(prediction).absolute()), "chips": str(target.folder.parent.parent),
        "domain": domain, "split": split, **distribution_metrics(predicted, wanted),
    }
    if reference is not None:
        result["reference"] = evaluate_rasters(prediction, reference, data_range=data_range,
                                               progress=progress.stage(0.6, 0.8))
    if original is not None and reconstruction is not None:
        result["cycle"] = cycle_error(original, reconstruction, data_range, progress.stage(0.8, 1.0))
    if report is not None:
        write_report(result, report)
    progress.update(1.0, "done")
    return result
