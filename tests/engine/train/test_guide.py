"""The budget guide: it reads a validation curve through its noise, and says what to change."""

from __future__ import annotations

import pytest

from pix2pix_qgis.train.guide import budget_advice, trend

# Validation L1 of the ablation run R02-resize (BENCHMARKS.md, "Choosing the defaults"): flat, ±20 % noise.
REAL_NOISY_FLAT = [0.52618, 0.68096, 0.56156, 0.5634, 0.52677, 0.59569, 0.61156, 0.59185, 0.60539, 0.58054, 0.47446,
                   0.50808, 0.49811, 0.52955, 0.56997, 0.54954, 0.50588, 0.41002, 0.53021, 0.6147, 0.55308, 0.58983,
                   0.57425, 0.56242]


def history(values: list[float | None]) -> list[dict]:
    return [{"epoch": epoch, "val_l1": value} for epoch, value in enumerate(values, start=1)]


def test_trend_is_the_least_squares_slope_and_its_t_statistic():
    slope, t = trend([3.0, 2.0, 1.0])
    assert slope == pytest.approx(-1.0) and t == float("-inf")  # a perfect line: no standard error
    slope, t = trend([1.0, 3.0, 2.0, 4.0])
    assert slope == pytest.approx(0.8) and t == pytest.approx(0.8 / (1.8 / 2 / 5) ** 0.5)


def test_a_curve_still_falling_at_the_end_asks_for_more_epochs():
    [advice] = budget_advice(history([0.40, 0.36, 0.33, 0.31, 0.29, 0.28, 0.27, 0.25]), lr=2e-4)
    assert "still falling" in advice and "more EPOCHS (e.g. 16)" in advice


def test_a_noisy_curve_that_still_trends_down_is_read_by_its_trend():
    curve = [0.50, 0.38, 0.47, 0.36, 0.44, 0.34, 0.40, 0.31, 0.37, 0.29, 0.33, 0.26]
    [advice] = budget_advice(history(curve), lr=2e-4)
    assert "still falling" in advice and "last 6 epochs" in advice


def test_a_curve_that_rose_well_above_its_best_asks_for_a_lower_learning_rate():
    curve = [0.40, 0.30, 0.25, 0.24, 0.30, 0.34, 0.38, 0.40]
    [advice] = budget_advice(history(curve), lr=2e-4)
    assert "diverged or over-fitted" in advice and "(the 2 epochs to epoch 4)" in advice
    assert "LR 0.0001" in advice and "about 4" in advice and "PATIENCE" in advice


@pytest.mark.parametrize("curve", [
    [0.40, 0.30, 0.26, 0.25, 0.25, 0.25, 0.25, 0.25],  # converged: flat at the end
    [0.40, 0.30, 0.26, 0.25, 0.27, 0.26, 0.25, 0.26],  # converged with noise
    REAL_NOISY_FLAT,  # one lucky epoch (0.41) is no best to have diverged from
    [0.30, 0.25, 0.24],  # too short to read a trend
    [None, None, None, None, None],  # no validation chips
])
def test_a_converged_short_noisy_or_unvalidated_run_gets_no_advice(curve):
    assert budget_advice(history(curve), lr=2e-4) == []
