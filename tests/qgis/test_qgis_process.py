"""The plugin installed from the built zip into an isolated profile, driven by qgis_process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from .models import export_model, output_parameters
from .paths import ENGINE_PYTHON, QGIS_PROCESS
from .plugin_install import fresh_profile_env
from .rasters import read_raster

DATA = Path(__file__).with_name("data")


@pytest.fixture(scope="session")
def qgis_process_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Build dist zip, unzip it as a user would, enable the plugin in a fresh profile."""
    return fresh_profile_env(tmp_path_factory.mktemp("qgis_process"), ENGINE_PYTHON)


def qgis_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=300)


def test_plugin_from_zip_is_listed_with_its_algorithm_and_help(qgis_process_env):
    listing = qgis_process(qgis_process_env, "list")
    for algorithm in ("exportchips", "exportunpaired", "train", "traincyclegan", "translate", "evaluate",
                      "evaluateunpaired"):
        assert f"pix2pix:{algorithm}" in listing.stdout
    help_text = qgis_process(qgis_process_env, "help", "pix2pix:exportchips").stdout
    for parameter in ("INPUT", "INPUT2", "TILE_SIZE", "STRIDE", "OUTPUT", "BANDS", "BANDS2", "EXTENT", "MASK",
                      "MAX_NODATA", "VALIDATION", "SEED", "RESAMPLING"):
        assert f"\n{parameter}:" in help_text
    assert "Esri's Export Tiles layout" in help_text and "held out" in help_text


def test_qgis_process_runs_the_export(qgis_process_env, make_raster, tmp_path, rng):
    a = rng.integers(0, 255, (3, 128, 128)).astype("uint8")
    path = make_raster("a b;$(x) ü.tif", a)  # a hostile but legal file name travels intact, no shell
    run = qgis_process(qgis_process_env, "--json", "run", "pix2pix:exportchips", "--",
                       f"INPUT={path}", f"INPUT2={path}", "TILE_SIZE=64", "STRIDE=64", "VALIDATION=0",
                       f"OUTPUT={tmp_path / 'chips'}")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = json.loads(run.stdout)["results"]
    assert results["CHIP_COUNT"] == 4 and results["OUTPUT"] == str(tmp_path / "chips")
    chip, transform, _ = read_raster(tmp_path / "chips" / "images" / "000000003.tif")
    np.testing.assert_array_equal(chip, a[:, 64:, 64:])
    assert transform == (500_640.0, 10.0, 0.0, 4_999_360.0, 0.0, -10.0)


def test_qgis_process_reports_engine_errors_and_leaves_nothing(qgis_process_env, make_raster, tmp_path):
    path = make_raster("a.tif", np.ones((1, 64, 64), dtype="uint8"))
    run = qgis_process(qgis_process_env, "run", "pix2pix:exportchips", "--", f"INPUT={path}", f"INPUT2={path}",
                       "TILE_SIZE=128", f"OUTPUT={tmp_path / 'chips'}")
    assert run.returncode != 0
    assert "Tile size 128 px is larger than the area to export (64×64 px" in run.stdout + run.stderr
    assert not (tmp_path / "chips").exists()


def model_outputs(model3: Path, **paths: Path) -> list[str]:
    """``name=path`` arguments for a model's outputs, under the names this QGIS gives them."""
    names = output_parameters(model3)
    for output, name in names.items():
        child = {"chips": "export", "model": "train", "translated": "translate", "metrics": "evaluate",
                 "imagery_like": "a2b", "relief_like": "b2a"}[output]
        assert name in (output, f"{child}:{output}"), names  # the two spellings QGIS has used
    return [f"{names[output]}={path}" for output, path in paths.items()]


