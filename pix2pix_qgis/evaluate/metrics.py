"""Masked image metrics in the target's own units: MAE, RMSE, bias, R², PSNR and SSIM per band.

Nodata pixels never count: every metric takes a validity mask. Errors are pooled over
all valid pixels of everything added (not averaged per chip), so a validation set and a
whole raster processed in blocks give the same numbers. The summary's "mean" values are
the plain mean of the per-band values.

PSNR and SSIM need a data range L per band. Training passes the target band's p01..p99
span (the range the model can represent); :func:`compute_metrics` defaults to the dtype's
full range for integer targets (255 for uint8, the usual convention) and to the valid
target's max − min for float targets. The range used is reported with the metrics.
PSNR = 10·log10(L² / MSE), capped at 200 dB for an exact match. SSIM is the standard
Gaussian-window SSIM (11×11, σ 1.5, C1 = (0.01·L)², C2 = (0.03·L)²) averaged over the
window positions whose whole window is valid, so nodata values never enter it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
PSNR_CAP_DB = 200.0
NAMES = ("mae", "rmse", "bias", "r2", "psnr", "ssim")
HIGHER_IS_BETTER = {"mae": False, "rmse": False, "bias": False, "r2": True, "psnr": True, "ssim": True, "l1": False}


def _as_tensor(data: Any) -> torch.Tensor:
    return data if isinstance(data, torch.Tensor) else torch.from_numpy(np.asarray(data))


def _batched(prediction: Any, target: Any, valid: Any | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, C, H, W) float64 prediction and target plus a (B, 1, H, W) bool mask."""
    pred = _as_tensor(prediction).double()
    true = _as_tensor(target).double()
    if pred.dim() == 3:
        pred, true = pred[None], true[None]
    if pred.shape != true.shape or pred.dim() != 4:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(true.shape)} must both be (B, C, H, W)")
    if valid is None:
        mask = torch.ones((pred.shape[0], 1, *pred.shape[2:]), dtype=torch.bool, device=pred.device)
    else:
        mask = _as_tensor(valid).to(pred.device).bool()
        while mask.dim() < 4:
            mask = mask.unsqueeze(0 if mask.dim() == 2 else 1)
        mask = mask.expand(pred.shape[0], 1, *pred.shape[2:])
    mask = mask & torch.isfinite(pred).all(1, keepdim=True) & torch.isfinite(true).all(1, keepdim=True)
    return torch.where(mask, pred, 0.0), torch.where(mask, true, 0.0), mask


def _gaussian_kernel(device: torch.device) -> torch.Tensor:
    """The 1-D Gaussian (sums to 1); the 2-D window is its outer product, applied separably."""
    coords = torch.arange(SSIM_WINDOW, dtype=torch.float64, device=device) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-(coords**2) / (2 * SSIM_SIGMA**2))
    return g / g.sum()


