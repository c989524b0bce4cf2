"""Hostile and damaged files: pickles never run, zip-slip refused, schemas enforced, truncation named."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.chips.manifest import load_manifest
from pix2pix_qgis.data.folder import open_chips
from pix2pix_qgis.model.checkpoint import load_checkpoint
from pix2pix_qgis.model.package import load_model
from pix2pix_qgis.train.config import TrainConfig
from pix2pix_qgis.train.loop import train

from ..conftest import write_raster
from ..data.test_dataset import mapping_chips
from ..models import write_model

REPO = Path(__file__).resolve().parents[3]


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


def translate_cli(source: Path, model: Path, out: Path) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "pix2pix_qgis", "translate", str(source), str(model), str(out),
                           "--device", "cpu", "--progress", "json"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    return proc.returncode, json.loads(proc.stdout.splitlines()[-1])


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


def test_the_schemas_accept_every_normalisation_and_norm_the_engine_writes():
    """The schema lists are literal (schema.py is imported by manifest.py, below dataset.py); keep them in step."""
    from pix2pix_qgis.core.schema import MODEL_SCHEMA
    from pix2pix_qgis.data.normalization import NORMALIZATION_METHODS
    from pix2pix_qgis.model.networks import GENERATOR_NORMS

    side = MODEL_SCHEMA["properties"]["output"]["properties"]["normalization"]["properties"]
    generator = MODEL_SCHEMA["properties"]["architecture"]["properties"]["generator"]["properties"]
    assert tuple(side["method"]["enum"]) == NORMALIZATION_METHODS
    assert tuple(generator["norm"]["enum"]) == GENERATOR_NORMS
