"""Metrics: masked MAE, RMSE, R², PSNR, SSIM against hand values; the checkerboard measure; the linear baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pix2pix_qgis.evaluate.baseline import apply_linear, fit_linear
from pix2pix_qgis.evaluate.metrics import (
    PSNR_CAP_DB,
    MetricAccumulator,
    checkerboard_share,
    compute_metrics,
    default_data_range,
    is_better,
)


def naive_ssim(x: np.ndarray, y: np.ndarray, valid: np.ndarray, data_range: float) -> float:
    """SSIM straight from its definition, window by window (11×11 Gaussian, σ 1.5)."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            if not valid[i:i + 11, j:j + 11].all():
                continue
            px, py = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cov = (w * (px - mx) * (py - my)).sum()
            values.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    target = rng.uniform(0, 100, (2, 24, 24))
    prediction = target + rng.normal(0, 5, target.shape)
    return prediction, target


def test_a_perfect_prediction_scores_perfectly(pair):
    _, target = pair
    result = compute_metrics(target, target, data_range=100)
    assert result["mae"] == result["rmse"] == result["bias"] == 0
    assert result["r2"] == 1.0 and result["psnr"] == PSNR_CAP_DB
    assert result["ssim"] == pytest.approx(1.0)


def test_a_constant_offset_gives_known_values(pair):
    _, target = pair
    result = compute_metrics(target + 2.0, target, data_range=[100, 50])
    assert (result["mae"], result["rmse"], result["bias"]) == pytest.approx((2, 2, 2))
    first, second = result["bands"]
    assert first["psnr"] == pytest.approx(10 * math.log10(100**2 / 4))
    assert second["psnr"] == pytest.approx(10 * math.log10(50**2 / 4))
    assert result["psnr"] == pytest.approx((first["psnr"] + second["psnr"]) / 2)
    assert first["data_range"] == 100 and second["data_range"] == 50


def test_errors_rmse_and_r2_match_numpy(pair):
    prediction, target = pair
    result = compute_metrics(prediction, target, data_range=100)
    for band, values in enumerate(result["bands"]):
        err = prediction[band] - target[band]
        assert values["mae"] == pytest.approx(np.abs(err).mean())
        assert values["rmse"] == pytest.approx(np.sqrt((err**2).mean()))
        assert values["bias"] == pytest.approx(err.mean())
        assert values["r2"] == pytest.approx(1 - (err**2).sum() / ((target[band] - target[band].mean()) ** 2).sum())


def test_ssim_matches_the_definition_with_and_without_a_mask(pair):
    prediction, target = pair
    valid = np.ones((24, 24), bool)
    valid[2:5, 15:18] = False
    for mask in (None, valid):
        result = compute_metrics(prediction, target, valid=mask, data_range=100)
        check = np.ones((24, 24), bool) if mask is None else mask
        for band in range(2):
            expected = naive_ssim(prediction[band], target[band], check, 100)
            assert result["bands"][band]["ssim"] == pytest.approx(expected, rel=1e-9)


def test_masked_pixels_never_count(pair):
    prediction, target = pair
    valid = np.ones((24, 24), bool)
    valid[:6, :] = False
    base = compute_metrics(prediction, target, valid, data_range=100)
    garbage_p, garbage_t = prediction.copy(), target.copy()
    garbage_p[:, ~valid] = 1e6
    garbage_t[:, ~valid] = np.nan
    assert compute_metrics(garbage_p, garbage_t, valid, data_range=100) == base
    changed = prediction.copy()
    changed[:, 10, 10] += 30  # a valid pixel does count
    assert compute_metrics(changed, target, valid, data_range=100)["mae"] > base["mae"]
    assert base["pixels"] == valid.sum()