def ssim_sums(pred: torch.Tensor, true: torch.Tensor, mask: torch.Tensor, data_range: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per band: the sum of SSIM over fully valid window positions, and their count.

    ``pred``/``true`` (B, C, H, W) float64, ``mask`` (B, 1, H, W) bool, ``data_range`` (C,).
    """
    b, c, h, w = pred.shape
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        zeros = torch.zeros(c, dtype=torch.float64, device=pred.device)
        return zeros, zeros.clone()
    out_h, out_w = h - SSIM_WINDOW + 1, w - SSIM_WINDOW + 1
    full = F.max_pool2d((~mask).double(), SSIM_WINDOW, stride=1) == 0  # (B, 1, h', w'): no invalid pixel
    kernel = _gaussian_kernel(pred.device)
    # x, y, x², y², xy blurred in one separable pass (5× cheaper than the 11×11 window, same result)
    maps = torch.stack([pred, true, pred * pred, true * true, pred * true]).reshape(5 * b * c, 1, h, w)
    blurred = F.conv2d(F.conv2d(maps, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
    mu_x, mu_y, xx, yy, xy = blurred.reshape(5, b, c, out_h, out_w)
    sxx, syy, sxy = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1 = ((0.01 * data_range) ** 2).view(1, c, 1, 1)
    c2 = ((0.03 * data_range) ** 2).view(1, c, 1, 1)
    ssim = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    full = full.expand_as(ssim)
    return torch.where(full, ssim, 0.0).sum((0, 2, 3)), full.sum((0, 2, 3)).double()


class MetricAccumulator:
    """Pools masked errors band by band over any number of (B, C, H, W) batches or (C, H, W) arrays.

    ``data_range`` is L per band in target units (see the module docstring).
    """

    def __init__(self, data_range: Sequence[float]) -> None:
        self.data_range = [float(v) for v in data_range]
        bands = len(self.data_range)
        self._n = np.zeros(bands)
        self._abs = np.zeros(bands)
        self._sq = np.zeros(bands)
        self._err = np.zeros(bands)
        self._mean_t = np.zeros(bands)
        self._m2_t = np.zeros(bands)
        self._ssim = np.zeros(bands)
        self._ssim_n = np.zeros(bands)

    def add(self, prediction: Any, target: Any, valid: Any | None = None, ssim: bool = True) -> None:
        """Add one batch: prediction and target in target units, ``valid`` (B, H, W) / (H, W) or None.

        ``ssim=False`` skips SSIM, for callers that feed SSIM separately with :meth:`add_ssim`
        (whole-raster evaluation reads SSIM's windows with a halo around each strip).
        """
        pred, true, mask = _batched(prediction, target, valid)
        if pred.shape[1] != len(self.data_range):
            raise ValueError(f"{pred.shape[1]} bands given, {len(self.data_range)} data ranges")
        weight = mask.double()
        n = weight.sum((0, 2, 3)).expand(pred.shape[1])
        err = pred - true
        self._abs += (err.abs() * weight).sum((0, 2, 3)).cpu().numpy()
        self._sq += (err**2 * weight).sum((0, 2, 3)).cpu().numpy()
        self._err += (err * weight).sum((0, 2, 3)).cpu().numpy()
        n_np = n.cpu().numpy()
        safe = np.maximum(n_np, 1)
        mean_b = (true * weight).sum((0, 2, 3)).cpu().numpy() / safe
        m2_b = (((true - torch.as_tensor(mean_b, device=true.device).view(1, -1, 1, 1)) ** 2) * weight).sum(
            (0, 2, 3)).cpu().numpy()
        total = self._n + n_np  # Chan's merge keeps R²'s variance exact for large offsets
        delta = mean_b - self._mean_t
        self._m2_t += m2_b + delta**2 * self._n * n_np / np.maximum(total, 1)
        self._mean_t += delta * n_np / np.maximum(total, 1)
        self._n = total
        if ssim:
            self._add_ssim(pred, true, mask)

    def add_ssim(self, prediction: Any, target: Any, valid: Any | None = None) -> None:
        """Add only SSIM window sums (window positions whose whole 11×11 window is valid)."""
        self._add_ssim(*_batched(prediction, target, valid))

    def _add_ssim(self, pred: torch.Tensor, true: torch.Tensor, mask: torch.Tensor) -> None:
        data_range = torch.as_tensor(self.data_range, dtype=torch.float64, device=pred.device)
        ssim_sum, ssim_n = ssim_sums(pred, true, mask, data_range)
        self._ssim += ssim_sum.cpu().numpy()
        self._ssim_n += ssim_n.cpu().numpy()

    def result(self) -> dict[str, Any]:
        """{"mae", "rmse", "bias", "r2", "psnr", "ssim"} (mean over bands), "bands" (per band), "pixels"."""
        bands: list[dict[str, Any]] = []
        for i, data_range in enumerate(self.data_range):
            n = self._n[i]
            if n == 0:
                bands.append({"band": i + 1, **{name: None for name in NAMES}, "data_range": data_range})
                continue
            mse = self._sq[i] / n
            floor = (data_range * 10 ** (-PSNR_CAP_DB / 20)) ** 2
            psnr = 10 * math.log10(data_range**2 / max(mse, floor)) if data_range > 0 else None
            bands.append({
                "band": i + 1,
                "mae": self._abs[i] / n,
                "rmse": math.sqrt(mse),
                "bias": self._err[i] / n,
                "r2": 1.0 - self._sq[i] / self._m2_t[i] if self._m2_t[i] > 0 else None,
                "psnr": psnr,
                "ssim": self._ssim[i] / self._ssim_n[i] if self._ssim_n[i] > 0 else None,
                "data_range": data_range,
            })
        summary: dict[str, Any] = {}
        for name in NAMES:
            values = [band[name] for band in bands if band[name] is not None]
            summary[name] = float(np.mean(values)) if values else None
        summary["bands"] = [{k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in band.items()}
                            for band in bands]
        summary["pixels"] = int(self._n.max()) if len(self._n) else 0
        return summary


def default_data_range(target: np.ndarray, valid: np.ndarray | None = None) -> list[float]:
    """L per band: the dtype's range for integer targets, else the valid target's max − min."""
    target = np.asarray(target)
    bands = target.shape[-3]
    if np.issubdtype(target.dtype, np.integer):
        info = np.iinfo(target.dtype)
        return [float(info.max) - float(info.min)] * bands
    _, true, mask = _batched(target, target, valid)
    ranges = []
    for band in range(bands):
        values = true[:, band][mask[:, 0]]
        ranges.append(float(values.max() - values.min()) if values.numel() else 0.0)
    return ranges


def compute_metrics(
    prediction: np.ndarray,
    target: np.ndarray,
    valid: np.ndarray | None = None,
    data_range: Sequence[float] | float | None = None,
) -> dict[str, Any]:
    """Metrics of one (C, H, W) or (B, C, H, W) prediction against its target, both in target units.

    ``valid`` is a bool mask (H, W) or (B, H, W); non-finite values are excluded too.
    ``data_range``: L per band (or one for all); None picks :func:`default_data_range`.
    """
    target = np.asarray(target)
    bands = target.shape[-3]
    ranges: Sequence[float]
    if data_range is None:
        ranges = default_data_range(target, valid)
    elif isinstance(data_range, (int, float, np.number)):
        ranges = [float(data_range)] * bands
    else:
        ranges = data_range
    accumulator = MetricAccumulator(ranges)
    accumulator.add(np.asarray(prediction), target, valid)
    return accumulator.result()


def is_better(metric: str, value: float | None, best: float | None) -> bool:
    """Whether ``value`` of ``metric`` beats ``best`` (None never wins; anything beats None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value > best if HIGHER_IS_BETTER[metric] else value < best


def checkerboard_share(image: np.ndarray, valid: np.ndarray | None = None) -> float:
    """The share of an image's spectral energy at the 2-pixel period: the checkerboard's signature.

    ``image`` (C, H, W). Each band has its mean (over ``valid`` pixels; invalid ones are set
    to it) removed; the energy at the Nyquist frequency along rows or columns (the FFT's
    row H/2 and column W/2) is divided by all the energy, summed over bands. A stride-2
    transposed convolution that paints a checkerboard raises it; natural imagery has
    little (compare with the target's own share). Odd sides are cropped by one pixel.
    """
    data = np.asarray(image, dtype=np.float64)
    height, width = data.shape[-2] // 2 * 2, data.shape[-1] // 2 * 2
    data = data[:, :height, :width]
    mask = np.ones((height, width), bool) if valid is None else np.asarray(valid, bool)[:height, :width]
    centred = np.stack([np.where(mask, band - band[mask].mean(), 0.0) for band in data])
    power = np.abs(np.fft.fft2(centred)) ** 2
    nyquist = power[:, height // 2, :].sum() + power[:, :, width // 2].sum() - power[:, height // 2, width // 2].sum()
    total = power.sum()
    return float(nyquist / total) if total > 0 else 0.0
