"""The output-path guard: no run writes over one of its inputs, another output, a device, or where it cannot.

Each case is a hostile command that used to destroy something (exit 0 after replacing the
input raster, a device node replaced by a GeoTIFF, a model deleted with an export folder)
or to fail only after the work (a report path checked after hours of training). Now each
is refused before any work with exit 2, the input byte for byte as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.chips.export import export_chips
from pix2pix_qgis.chips.spec import ChipSpec
from pix2pix_qgis.core.paths import check_run_paths, local_files
from pix2pix_qgis.evaluate.rasters import evaluate_rasters
from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.interop.onnx import export_onnx
from pix2pix_qgis.train.config import TrainConfig
from pix2pix_qgis.train.loop import train

from ..builders import mapping_chips, smooth_field, write_raster
from ..cli_runs import fingerprint, run_cli
from ..models import write_model

CPU = ("--device", "cpu")


@pytest.fixture
def scene(tmp_path, rng) -> dict[str, Path]:
    a = smooth_field(rng, 3, 64)
    return {
        "a": write_raster(tmp_path / "a.tif", a),
        "b": write_raster(tmp_path / "b.tif", (255 - a).astype("uint8")),
        "model": write_model(tmp_path / "m.p2p", chip=32, depth=3),
    }


def test_translate_refuses_to_write_over_its_input_raster(scene):
    before = fingerprint(scene["a"])
    run = run_cli("translate", str(scene["a"]), str(scene["model"]), str(scene["a"]), *CPU)
    assert run.refused(f"The output {scene['a']} is the input raster of this run", "Choose another path")
    assert fingerprint(scene["a"]) == before


@pytest.mark.parametrize("command", ["translate", "export-onnx"])
def test_translate_and_export_onnx_refuse_to_write_over_the_model(scene, command):
    before = fingerprint(scene["model"])
    args = (str(scene["a"]), str(scene["model"]), str(scene["model"]), *CPU) if command == "translate" else (
        str(scene["model"]), str(scene["model"]))
    run = run_cli(command, *args)
    assert run.refused(f"{scene['model']} is the model of this run")
    assert fingerprint(scene["model"]) == before


def test_train_refuses_a_report_at_the_model_path_before_training(tmp_path):
    chips = mapping_chips(tmp_path, size=64, tile=32, validation=0.0)
    model = tmp_path / "model.p2p"
    run = run_cli("train", str(chips), str(model), "--epochs", "1", "--ngf", "4", "--ndf", "4", *CPU,
                  "--report", str(model))
    assert run.refused("The model and the report are the same path")
    assert not any(e["type"] == "progress" for e in run.events)  # before the first step
    assert not model.exists() and not Path(f"{model}.ckpt").exists()


@pytest.mark.parametrize("report", ["/proc/no such folder/report.html", "FILE/report.html"])
def test_train_checks_an_unwritable_report_before_training(tmp_path, report):
    chips = mapping_chips(tmp_path, size=64, tile=32, validation=0.0)
    report = report.replace("FILE", str(chips / "chips.json"))
    model = tmp_path / "model.p2p"
    run = run_cli("train", str(chips), str(model), "--epochs", "1", "--ngf", "4", "--ndf", "4", *CPU,
                  "--report", report)
    assert run.refused("report", "Choose"), run.message
    assert not any(e["type"] == "progress" for e in run.events)
    assert not model.exists() and not Path(f"{model}.ckpt").exists()  # used to be left complete, exit 2


@pytest.mark.parametrize("option", ["--report", "--error-raster", "--html"])
def test_evaluate_refuses_to_write_over_the_prediction_or_reference(scene, option):
    for victim, role in ((scene["a"], "prediction"), (scene["b"], "reference")):
        before = fingerprint(victim)
        run = run_cli("evaluate", str(scene["a"]), str(scene["b"]), option, str(victim))
        assert run.refused(f"is the {role} of this run")
        assert fingerprint(victim) == before


def device_node(path: Path) -> Path:
    """A character device like /dev/null (same major/minor), made in a test folder: root only."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return path