def run_export_model(env: dict[str, str], model: Path, outputs: list[str], make_raster, rng) -> dict:
    a = rng.integers(0, 255, (1, 256, 256)).astype("uint8")
    b = rng.integers(0, 255, (3, 256, 256)).astype("uint8")
    run = qgis_process(env, "--json", "run", str(model), "--",
                       f"relief={make_raster('relief.tif', a)}", f"imagery={make_raster('imagery.tif', b)}", *outputs)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return json.loads(run.stdout)


def check_export(chips: Path) -> None:
    manifest = json.loads((chips / "chips.json").read_text())
    assert len(manifest["chips"]) == 16 - manifest["counts"]["dropped_split_buffer"]
    assert manifest["counts"]["validation"] > 0 and manifest["tile_size"] == 64


def test_model3_wrapping_the_export_runs_in_qgis_process(qgis_app, qgis_process_env, make_raster, tmp_path, rng):
    model = export_model(tmp_path / "export.model3")
    run_export_model(qgis_process_env, model, model_outputs(model, chips=tmp_path / "chips"), make_raster, rng)
    check_export(tmp_path / "chips")


def test_a_model_saved_by_qgis_3_22_still_runs(qgis_app, qgis_process_env, make_raster, tmp_path, rng):
    """Analysts upgrading QGIS keep their models: a model saved by QGIS 3.22 (tests/qgis/data) still finds
    the plugin's algorithm and parameters, and its output keeps the name it had ("export:chips")."""
    model = DATA / "export_chips_qgis322.model3"
    assert output_parameters(model) == {"chips": "export:chips"}
    run_export_model(qgis_process_env, model, [f"export:chips={tmp_path / 'chips'}"], make_raster, rng)
    check_export(tmp_path / "chips")


def test_model3_chain_export_train_translate_evaluate(qgis_app, qgis_process_env, tmp_path):
    from .models import pipeline_model

    model = pipeline_model(tmp_path / "pipeline.model3")
    subprocess.run([ENGINE_PYTHON, "-c", "from pix2pix_qgis.sample import make_sample_pair; "
                    "from rasterio.windows import Window; "
                    f"make_sample_pair({str(tmp_path)!r}, Window(3000, 600, 192, 192))"], check=True)
    run = qgis_process(qgis_process_env, "--json", "run", str(model), "--",
                       f"relief={tmp_path / 'relief.tif'}", f"imagery={tmp_path / 'imagery.tif'}",
                       *model_outputs(model, model=tmp_path / "model.p2p", translated=tmp_path / "out.tif",
                                      metrics=tmp_path / "metrics.json"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["pixels"] == 192 * 192 and metrics["mae"] > 0 and len(metrics["bands"]) == 3
    translated, transform, _ = read_raster(tmp_path / "out.tif")
    assert translated.shape == (3, 192, 192) and transform == read_raster(tmp_path / "relief.tif")[1]


def test_model3_chain_export_unpaired_train_cyclegan_translate_both_ways(qgis_app, qgis_process_env, tmp_path):
    """Two rasters with nothing in common (continents, CRS, cell size) to a translated raster each way,
    as a graphical model run by qgis_process."""
    from .builders import write_unpaired
    from .models import cyclegan_model

    model = cyclegan_model(tmp_path / "cyclegan.model3")
    rasters = write_unpaired(tmp_path)
    run = qgis_process(qgis_process_env, "--json", "run", str(model), "--",
                       f"relief={rasters['relief']}", f"imagery={rasters['imagery']}",
                       *model_outputs(model, model=tmp_path / "cyclegan.p2p", imagery_like=tmp_path / "a2b.tif",
                                      relief_like=tmp_path / "b2a.tif"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (tmp_path / "cyclegan.p2p").is_file()
    for output, source in (("a2b.tif", rasters["relief"]), ("b2a.tif", rasters["imagery"])):
        data, transform, wkt = read_raster(tmp_path / output)
        source_data, source_transform, source_wkt = read_raster(source)
        assert data.shape == source_data.shape and (transform, wkt) == (source_transform, source_wkt), output
