"""Outputs that show: renderers of loaded rasters, HTML reports for the Results Viewer, batch mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .paths import REPO
from .rasters import read_raster, write_raster
from .tiny_models import train_tiny_model


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"rgb": train_tiny_model(root / "rgb", "1,2,3"), "gray": train_tiny_model(root / "gray", "2")}


@pytest.fixture
def project(qgis_app):
    from qgis.core import QgsProject

    yield QgsProject.instance()
    QgsProject.instance().removeAllMapLayers()


def loaded_layer(project, path: str):
    layers = [layer for layer in project.mapLayers().values() if Path(layer.source()) == Path(path)]
    assert len(layers) == 1, [layer.source() for layer in project.mapLayers().values()]
    return layers[0]


@pytest.mark.parametrize("model, renderer", [("rgb", "multibandcolor"), ("gray", "singlebandgray")])
def test_translated_raster_loads_with_a_sensible_renderer(project, models, model, renderer, tmp_path, rng):
    import processing
    from pix2pix_toolbox.processing_provider.compat import STRETCH_TO_MIN_MAX

    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 96, 96)).astype("uint8"))
    result = processing.runAndLoadResults("pix2pix:translate", {
        "INPUT": str(source), "MODEL": str(models[model]), "DEVICE": "cpu", "OUTPUT": str(tmp_path / "out.tif")})
    layer = loaded_layer(project, result["OUTPUT"])
    assert layer.renderer().type() == renderer
    if renderer == "multibandcolor":
        bands = (layer.renderer().redBand(), layer.renderer().greenBand(), layer.renderer().blueBand())
        assert bands == (1, 2, 3) and layer.bandCount() == 3
    else:
        gray = layer.renderer()
        band = gray.inputBand() if hasattr(gray, "inputBand") else gray.grayBand()  # grayBand() deprecated in 3.38
        assert layer.bandCount() == 1 and band == 1
        assert gray.contrastEnhancement().contrastEnhancementAlgorithm() == STRETCH_TO_MIN_MAX
        assert gray.contrastEnhancement().minimumValue() < gray.contrastEnhancement().maximumValue()


def test_reports_are_html_outputs_for_the_results_viewer(qgis_app, models, tmp_path, rng):
    import processing
    from qgis.core import QgsApplication, QgsProcessingOutputHtml

    for algorithm in ("pix2pix:train", "pix2pix:evaluate", "pix2pix:checkengine"):
        definition = QgsApplication.processingRegistry().algorithmById(algorithm).outputDefinition("OUTPUT_HTML")
        assert isinstance(definition, QgsProcessingOutputHtml), algorithm
    reference = write_raster(tmp_path / "ref.tif", rng.integers(0, 255, (3, 64, 64)).astype("uint8"))
    prediction = write_raster(tmp_path / "pred.tif", rng.integers(0, 255, (3, 64, 64)).astype("uint8"))
    result = processing.run("pix2pix:evaluate", {"PREDICTION": str(prediction), "REFERENCE": str(reference),
                                                 "OUTPUT_HTML": str(tmp_path / "metrics.html")})
    html = Path(result["OUTPUT_HTML"]).read_text()
    assert "<table" in html and "PSNR" in html and f"{result['MAE']:.4g}"[:4] in html


def test_batch_dialog_translates_many_rasters_with_one_model(qgis_app, models, tmp_path):
    """QGIS's own batch dialog (in its own QGIS process): three rasters, one model, three distinct
    outputs, each equal to a single run, each loaded with the RGB renderer."""
    import processing

    inputs = [write_raster(tmp_path / f"in{i}.tif",
                           np.random.default_rng(i).integers(0, 255, (3, 64 + 32 * i, 96)).astype("uint8"))
              for i in range(3)]
    rows = [{"INPUT": str(path), "MODEL": str(models["rgb"]), "DEVICE": "cpu", "OUTPUT": str(tmp_path / f"out{i}.tif")}
            for i, path in enumerate(inputs)]
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"rows": rows, "report": str(tmp_path / "report.json")}))
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "pix2pix_toolbox").symlink_to(REPO)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QGIS_CUSTOM_CONFIG_PATH": str(tmp_path / "profile")}
    run = subprocess.run([sys.executable, str(Path(__file__).with_name("batch_dialog_run.py")), str(plugins), str(job)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rows"] == 3 and report["supports_batch"]
    renderers = {Path(layer["source"]).name: layer["renderer"] for layer in report["layers"]}
    assert renderers == {f"out{i}.tif": "multibandcolor" for i in range(3)}
    for row, path in enumerate(inputs):
        batch_output, transform, _ = read_raster(tmp_path / f"out{row}.tif")
        single = processing.run("pix2pix:translate", {"INPUT": str(path), "MODEL": str(models["rgb"]),
                                                      "DEVICE": "cpu", "OUTPUT": str(tmp_path / f"single{row}.tif")})
        np.testing.assert_array_equal(batch_output, read_raster(Path(single["OUTPUT"]))[0])
        assert batch_output.shape == (3, 64 + 32 * row, 96) and transform == read_raster(path)[1]
