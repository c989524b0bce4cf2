"""ONNX files for the Deepness QGIS plugin, run in onnxruntime 1.17.0 the way Deepness runs them.

onnxruntime 1.17.0 (the newest Deepness 0.6.5 installs) runs in its own environment
(``ort117.py``, cached in the user's cache folder; the first run installs it from PyPI).
Deepness' pre- and post-processing, tiling and assembly are reproduced in
``deepness_emulation.py`` with file:line references to Deepness. Its result must equal
``translate`` (torch) within one level where the two tile the raster alike: tiles of the
model's chip size (Deepness' tile; translate's default tile is two or three chips), overlap 0
and a raster of whole tiles, as ``translate --tile-size CHIP --overlap 0 --blend crop``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from rasterio.crs import CRS

from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.interop.onnx import METRES_PER_DEGREE, export_onnx
from pix2pix_qgis.model.package import load_model

from .. import ort117
from ..builders import Recorder, write_raster
from ..deepness_emulation import deepness_infer
from ..models import write_model

onnx = pytest.importorskip("onnx", reason="ONNX support is the optional extra [onnx] (installed by make setup)")
pytest.importorskip("onnxscript")

TILE = 64
CELL = 1 / 15  # degrees, the sample's grid
GRID = {"crs": "EPSG:4326", "crs_wkt": CRS.from_epsg(4326).to_wkt(), "cell_size": [CELL, CELL]}
TRANSFORM = Affine(CELL, 0.0, 10.0, 0.0, -CELL, 50.0)
# Input dtype → (the model's input range, the range of the raster's values: wider, so the clip matters).
INPUTS = {"uint8": ((0.0, 255.0), (0, 255)), "uint16": ((100.0, 4000.0), (0, 4500)),
          "float32": ((-10.0, 40.0), (-15.0, 45.0))}


@pytest.fixture(scope="module")
def site() -> Path:
    return ort117.ensure_site()


def raster(tmp_path: Path, dtype: str, rng: np.random.Generator, shape: tuple[int, int] = (128, 192)) -> Path:
    low, high = INPUTS[dtype][1]
    data = rng.uniform(low, high, (3, *shape)).astype(dtype)
    return write_raster(tmp_path / f"in_{dtype}.tif", data, crs="EPSG:4326", transform=TRANSFORM)


def in_deepness(model: Path, source: Path, kind: str, tmp_path: Path, overlap: float | None = None
                ) -> tuple[np.ndarray, dict]:
    """Deepness' result for the whole raster, computed in onnxruntime 1.17.0."""
    with rasterio.open(source) as src:
        np.save(tmp_path / "raster.npy", np.moveaxis(src.read(), 0, -1))
    args = [str(model), str(tmp_path / "raster.npy"), str(tmp_path / "out.npy"), kind]
    done = ort117.run("deepness_emulation.py", *args, *([] if overlap is None else [str(overlap)]))
    assert done.returncode == 0, done.stderr
    return np.load(tmp_path / "out.npy"), json.loads(done.stdout)


