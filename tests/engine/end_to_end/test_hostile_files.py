"""Hostile and damaged files: pickles never run, zip-slip refused, schemas enforced, truncation named."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from safetensors.torch import save as save_safetensors

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.chips.manifest import load_manifest
from pix2pix_qgis.data.folder import open_chips
from pix2pix_qgis.model.archive import parse_safetensors
from pix2pix_qgis.model.checkpoint import load_checkpoint
from pix2pix_qgis.model.package import load_model
from pix2pix_qgis.train.config import TrainConfig
from pix2pix_qgis.train.loop import train

from ..builders import mapping_chips, write_raster
from ..cli_runs import REPO, run_cli, translate_cli
from ..models import write_model


class Payload:
    """Unpickling this creates ``path``: proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def zip_with(source: Path, target: Path, replace: dict[str, bytes] | None = None,
             extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(source) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries.update(replace or {})
    entries.update(extra or {})
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return target


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_model(tmp_path_factory.mktemp("model") / "m.p2p", chip=32, depth=3)


@pytest.mark.parametrize("entry", ["data.pkl", "archive/data.pkl", "weights.pth", "model.pt"])
def test_a_pickle_payload_in_a_package_never_runs_through_the_cli(model, tmp_path, rng, entry):
    marker = tmp_path / "payload-ran"
    pickle.loads(pickle.dumps(Payload(marker)))  # the payload is real: unpickling it runs code...
    assert marker.exists()
    marker.unlink()
    hostile = zip_with(model, tmp_path / "hostile.p2p", extra={entry: pickle.dumps(Payload(marker))})
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 40, 40), dtype="uint8"))
    code, error = translate_cli(source, hostile, tmp_path / "out.tif")
    assert code == 2 and error["kind"] == "bad_input" and str(hostile) in error["message"]
    assert not marker.exists()  # ...but loading the package never did
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("name", ["../evil.json", "/etc/evil.json", "a/../../evil.json", "..\\evil.json"])
def test_zip_slip_entries_are_refused(model, tmp_path, name):
    hostile = zip_with(model, tmp_path / "slip.p2p", extra={name: b"{}"})
    with pytest.raises(Pix2PixError, match="outside the package"):
        load_model(hostile)
    assert not (tmp_path.parent / "evil.json").exists()


def with_model_json(model: Path, target: Path, change) -> Path:
    metadata = json.loads(zipfile.ZipFile(model).read("model.json"))
    change(metadata)
    return zip_with(model, target, replace={"model.json": json.dumps(metadata).encode()})


@pytest.mark.parametrize(("change", "field", "problem"), [
    (lambda m: m.pop("input"), "the top level", "'input' is a required property"),
    (lambda m: m.update(chip_size="256"), "chip_size", "'256' is not of type integer"),
    (lambda m: m["architecture"]["generator"].update(depth=40), "architecture.generator.depth", "40"),
    (lambda m: m["architecture"]["generator"].pop("ngf"), "architecture.generator", "'ngf' is a required property"),
    (lambda m: m["output"]["normalization"].update(low="0"), "output.normalization.low", "not of type array"),
    (lambda m: m["input"].update(bands=[1, "two"]), "input.bands[1]", "'two' is not of type integer"),
    (lambda m: m["output"].update(dtype="complex256"), "output.dtype", "complex256"),
])
def test_model_json_is_validated_with_errors_naming_file_and_field(model, tmp_path, change, field, problem):
    bad = with_model_json(model, tmp_path / "bad.p2p", change)
    with pytest.raises(Pix2PixError) as caught:
        load_model(bad)
    message = str(caught.value)
    assert message.startswith(f"{bad}: model.json is invalid at {field}: ") and problem in message


@pytest.fixture(scope="module")
def chips(tmp_path_factory) -> Path:
    return mapping_chips(tmp_path_factory.mktemp("chips"), size=64, tile=32, validation=0.0)


