"""The whole CLI against hostile inputs, property-based: whatever the input, the engine's rules hold.

Hypothesis draws a command (export, export-unpaired, translate, evaluate, evaluate-unpaired,
train, assemble, export-onnx, import-reference) with inputs from a fixed set of hostile files — south-up, complex,
unreferenced, truncated and VRT rasters; NaN, float16, truncated, deeply nested, pickled
and bombed models; chips folders with a stray chip, infinite statistics or a nested
manifest; masks, part sidecars — and outputs that are inputs, links to them, devices,
FIFOs, folders, names too long or in unwritable places. Each example runs the CLI in a
real subprocess and checks what ``docs/reliability.md`` promises:

- exit code 0, 2 or 130, never 1 (a bug), and never a traceback;
- every stdout line is a protocol line;
- every input is byte for byte what it was (hashes of all the files, every example);
- nothing at an output path unless the run succeeded (what was there is unchanged), and
  no hidden partial or lock left behind.

Bounded for CI: a fixed number of examples, derandomized (the same examples on every run)
and no shrinking, on tiny rasters and networks: about three minutes on two shared cores.
Numbers out of their ranges (negative margins, NaN extents, unknown devices) are left to
the parameter table's own tests; the values drawn here are legal, the files and paths not.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import rasterio.shutil
import torch
from affine import Affine
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from pix2pix_qgis.chips.export import export_chips
from pix2pix_qgis.chips.spec import ChipSpec
from pix2pix_qgis.chips.unpaired import UnpairedSpec, export_unpaired
from pix2pix_qgis.infer.translate import TranslateSpec
from pix2pix_qgis.scale.parts import part_paths, translate_part

from ..builders import smooth_field, write_raster
from ..cli_runs import fingerprint, run_cli
from ..models import write_model
from ..reference_pix2pix import define_G, save_networks

EXAMPLES = 44
LEFTOVER = (".partial-", ".lock", ".old-")


@dataclass
class World:
    """The hostile inputs, made once; every example must leave all of them as they are."""

    root: Path
    rasters: dict[str, str] = field(default_factory=dict)  # GDAL names, some not plain paths
    models: dict[str, Path] = field(default_factory=dict)
    chips: dict[str, Path] = field(default_factory=dict)
    masks: dict[str, Path] = field(default_factory=dict)
    parts: dict[str, Path] = field(default_factory=dict)
    references: dict[str, Path] = field(default_factory=dict)

    def files(self) -> list[Path]:
        every = [*self.models.values(), *self.chips.values(), *self.masks.values(), *self.parts.values(),
                 *self.references.values()]
        return every + [self.root / "rasters"]


def rewrite(source: Path, target: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(source) as archive:
        kept = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in {**kept, **entries}.items():
            archive.writestr(name, data)
    return target


def make_rasters(folder: Path, rng: np.random.Generator) -> dict[str, str]:
    a = smooth_field(rng, 3, 64)
    b = (255 - a[[2, 0, 1]]).astype("uint8")
    south = Affine(10.0, 0.0, 500_000.0, 0.0, 10.0, 4_999_360.0)
    made = {
        "a": write_raster(folder / "a.tif", a),
        "b": write_raster(folder / "b ; $(x) ü.tif", b),
        "south a": write_raster(folder / "south a.tif", a, transform=south),
        "south b": write_raster(folder / "south b.tif", b, transform=south),
        "no crs": write_raster(folder / "no crs.tif", a, crs=None),
        "complex": write_raster(folder / "complex.tif", (a + 1j * a).astype("complex64")),
        "float nan": write_raster(folder / "float nan.tif", np.where(a > 200, np.nan, a).astype("float32")),
        "one band": write_raster(folder / "one band.tif", a[:1]),
        "tiny": write_raster(folder / "tiny.tif", a[:, :8, :8]),
        "geographic": write_raster(folder / "geographic.tif", b, crs="EPSG:4326",  # over a, on another grid
                                   transform=Affine(0.00015, 0, 14.9995, 0, -0.0001, 45.1538)),
    }
    truncated = folder / "truncated.tif"
    data = made["a"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    (folder / "text.tif").write_text("not a raster")
    rasterio.shutil.copy(made["a"], folder / "a.vrt", driver="VRT")
    missing = write_raster(folder / "gone.tif", a)
    rasterio.shutil.copy(missing, folder / "missing source.vrt", driver="VRT")
    missing.unlink()
    with zipfile.ZipFile(folder / "a.zip", "w") as archive:
        archive.write(made["a"], "a.tif")
    names = {key: str(path) for key, path in made.items()}
    names.update({"truncated": str(truncated), "text": str(folder / "text.tif"), "vrt": str(folder / "a.vrt"),
                  "missing source": str(folder / "missing source.vrt"), "zip": f"/vsizip/{folder / 'a.zip'}/a.tif",
                  "subdataset": f"GTIFF_DIR:1:{made['a']}", "absent": str(folder / "absent.tif")})
    return names


def make_models(folder: Path) -> dict[str, Path]:
    good = write_model(folder / "good.p2p", chip=32, depth=3, ngf=4)
    weights = load_safetensors(zipfile.ZipFile(good).read("weights.safetensors"))
    model_json = json.loads(zipfile.ZipFile(good).read("model.json"))

    def with_weights(name: str, change) -> Path:
        changed = {key: change(key, value) for key, value in weights.items()}
        return rewrite(good, folder / name, {"weights.safetensors": save_safetensors(changed)})

    nan_model = with_weights("nan.p2p", lambda k, v: v * float("nan") if k.endswith("0.weight") else v)
    half = with_weights("half.p2p", lambda k, v: v.half() if v.is_floating_point() else v)
    nan_norm = json.loads(json.dumps(model_json))
    nan_norm["output"]["normalization"]["high"][0] = float("nan")
    bomb = folder / "bomb.p2p"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(bomb, "w") as target:
        for name in source.namelist():
            if name == "weights.safetensors":
                target.writestr(name, bytes(64 * 2**20), compress_type=zipfile.ZIP_DEFLATED)
            else:
                target.writestr(name, source.read(name))
    truncated = folder / "truncated.p2p"
    truncated.write_bytes(good.read_bytes()[:-300])
    pickled = folder / "pickled.p2p"
    torch.save({"weight": torch.zeros(2)}, pickled)
    return {"good": good, "nan weights": nan_model, "half": half, "bomb": bomb, "truncated": truncated,
            "pickled": pickled,
            "nan normalisation": rewrite(good, folder / "nan norm.p2p", {"model.json": json.dumps(nan_norm).encode()}),
            "deep": rewrite(good, folder / "deep.p2p", {"model.json": b"[" * 50_000 + b"]" * 50_000})}


def make_chips(folder: Path, rasters: dict[str, str]) -> dict[str, Path]:
    good = folder / "good"
    export_chips(rasters["a"], rasters["b"], good, ChipSpec(tile_size=16, stride=16, validation=0.25))
    made = {"good": good}
    made["esri"] = shutil.copytree(good, folder / "esri")
    (made["esri"] / "chips.json").unlink()
    made["stray chip"] = shutil.copytree(good, folder / "stray chip")
    chip = sorted((made["stray chip"] / "images").iterdir())[1]
    with rasterio.open(chip) as src:
        profile, data = src.profile, src.read(1)
    profile.update(count=1, photometric="MINISBLACK")
    with rasterio.open(chip, "w", **profile) as dst:
        dst.write(data[None])
    made["infinite stats"] = shutil.copytree(good, folder / "infinite stats")
    manifest = json.loads((good / "chips.json").read_text())
    manifest["a"]["statistics"][0]["p99"] = float("inf")
    (made["infinite stats"] / "chips.json").write_text(json.dumps(manifest))
    made["deep"] = shutil.copytree(good, folder / "deep")
    (made["deep"] / "chips.json").write_text("{" + '"a":{' * 5000 + "}" * 5001)
    made["empty"] = folder / "empty"
    made["empty"].mkdir()
    made["unpaired"] = folder / "unpaired"
    export_unpaired(rasters["a"], rasters["geographic"], made["unpaired"],
                    UnpairedSpec(tile_size=16, stride=16, validation=0.25))
    made["unpaired without B"] = shutil.copytree(made["unpaired"], folder / "unpaired without B")
    shutil.rmtree(made["unpaired without B"] / "B")
    made["unpaired deep"] = shutil.copytree(made["unpaired"], folder / "unpaired deep")
    (made["unpaired deep"] / "chips.json").write_text("{" + '"a":{' * 5000 + "}" * 5001)
    return made


def make_masks(folder: Path) -> dict[str, Path]:
    ring = [[500_000, 4_999_360], [500_640, 4_999_360], [500_640, 5_000_000], [500_000, 5_000_000],
            [500_000, 4_999_360]]
    feature = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    named = {"type": "FeatureCollection", "features": [feature],
             "crs": {"type": "name", "properties": {"name": "EPSG:32633"}}}
    documents = {"good": json.dumps(named), "no crs": json.dumps({**named, "crs": None}),
                 "deep": "[" * 50_000 + "]" * 50_000, "not json": "polygons, honestly",
                 "bad crs": json.dumps({**named, "crs": {"properties": {"name": "EPSG:99999"}}}),
                 "points": json.dumps({"type": "Point", "coordinates": [1, 2]})}
    folder.mkdir()
    made = {}
    for name, text in documents.items():
        made[name] = folder / f"{name}.geojson"
        made[name].write_text(text)
    return made


def make_parts(folder: Path, rasters: dict[str, str], model: Path) -> dict[str, Path]:
    good = folder / "good"
    translate_part(rasters["a"], model, good, TranslateSpec(device="cpu", part=(0, 1)))
    tif, sidecar = part_paths(good, 0, 1)
    document = json.loads(sidecar.read_text())
    made = {"good": good}
    for name, content in (("escaping", json.dumps({**document, "file": "../../rasters/a.tif"})),
                          ("deep", "[" * 50_000 + "]" * 50_000),
                          ("lying", json.dumps({**document, "parts": 10**12}))):
        made[name] = folder / name
        made[name].mkdir()
        shutil.copy(tif, made[name] / tif.name)
        (made[name] / sidecar.name).write_text(content)
    return made


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("fuzz world")
    rng = np.random.default_rng(7)
    world = World(root)
    world.rasters = make_rasters(root / "rasters", rng)
    world.models = make_models(root / "models")
    world.chips = make_chips(root / "chips", world.rasters)
    world.masks = make_masks(root / "masks")
    world.parts = make_parts(root / "parts", world.rasters, world.models["good"])
    references = root / "references"
    references.mkdir()
    (references / "junk.pth").write_bytes(b"\x80\x04not really a pickle")
    good = save_networks(define_G(ngf=4, num_downs=5), references)
    world.references = {"good": good, "junk": references / "junk.pth", "model as reference": world.models["good"]}
    return world


@dataclass
class Example:
    """One drawn command line, the outputs it names and their state before the run."""

    folder: Path
    args: list[str] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    before: dict[str, str] = field(default_factory=dict)


NAMES = ["out", "out put ; $(touch pwned)", "ünï 東京 'q' \"dq\"", "o" * 230]
FAULTS = ["none", "none", "output", "output", "output", "input", "input", "input", "options"]
HOSTILE_OUTPUTS = ["input", "hard link", "symlink", "fifo", "device", "other kind", "too long", "parent is a file",
                   "unwritable", "nested"]


def draw(data: st.DataObject, label: str, valid: list, hostile: list, fault: str, dimension: str):
    """One value: from ``hostile`` when this example's fault is in ``dimension``, else from ``valid``."""
    return data.draw(st.sampled_from(hostile if fault == dimension and hostile else valid), label=label)


