"""Reading a finished run's validation curve: was the budget too short, or did training diverge?

GAN validation L1 jumps from epoch to epoch (BENCHMARKS.md, "Training quality on real
data"), so single epochs prove nothing: the rules compare the median of the last quarter of
the run with the quarter before it and with the best epoch. Thresholds were checked against
the ablation runs in BENCHMARKS.md ("Choosing the defaults"), where a longer budget did help
the runs the first rule flags.
"""

from __future__ import annotations

import statistics
from typing import Any

MIN_EPOCHS = 4  # fewer validated epochs give no trend to read
STILL_FALLING = 0.03  # the last quarter's median at least 3 % below the quarter before it
DIVERGED = 1.25  # the last quarter's median 25 % above the best epoch


def budget_advice(history: list[dict[str, Any]], lr: float) -> list[str]:
    """What to change, in words, from the per-epoch ``val_l1`` of ``history`` (empty when all is well)."""
    curve = [(row["epoch"], row["val_l1"]) for row in history if row.get("val_l1") is not None]
    if len(curve) < MIN_EPOCHS:
        return []
    window = max(2, len(curve) // 4)
    values = [value for _, value in curve]
    last = statistics.median(values[-window:])
    before = statistics.median(values[-2 * window:-window])
    best_epoch, best = min(curve, key=lambda point: point[1])
    last_epoch = curve[-1][0]
    recent = best_epoch > curve[-window - 1][0]
    if recent and last < before * (1 - STILL_FALLING):
        return [
            f"Validation L1 was still falling at the end: the median of the last {window} epochs is "
            f"{(1 - last / before) * 100:.0f} % below the {window} before, and the best epoch is {best_epoch} of "
            f"{last_epoch}. The model would likely improve with more training: run again with more EPOCHS "
            f"(e.g. {2 * last_epoch}), or resume this run with more EPOCHS."
        ]
    if not recent and last > best * DIVERGED:
        return [
            f"Validation L1 rose from its best, {best:.4g} at epoch {best_epoch}, to a median of {last:.4g} over the "
            f"last {window} epochs: training diverged or over-fitted, and the package keeps epoch {best_epoch}. "
            f"Lower the learning rate (e.g. LR {lr / 2:g}), train fewer EPOCHS (about {best_epoch}), or set "
            "PATIENCE to stop when validation stops improving."
        ]
    return []