def with_manifest(chips: Path, target: Path, change) -> Path:
    import shutil

    shutil.copytree(chips, target)
    manifest = json.loads((target / "chips.json").read_text())
    change(manifest)
    (target / "chips.json").write_text(json.dumps(manifest))
    return target


@pytest.mark.parametrize(("change", "field", "problem"), [
    (lambda m: m["chips"][0].update(name="../../a.tif"), "chips[0].name", "not a plain file or folder name"),
    (lambda m: m["chips"][0].update(name="/etc/passwd"), "chips[0].name", "not a plain file or folder name"),
    (lambda m: m["a"].update(folder=".."), "a.folder", "not a plain file or folder name"),
    (lambda m: m["chips"][1].update(split="test"), "chips[1].split", "'test' is not one of ['train', 'validation']"),
    (lambda m: m.update(tile_size=-32), "tile_size", "-32"),
    (lambda m: m["b"].pop("statistics"), "b", "'statistics' is a required property"),
    (lambda m: m.update(chips={"name": "x"}), "chips", "is not of type array"),
])
def test_chips_json_is_validated_with_errors_naming_file_and_field(chips, tmp_path, change, field, problem):
    bad = with_manifest(chips, tmp_path / "bad", change)
    with pytest.raises(Pix2PixError) as caught:
        open_chips(bad)
    message = str(caught.value)
    assert message.startswith(f"{bad / 'chips.json'}: chips.json is invalid at {field}: ") and problem in message
    assert "Re-run the export." in message


def test_a_newer_chips_format_asks_for_an_update_not_a_schema_error(chips, tmp_path):
    bad = with_manifest(chips, tmp_path / "newer", lambda m: m.update(format_version=2, chips="changed"))
    with pytest.raises(Pix2PixError, match="Update the plugin"):
        load_manifest(bad)


def test_a_truncated_model_names_the_file(model, tmp_path):
    data = model.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 100):
        cut_model = tmp_path / f"cut {cut}.p2p"
        cut_model.write_bytes(data[:cut])
        with pytest.raises(Pix2PixError, match=f"{cut_model} is truncated or damaged"):
            load_model(cut_model)


def test_a_damaged_entry_names_the_file(model, tmp_path):
    data = bytearray(model.read_bytes())
    info = zipfile.ZipFile(model).getinfo("weights.safetensors")
    data[info.header_offset + 200] ^= 0xFF  # inside the stored tensors: the CRC no longer matches
    damaged = tmp_path / "damaged.p2p"
    damaged.write_bytes(bytes(data))
    with pytest.raises(Pix2PixError, match=f"{damaged} is truncated or damaged"):
        load_model(damaged)


def test_a_truncated_checkpoint_names_the_file(chips, tmp_path):
    model = tmp_path / "m.p2p"
    train(chips, model, TrainConfig(epochs=1, ngf=4, ndf=4))
    ckpt = tmp_path / "m.p2p.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:-1000])
    with pytest.raises(Pix2PixError, match=f"{ckpt} is truncated or damaged"):
        load_checkpoint(ckpt)
    with pytest.raises(Pix2PixError, match=f"{ckpt} is truncated or damaged"):
        train(chips, model, TrainConfig(epochs=2, ngf=4, ndf=4), resume=True)


