"""pix2pix:exportunpaired, :traincyclegan and translate's DIRECTION in real QGIS, on real imagery.

Domain A is ETOPO1 relief over the Alps and the Adriatic, domain B Blue Marble imagery of North
America, 2 300 km away and warped to Web Mercator (another CRS and cell size): two rasters with no
pixel, CRS or grid in common, the case CycleGAN is for.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from .builders import write_unpaired
from .processing_runs import recording_feedback, run
from .rasters import read_raster, write_raster


@pytest.fixture(scope="module")
def unpaired(tmp_path_factory) -> dict[str, Path]:
    return write_unpaired(tmp_path_factory.mktemp("unpaired"))


@pytest.fixture(scope="module")
def chips(qgis_app, unpaired) -> dict:
    feedback = recording_feedback()
    result = run("pix2pix:exportunpaired", {"INPUT": str(unpaired["relief"]), "INPUT2": str(unpaired["imagery"]),
                                            "TILE_SIZE": 64, "STRIDE": 32, "VALIDATION": 0.1,
                                            "OUTPUT": str(unpaired["folder"] / "chips")}, feedback)
    return {**result, "feedback": feedback}


@pytest.fixture(scope="module")
def cyclegan(qgis_app, chips, unpaired) -> dict:
    feedback = recording_feedback()
    result = run("pix2pix:traincyclegan", {
        "CHIPS": chips["OUTPUT"], "EPOCHS": 1, "BATCH_SIZE": 4, "NGF": 4, "RESNET_BLOCKS": 2, "DEVICE": "cpu",
        "OUTPUT_MODEL": str(unpaired["folder"] / "cyclegan.p2p"), "OUTPUT_HTML": str(unpaired["folder"] / "r.html"),
    }, feedback)
    return {**result, "feedback": feedback}


def test_export_unpaired_writes_each_domain_on_its_own_grid(chips, unpaired):
    folder = Path(chips["OUTPUT"])
    manifest = json.loads(Path(chips["MANIFEST"]).read_text())
    for domain in ("A", "B"):
        images = sorted((folder / domain / "images").glob("*.tif"))
        assert chips[f"TRAIN_{domain}"] > 0 and chips[f"VALIDATION_{domain}"] > 0, chips
        assert len(images) == chips[f"TRAIN_{domain}"] + chips[f"VALIDATION_{domain}"], domain
    # A's chips are pixel-exact windows of the relief, on its grid and CRS
    relief, relief_transform, _ = read_raster(unpaired["relief"])
    first = sorted((folder / "A" / "images").glob("*.tif"))[0]
    chip, transform, wkt = read_raster(first)
    col = round((transform[0] - relief_transform[0]) / relief_transform[1])
    row = round((transform[3] - relief_transform[3]) / relief_transform[5])
    np.testing.assert_array_equal(chip, relief[:, row:row + 64, col:col + 64])
    assert transform[1] == relief_transform[1] and 'AUTHORITY["EPSG","4326"]' in wkt
    # B's stay in Web Mercator, resampled to A's cell size on the ground (1/15° ≈ 7.4 km at 6.7°E–23.7°E, 35°N)
    chip_b, transform_b, wkt_b = read_raster(sorted((folder / "B" / "images").glob("*.tif"))[0])
    assert chip_b.shape == (3, 64, 64) and ("Pseudo-Mercator" in wkt_b or "3857" in wkt_b)
    assert 6_000 < transform_b[1] < 9_000, transform_b
    assert manifest["tile_size"] == 64 and chips["feedback"].progress_values[-1] == pytest.approx(100.0)


def test_train_cyclegan_writes_one_model_with_both_directions(cyclegan):
    import zipfile

    assert cyclegan["KEPT_EPOCH"] == 1 and cyclegan["VAL_CYCLE_A"] > 0 and cyclegan["VAL_CYCLE_B"] > 0
    with zipfile.ZipFile(cyclegan["OUTPUT_MODEL"]) as package:
        model = json.loads(package.read("model.json"))
    assert "cyclegan" in json.dumps(model).lower()
    assert Path(cyclegan["OUTPUT_HTML"]).is_file()
    assert cyclegan["feedback"].progress_values[-1] == pytest.approx(100.0)


def test_translate_both_directions_keeps_each_input_grid(qgis_app, cyclegan, unpaired, tmp_path):
    for direction, source, bands in (("a2b", unpaired["relief"], 3), ("b2a", unpaired["imagery"], 3)):
        output = tmp_path / f"{direction}.tif"
        result = run("pix2pix:translate", {"INPUT": str(source), "MODEL": cyclegan["OUTPUT_MODEL"],
                                           "DIRECTION": direction, "DEVICE": "cpu", "OUTPUT": str(output)})
        data, transform, wkt = read_raster(Path(result["OUTPUT"]))
        source_data, source_transform, source_wkt = read_raster(source)
        assert data.shape == (bands, *source_data.shape[1:]), direction
        assert (transform, wkt, str(data.dtype)) == (source_transform, source_wkt, "uint8"), direction
    # the two generators are two different functions of the same raster
    a2b = run("pix2pix:translate", {"INPUT": str(unpaired["relief"]), "MODEL": cyclegan["OUTPUT_MODEL"],
                                    "DIRECTION": "b2a", "DEVICE": "cpu", "OUTPUT": str(tmp_path / "other.tif")})
    assert not np.array_equal(read_raster(tmp_path / "a2b.tif")[0], read_raster(Path(a2b["OUTPUT"]))[0])


def test_b2a_with_a_pix2pix_model_is_refused_with_the_fix(qgis_app, tmp_path, rng):
    from qgis.core import QgsProcessingException

    from .tiny_models import train_tiny_model

    pix2pix = train_tiny_model(tmp_path / "pix2pix")
    raster = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 64, 64)).astype("uint8"))
    with pytest.raises(QgsProcessingException, match="(?i)b2a.*(cyclegan|one direction)"):
        run("pix2pix:translate", {"INPUT": str(raster), "MODEL": str(pix2pix), "DIRECTION": "b2a",
                                  "OUTPUT": str(tmp_path / "out.tif")})
    assert not (tmp_path / "out.tif").exists()


def test_cancelled_cyclegan_keeps_a_checkpoint_that_resume_finishes(qgis_app, chips, tmp_path):
    from qgis.core import QgsProcessingException

    model = tmp_path / "cancel.p2p"
    parameters = {"CHIPS": chips["OUTPUT"], "EPOCHS": 2, "BATCH_SIZE": 2, "NGF": 4, "RESNET_BLOCKS": 2,
                  "DEVICE": "cpu", "OUTPUT_MODEL": str(model)}
    feedback = recording_feedback(cancel_after_progress=True)
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run("pix2pix:traincyclegan", parameters, feedback)
    assert time.monotonic() - feedback.cancelled_at < 30
    assert Path(f"{model}.ckpt").is_file() and not model.exists()
    result = run("pix2pix:traincyclegan", {**parameters, "RESUME": True})
    assert Path(result["OUTPUT_MODEL"]).is_file() and result["KEPT_EPOCH"] == 2


def test_paired_chips_given_to_train_cyclegan_are_refused_with_the_fix(qgis_app, tmp_path, unpaired):
    from qgis.core import QgsProcessingException

    paired = run("pix2pix:exportchips", {"INPUT": str(unpaired["relief"]), "INPUT2": str(unpaired["relief"]),
                                         "TILE_SIZE": 64, "STRIDE": 64, "VALIDATION": 0,
                                         "OUTPUT": str(tmp_path / "paired")})
    with pytest.raises(QgsProcessingException, match="(?i)unpaired"):
        run("pix2pix:traincyclegan", {"CHIPS": paired["OUTPUT"], "EPOCHS": 1, "NGF": 4, "DEVICE": "cpu",
                                      "OUTPUT_MODEL": str(tmp_path / "m.p2p")})
    assert not (tmp_path / "m.p2p").exists() and not (tmp_path / "m.p2p.ckpt").exists()


@pytest.mark.parametrize(("change", "message"), [
    ({"TILE_SIZE": 512}, "larger than"),  # B covers less than one chip
    ({"LAMBDA_CYCLE": float("nan")}, "λ cycle consistency nan is invalid (LAMBDA_CYCLE, --lambda-cycle)"),
])
def test_hostile_values_get_a_clear_message_and_leave_nothing(qgis_app, unpaired, tmp_path, change, message):
    from qgis.core import QgsProcessingException

    algorithm = "pix2pix:traincyclegan" if "LAMBDA_CYCLE" in change else "pix2pix:exportunpaired"
    parameters = ({"CHIPS": str(tmp_path), "OUTPUT_MODEL": str(tmp_path / "m.p2p")} if "LAMBDA_CYCLE" in change else
                  {"INPUT": str(unpaired["relief"]), "INPUT2": str(unpaired["imagery"]),
                   "OUTPUT": str(tmp_path / "chips")})
    with pytest.raises(QgsProcessingException) as caught:
        run(algorithm, {**parameters, **change})
    assert message in str(caught.value) and "Traceback" not in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_a_truncated_raster_b_is_named(qgis_app, unpaired, tmp_path):
    from qgis.core import QgsProcessingException

    broken = tmp_path / "broken.tif"
    broken.write_bytes(unpaired["imagery"].read_bytes()[:2000])
    with pytest.raises(QgsProcessingException) as caught:
        run("pix2pix:exportunpaired", {"INPUT": str(unpaired["relief"]), "INPUT2": str(broken), "TILE_SIZE": 64,
                                       "OUTPUT": str(tmp_path / "chips")})
    assert "broken.tif" in str(caught.value) or "INPUT2" in str(caught.value)
    assert not (tmp_path / "chips").exists()


def test_a_mask_of_b_without_polygons_names_mask2(qgis_app, unpaired, tmp_path):
    from qgis.core import QgsProcessingException, QgsVectorLayer

    empty = QgsVectorLayer("Polygon?crs=EPSG:3857", "empty", "memory")
    with pytest.raises(QgsProcessingException, match="MASK2: the mask layer has no polygons"):
        run("pix2pix:exportunpaired", {"INPUT": str(unpaired["relief"]), "INPUT2": str(unpaired["imagery"]),
                                       "TILE_SIZE": 64, "MASK2": empty, "OUTPUT": str(tmp_path / "chips")})
    assert not (tmp_path / "chips").exists()


def test_evaluate_without_pairs_reports_distances_and_the_cycle_error(qgis_app, cyclegan, chips, unpaired, tmp_path):
    forward = run("pix2pix:translate", {"INPUT": str(unpaired["relief"]), "MODEL": cyclegan["OUTPUT_MODEL"],
                                        "DIRECTION": "a2b", "DEVICE": "cpu", "OUTPUT": str(tmp_path / "a2b.tif")})
    back = run("pix2pix:translate", {"INPUT": forward["OUTPUT"], "MODEL": cyclegan["OUTPUT_MODEL"],
                                     "DIRECTION": "b2a", "DEVICE": "cpu", "OUTPUT": str(tmp_path / "a2b2a.tif")})
    feedback = recording_feedback()
    result = run("pix2pix:evaluateunpaired", {
        "PREDICTION": forward["OUTPUT"], "CHIPS": chips["OUTPUT"], "ORIGINAL": str(unpaired["relief"]),
        "RECONSTRUCTION": back["OUTPUT"], "OUTPUT_REPORT": str(tmp_path / "m.json"),
        "OUTPUT_HTML": str(tmp_path / "m.html")}, feedback)
    report = json.loads((tmp_path / "m.json").read_text())
    assert result["WASSERSTEIN"] == pytest.approx(report["wasserstein"]) and result["WASSERSTEIN"] > 0
    assert result["CYCLE_MAE"] == pytest.approx(report["cycle"]["mae"]) and result["CYCLE_MAE"] > 0
    assert result["REFERENCE_MAE"] is None and len(json.loads(result["BANDS_JSON"])) == 3
    assert sum("Band 1: Wasserstein" in line for line in feedback.infos) == 1
    assert Path(result["OUTPUT_HTML"]).is_file()


def test_evaluate_without_pairs_refuses_a_half_cycle(qgis_app, chips, unpaired, tmp_path):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="RECONSTRUCTION"):
        run("pix2pix:evaluateunpaired", {"PREDICTION": str(unpaired["imagery"]), "CHIPS": chips["OUTPUT"],
                                         "ORIGINAL": str(unpaired["relief"]),
                                         "OUTPUT_REPORT": str(tmp_path / "m.json")})
    assert not (tmp_path / "m.json").exists()


def test_an_output_folder_that_is_an_input_or_holds_user_files_is_refused_and_kept(qgis_app, unpaired, tmp_path):
    from qgis.core import QgsProcessingException

    relief_bytes = unpaired["relief"].read_bytes()
    theirs = tmp_path / "notes"
    theirs.mkdir()
    (theirs / "field notes.txt").write_text("mine")
    for output, named in ((unpaired["relief"], "relief.tif"), (theirs, "notes")):
        with pytest.raises(QgsProcessingException) as caught:
            run("pix2pix:exportunpaired", {"INPUT": str(unpaired["relief"]), "INPUT2": str(unpaired["imagery"]),
                                           "TILE_SIZE": 64, "OUTPUT": str(output)})
        assert named in str(caught.value), str(caught.value)
    assert unpaired["relief"].read_bytes() == relief_bytes
    assert (theirs / "field notes.txt").read_text() == "mine" and len(list(theirs.iterdir())) == 1
