"""ONNX export (metadata, dynamic batch, ONNX Runtime = PyTorch) and the ONNX Runtime translate backend."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import rasterio
import torch

from pix2pix_qgis.contract.errors import Pix2PixError
from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.interop.onnx import compare_with_torch, export_onnx, session, within_tolerance
from pix2pix_qgis.model.package import load_model

from ..builders import write_raster
from ..models import write_model

onnx = pytest.importorskip("onnx", reason="ONNX support is the optional extra [onnx] (installed by make setup)")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("onnx") / "m.p2p", in_bands=3, out_bands=2, depth=4, ngf=8, chip=64,
                       out_dtype="float32", out_range=(-10.0, 40.0))


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx_out") / "m.onnx"
    return export_onnx(model, path), path


def test_the_onnx_file_has_a_dynamic_batch_and_the_metadata_other_tools_read(model, exported):
    result, path = exported
    proto = onnx.load(path)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value  # symbolic batch
    assert [d.dim_value for d in dims[1:]] == [3, 64, 64]
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim[1:]] == [2, 64, 64]
    props = {p.key: json.loads(p.value) for p in proto.metadata_props}
    metadata = json.loads(zipfile.ZipFile(model).read("model.json"))
    assert props["tile_size"] == 64 and props["tiles_overlap"] == 25
    assert props["model_format"] == "pix2pix-qgis-onnx" and props["model_version"] == 1
    assert props["input_normalization"] == metadata["input"]["normalization"]
    assert props["output_normalization"] == metadata["output"]["normalization"]
    assert props["input_bands"] == [1, 2, 3] and props["output_bands"] == [1, 2]
    assert props["output_dtype"] == "float32" and result["tile_size"] == 64
    assert result["check"]["ok"] and result["check"]["batch"] == 3


def test_deepness_standardisation_is_our_input_normalisation_for_8_bit_input(model, exported):
    _, path = exported
    props = {p.key: json.loads(p.value) for p in onnx.load(path).metadata_props}
    _, card = load_model(model)
    pixels = np.random.default_rng(0).integers(0, 256, (3, 8, 8)).astype(np.float32)
    mean = np.asarray(props["standardization_mean"])[:, None, None]
    std = np.asarray(props["standardization_std"])[:, None, None]
    np.testing.assert_allclose((pixels / 255 - mean) / std, card.input.normalization.apply(pixels), atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_runtime_gives_pytorchs_output(model, exported, batch):
    _, path = exported
    runner = session(path.read_bytes())
    generator, _ = load_model(model)
    x = np.random.default_rng(batch).uniform(-1, 1, (batch, 3, 64, 64)).astype(np.float32)
    errors = compare_with_torch(generator, lambda b: runner.run(None, {"input": b})[0], x)
    assert within_tolerance(errors), errors
    assert errors["max_abs_diff_vs_torch"] < 1e-4


def test_a_resize_upsampling_generator_exports_and_runs_like_pytorch(tmp_path):
    model = write_model(tmp_path / "resize.p2p", depth=4, ngf=8, chip=64, upsample="resize")
    result = export_onnx(model, tmp_path / "resize.onnx")
    ops = {node.op_type for node in onnx.load(tmp_path / "resize.onnx").graph.node}
    assert "ConvTranspose" not in ops and "Resize" in ops
    assert result["check"]["ok"] and result["check"]["max_abs_diff_vs_torch"] < 1e-4, result["check"]


def test_onnx_runtime_is_batch_invariant(exported):
    _, path = exported
    runner = session(path.read_bytes())
    x = np.random.default_rng(5).uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)
    together = runner.run(None, {"input": x})[0]
    alone = np.concatenate([runner.run(None, {"input": t[None]})[0] for t in x])
    assert np.array_equal(together, alone)


@pytest.mark.parametrize("tta", [False, True])
def test_the_onnxruntime_backend_translates_like_torch(model, tmp_path, rng, tta):
    data = rng.integers(0, 256, (3, 150, 170), dtype=np.uint8)
    source = write_raster(tmp_path / "in.tif", data)
    outputs = {}
    for backend, batch in (("torch", 4), ("onnxruntime", 4), ("onnxruntime", 1)):
        out = tmp_path / f"{backend}{batch}.tif"
        result = translate_raster(source, model, out, TranslateSpec(device="cpu", backend=backend, batch_size=batch,
                                                                    tta=tta))
        assert result["backend"] == backend
        with rasterio.open(out) as dst, rasterio.open(source) as src:
            assert (dst.crs, dst.transform, dst.width, dst.height, dst.count, dst.dtypes[0]) == (
                src.crs, src.transform, 170, 150, 2, "float32")
            outputs[backend, batch] = dst.read()
    assert np.array_equal(outputs["onnxruntime", 4], outputs["onnxruntime", 1])  # batch-invariant
    # Output range 50 units; float32 rounding of two libraries stays far below a hundredth of it.
    assert np.abs(outputs["onnxruntime", 4] - outputs["torch", 4]).max() < 5e-3


def test_an_unknown_backend_is_refused():
    with pytest.raises(Pix2PixError, match="Backend 'tensorrt' is unknown"):
        TranslateSpec(backend="tensorrt")


def test_a_missing_optional_package_names_the_install_command(model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(Pix2PixError, match=r"optional package 'onnxscript'.*pip install onnx onnxscript onnxruntime"):
        export_onnx(model, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_the_cli_exports_with_only_protocol_lines_on_stdout(model, tmp_path):
    done = subprocess.run([sys.executable, "-m", "pix2pix_qgis", "export-onnx", str(model), str(tmp_path / "c.onnx"),
                           "--progress", "json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]  # the exporter's chatter went to stderr
    assert events[-1]["type"] == "result" and events[-1]["result"]["check"]["ok"]
    assert onnx.load(tmp_path / "c.onnx").graph.input[0].name == "input"


def test_the_cli_exports_a_deepness_regressor(model, tmp_path):
    done = subprocess.run([sys.executable, "-m", "pix2pix_qgis", "export-onnx", str(model), str(tmp_path / "d.onnx"),
                           "--deepness", "regressor", "--progress", "json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1]["result"]["deepness"] == "Regressor" and events[-1]["result"]["check"]["ok"]
    assert [o.name for o in onnx.load(tmp_path / "d.onnx").graph.output] == ["band_1", "band_2"]
    assert any("stores results as whole numbers 0-255" in e["message"] for e in events if e["type"] == "warning")


def test_the_cli_translates_with_the_onnxruntime_backend(model, tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 256, (3, 70, 90), dtype=np.uint8))
    done = subprocess.run([sys.executable, "-m", "pix2pix_qgis", "translate", str(source), str(model),
                           str(tmp_path / "out.tif"), "--backend", "onnxruntime", "--progress", "json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1]["result"]["backend"] == "onnxruntime"
    assert any("ONNX Runtime backend ready" in e.get("message", "") for e in events)



def test_the_exported_graph_is_cached_per_model_and_tile_and_a_damaged_entry_is_replaced(model, tmp_path,
                                                                                         monkeypatch, rng):
    from pix2pix_qgis.infer import onnxruntime as onnx_backend
    from pix2pix_qgis.infer.onnxruntime import OnnxRuntimeBackend

    monkeypatch.setenv("PIX2PIX_CACHE_DIR", str(tmp_path / "cache"))
    generator, card = load_model(model)
    batch = card.input.normalization.apply(rng.integers(0, 256, (2, 3, 64, 64)).astype(np.float32))
    first = OnnxRuntimeBackend(generator, card, 64, tta=False)
    entries = list((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert not first.from_cache and len(entries) == 1

    exports = []
    real_export = onnx_backend.generator_to_onnx
    monkeypatch.setattr(onnx_backend, "generator_to_onnx", lambda *a: exports.append(a) or real_export(*a))
    second = OnnxRuntimeBackend(generator, card, 64, tta=False)
    assert second.from_cache and not exports
    assert np.array_equal(first(batch), second(batch))

    OnnxRuntimeBackend(generator, card, 32, tta=False)  # another tile size: another graph
    assert len(exports) == 1 and len(list((tmp_path / "cache" / "onnx").glob("*.onnx"))) == 2

    entries[0].write_bytes(b"not an onnx graph")
    repaired = OnnxRuntimeBackend(generator, card, 64, tta=False)
    assert not repaired.from_cache and len(exports) == 2 and entries[0].read_bytes()[:4] != b"not "
    assert np.array_equal(first(batch), repaired(batch))

    with torch.no_grad():
        next(generator.parameters()).add_(1.0)  # other weights: never served the old graph
    changed = OnnxRuntimeBackend(generator, card, 64, tta=False)
    assert not changed.from_cache and not np.array_equal(first(batch), changed(batch))

    monkeypatch.setenv("PIX2PIX_CACHE_DIR", "off")
    assert not OnnxRuntimeBackend(generator, card, 64, tta=False).from_cache


@pytest.mark.parametrize(("direction", "bands_in", "bands_out"), [("a2b", 3, 1), ("b2a", 1, 3)])
def test_each_direction_of_a_cyclegan_exports_and_runs_like_pytorch(tmp_path, direction, bands_in, bands_out):
    import onnx

    from ..models import write_cyclegan_model

    model = write_cyclegan_model(tmp_path / "cycle.p2p")
    result = export_onnx(model, tmp_path / f"{direction}.onnx", direction=direction)
    assert result["check"]["ok"] and result["direction"] == direction
    proto = onnx.load(tmp_path / f"{direction}.onnx")
    meta = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert (meta["direction"], meta["model_kind"], meta["architecture"]["type"]) == (direction, "cyclegan", "resnet")
    assert (len(meta["input_normalization"]["low"]), len(meta["output_normalization"]["low"])) == (bands_in, bands_out)
    generator, _ = load_model(model, direction=direction)
    batch = np.random.default_rng(1).uniform(-1, 1, (2, bands_in, 32, 32)).astype(np.float32)
    runner = session(proto.SerializeToString())
    assert within_tolerance(compare_with_torch(generator, lambda b: runner.run(None, {"input": b})[0], batch))


def test_b2a_export_of_a_pix2pix_model_is_refused(model, tmp_path):
    with pytest.raises(Pix2PixError, match="cannot translate B→A"):
        export_onnx(model, tmp_path / "b2a.onnx", direction="b2a")
    assert not (tmp_path / "b2a.onnx").exists()