@pytest.mark.parametrize("folder", ["images", "images2"])
def test_a_truncated_chip_names_the_file(chips, tmp_path, folder):
    import shutil

    copy = shutil.copytree(chips, tmp_path / "chips")
    chip = sorted((copy / folder).iterdir())[1]
    chip.write_bytes(chip.read_bytes()[: chip.stat().st_size // 2])
    with pytest.raises(Pix2PixError, match=f"Chip {chip} cannot be read .* damaged or truncated. Re-run the export"):
        train(copy, tmp_path / "m.p2p", TrainConfig(epochs=1, ngf=4, ndf=4))


def _weights_only(call) -> bool:
    return any(k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in call.keywords)


def _pickle_only_for_its_error(tree) -> bool:
    """``import pickle`` just to catch ``pickle.UnpicklingError`` (raised by a weights-only load)."""
    import ast

    uses = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == "pickle"]
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    return all(isinstance(parents.get(id(use)), ast.Attribute) and parents[id(use)].attr == "UnpicklingError"
               for use in uses)


def test_the_engine_has_no_shell_no_pickle_and_no_eval():
    """Static guard: no module of the engine can start a shell or unpickle, whatever a file says.

    The two allowed forms are those of the reference-checkpoint import: ``torch.load`` with a
    literal ``weights_only=True`` (tensors only) and ``import pickle`` used only for its error class.
    """
    import ast

    banned_modules = {"pickle", "cPickle", "dill", "marshal", "shelve", "subprocess", "joblib"}
    banned_calls = {"os.system", "os.popen", "torch.load", "eval", "exec", "numpy.load", "np.load"}
    found = []
    sources = sorted((REPO / "pix2pix_qgis").rglob("*.py"))
    assert len(sources) > 50 and any(s.parent.name == "model" for s in sources)  # every sub-package is walked
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        where = str(source.relative_to(REPO))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(where, a.name) for a in node.names if a.name.split(".")[0] in banned_modules
                          and not (a.name == "pickle" and a.asname is None and _pickle_only_for_its_error(tree))]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in banned_modules:
                found.append((where, node.module))
            elif isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in banned_calls and not (name == "torch.load" and _weights_only(node)):
                    found.append((where, name))
    assert found == []
    assert _pickle_only_for_its_error(ast.parse("import pickle\npickle.loads(b'')")) is False


def test_the_schemas_accept_every_normalisation_norm_and_upsampling_the_engine_writes():
    """The schema lists are literal (schema.py is imported by manifest.py, below dataset.py); keep them in step."""
    from pix2pix_qgis.core.schema import MODEL_SCHEMA
    from pix2pix_qgis.data.normalization import NORMALIZATION_METHODS
    from pix2pix_qgis.model.networks import GENERATOR_NORMS, UPSAMPLES

    side = MODEL_SCHEMA["properties"]["output"]["properties"]["normalization"]["properties"]
    generator = MODEL_SCHEMA["properties"]["architecture"]["properties"]["generator"]["properties"]
    assert tuple(side["method"]["enum"]) == NORMALIZATION_METHODS
    assert tuple(generator["norm"]["enum"]) == GENERATOR_NORMS
    assert tuple(generator["upsample"]["enum"]) == UPSAMPLES


def test_safetensors_whose_header_length_starts_like_a_pickle_still_load():
    """A header of 128 bytes starts the file with 0x80, a pickle's first byte: the header's shape decides."""
    blobs = (save_safetensors({"w": torch.arange(3.0)}, metadata={"pad": "x" * n}) for n in range(300))
    blob = next(blob for blob in blobs if blob[:1] == b"\x80")
    assert torch.equal(parse_safetensors(blob, "weights.safetensors", Path("m.p2p"))["w"], torch.arange(3.0))
    with pytest.raises(Pix2PixError, match="is a pickle or a PyTorch file"):
        parse_safetensors(pickle.dumps({"w": 1}), "weights.safetensors", Path("m.p2p"))


def test_a_model_whose_weights_header_length_ends_in_byte_0x80_loads_and_translates(tmp_path, rng):
    """About one architecture in 15 (every depth-7 / NGF-32 / instance-norm model among them) has a safetensors
    header whose length's low byte, the file's first byte, is 0x80: a pickle's first byte. It is not a pickle."""
    model = write_model(tmp_path / "m.p2p", depth=7, ngf=32, norm="instance", chip=128)
    assert zipfile.ZipFile(model).read("weights.safetensors")[0] == 0x80
    load_model(model)
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 128, 128), dtype="uint8"))
    run = run_cli("translate", str(source), str(model), str(tmp_path / "out.tif"), "--device", "cpu")
    assert run.code == 0, run.message


