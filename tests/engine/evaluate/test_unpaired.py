"""Unpaired evaluation: the Wasserstein distance on hand-checkable cases, distributions against held-out chips,
the cycle error (rasters and functions), the reference metrics, the command line and hostile inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from affine import Affine

from pix2pix_qgis import Pix2PixError, UnpairedSpec, export_unpaired
from pix2pix_qgis.evaluate.unpaired import (
    cycle_metrics,
    distribution_metrics,
    evaluate_unpaired,
    wasserstein_1d,
)

PATTERN = np.arange(1024, dtype="float32").reshape(32, 32)  # every 32-px chip holds each of 0 … 1023 once
UNIFORM_STD = float(np.sqrt((1024**2 - 1) / 12))  # of the integers 0 … 1023


@pytest.mark.parametrize(
    ("u", "v", "distance"),
    [
        ([0, 1, 3], [5, 6, 8], 5.0),  # a shift moves every value by 5
        ([0, 0, 0, 4], [1, 1], 1.5),  # ¾ of the mass moves 1, ¼ moves 3
        ([1, 2, 3, 4], [4, 3, 2, 1], 0.0),  # the order of the pixels does not matter
        ([0, 10], [5], 5.0),
        ([2.5], [2.5, 2.5, 2.5], 0.0),
    ],
)
def test_wasserstein_distance_on_hand_checked_samples(u, v, distance):
    assert wasserstein_1d(np.array(u, float), np.array(v, float)) == pytest.approx(distance, abs=1e-12)
    assert wasserstein_1d(np.array(v, float), np.array(u, float)) == pytest.approx(distance, abs=1e-12)


def test_distribution_metrics_per_band():
    target = [np.arange(1024.0), np.array([0.0, 2.0])]
    prediction = [np.arange(1024.0) + 7, np.array([1.0, 1.0, 1.0])]
    result = distribution_metrics(prediction, target)
    first, second = result["bands"]
    assert first["wasserstein"] == pytest.approx(7.0) and first["mean_difference"] == pytest.approx(7.0)
    assert first["target_std"] == pytest.approx(UNIFORM_STD) and first["std_ratio"] == pytest.approx(1.0)
    assert first["wasserstein_relative"] == pytest.approx(7.0 / UNIFORM_STD)
    assert second["wasserstein"] == pytest.approx(1.0) and second["prediction_std"] == 0.0
    assert second["std_ratio"] == 0.0 and (second["prediction_pixels"], second["target_pixels"]) == (3, 2)
    assert result["wasserstein"] == pytest.approx(4.0)
    with pytest.raises(Pix2PixError, match="Band 2 has no valid pixel in the prediction"):
        distribution_metrics([np.ones(3), np.empty(0)], target)


def test_cycle_metrics_of_a_models_two_directions_as_functions(rng):
    original = rng.integers(0, 255, (2, 3, 16, 16)).astype("float64")  # (B, C, H, W) in A's units

    def forward(a):
        return a * 2.0 + 1.0  # A → B

    exact = cycle_metrics(original, forward, lambda b: (b - 1.0) / 2.0, data_range=255.0)
    assert exact["mae"] == pytest.approx(0.0, abs=1e-12) and exact["psnr"] == pytest.approx(200.0)
    off = cycle_metrics(original, forward, lambda b: (b - 1.0) / 2.0 + 0.5, data_range=255.0)
    assert off["mae"] == pytest.approx(0.5) and off["bias"] == pytest.approx(0.5) and off["rmse"] == pytest.approx(0.5)
    valid = np.zeros((2, 16, 16), bool)
    valid[:, :8] = True
    assert cycle_metrics(original, forward, lambda b: (b - 1) / 2, valid)["pixels"] == 2 * 8 * 16
    with pytest.raises(ValueError, match="reconstruction is"):
        cycle_metrics(original, forward, lambda b: b[:, :1])


@pytest.fixture
def world(make_raster, tmp_path):
    """B: 1-band float32, each 32-px chip 0 … 1023 once; an unpaired export; a prediction = B's values + 7."""
    a = np.full((1, 128, 128), 9, "uint8")
    b = np.tile(PATTERN, (4, 6))[None]  # 128×192: 4×6 chips at stride 32
    path_a = make_raster("a.tif", a)
    path_b = make_raster("b.tif", b, crs="EPSG:4326", transform=Affine(0.001, 0, 10.0, 0, -0.001, 50.0))
    export_unpaired(path_a, path_b, tmp_path / "chips",
                    UnpairedSpec(tile_size=32, stride=32, validation=0.25, cell_size_b=0.001))
    prediction = make_raster("prediction.tif", np.tile(PATTERN + 7, (2, 2))[None], nodata=-1.0)
    return tmp_path / "chips", prediction