@pytest.mark.parametrize("kind", ["device", "fifo", "socket", "folder"])
def test_an_existing_node_that_is_not_a_regular_file_is_refused_and_kept(scene, tmp_path, kind):
    target = tmp_path / "out.tif"
    if kind == "device":
        device_node(target)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "socket":
        import socket

        server = socket.socket(socket.AF_UNIX)
        server.bind(str(target))
    else:
        target.mkdir()
    before = fingerprint(target)
    run = run_cli("translate", str(scene["a"]), str(scene["model"]), str(target), *CPU)
    expected = {"device": "is a device", "fifo": "is a FIFO", "socket": "is a socket", "folder": "is a folder"}[kind]
    assert run.refused(str(target), expected)
    assert fingerprint(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.tif", "b.tif", "m.p2p", "out.tif"])


@pytest.mark.parametrize("device", ["/dev/null", "/dev/full"])
def test_the_system_devices_are_never_replaced(scene, device):
    """As root, the atomic rename used to put a GeoTIFF where /dev/null was."""
    before = os.stat(device)
    run = run_cli("translate", str(scene["a"]), str(scene["model"]), device, *CPU)
    assert run.refused(f"The output {device} is a device", "Choose")
    after = os.stat(device)
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    run = run_cli("export", str(scene["a"]), str(scene["b"]), device, "--tile-size", "32")
    assert run.refused(device) and stat.S_ISCHR(os.stat(device).st_mode)


def test_a_symlink_to_a_device_is_a_device_too(scene, tmp_path):
    (tmp_path / "null.tif").symlink_to("/dev/null")
    with pytest.raises(Pix2PixError, match="is a device"):
        translate_raster(scene["a"], scene["model"], tmp_path / "null.tif", TranslateSpec(device="cpu"))
    assert (tmp_path / "null.tif").is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_export_into_an_old_export_that_holds_one_of_its_inputs_refuses(scene, tmp_path):
    out = tmp_path / "chips"
    export_chips(scene["a"], scene["b"], out, ChipSpec(tile_size=32, stride=32, validation=0.0))
    moved = shutil.move(scene["a"], out / "a.tif")
    before = fingerprint(out)
    run = run_cli("export", str(moved), str(scene["b"]), str(out), "--tile-size", "32", "--stride", "32")
    assert run.refused(f"The input raster (A) {moved} lies inside the output folder {out}", "would be deleted")
    assert fingerprint(out) == before


def test_export_into_a_folder_with_the_users_files_refuses_naming_them_and_keeps_arcgis_learns(scene, tmp_path):
    out = tmp_path / "chips"
    export_chips(scene["a"], scene["b"], out, ChipSpec(tile_size=32, stride=32, validation=0.0))
    (out / "models" / "run1").mkdir(parents=True)  # arcgis.learn saves here, inside the chips folder
    (out / "models" / "run1" / "run1.pth").write_bytes(b"hours of training")
    (out / "images" / "notes.txt").write_text("mine")
    (out / "esri_normalization_stats.txt").write_text("not arcgis.learn's name")
    before = fingerprint(out)
    run = run_cli("export", str(scene["a"]), str(scene["b"]), str(out), "--tile-size", "32", "--stride", "32")
    assert run.refused("holds a previous export, but also 2 entries neither the export nor arcgis.learn wrote: "
                       "esri_normalization_stats.txt, images/notes.txt.", "Choose an empty (or new) output folder, "
                       "or move those entries out of it")
    assert fingerprint(out) == before  # the user's files and arcgis.learn's models, all as they were
    (out / "images" / "notes.txt").unlink()
    (out / "esri_normalization_stats.txt").unlink()
    run = run_cli("export", str(scene["a"]), str(scene["b"]), str(out), "--tile-size", "16", "--stride", "16")
    assert run.code == 0, run.stderr
    assert (out / "models" / "run1" / "run1.pth").read_bytes() == b"hours of training"
    assert any("Kept what arcgis.learn saved in the previous export's folder: models/." in e.get("message", "")
               for e in run.events)


def test_export_still_replaces_a_previous_export_with_its_gdal_side_files(scene, tmp_path):
    out = tmp_path / "chips"
    export_chips(scene["a"], scene["b"], out, ChipSpec(tile_size=32, stride=32, validation=0.0))
    (out / "images" / "000000000.tif.aux.xml").write_text("<PAMDataset/>")  # QGIS computed statistics
    result = export_chips(scene["a"], scene["b"], out, ChipSpec(tile_size=16, stride=16, validation=0.0))
    assert result["chips"] == 16 and not (out / "images" / "000000000.tif.aux.xml").exists()


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_a_link_to_an_input_is_the_input(scene, tmp_path, link):
    target = tmp_path / "out.tif"
    (os.link if link == "hard" else os.symlink)(scene["a"], target)
    before = fingerprint(scene["a"])
    with pytest.raises(Pix2PixError, match="is the input raster of this run"):
        translate_raster(scene["a"], scene["model"], target, TranslateSpec(device="cpu"))
    assert fingerprint(scene["a"]) == before


def test_a_file_that_a_vrt_reads_is_an_input_too(scene, tmp_path):
    import rasterio.shutil

    vrt = tmp_path / "a.vrt"
    rasterio.shutil.copy(scene["a"], vrt, driver="VRT")
    before = fingerprint(scene["a"])
    with pytest.raises(Pix2PixError, match=re.escape(f"is the input raster of this run ({vrt}, through {scene['a']})")):
        translate_raster(vrt, scene["model"], scene["a"], TranslateSpec(device="cpu"))
    zipped = tmp_path / "a.zip"
    import zipfile

    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(scene["a"], "a.tif")
    with pytest.raises(Pix2PixError, match="is the input raster"):
        translate_raster(f"/vsizip/{zipped}/a.tif", scene["model"], zipped, TranslateSpec(device="cpu"))
    assert fingerprint(scene["a"]) == before and zipfile.is_zipfile(zipped)


def test_every_api_function_is_guarded(scene, tmp_path):
    """Not only the CLI: each engine function checks its own paths before any work."""
    chips = mapping_chips(tmp_path / "c", size=64, tile=32, validation=0.0)
    cases = [
        lambda: export_chips(scene["a"], scene["b"], tmp_path, ChipSpec(tile_size=32)),  # holds both inputs
        lambda: translate_raster(scene["a"], scene["model"], scene["model"], TranslateSpec(device="cpu")),
        lambda: evaluate_rasters(scene["a"], scene["b"], report=scene["b"]),
        lambda: evaluate_rasters(scene["a"], scene["b"], error_raster=tmp_path / "e.tif", report=tmp_path / "e.tif"),
        lambda: train(chips, chips / "m.p2p", TrainConfig(epochs=1, ngf=4, ndf=4)),  # inside the chips folder
        lambda: export_onnx(scene["model"], scene["model"]),
    ]
    before = fingerprint(tmp_path)
    for case in cases:
        with pytest.raises(Pix2PixError, match="of this run|lies inside|same path"):
            case()
    assert fingerprint(tmp_path) == before


def test_names_the_filesystem_cannot_hold_are_refused_up_front(scene, tmp_path):
    too_long = tmp_path / ("n" * 300 + ".tif")
    run = run_cli("translate", str(scene["a"]), str(scene["model"]), str(too_long), *CPU)
    assert run.refused("has a name of 304 bytes", "at most 255 bytes", "Shorten it")
    staging_too_long = tmp_path / ("n" * 250 + ".tif")  # fits, but its hidden partial name would not
    run = run_cli("translate", str(scene["a"]), str(scene["model"]), str(staging_too_long), *CPU)
    assert run.refused("hidden temporary name", "Shorten the name by at least")
    assert not any(e["type"] == "progress" for e in run.events)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif", "m.p2p"]


def test_names_that_are_not_utf8_are_refused_with_the_fix(scene, tmp_path):
    """Latin-1 names from an old archive: rasterio cannot encode them, which used to end in a traceback."""
    latin1 = os.fsdecode(b"caf\xe9 ")  # as Python passes undecodable bytes on
    source = shutil.copy(scene["a"], tmp_path / f"{latin1}in.tif")
    run = run_cli("translate", str(source), str(scene["model"]), str(tmp_path / "out.tif"), *CPU)
    assert run.refused("The input raster", "caf\\xe9 in.tif has a name that is not valid UTF-8", "Rename it")
    run = run_cli("translate", str(scene["a"]), str(scene["model"]), str(tmp_path / f"{latin1}out.tif"), *CPU)
    assert run.refused("The output", "not valid UTF-8")
    run = run_cli("export", str(scene["a"]), str(scene["b"]), str(tmp_path / f"{latin1}chips"), "--tile-size", "32")
    assert run.refused("The output folder", "not valid UTF-8")
    assert sorted(os.listdir(tmp_path)) == sorted(["a.tif", "b.tif", "m.p2p", f"{latin1}in.tif"])


def test_an_input_name_that_cannot_exist_is_explained(scene, tmp_path):
    run = run_cli("translate", str(tmp_path / ("n" * 300 + ".tif")), str(scene["model"]), str(tmp_path / "o.tif"),
                  *CPU)
    assert run.refused("cannot exist", "304 bytes long")


def test_outputs_of_one_run_must_differ_and_not_nest(tmp_path):
    with pytest.raises(Pix2PixError, match="The report and the HTML report are the same path"):
        check_run_paths(files={"report": tmp_path / "r", "HTML report": tmp_path / "x" / ".." / "r"})
    with pytest.raises(Pix2PixError, match="lies inside the output folder"):
        check_run_paths(files={"report": tmp_path / "chips" / "r.json"}, folders={"output folder": tmp_path / "chips"})
    check_run_paths(files={"a": tmp_path / "a.tif", "b": tmp_path / "b.tif"})  # distinct: fine


def test_local_files_of_gdal_names(tmp_path):
    (tmp_path / "f.nc").write_bytes(b"x")
    (tmp_path / "a.zip").write_bytes(b"x")
    assert local_files(f'NETCDF:"{tmp_path / "f.nc"}":temperature') == [tmp_path / "f.nc"]
    assert local_files(f"GTIFF_DIR:2:{tmp_path / 'f.nc'}") == [tmp_path / "f.nc"]
    assert local_files(f"/vsizip/{tmp_path / 'a.zip'}/inner/x.tif") == [tmp_path / "a.zip"]
    assert local_files("/vsicurl/https://example.com/x.tif") == []