def test_a_checkpoint_whose_tensors_header_length_ends_in_byte_0x80_loads(tmp_path):
    from pix2pix_qgis.model.checkpoint import save_checkpoint

    for length in range(1, 200):  # a tensor name that makes the header length end in 0x80
        tensors = {"n" * length: torch.zeros(2)}
        if save_safetensors(tensors)[0] == 0x80:
            break
    else:
        pytest.fail("no name length gives a header length ending in 0x80")
    path = save_checkpoint(tmp_path / "m.p2p.ckpt", {}, tensors)
    document, loaded = load_checkpoint(path)
    assert document["format"] == "pix2pix-checkpoint" and torch.equal(loaded["n" * length], torch.zeros(2))


def test_a_zip_bomb_is_refused_before_it_inflates(model, tmp_path, rng):
    """2 MB on disk, a weights entry of 2 GiB inside: refused from its sizes, the engine staying under 500 MB."""
    bomb = tmp_path / "bomb.p2p"
    with zipfile.ZipFile(model) as source, zipfile.ZipFile(bomb, "w") as target:
        for name in source.namelist():
            if name != "weights.safetensors":
                target.writestr(name, source.read(name))
                continue
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            with target.open(info, "w", force_zip64=True) as entry:
                zeros = bytes(2**24)
                for _ in range(128):
                    entry.write(zeros)
    assert bomb.stat().st_size < 3 * 2**20
    source_raster = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 40, 40), dtype="uint8"))
    # A small parent starts the engine and reports its peak: a child forked from pytest itself would count
    # pytest's own memory (Linux keeps the pre-exec peak in ru_maxrss).
    measure = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); _, s, u = os.wait4(p.pid, 0); "
               "print(os.waitstatus_to_exitcode(s), u.ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "pix2pix_qgis", "translate",
                           str(source_raster), str(bomb), str(tmp_path / "out.tif"), "--device", "cpu",
                           "--progress", "json"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    *lines, measured = proc.stdout.splitlines()
    code, peak_kib = map(int, measured.split())
    error = json.loads(lines[-1])
    assert code == 2 and "zip bomb" in error["message"], (error, proc.stderr[-2000:])
    assert peak_kib < 500 * 1024  # the engine's own imports are about 350 MB
    assert not (tmp_path / "out.tif").exists()


DEEP = "[" * 100_000 + "]" * 100_000


def test_json_nested_100000_deep_is_refused_wherever_it_is(model, chips, tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 40, 40), dtype="uint8"))
    deep_model = zip_with(model, tmp_path / "deep.p2p", replace={"model.json": DEEP.encode()})
    run = run_cli("translate", str(source), str(deep_model), str(tmp_path / "out.tif"), "--device", "cpu")
    assert run.refused(f"{deep_model}: model.json nests JSON deeper than the 64 levels")

    deep_chips = with_manifest(chips, tmp_path / "deep chips", lambda m: None)
    (deep_chips / "chips.json").write_text(DEEP)
    run = run_cli("train", str(deep_chips), str(tmp_path / "m.p2p"), "--epochs", "1", "--device", "cpu")
    assert run.refused(f"{deep_chips / 'chips.json'} nests JSON deeper", "Re-run the export")

    trained = tmp_path / "trained.p2p"
    train(chips, trained, TrainConfig(epochs=1, ngf=4, ndf=4))
    ckpt = Path(f"{trained}.ckpt")
    zip_with(ckpt, tmp_path / "deep.ckpt", replace={"checkpoint.json": DEEP.encode()}).replace(ckpt)
    run = run_cli("train", str(chips), str(trained), "--epochs", "2", "--ngf", "4", "--ndf", "4", "--device", "cpu",
                  "--resume")
    assert run.refused(f"{ckpt}: checkpoint.json nests JSON deeper")

    mask = tmp_path / "mask.geojson"
    mask.write_text(DEEP)
    run = run_cli("export", str(source), str(source), str(tmp_path / "out"), "--tile-size", "32", "--mask", str(mask))
    assert run.refused(f"The mask {mask} nests JSON deeper")

    from pix2pix_qgis.infer.translate import TranslateSpec
    from pix2pix_qgis.scale.parts import part_paths, translate_part

    translate_part(source, model, tmp_path / "parts", TranslateSpec(device="cpu", part=(0, 1)))
    sidecar = part_paths(tmp_path / "parts", 0, 1)[1]
    sidecar.write_text(DEEP)
    run = run_cli("assemble", str(tmp_path / "parts"), str(tmp_path / "out.vrt"))
    assert run.refused(f"{sidecar} nests JSON deeper") and not (tmp_path / "out.vrt").exists()