def test_a_shifted_prediction_is_seven_units_from_the_held_out_chips(world, make_raster, tmp_path):
    chips, prediction = world
    result = evaluate_unpaired(prediction, chips, sample_pixels=10**6, report=tmp_path / "r.json")
    (band,) = result["bands"]
    manifest = json.loads((chips / "chips.json").read_text())
    held_out = sum(c["split"] == "validation" for c in manifest["b"]["chips"])
    assert held_out >= 1 and band["target_pixels"] == held_out * 1024 and band["prediction_pixels"] == 64 * 64
    assert band["wasserstein"] == pytest.approx(7.0, abs=1e-9) and result["wasserstein"] == band["wasserstein"]
    assert band["target_mean"] == pytest.approx(511.5) and band["prediction_mean"] == pytest.approx(518.5)
    assert band["prediction_std"] == pytest.approx(UNIFORM_STD) and band["target_std"] == pytest.approx(UNIFORM_STD)
    assert json.loads((tmp_path / "r.json").read_text())["bands"][0]["wasserstein"] == pytest.approx(7.0)
    # A sample of 1,000 pixels per side estimates it (seeded: the same number twice).
    sampled = evaluate_unpaired(prediction, chips, sample_pixels=1000, seed=3)
    assert sampled["bands"][0]["prediction_pixels"] == sampled["bands"][0]["target_pixels"] == 1000
    assert sampled["wasserstein"] == pytest.approx(7.0, abs=40.0)
    assert evaluate_unpaired(prediction, chips, sample_pixels=1000, seed=3)["wasserstein"] == sampled["wasserstein"]
    # Nodata pixels of the prediction do not count.
    holes = np.tile(PATTERN + 7, (2, 2))[None]
    holes[:, :32] = -1.0
    result = evaluate_unpaired(make_raster("holes.tif", holes, nodata=-1.0), chips, split="all")
    assert result["bands"][0]["prediction_pixels"] == 2 * 1024 and result["wasserstein"] == pytest.approx(7.0)


def test_reference_metrics_and_the_cycle_error_of_rasters(world, make_raster):
    chips, prediction = world
    reference = make_raster("reference.tif", np.tile(PATTERN, (2, 2))[None])
    original = make_raster("original.tif", np.full((2, 40, 40), 100, "uint8"))
    reconstruction = make_raster("back.tif", np.full((2, 40, 40), 98, "uint8"))
    result = evaluate_unpaired(prediction, chips, reference=reference, original=original,
                               reconstruction=reconstruction)
    assert result["reference"]["mae"] == pytest.approx(7.0) and result["reference"]["bias"] == pytest.approx(7.0)
    assert result["cycle"]["mae"] == pytest.approx(2.0) and result["cycle"]["bias"] == pytest.approx(-2.0)
    assert result["cycle"]["data_range"] == [255.0, 255.0] and result["cycle"]["pixels"] == 40 * 40


def test_hostile_inputs_are_refused_with_the_fix(world, make_raster, tmp_path):
    chips, prediction = world
    three = make_raster("three.tif", np.zeros((3, 32, 32), "uint8"))
    with pytest.raises(Pix2PixError, match=r"prediction has 3 band\(s\) but domain B's chips have 1.*DOMAIN A"):
        evaluate_unpaired(three, chips)
    with pytest.raises(Pix2PixError, match="needs both ORIGINAL"):
        evaluate_unpaired(prediction, chips, original=prediction)
    with pytest.raises(Pix2PixError, match=r"Pixels sampled per band 0 is invalid \(SAMPLE_PIXELS"):
        evaluate_unpaired(prediction, chips, sample_pixels=0)
    with pytest.raises(Pix2PixError, match=r"SAMPLE_PIXELS.* from 100 to 100000000"):
        evaluate_unpaired(prediction, chips, sample_pixels=10**9)
    with pytest.raises(Pix2PixError, match=r"Target domain 'C' is unknown"):
        evaluate_unpaired(prediction, chips, domain="C")
    with pytest.raises(Pix2PixError, match="report"):
        evaluate_unpaired(prediction, chips, report=prediction)
    with pytest.raises(Pix2PixError, match="not an unpaired chips folder"):
        evaluate_unpaired(prediction, tmp_path)
    before = prediction.read_bytes()
    export_unpaired(tmp_path / "a.tif", tmp_path / "b.tif", tmp_path / "none",
                    UnpairedSpec(tile_size=32, stride=32, validation=0, cell_size_b=0.001))
    with pytest.raises(Pix2PixError, match=r"Domain B has no validation chips\. Choose another SPLIT"):
        evaluate_unpaired(prediction, tmp_path / "none")
    assert prediction.read_bytes() == before


def test_the_command_line_writes_json_and_html_and_exits_2_on_bad_input(world, tmp_path):
    chips, prediction = world

    def run(*args):
        return subprocess.run([sys.executable, "-m", "pix2pix_qgis", "evaluate-unpaired", *map(str, args)],
                              capture_output=True, text=True, timeout=120)

    done = run(prediction, chips, "--report", tmp_path / "m.json", "--html", tmp_path / "m.html", "--progress",
               "json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[-1]["type"] == "result" and lines[-1]["result"]["wasserstein"] == pytest.approx(7.0)
    assert json.loads((tmp_path / "m.json").read_text())["domain"] == "B"
    assert "Unpaired evaluation" in (tmp_path / "m.html").read_text()
    bad = run(prediction, chips, "--split", "everything", "--progress", "none")
    assert bad.returncode == 2 and "--split" in bad.stderr and "Traceback" not in bad.stderr
    same = run(prediction, chips, "--html", prediction, "--progress", "none")
    assert same.returncode == 2 and "prediction.tif" in same.stderr