def draw_output(data: st.DataObject, example: Example, inputs: list[Path], suffix: str, fault: str,
                folder: bool = False) -> str:
    """An output path: a fresh one with an awkward name, or (when the fault is the output) something a careless
    or hostile user gives: an input, a link to one, a device, a FIFO, a folder, a name too long…"""
    kind = draw(data, "output kind", ["fresh"], HOSTILE_OUTPUTS, fault, "output")
    base = example.folder / f"{data.draw(st.sampled_from(NAMES), label='name')}{suffix}"
    if kind == "nested":
        base = example.folder / "new folder" / f"out{suffix}"
    elif kind == "input" and inputs:
        base = data.draw(st.sampled_from(inputs), label="input as output")
    elif kind in ("hard link", "symlink") and inputs:
        target = data.draw(st.sampled_from(inputs), label="link target")
        base = example.folder / f"link{suffix}"
        if kind == "symlink" or target.is_dir():
            base.symlink_to(target)
        else:
            os.link(target, base)
    elif kind == "fifo":
        os.mkfifo(base)
    elif kind == "device":
        if os.geteuid() == 0:
            os.mknod(base, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # /dev/null's twin
        else:
            os.mkfifo(base)
    elif kind == "other kind":
        if folder:
            base.write_text("a file where a folder goes")
        else:
            base.mkdir()
    elif kind == "too long":
        base = example.folder / ("n" * 300 + suffix)
    elif kind == "parent is a file":
        (example.folder / "plain file").write_text("x")
        base = example.folder / "plain file" / f"out{suffix}"
    elif kind == "unwritable":
        base = Path("/proc/fuzz") / f"out{suffix}"
    example.outputs.append(base)
    return str(base)


def local_inputs(*names: str) -> list[Path]:
    return [Path(n) for n in names if Path(n).exists()]


def draw_extent(data: st.DataObject, fault: str) -> list[str]:
    valid = [None, ("500050", "4999450", "500500", "4999950", None),
             ("15.001", "45.148", "15.007", "45.153", "EPSG:4326")]
    hostile = [("0", "0", "1", "1", None), ("500050", "4999450", "500500", "4999950", "EPSG:99999"),
               ("500050", "4999450", "500500", "4999950", "not a crs"), ("-180", "-90", "180", "90", "EPSG:4326")]
    extent = draw(data, "extent", valid, hostile, fault, "options")
    if extent is None:
        return []
    return ["--extent", *extent[:4], *(["--extent-crs", extent[4]] if extent[4] else [])]


GOOD_RASTERS = ["a", "south a", "vrt", "zip", "subdataset", "float nan", "geographic"]
BAD_RASTERS = ["complex", "no crs", "truncated", "text", "missing source", "absent", "tiny", "one band"]


def draw_export(data: st.DataObject, world: World, example: Example, fault: str) -> None:
    a, b = draw(data, "A, B", [("a", "b"), ("south a", "south b"), ("a", "geographic"), ("vrt", "float nan")],
                [(bad, "b") for bad in BAD_RASTERS] + [("a", bad) for bad in BAD_RASTERS], fault, "input")
    inputs = local_inputs(world.rasters[a], world.rasters[b])
    example.args = ["export", world.rasters[a], world.rasters[b],
                    draw_output(data, example, inputs, "", fault, folder=True),
                    *draw(data, "sizes", [["--tile-size", "16", "--stride", "16"], ["--tile-size", "32"]],
                          [["--tile-size", "100"], ["--bands", "4"]], fault, "options"),
                    "--validation", data.draw(st.sampled_from(["0", "0.3"]), label="validation"),
                    *draw_extent(data, fault)]
    mask = draw(data, "mask", [None, "good"], ["no crs", "deep", "not json", "bad crs", "points"], fault, "input")
    if mask:
        example.args += ["--mask", str(world.masks[mask])]


def draw_export_unpaired(data: st.DataObject, world: World, example: Example, fault: str) -> None:
    a, b = draw(data, "A, B", [("a", "geographic"), ("south a", "b"), ("vrt", "float nan"), ("no crs", "one band")],
                [(bad, "b") for bad in BAD_RASTERS] + [("a", bad) for bad in BAD_RASTERS], fault, "input")
    inputs = local_inputs(world.rasters[a], world.rasters[b])
    example.args = ["export-unpaired", world.rasters[a], world.rasters[b],
                    draw_output(data, example, inputs, "", fault, folder=True),
                    *draw(data, "sizes", [["--tile-size", "16", "--stride", "16"], ["--tile-size", "16",
                                                                                    "--cell-size2", "20"]],
                          [["--tile-size", "100"], ["--bands2", "4"], ["--cell-size2", "1e-9"]], fault, "options"),
                    "--validation", data.draw(st.sampled_from(["0", "0.3"]), label="validation")]
    for option in ("--mask", "--mask2"):
        mask = draw(data, option, [None, "good"], ["no crs", "deep", "not json", "bad crs", "points"], fault, "input")
        if mask:
            example.args += [option, str(world.masks[mask])]


def draw_evaluate_unpaired(data: st.DataObject, world: World, example: Example, fault: str) -> None:
    prediction = draw(data, "prediction", ["b", "geographic", "zip"], BAD_RASTERS, fault, "input")
    chips = draw(data, "chips", ["unpaired"], ["unpaired without B", "unpaired deep", "good", "empty"], fault,
                 "input")
    inputs = local_inputs(world.rasters[prediction], str(world.chips[chips]))
    example.args = ["evaluate-unpaired", world.rasters[prediction], str(world.chips[chips]), "--sample-pixels", "1000"]
    example.args += draw(data, "options", [[], ["--reference", world.rasters["b"]],
                                           ["--original", world.rasters["a"], "--reconstruction", world.rasters["a"]]],
                         [["--original", world.rasters["a"]], ["--domain", "A"],
                          ["--original", world.rasters["a"], "--reconstruction", world.rasters["geographic"]]],
                         fault, "options")
    for option, suffix in (("--report", ".json"), ("--html", ".html")):
        if data.draw(st.booleans(), label=option):
            example.args += [option, draw_output(data, example, inputs, suffix, fault)]


def draw_translate(data: st.DataObject, world: World, example: Example, fault: str) -> None:
    source = draw(data, "input", GOOD_RASTERS, BAD_RASTERS, fault, "input")
    model = draw(data, "model", ["good", "half"], ["nan weights", "bomb", "truncated", "pickled", "deep",
                                                   "nan normalisation"], fault, "input")
    inputs = local_inputs(world.rasters[source], str(world.models[model]))
    if source in ("vrt", "zip", "subdataset"):
        inputs.append(Path(world.rasters["a"]))  # what GDAL reads for it
    example.args = ["translate", world.rasters[source], str(world.models[model]),
                    draw_output(data, example, inputs, ".tif", fault), "--device", "cpu", *draw_extent(data, fault)]
    example.args += draw(data, "options", [[], ["--overlap", "8"], ["--bands", "3,2,1"], ["--cog"],
                                           ["--co", "COMPRESS=ZSTD"], ["--dtype", "float32"], ["--blend", "crop"]],
                         [["--co", "BLOCKXSIZE=7"], ["--bands", "1,2,9"], ["--tile-size", "128"], ["--co", "X"]],
                         fault, "options")


def draw_evaluate(data: st.DataObject, world: World, example: Example, fault: str) -> None:
    prediction, reference = draw(data, "rasters", [("a", "b"), ("south a", "south b"), ("float nan", "a"),
                                                   ("zip", "b")],
                                 [(bad, "b") for bad in BAD_RASTERS] + [("a", "south b"), ("a", "geographic")],
                                 fault, "input")
    inputs = local_inputs(world.rasters[prediction], world.rasters[reference])
    example.args = ["evaluate", world.rasters[prediction], world.rasters[reference], *draw_extent(data, fault)]
    for option, suffix in (("--report", ".json"), ("--error-raster", ".tif"), ("--html", ".html")):
        if data.draw(st.booleans(), label=option):
            example.args += [option, draw_output(data, example, inputs, suffix, fault)]
    mask = draw(data, "mask", [None, "good"], ["no crs", "deep", "not json", "bad crs", "points"], fault, "input")
    if mask:
        example.args += ["--mask", str(world.masks[mask])]


def draw_train(data: st.DataObject, world: World, example: Example, fault: str) -> None:
    chips = draw(data, "chips", ["good", "esri"], ["stray chip", "infinite stats", "deep", "empty"], fault, "input")
    inputs = [world.chips[chips], *(p for p in world.chips[chips].rglob("*") if p.is_file())][:6]
    model = draw_output(data, example, inputs, ".p2p", fault)
    example.outputs.append(Path(f"{model}.ckpt"))
    example.args = ["train", str(world.chips[chips]), model, "--epochs", "1", "--ngf", "4", "--ndf", "4",
                    "--batch-size", "4", "--device", "cpu", "--validation", "0.25"]
    if data.draw(st.booleans(), label="report"):
        example.args += ["--report", draw_output(data, example, [*inputs, Path(model)], ".html", fault)]
    example.args += draw(data, "options", [[]], [["--resume"], ["--depth", "9"]], fault, "options")


def draw_assemble(data: st.DataObject, world: World, example: Example, fault: str) -> None:
    parts = draw(data, "parts", ["good"], ["escaping", "deep", "lying"], fault, "input")
    inputs = sorted(world.parts[parts].iterdir())
    example.args = ["assemble", str(world.parts[parts]), draw_output(data, example, inputs, ".vrt", fault)]
    if data.draw(st.booleans(), label="cog"):
        example.args += ["--cog", draw_output(data, example, inputs, ".tif", fault)]


def draw_export_onnx(data: st.DataObject, world: World, example: Example, fault: str) -> None:
    model = draw(data, "model", ["good"], ["nan weights", "bomb", "deep", "pickled", "nan normalisation"], fault,
                 "input")
    example.args = ["export-onnx", str(world.models[model]),
                    draw_output(data, example, [world.models[model]], ".onnx", fault), "--no-check"]


def draw_import_reference(data: st.DataObject, world: World, example: Example, fault: str) -> None:
    reference = draw(data, "reference", ["good"], ["junk", "model as reference"], fault, "input")
    example.args = ["import-reference", str(world.references[reference]),
                    draw_output(data, example, [world.references[reference]], ".p2p", fault)]


COMMANDS = {"export": draw_export, "export-unpaired": draw_export_unpaired, "translate": draw_translate,
            "evaluate": draw_evaluate, "evaluate-unpaired": draw_evaluate_unpaired, "train": draw_train,
            "assemble": draw_assemble, "export-onnx": draw_export_onnx, "import-reference": draw_import_reference}
WEIGHTS = ["export"] * 4 + ["export-unpaired"] * 2 + ["translate"] * 5 + ["evaluate"] * 3 + [
    "evaluate-unpaired"] * 2 + ["train"] * 3 + ["assemble"] * 2 + ["export-onnx", "import-reference"]


@pytest.fixture(scope="module")
def baseline(world: World) -> dict[str, str]:
    return fingerprint(*world.files())


_counter = itertools.count()


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_no_hostile_input_ends_in_a_traceback_or_loses_anything(world, baseline, tmp_path, data):
    example = Example(tmp_path / f"example {next(_counter)}")
    example.folder.mkdir()
    command = data.draw(st.sampled_from(WEIGHTS), label="command")
    fault = data.draw(st.sampled_from(FAULTS), label="fault")
    COMMANDS[command](data, world, example, fault)
    example.before = fingerprint(*example.outputs)

    run = run_cli(*example.args, timeout=600)

    assert run.code in (0, 2, 130), (run.code, run.stderr[-3000:])
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.events and run.events[-1]["type"] == ("result" if run.code == 0 else "error")
    assert fingerprint(*world.files()) == baseline, "an input changed"
    if run.code != 0:
        assert fingerprint(*example.outputs) == example.before, "a failed run left something at an output path"
    leftovers = [p for p in example.folder.rglob("*") if any(mark in p.name for mark in LEFTOVER)]
    assert leftovers == [], leftovers
    assert not list(example.folder.rglob("pwned"))
