"""pix2pix:exportchips through processing.run in real QGIS, with the engine as a subprocess."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from .paths import ENGINE_PYTHON
from .processing_runs import recording_feedback
from .rasters import read_raster

_KEEP_ALIVE: list = []


def run_alg(parameters: dict, feedback=None) -> dict:
    import processing
    from qgis.core import QgsProcessingFeedback

    return processing.run("pix2pix:exportchips", parameters, feedback=feedback or QgsProcessingFeedback())


def test_export_writes_exact_georeferenced_chips_and_declares_outputs(qgis_app, make_raster, tmp_path, rng):
    a = rng.integers(0, 1000, (2, 96, 128)).astype("uint16")
    b = rng.random((1, 96, 128)).astype("float32")
    feedback = recording_feedback()
    result = run_alg({"INPUT": str(make_raster("a.tif", a)), "INPUT2": str(make_raster("b.tif", b)),
                      "TILE_SIZE": 32, "STRIDE": 32, "VALIDATION": 0.25, "OUTPUT": str(tmp_path / "chips")},
                     feedback)
    manifest = json.loads(Path(result["MANIFEST"]).read_text())
    assert result["OUTPUT"] == str(tmp_path / "chips")
    assert result["CHIP_COUNT"] == len(manifest["chips"]) == result["TRAIN_COUNT"] + result["VALIDATION_COUNT"]
    assert result["VALIDATION_COUNT"] > 0 and feedback.progress_values[-1] == pytest.approx(100.0)
    for chip in manifest["chips"]:
        r, c = chip["row_off"], chip["col_off"]
        chip_a, transform, wkt = read_raster(tmp_path / "chips" / "images" / chip["name"])
        chip_b, transform_b, _ = read_raster(tmp_path / "chips" / "images2" / chip["name"])
        np.testing.assert_array_equal(chip_a, a[:, r:r + 32, c:c + 32])
        np.testing.assert_array_equal(chip_b, b[0, r:r + 32, c:c + 32])
        assert transform == transform_b == (500_000.0 + 10 * c, 10.0, 0.0, 5_000_000.0 - 10 * r, 0.0, -10.0)
        assert 'AUTHORITY["EPSG","32633"]' in wkt


def test_target_in_other_crs_is_resampled_and_logged(qgis_app, make_raster, tmp_path, rng):
    a = rng.integers(0, 255, (1, 64, 64)).astype("uint8")
    # B in WGS 84 at ~5 m, covering A with a margin.
    b_geotransform = (14.995, 0.00005, 0.0, 45.16, 0.0, -0.00005)
    b = rng.integers(0, 255, (3, 400, 400)).astype("uint8")
    feedback = recording_feedback()
    run_alg({"INPUT": str(make_raster("a.tif", a)),
             "INPUT2": str(make_raster("b.tif", b, epsg=4326, geotransform=b_geotransform)),
             "TILE_SIZE": 32, "STRIDE": 32, "VALIDATION": 0, "RESAMPLING": "nearest",
             "OUTPUT": str(tmp_path / "chips")}, feedback)
    assert any("resampling it onto A's grid" in info and "nearest" in info for info in feedback.infos)
    chip_b, transform, wkt = read_raster(tmp_path / "chips" / "images2" / "000000000.tif")
    assert chip_b.shape == (3, 32, 32) and 'AUTHORITY["EPSG","32633"]' in wkt
    assert transform[1] == 10.0 and transform[5] == -10.0


def test_bands_extent_and_mask_layer(qgis_app, make_raster, tmp_path, rng):
    from qgis.core import QgsFeature, QgsGeometry, QgsProject, QgsVectorLayer

    a = rng.integers(0, 255, (3, 128, 128)).astype("uint8")
    path = str(make_raster("a.tif", a))
    # A mask polygon in WGS 84 over the western half of A (x 500000..500640 m in UTM 33N).
    mask = QgsVectorLayer("Polygon?crs=EPSG:4326", "mask", "memory")
    feature = QgsFeature()
    feature.setGeometry(QgsGeometry.fromWkt("POLYGON((14.99 45.16, 15.0082 45.16, 15.0082 45.13, 14.99 45.13, "
                                            "14.99 45.16))"))
    mask.dataProvider().addFeatures([feature])
    QgsProject.instance().addMapLayer(mask)
    result = run_alg({"INPUT": path, "INPUT2": path, "BANDS": [3, 1], "BANDS2": [2], "TILE_SIZE": 32,
                      "STRIDE": 32, "VALIDATION": 0, "MASK": mask.id(),
                      "EXTENT": "500000,501280,4998720,4999680 [EPSG:32633]",
                      "OUTPUT": str(tmp_path / "chips")})
    manifest = json.loads(Path(result["MANIFEST"]).read_text())
    origins = {(c["row_off"], c["col_off"]) for c in manifest["chips"]}
    # Extent keeps rows 32..127 (y <= 4999680); the mask (to x≈500640) keeps columns 0..63.
    assert origins == {(r, c) for r in (32, 64, 96) for c in (0, 32)}
    chip, _, _ = read_raster(tmp_path / "chips" / "images" / manifest["chips"][0]["name"])
    r, c = manifest["chips"][0]["row_off"], manifest["chips"][0]["col_off"]
    np.testing.assert_array_equal(chip, a[[2, 0], r:r + 32, c:c + 32])
    assert manifest["b"]["bands"] == [2]
    QgsProject.instance().removeMapLayer(mask.id())


def test_nodata_is_respected(qgis_app, make_raster, tmp_path, rng):
    a = rng.integers(1, 100, (1, 64, 64)).astype("int16")
    a[0, :10, :10] = -1
    path = str(make_raster("a.tif", a, nodata=-1))
    result = run_alg({"INPUT": path, "INPUT2": path, "TILE_SIZE": 32, "STRIDE": 32, "VALIDATION": 0,
                      "OUTPUT": str(tmp_path / "chips")})
    assert result["CHIP_COUNT"] == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TILE_SIZE": 512}, "Tile size 512 px is larger than the area to export"),
        ({"INPUT2": "far"}, "The rasters do not overlap"),
    ],
)
def test_engine_errors_become_processing_exceptions_and_leave_nothing(qgis_app, make_raster, tmp_path, change,
                                                                      message):
    from qgis.core import QgsProcessingException

    data = np.ones((1, 64, 64), dtype="uint8")
    path = str(make_raster("a.tif", data))
    far = str(make_raster("far.tif", data, geotransform=(600_000.0, 10.0, 0.0, 5_000_000.0, 0.0, -10.0)))
    parameters = {"INPUT": path, "INPUT2": path, "TILE_SIZE": 32, "OUTPUT": str(tmp_path / "chips")}
    parameters.update({k: far if v == "far" else v for k, v in change.items()})
    with pytest.raises(QgsProcessingException, match=message):
        run_alg(parameters)
    assert not (tmp_path / "chips").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_invalid_parameters_are_refused_before_running(qgis_app, make_raster, tmp_path):
    from qgis.core import QgsProcessingException

    path = str(make_raster("a.tif", np.ones((1, 64, 64), dtype="uint8")))
    with pytest.raises(QgsProcessingException):
        run_alg({"INPUT": path, "INPUT2": path, "STRIDE": 0, "OUTPUT": str(tmp_path / "chips")})
    with pytest.raises(QgsProcessingException):
        run_alg({"INPUT": str(tmp_path / "missing.tif"), "INPUT2": path, "OUTPUT": str(tmp_path / "chips")})
    assert not (tmp_path / "chips").exists()


def test_cancel_stops_the_engine_early_and_leaves_nothing(qgis_app, make_raster, tmp_path, rng):
    from qgis.core import QgsProcessingException

    path = str(make_raster("a.tif", rng.integers(0, 255, (1, 2000, 2000)).astype("uint8")))
    feedback = recording_feedback(cancel_after_progress=True)
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run_alg({"INPUT": path, "INPUT2": path, "TILE_SIZE": 16, "STRIDE": 8, "OUTPUT": str(tmp_path / "chips")},
                feedback)
    # A hang check, not a speed limit (the provider kills the tree after its grace period; how quickly
    # a cooperative stop lands depends on the machine's load): the export stopped early, not at its end.
    assert feedback.cancelled_at is not None and time.monotonic() - feedback.cancelled_at < 30
    assert max(feedback.progress_values) < 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif"]


def test_interpreter_without_engine_dependencies_fails_at_once_with_the_fix(qgis_app, make_raster, tmp_path,
                                                                            monkeypatch):
    from qgis.core import QgsProcessingException

    bare = tmp_path / "bare"
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    monkeypatch.setenv("PIX2PIX_PYTHON", str(bare / "bin" / "python"))
    path = str(make_raster("a.tif", np.ones((1, 64, 64), dtype="uint8")))
    started = time.monotonic()
    with pytest.raises(QgsProcessingException) as info:
        run_alg({"INPUT": path, "INPUT2": path, "TILE_SIZE": 32, "OUTPUT": str(tmp_path / "chips")})
    assert time.monotonic() - started < 10
    text = str(info.value)
    assert str(bare / "bin" / "python") in text and "environment variable PIX2PIX_PYTHON" in text
    assert "-m pip install -r" in text and "requirements.txt" in text


def test_missing_interpreter_is_named(qgis_app, make_raster, tmp_path, monkeypatch):
    from qgis.core import QgsProcessingException

    monkeypatch.setenv("PIX2PIX_PYTHON", str(tmp_path / "no-such-python"))
    path = str(make_raster("a.tif", np.ones((1, 64, 64), dtype="uint8")))
    with pytest.raises(QgsProcessingException, match="no-such-python' .* cannot be started"):
        run_alg({"INPUT": path, "INPUT2": path, "TILE_SIZE": 32, "OUTPUT": str(tmp_path / "chips")})


def test_interpreter_precedence_env_then_setting_then_default(qgis_app, monkeypatch, tmp_path):
    from pix2pix_toolbox.processing_provider import interpreter
    from processing.core.ProcessingConfig import ProcessingConfig

    monkeypatch.setenv("PIX2PIX_PYTHON", "/env/python")
    configured = tmp_path / "configured-python"
    configured.write_text("")
    configured.chmod(0o755)  # the setting only accepts an existing file that can be run
    ProcessingConfig.setSettingValue(interpreter.SETTING_KEY, str(configured))
    try:
        assert interpreter.resolve_python()[0] == "/env/python"
        monkeypatch.delenv("PIX2PIX_PYTHON")
        assert interpreter.resolve_python() == (str(configured),
                                                "Processing › Options › Providers › Pix2Pix › Python interpreter")
        ProcessingConfig.setSettingValue(interpreter.SETTING_KEY, "")
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
        python, source = interpreter.resolve_python()
        assert source == "the default (python3 on PATH)" and os.path.basename(python).startswith("python")
        managed = interpreter.managed_python()
        managed.parent.mkdir(parents=True)
        managed.write_text("")
        assert interpreter.resolve_python() == (str(managed), "the managed engine environment")
    finally:
        ProcessingConfig.setSettingValue(interpreter.SETTING_KEY, "")
    assert ENGINE_PYTHON  # the session's engine interpreter is untouched by this test


def test_plugin_entry_point_is_headless_safe(qgis_app):
    import pix2pix_toolbox
    from qgis.core import QgsApplication

    plugin = pix2pix_toolbox.classFactory(None)
    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("pix2pix")
    registry.removeProvider(existing)
    try:
        plugin.initProcessing()
        provider = registry.providerById("pix2pix")
        assert provider is not None and provider.name() == "Pix2Pix"
        assert registry.algorithmById("pix2pix:exportchips") is not None
        plugin.unload()
        assert registry.providerById("pix2pix") is None
    finally:
        from pix2pix_toolbox.processing_provider.provider import Pix2PixProvider

        _KEEP_ALIVE.append(Pix2PixProvider())  # PyQGIS does not own providers added from Python
        registry.addProvider(_KEEP_ALIVE[-1])


def test_running_algorithms_never_loads_torch_or_the_engine_into_qgis(qgis_app, make_raster, tmp_path):
    import sys

    path = str(make_raster("a.tif", np.ones((1, 64, 64), dtype="uint8")))
    run_alg({"INPUT": path, "INPUT2": path, "TILE_SIZE": 32, "VALIDATION": 0, "OUTPUT": str(tmp_path / "chips")})
    assert "torch" not in sys.modules and "pix2pix_qgis" not in sys.modules and "rasterio" not in sys.modules