def translated(model: Path, source: Path, tmp_path: Path) -> np.ndarray:
    out = tmp_path / "translated.tif"
    translate_raster(source, model, out, TranslateSpec(device="cpu", tile_size=TILE, overlap=0, margin=0,
                                                             blend="crop"))
    with rasterio.open(out) as dst:
        return dst.read().astype(np.int16)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_the_regressor_profile_in_deepness_gives_translates_result(site, tmp_path, rng, dtype):
    model = write_model(tmp_path / "m.p2p", chip=TILE, in_dtype=dtype, in_range=INPUTS[dtype][0], grid=GRID)
    onnx_path = tmp_path / "m.onnx"
    result = export_onnx(model, onnx_path, deepness="regressor")
    assert result["check"]["ok"] and result["ir_version"] <= 9 and result["opset"] <= 20
    source = raster(tmp_path, dtype, rng)
    deepness, read = in_deepness(onnx_path, source, "regressor", tmp_path)  # the metadata's overlap: 0
    assert read["onnxruntime"] == "1.17.0" and read["numpy"].startswith("1.") and read["overlap"] == 0
    assert read["model_type"] == "Regressor" and read["tile_size"] == read["input_tile"] == TILE
    assert read["reg_output_scaling"] == 1.0 and read["class_names"] == [{"0": "band_1"}, {"0": "band_2"},
                                                                         {"0": "band_3"}]
    assert read["resolution"] == pytest.approx(CELL * METRES_PER_DEGREE * 100)  # cm/px on the training grid
    expected = translated(model, source, tmp_path)
    assert deepness.shape == expected.shape == (3, 128, 192)
    difference = np.abs(deepness.astype(np.int16) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
    assert deepness.std() > 3  # varies with the input, not a flat picture


def test_the_superresolution_profile_at_scale_1_gives_translates_result(site, tmp_path, rng):
    model = write_model(tmp_path / "m.p2p", chip=TILE, grid=GRID)
    onnx_path = tmp_path / "m.onnx"
    export_onnx(model, onnx_path, deepness="superresolution")
    source = raster(tmp_path, "uint8", rng)
    deepness, read = in_deepness(onnx_path, source, "superresolution", tmp_path)
    assert read["model_type"] == "Superresolution" and read["tiles_overlap"] == 0 and read["overlap"] == 0
    expected = translated(model, source, tmp_path)
    # Deepness' superresolution crop drops the last row and column.
    assert deepness.shape == (127, 191, 3)
    difference = np.abs(np.moveaxis(deepness, -1, 0).astype(np.int16) - expected[:, :-1, :-1])
    assert difference.max() <= 1


def test_the_regressor_runs_at_a_users_overlap_on_any_raster_size(site, tmp_path, rng):
    """25 % overlap set in the dock, a raster of no whole tiles: Deepness' own tile grid (38 rows of zeros above).

    translate tiles differently there, so the reference is the generator in torch with translate's
    arithmetic (clip, de-normalise, round, clip) on Deepness' tiles: the graph in onnxruntime 1.17
    must give the same levels (±1).
    """
    model = write_model(tmp_path / "m.p2p", chip=TILE, grid=GRID)
    export_onnx(model, tmp_path / "m.onnx", deepness="regressor", check=False)
    source = raster(tmp_path, "uint8", rng, shape=(150, 170))
    deepness, read = in_deepness(tmp_path / "m.onnx", source, "regressor", tmp_path, overlap=25)
    assert read["overlap"] == 25 and deepness.shape == (3, 150, 170)
    generator, card = load_model(model)
    norm_out = card.output.normalization

    def translate_arithmetic(batch: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            y = generator(torch.from_numpy(np.clip(batch, -1, 1))).numpy()
        return list(np.clip(np.rint(norm_out.invert(y)), 0, 255)[:, :, None].transpose(1, 0, 2, 3, 4))

    with rasterio.open(source) as src:
        image = np.moveaxis(src.read(), 0, -1)
    expected = deepness_infer(translate_arithmetic, image, TILE, 25, np.array(read["mean"], np.float32),
                              np.array(read["std"], np.float32), "regressor", 1.0, 3)
    assert np.abs(deepness.astype(np.int16) - expected.astype(np.int16)).max() <= 1


def test_the_plain_export_loads_in_onnxruntime_1_17_and_matches(site, tmp_path, rng):
    model = write_model(tmp_path / "m.p2p", in_bands=3, out_bands=2, chip=TILE, out_dtype="float32",
                        out_range=(-10.0, 40.0))
    result = export_onnx(model, tmp_path / "m.onnx")
    proto = onnx.load(tmp_path / "m.onnx")
    assert proto.ir_version == result["ir_version"] <= 9
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) <= 20
    props = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert "model_type" not in props and "resolution" not in props  # no Deepness profile, no training grid
    # Deepness' standardisation is written for every dtype (it divides by 255 whatever the dtype).
    assert props["standardization_mean"] == [127.5 / 255] * 3
    batch = rng.uniform(-1, 1, (2, 3, TILE, TILE)).astype(np.float32)
    np.save(tmp_path / "in.npy", batch)
    done = ort117.run("onnx_run.py", str(tmp_path / "m.onnx"), str(tmp_path / "in.npy"), str(tmp_path / "out.npy"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["onnxruntime"] == "1.17.0"
    from pix2pix_qgis.interop.onnx import session

    newest = session((tmp_path / "m.onnx").read_bytes()).run(None, {"input": batch})[0]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), newest, atol=1e-5)


def test_what_deepness_cannot_do_is_said_at_export(tmp_path):
    model = write_model(tmp_path / "m.p2p", chip=TILE, out_dtype="float32", out_range=(-10.0, 40.0))
    recorder = Recorder()
    export_onnx(model, tmp_path / "m.onnx", deepness="superresolution", check=False, progress=recorder)
    warnings = " ".join(e["message"] for e in recorder.events if e["type"] == "warning")
    assert "The target is float32 in [-10, 40], but Deepness stores results as whole numbers 0-255" in warnings
    assert "no 'resolution': set Deepness' Resolution to the raster's pixel size in cm" in warnings
    assert "Deepness' dock cannot run this Superresolution profile" in warnings
