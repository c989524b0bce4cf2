"""The budget guide: it reads a validation curve through its noise, and says what to change."""

from __future__ import annotations

import pytest

from pix2pix_qgis.train.guide import budget_advice


def history(values: list[float | None]) -> list[dict]:
    return [{"epoch": epoch, "val_l1": value} for epoch, value in enumerate(values, start=1)]


def test_a_curve_still_falling_at_the_end_asks_for_more_epochs():
    [advice] = budget_advice(history([0.40, 0.36, 0.33, 0.31, 0.29, 0.28, 0.27, 0.25]), lr=2e-4)
    assert "still falling" in advice and "best epoch is 8 of 8" in advice and "more EPOCHS (e.g. 16)" in advice


def test_a_noisy_gan_curve_that_still_trends_down_is_read_by_its_medians():
    # Single epochs jump by 50 % (as short GAN runs do); the last quarter's median is still lower.
    curve = [0.45, 0.30, 0.42, 0.28, 0.40, 0.27, 0.35, 0.26, 0.33, 0.30, 0.24, 0.25]
    [advice] = budget_advice(history(curve), lr=2e-4)
    assert "still falling" in advice


def test_a_curve_that_rose_well_above_its_best_asks_for_a_lower_learning_rate():
    curve = [0.40, 0.30, 0.25, 0.24, 0.30, 0.34, 0.38, 0.40]
    [advice] = budget_advice(history(curve), lr=2e-4)
    assert "diverged or over-fitted" in advice and "epoch 4" in advice and "LR 0.0001" in advice
    assert "PATIENCE" in advice


@pytest.mark.parametrize("curve", [
    [0.40, 0.30, 0.26, 0.25, 0.25, 0.25, 0.25, 0.25],  # converged: flat at the end
    [0.40, 0.30, 0.26, 0.25, 0.27, 0.26, 0.25, 0.26],  # converged with noise
    [0.30, 0.25, 0.24],  # too short to read a trend
    [None, None, None, None, None],  # no validation chips
])
def test_a_converged_short_or_unvalidated_run_gets_no_advice(curve):
    assert budget_advice(history(curve), lr=2e-4) == []
