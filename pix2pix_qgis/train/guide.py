"""Reading a finished run's validation curve: was the budget too short, or did training diverge?

GAN validation L1 jumps from epoch to epoch (by ±20 % in the ablation runs of BENCHMARKS.md,
"Choosing the defaults"), so single epochs prove nothing. "Still falling" is a trend: the
least-squares line through the second half of the curve must fall by at least 5 % of its
level, with a slope at least twice its standard error. "Diverged" compares medians: the last
quarter's median against the best quarter's.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

MIN_EPOCHS = 4  # fewer validated epochs give no trend to read
STILL_FALLING = 0.05  # the trend line falls by 5 % of its level over the second half
T_STATISTIC = 2.0  # ... and its slope is at least twice its standard error
DIVERGED = 1.25  # the last quarter's median 25 % above the best quarter's


def trend(values: list[float]) -> tuple[float, float]:
    """Least-squares slope per epoch of ``values`` (one per epoch) and its t statistic (slope / standard error)."""
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, statistics.fmean(values)
    sxx = sum((x - mean_x) ** 2 for x in range(n))
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values)) / sxx
    residual = sum((y - mean_y - slope * (x - mean_x)) ** 2 for x, y in enumerate(values))
    if n < 3 or residual == 0:
        return slope, -math.inf if slope < 0 else math.inf if slope > 0 else 0.0
    return slope, slope / math.sqrt(residual / (n - 2) / sxx)


def budget_advice(history: list[dict[str, Any]], lr: float) -> list[str]:
    """What to change, in words, from the per-epoch ``val_l1`` of ``history`` (empty when all is well)."""
    curve = [(row["epoch"], row["val_l1"]) for row in history if row.get("val_l1") is not None]
    if len(curve) < MIN_EPOCHS:
        return []
    values = [value for _, value in curve]
    last_epoch = curve[-1][0]
    half = values[-max(MIN_EPOCHS, len(values) // 2):]
    slope, t = trend(half)
    drop = -slope * (len(half) - 1) / statistics.fmean(half)
    if drop >= STILL_FALLING and t <= -T_STATISTIC:
        return [
            f"Validation L1 was still falling at the end: over the last {len(half)} epochs its trend fell by "
            f"{drop * 100:.0f} %. The model would likely improve with more training: run again with more EPOCHS "
            f"(e.g. {2 * last_epoch}), or resume this run with more EPOCHS."
        ]
    width = max(2, len(values) // 4)
    windows = [statistics.median(values[max(0, end - width):end]) for end in range(len(values), 0, -width)]
    best = min(windows)
    if windows[0] > best * DIVERGED:
        best_end = curve[len(curve) - width * windows.index(best) - 1][0]
        return [
            f"Validation L1 rose from a median of {best:.4g} (the {width} epochs to epoch {best_end}) to "
            f"{windows[0]:.4g} over the last {width} epochs: training diverged or over-fitted; the package keeps "
            f"the best epoch. Lower the learning rate (e.g. LR {lr / 2:g}), train fewer EPOCHS (about {best_end}), "
            "or set PATIENCE to stop when validation stops improving."
        ]
    return []