def test_json_nested_a_few_hundred_deep_is_refused_naming_the_field(chips, tmp_path):
    """Deep enough to be parsed, and then to break whatever copies it (the model package gets the chips' grid)."""
    nested: list = []
    for _ in range(300):
        nested = [nested]
    deep = with_manifest(chips, tmp_path / "deep", lambda m: m.update(grid={"crs": nested}))
    with pytest.raises(Pix2PixError, match=r"nests JSON deeper than the 64 levels the engine reads \(at grid\.crs"):
        open_chips(deep)


def rewrite_weights(model: Path, target: Path, change) -> Path:
    from safetensors.torch import load, save

    tensors = load(zipfile.ZipFile(model).read("weights.safetensors"))
    return zip_with(model, target, replace={"weights.safetensors": save({k: change(k, v) for k, v in tensors.items()})})


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_weights_in_another_float_type_load_as_float32(model, tmp_path, rng, dtype):
    other = rewrite_weights(model, tmp_path / "other.p2p",
                            lambda k, v: v.to(dtype) if v.is_floating_point() else v)
    generator, _ = load_model(other)
    assert {p.dtype for p in generator.state_dict().values() if p.is_floating_point()} == {torch.float32}
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 40, 40), dtype="uint8"))
    run = run_cli("translate", str(source), str(other), str(tmp_path / "other.tif"), "--device", "cpu")
    assert run.code == 0, run.message
    if dtype == torch.float64:  # float32 values widened to float64: the same network, the same raster
        assert run_cli("translate", str(source), str(model), str(tmp_path / "same.tif"), "--device", "cpu").code == 0
        with rasterio.open(tmp_path / "other.tif") as a, rasterio.open(tmp_path / "same.tif") as b:
            assert (a.read() == b.read()).all()


@pytest.mark.parametrize("command", ["translate", "export-onnx"])
@pytest.mark.parametrize("fault", ["nan weights", "inf weights", "nan normalisation", "flat normalisation"])
def test_nan_weights_or_normalisation_are_refused_at_load_naming_the_field(model, tmp_path, rng, command, fault):
    def poison(key, value):
        if key == "model.model.0.weight":
            value = value.clone()
            value[0, 0, 0, 0] = float("nan") if fault == "nan weights" else float("inf")
        return value

    if "weights" in fault:
        bad = rewrite_weights(model, tmp_path / "bad.p2p", poison)
        expected = "NaN or infinite values in tensor 'model.model.0.weight'"
    else:
        def change(m):
            m["input"]["normalization"]["low"][0] = float("nan") if fault == "nan normalisation" else 255.0
        bad = with_model_json(model, tmp_path / "bad.p2p", change)
        expected = ("at input.normalization.low[0]" if fault == "nan normalisation"
                    else "band 1 maps [255.0, 255.0]. Each band needs finite values with low below high")
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 40, 40), dtype="uint8"))
    out = tmp_path / ("out.tif" if command == "translate" else "out.onnx")
    args = (str(source), str(bad), str(out), "--device", "cpu") if command == "translate" else (str(bad), str(out))
    run = run_cli(command, *args)
    assert run.refused(str(bad), expected)  # used to be an all-zero raster, or "ok": false with exit 0
    assert not out.exists()


def rewrite_chip(path: Path, bands: int) -> None:
    with rasterio.open(path) as src:
        profile, data = src.profile, src.read()
    data = np.concatenate([data] * 2)[:bands]
    profile.update(count=bands, photometric="MINISBLACK")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


