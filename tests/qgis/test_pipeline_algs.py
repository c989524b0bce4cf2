"""pix2pix:train, :translate and :evaluate in real QGIS, on the real sample imagery."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from .paths import ENGINE_PYTHON
from .processing_runs import recording_feedback, run
from .rasters import read_raster


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Path]:
    """A 256×256 window of the real relief → imagery pair, and its chips (64 px)."""
    folder = tmp_path_factory.mktemp("sample")
    subprocess.run([ENGINE_PYTHON, "-c", "from pix2pix_qgis.sample import make_sample_pair; "
                    "from rasterio.windows import Window; "
                    f"make_sample_pair({str(folder)!r}, Window(2600, 700, 256, 256))"], check=True)
    return {"relief": folder / "relief.tif", "imagery": folder / "imagery.tif", "folder": folder}


@pytest.fixture(scope="module")
def chips(qgis_app, sample) -> Path:
    result = run("pix2pix:exportchips", {"INPUT": str(sample["relief"]), "INPUT2": str(sample["imagery"]),
                                         "TILE_SIZE": 64, "STRIDE": 32, "VALIDATION": 0.2,
                                         "OUTPUT": str(sample["folder"] / "chips")})
    return Path(result["OUTPUT"])


@pytest.fixture(scope="module")
def trained(qgis_app, chips, sample) -> dict:
    feedback = recording_feedback()
    result = run("pix2pix:train", {"CHIPS": str(chips), "EPOCHS": 2, "BATCH_SIZE": 8, "NGF": 8, "DEVICE": "cpu",
                                   "OUTPUT_MODEL": str(sample["folder"] / "model.p2p"),
                                   "OUTPUT_HTML": str(sample["folder"] / "report.html")}, feedback)
    return {**result, "feedback": feedback}


def test_train_writes_model_report_and_numeric_outputs(trained):
    assert Path(trained["OUTPUT_MODEL"]).is_file() and trained["BEST_EPOCH"] in (1, 2)
    assert trained["VAL_MAE"] > 0 and trained["VAL_PSNR"] > 0 and -1 <= trained["VAL_SSIM"] <= 1
    html = Path(trained["OUTPUT_HTML"]).read_text()
    assert html.count("data:image/png;base64,") == 2 and "val_psnr" in html
    infos = "\n".join(trained["feedback"].infos)
    assert "Epoch 1" in infos or "epoch 1" in infos
    assert trained["feedback"].progress_values[-1] == pytest.approx(100.0)


def test_the_pix2pixhd_options_reach_the_model(qgis_app, chips, tmp_path):
    import json
    import zipfile

    result = run("pix2pix:train", {"CHIPS": str(chips), "EPOCHS": 1, "BATCH_SIZE": 8, "NGF": 4, "DEVICE": "cpu",
                                   "UPSAMPLE": "resize", "D_SCALES": 2, "GAN_MODE": "hinge", "LAMBDA_FEAT": 5.0,
                                   "SPECTRAL_NORM": True, "OUTPUT_MODEL": str(tmp_path / "hd.p2p")})
    with zipfile.ZipFile(result["OUTPUT_MODEL"]) as package:
        model = json.loads(package.read("model.json"))
    assert model["architecture"]["generator"]["upsample"] == "resize"
    judge = model["architecture"]["discriminator"]
    assert (judge["scales"], judge["spectral_norm"]) == (2, True)
    assert model["training"]["losses"]["gan"] == "hinge" and model["training"]["losses"]["lambda_feat"] == 5.0


def test_cancelled_training_keeps_a_checkpoint_that_resume_finishes(qgis_app, chips, tmp_path):
    from qgis.core import QgsProcessingException

    model = tmp_path / "cancel.p2p"
    parameters = {"CHIPS": str(chips), "EPOCHS": 2, "BATCH_SIZE": 4, "NGF": 8, "DEVICE": "cpu",
                  "OUTPUT_MODEL": str(model)}
    feedback = recording_feedback(cancel_after_progress=True)
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run("pix2pix:train", parameters, feedback)
    assert time.monotonic() - feedback.cancelled_at < 30
    assert Path(f"{model}.ckpt").is_file() and not model.exists()
    result = run("pix2pix:train", {**parameters, "RESUME": True})
    assert Path(result["OUTPUT_MODEL"]).is_file()


def test_translate_keeps_the_input_grid(qgis_app, trained, sample, tmp_path):
    output = tmp_path / "translated.tif"
    result = run("pix2pix:translate", {"INPUT": str(sample["relief"]), "MODEL": trained["OUTPUT_MODEL"],
                                       "OVERLAP": 16, "BATCH_SIZE": 4, "DEVICE": "cpu", "OUTPUT": str(output)})
    assert result["OUTPUT"] == str(output)
    data, transform, wkt = read_raster(output)
    _, transform_in, wkt_in = read_raster(sample["relief"])
    assert data.shape == (3, 256, 256) and transform == transform_in and wkt == wkt_in
    assert str(data.dtype) == "uint8"


def test_translate_with_the_onnxruntime_backend_matches_torch(qgis_app, trained, sample, tmp_path):
    import numpy as np

    outputs = {}
    for backend in ("torch", "onnxruntime"):
        feedback = recording_feedback()
        run("pix2pix:translate", {"INPUT": str(sample["relief"]), "MODEL": trained["OUTPUT_MODEL"], "DEVICE": "cpu",
                                  "BACKEND": backend, "OUTPUT": str(tmp_path / f"{backend}.tif")}, feedback)
        outputs[backend] = read_raster(tmp_path / f"{backend}.tif")
        if backend == "onnxruntime":
            assert any("ONNX Runtime backend ready" in line for line in feedback.infos)
    (torch_data, torch_transform, torch_wkt), (ort_data, ort_transform, ort_wkt) = outputs.values()
    assert (ort_transform, ort_wkt, ort_data.shape, ort_data.dtype) == (torch_transform, torch_wkt,
                                                                        torch_data.shape, torch_data.dtype)
    difference = np.abs(ort_data.astype(int) - torch_data.astype(int))
    assert difference.max() <= 2 and (difference > 0).mean() < 0.01


def test_translate_refuses_a_band_count_mismatch(qgis_app, trained, tmp_path, make_raster, rng):
    from qgis.core import QgsProcessingException

    one_band = make_raster("one.tif", rng.integers(0, 255, (1, 64, 64)).astype("uint8"))
    with pytest.raises(QgsProcessingException, match=r"takes 3 input band\(s\) .* has 1"):
        run("pix2pix:translate", {"INPUT": str(one_band), "MODEL": trained["OUTPUT_MODEL"],
                                  "OUTPUT": str(tmp_path / "out.tif")})
    assert not (tmp_path / "out.tif").exists()


def test_evaluate_reports_metrics_as_outputs_and_files(qgis_app, trained, sample, tmp_path):
    translated = tmp_path / "t.tif"
    run("pix2pix:translate", {"INPUT": str(sample["relief"]), "MODEL": trained["OUTPUT_MODEL"],
                              "OUTPUT": str(translated)})
    result = run("pix2pix:evaluate", {"PREDICTION": str(translated), "REFERENCE": str(sample["imagery"]),
                                      "OUTPUT_REPORT": str(tmp_path / "m.json"),
                                      "OUTPUT_HTML": str(tmp_path / "m.html"),
                                      "ERROR_RASTER": str(tmp_path / "err.tif")})
    report = json.loads((tmp_path / "m.json").read_text())
    assert result["MAE"] == pytest.approx(report["mae"]) and result["PSNR"] == pytest.approx(report["psnr"])
    assert len(json.loads(result["BANDS_JSON"])) == 3 and "<table>" in (tmp_path / "m.html").read_text()
    errors, transform, _ = read_raster(tmp_path / "err.tif")
    assert errors.shape == (3, 256, 256) and transform == read_raster(sample["imagery"])[1]
