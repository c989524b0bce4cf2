"""Evaluate translation: metrics against numpy, strips equal whole-raster, grids, nodata, outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.evaluate.metrics import compute_metrics
from pix2pix_qgis.evaluate.rasters import evaluate_rasters

from ..builders import UTM_TRANSFORM, write_raster


def pair(tmp_path, rng, height=1100, width=90, dtype="uint8"):
    reference = rng.integers(20, 230, (2, height, width)).astype(dtype)
    noise = rng.normal(0, 6, reference.shape)
    prediction = np.clip(reference + noise + 3, 0, 255).astype(dtype)
    return (write_raster(tmp_path / "pred.tif", prediction), write_raster(tmp_path / "ref.tif", reference),
            prediction, reference)


def test_metrics_equal_numpy_and_a_whole_raster_computation(tmp_path, rng):
    pred_path, ref_path, prediction, reference = pair(tmp_path, rng)  # 1100 rows: three strips
    result = evaluate_rasters(pred_path, ref_path)
    err = prediction.astype(float) - reference.astype(float)
    assert result["pixels"] == 1100 * 90 and result["data_range"] == [255.0, 255.0]
    assert result["mae"] == pytest.approx(np.abs(err).mean())
    assert result["rmse"] == pytest.approx(np.sqrt((err**2).mean(axis=(1, 2))).mean())
    assert result["bias"] == pytest.approx(err.mean())
    whole = compute_metrics(prediction, reference, data_range=255.0)  # one pass, no strips
    assert result["ssim"] == pytest.approx(whole["ssim"], rel=1e-12)
    assert result["psnr"] == pytest.approx(whole["psnr"], rel=1e-12)
    for band, expected in zip(result["bands"], whole["bands"]):
        assert band["r2"] == pytest.approx(expected["r2"]) and band["ssim"] == pytest.approx(expected["ssim"])


def test_nodata_mask_and_extent_restrict_the_pixels(tmp_path, rng):
    reference = rng.integers(1, 200, (1, 100, 100)).astype("int16")
    prediction = reference + 5
    reference[0, :10] = -1
    pred_path = write_raster(tmp_path / "p.tif", prediction)
    ref_path = write_raster(tmp_path / "r.tif", reference, nodata=-1)
    result = evaluate_rasters(pred_path, ref_path, data_range=[100.0])
    assert result["pixels"] == 90 * 100 and result["mae"] == pytest.approx(5.0) and result["bias"] == 5.0
    x0, y0 = UTM_TRANSFORM @ (0, 50)
    x1, y1 = UTM_TRANSFORM @ (50, 0)
    clipped = evaluate_rasters(pred_path, ref_path, extent=(x0, y0, x1, y1))
    assert clipped["pixels"] == 40 * 50 and clipped["window"] == {"col_off": 0, "row_off": 0, "width": 50,
                                                                  "height": 50}
    polygon = {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
    mask = tmp_path / "mask.geojson"
    mask.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name",
                                "properties": {"name": "EPSG:32633"}},
                                "features": [{"type": "Feature", "properties": {}, "geometry": polygon}]}))
    assert evaluate_rasters(pred_path, ref_path, mask=mask)["pixels"] == 40 * 50


def test_sub_window_prediction_is_compared_on_its_overlap(tmp_path, rng):
    reference = rng.integers(0, 255, (1, 64, 64)).astype("uint8")
    ref_path = write_raster(tmp_path / "r.tif", reference)
    pred_path = write_raster(tmp_path / "p.tif", reference[:, 10:40, 5:25],
                             transform=UTM_TRANSFORM @ Affine.translation(5, 10))
    result = evaluate_rasters(pred_path, ref_path)
    assert result["pixels"] == 30 * 20 and result["mae"] == 0.0 and result["psnr"] == pytest.approx(200.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crs": "EPSG:4326"}, "different grids"),
        ({"transform": Affine(20.0, 0, 500_000, 0, -20.0, 5_000_000)}, "different grids"),
        ({"transform": UTM_TRANSFORM @ Affine.translation(0.5, 0)}, "not aligned"),
    ],
)
def test_mismatched_grids_are_refused(tmp_path, rng, kwargs, message):
    data = rng.integers(0, 255, (1, 32, 32)).astype("uint8")
    ref_path = write_raster(tmp_path / "r.tif", data)
    pred_path = write_raster(tmp_path / "p.tif", data, **kwargs)
    with pytest.raises(Pix2PixError, match=message):
        evaluate_rasters(pred_path, ref_path)


def test_band_count_mismatch_is_refused(tmp_path, rng):
    ref_path = write_raster(tmp_path / "r.tif", rng.integers(0, 255, (3, 16, 16)).astype("uint8"))
    pred_path = write_raster(tmp_path / "p.tif", rng.integers(0, 255, (1, 16, 16)).astype("uint8"))
    with pytest.raises(Pix2PixError, match=r"prediction has 1 band\(s\) and the reference 3"):
        evaluate_rasters(pred_path, ref_path)


def test_error_raster_and_reports_are_written(tmp_path, rng):
    pred_path, ref_path, prediction, reference = pair(tmp_path, rng, height=60, width=40)
    result = evaluate_rasters(pred_path, ref_path, error_raster=tmp_path / "err.tif", report=tmp_path / "m.json")
    with rasterio.open(tmp_path / "err.tif") as err, rasterio.open(ref_path) as ref:
        assert err.transform == ref.transform and err.crs == ref.crs and err.dtypes[0] == "float32"
        np.testing.assert_allclose(err.read(), np.abs(prediction.astype(float) - reference), rtol=1e-6)
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["mae"] == pytest.approx(result["mae"]) and len(report["bands"]) == 2