def test_pooling_batches_equals_one_pass_over_everything(pair):
    prediction, target = pair
    rng = np.random.default_rng(1)
    other_t = rng.uniform(1000, 1100, (2, 24, 24))  # a large offset stresses the R² variance merge
    other_p = other_t + rng.normal(0, 1, other_t.shape)
    accumulator = MetricAccumulator([100, 100])
    accumulator.add(torch.from_numpy(prediction), torch.from_numpy(target))
    accumulator.add(other_p[None], other_t[None], np.ones((1, 24, 24), bool))
    pooled = accumulator.result()
    together = compute_metrics(np.stack([prediction, other_p]), np.stack([target, other_t]), data_range=100)
    for key in ("mae", "rmse", "bias", "r2", "psnr", "ssim"):
        assert pooled[key] == pytest.approx(together[key], rel=1e-9)


def test_the_default_data_range_is_the_dtype_range_or_the_valid_span():
    assert default_data_range(np.zeros((3, 4, 4), "uint8")) == [255.0] * 3
    assert default_data_range(np.zeros((1, 4, 4), "int16")) == [65535.0]
    data = np.array([[[1.0, 5.0], [3.0, 900.0]]], "float32")
    assert default_data_range(data, np.array([[True, True], [True, False]])) == [4.0]
    result = compute_metrics(data + 1, data, np.array([[True, True], [True, False]]))
    assert result["bands"][0]["data_range"] == 4.0


def test_a_band_without_valid_pixels_reports_none_and_does_not_poison_the_mean():
    target = np.zeros((1, 12, 12))
    result = compute_metrics(target, target, np.zeros((12, 12), bool), data_range=1)
    assert result["mae"] is None and result["bands"][0]["psnr"] is None


def test_better_means_lower_errors_and_higher_similarity():
    assert is_better("l1", 0.1, 0.2) and not is_better("l1", 0.3, 0.2)
    assert is_better("psnr", 30.0, 20.0) and is_better("ssim", 0.9, 0.8) and not is_better("rmse", 2.0, 1.0)
    assert is_better("mae", 5.0, None) and not is_better("mae", None, 5.0) and not is_better("mae", float("nan"), 5.0)


def test_checkerboard_share_is_the_energy_at_the_two_pixel_period():
    rows, cols = np.indices((64, 96))
    checker = np.where((rows + cols) % 2, 1.0, -1.0)[None]
    stripes = np.where(cols % 2, 1.0, -1.0)[None]
    assert checkerboard_share(checker) == pytest.approx(1.0)
    assert checkerboard_share(stripes) == pytest.approx(1.0)
    ramp = (rows + 2 * cols)[None].astype(float)
    assert checkerboard_share(ramp) < 0.01
    mixed = np.concatenate([ramp, ramp + 5 * checker])  # a faint checkerboard on one band of a smooth image
    assert checkerboard_share(ramp) < checkerboard_share(mixed) < 0.5
    assert checkerboard_share(np.full((3, 16, 16), 7.0)) == 0.0


def test_checkerboard_share_ignores_invalid_pixels_and_crops_odd_sides():
    rows, cols = np.indices((33, 33))
    checker = np.where((rows + cols) % 2, 1.0, -1.0)[None]
    noisy = checker.copy()
    valid = np.ones((33, 33), bool)
    valid[:5] = False
    noisy[:, :5] = 1000.0  # fill values of nodata pixels
    assert checkerboard_share(noisy, valid) == pytest.approx(checkerboard_share(checker[:, 5:]), abs=0.1)


def test_the_linear_baseline_recovers_a_linear_map_and_fits_only_valid_pixels():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (3, 20, 30))
    coefficients = np.array([[0.5, -1.0], [0.2, 0.0], [0.0, 2.0], [10.0, -3.0]])  # (3 bands + 1, 2 bands)
    b = np.einsum("chw,cd->dhw", a, coefficients[:3]) + coefficients[3][:, None, None]
    assert np.allclose(fit_linear(a, b), coefficients)
    assert np.allclose(apply_linear(fit_linear(a, b), a), b)
    valid = np.ones((20, 30), bool)
    valid[:4] = False
    spoiled = b.copy()
    spoiled[:, :4] = -9999.0
    assert np.allclose(fit_linear(a, spoiled, valid), coefficients)
    assert not np.allclose(fit_linear(a, spoiled), coefficients)