@pytest.mark.parametrize("layout", ["chips.json", "esri"])
@pytest.mark.parametrize(("folder", "bands"), [("images", 1), ("images", 2), ("images", 4), ("images2", 1)])
def test_a_chip_with_other_bands_than_its_folder_is_refused_by_name(chips, tmp_path, layout, folder, bands):
    import shutil

    copy = shutil.copytree(chips, tmp_path / "chips")
    if layout == "esri":
        (copy / "chips.json").unlink()
    chip = sorted((copy / folder).iterdir())[1]
    rewrite_chip(chip, bands)
    run = run_cli("train", str(copy), str(tmp_path / "m.p2p"), "--epochs", "1", "--ngf", "4", "--ndf", "4",
                  "--device", "cpu", "--validation", "0")
    assert run.refused(f"Chip {chip} has {bands} band(s) but the folder's", "have 3")
    assert not (tmp_path / "m.p2p").exists()


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "1e999"])
def test_statistics_that_are_not_finite_are_refused_naming_the_field(chips, tmp_path, value):
    bad = with_manifest(chips, tmp_path / "bad", lambda m: None)
    text = (bad / "chips.json").read_text()
    manifest = json.loads(text)
    manifest["b"]["statistics"][1]["p99"] = "MARK"
    (bad / "chips.json").write_text(json.dumps(manifest).replace('"MARK"', value))
    run = run_cli("train", str(bad), str(tmp_path / "m.p2p"), "--epochs", "1", "--device", "cpu")
    assert run.refused(f"{bad / 'chips.json'} has", "at b.statistics[1].p99, which is not a finite number",
                       "Re-run the export")


def test_a_part_sidecar_cannot_point_outside_its_folder(model, tmp_path, rng):
    from pix2pix_qgis.infer.translate import TranslateSpec
    from pix2pix_qgis.scale.parts import part_paths, translate_part

    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 40, 40), dtype="uint8"))
    parts = tmp_path / "job" / "parts"
    translate_part(source, model, parts, TranslateSpec(device="cpu", part=(0, 1)))
    tif, sidecar = part_paths(parts, 0, 1)
    outside = tmp_path / "elsewhere.tif"
    tif.replace(outside)
    document = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**document, "file": "../../elsewhere.tif"}))
    run = run_cli("assemble", str(parts), str(tmp_path / "out.vrt"))
    assert run.refused(str(sidecar), "'../../elsewhere.tif'") and not (tmp_path / "out.vrt").exists()
    sidecar.write_text(json.dumps({**document, "file": "part-0001-of-0002.tif"}))  # a plain name, but not its own
    assert run_cli("assemble", str(parts), str(tmp_path / "out.vrt")).refused("a sidecar describes its own part")


def test_devices_fifos_and_folders_are_never_read_as_input_files(model, tmp_path, rng):
    """/dev/zero as a mask used to be read until the system killed the engine; a FIFO blocked it for ever."""
    fifo, folder = tmp_path / "pipe", tmp_path / "folder"
    os.mkfifo(fifo)
    folder.mkdir()
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 40, 40), dtype="uint8"))
    for bad, kind in (("/dev/zero", "is a device, not a regular file"), (fifo, "is a FIFO (named pipe), not a "),
                      (folder, "is a folder, not a file")):
        run = run_cli("evaluate", str(source), str(source), "--mask", str(bad), timeout=120)
        assert run.refused(f"The mask {bad} {kind}"), run.message
        run = run_cli("translate", str(source), str(bad), str(tmp_path / "out.tif"), "--device", "cpu", timeout=120)
        assert run.refused(f"The model package (.p2p) {bad} {kind}"), run.message
        run = run_cli("import-reference", str(bad), str(tmp_path / "out.p2p"), timeout=120)
        assert run.refused(f"The checkpoint {bad} {kind}"), run.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "in.tif", "pipe"]
