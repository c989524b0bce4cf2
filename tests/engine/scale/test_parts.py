"""Distributed translation: parts are whole-block bands, assembled they equal a single run bit for bit."""

from __future__ import annotations

import dataclasses
import json
import ntpath
import os
import posixpath
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.infer.tiling import BLOCK, part_rows
from pix2pix_qgis.infer.tiling import BLOCK as TRANSLATE_BLOCK
from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.scale.assemble import assemble_parts, source_filename
from pix2pix_qgis.scale.parts import parse_part, part_paths, translate_part

from ..builders import UTM_TRANSFORM, smooth_image, write_raster
from ..cli_runs import REPO, cli_process, events
from ..models import write_model

SPEC = TranslateSpec(overlap=16)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("model") / "rgb.p2p")


def same_raster(expected: Path, actual: Path) -> None:
    """Pixels, masks and every grid property equal."""
    with rasterio.open(expected) as a, rasterio.open(actual) as b:
        assert (b.crs, b.transform, b.width, b.height, b.count) == (a.crs, a.transform, a.width, a.height, a.count)
        assert b.dtypes == a.dtypes and b.nodata == a.nodata
        assert b.colorinterp == a.colorinterp
        np.testing.assert_array_equal(b.read(), a.read())
        np.testing.assert_array_equal(b.dataset_mask(), a.dataset_mask())


def test_part_rows_tile_the_raster_in_whole_blocks():
    assert BLOCK == TRANSLATE_BLOCK
    for height in (256, 257, 530, 1000, 5000):
        for count in range(1, min(6, -(-height // BLOCK)) + 1):
            bands = [part_rows(height, i, count) for i in range(count)]
            assert bands[0][0] == 0 and bands[-1][1] == height
            assert all(stop == start for (_, stop), (start, _) in zip(bands, bands[1:]))  # no gap, no overlap
            assert all(start % BLOCK == 0 and stop > start for start, stop in bands)
            sizes = [stop - start for start, stop in bands[:-1]]
            assert not sizes or max(sizes) - min(sizes) <= BLOCK  # spread evenly
    with pytest.raises(Pix2PixError, match="at most 2 part"):
        part_rows(300, 0, 3)


def test_part_indices_count_from_zero_with_clear_errors():
    assert parse_part("0/4") == (0, 4) and parse_part(" 3 / 4 ") == (3, 4)
    with pytest.raises(Pix2PixError, match="0 to 3.*--array=0-3"):
        parse_part("4/4")
    with pytest.raises(Pix2PixError, match="like I/N"):
        parse_part("first")
    with pytest.raises(Pix2PixError, match="--cog to 'assemble'"):
        TranslateSpec(part=(0, 2), cog=True)


def write_parts(source: Path, model: Path, folder: Path, count: int, spec: TranslateSpec = SPEC) -> list[dict]:
    return [translate_part(source, model, folder, dataclasses.replace(spec, part=(i, count))) for i in range(count)]


@pytest.mark.parametrize(("height", "width", "count", "kind"), [
    (520, 150, 2, "plain"),
    (530, 97, 3, "nodata"),  # uneven: the last part is 18 rows; parts' halos reach two tile rows up
    (600, 120, 2, "mask"),
])
def test_assembled_parts_equal_the_single_run(model, tmp_path, rng, height, width, count, kind):
    image = smooth_image(rng, 3, height, width)
    nodata = None
    if kind == "nodata":
        model = write_model(tmp_path / "nodata.p2p", out_nodata=0)
        image[:, 250:300, 10:60] = 255  # nodata across the first boundary
        nodata = 255
    source = write_raster(tmp_path / "in.tif", image, nodata=nodata)
    if kind == "mask":
        with rasterio.open(source, "r+") as dst:
            mask = np.full((height, width), 255, np.uint8)
            mask[240:270, 30:90] = 0
            dst.write_mask(mask)
    translate_raster(source, model, tmp_path / "single.tif", SPEC)
    translate_raster(source, model, tmp_path / "single-cog.tif", dataclasses.replace(SPEC, cog=True))
    results = write_parts(source, model, tmp_path / "parts", count)
    assert [r["rows"] for r in results] == [list(part_rows(height, i, count)) for i in range(count)]
    summary = assemble_parts([tmp_path / "parts"], tmp_path / "out.vrt", tmp_path / "out.tif")
    assert summary["parts"] == count and summary["height"] == height
    same_raster(tmp_path / "single.tif", tmp_path / "out.vrt")
    same_raster(tmp_path / "single-cog.tif", tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as cog:
        assert cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    if kind != "plain":
        with rasterio.open(tmp_path / "out.vrt") as vrt:
            assert not vrt.dataset_mask().all()  # the invalid pixels are carried, not filled


def test_vrt_paths_are_relative_so_the_folder_can_move(model, tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, 300, 80))
    write_parts(source, model, tmp_path / "job" / "parts", 2)
    assemble_parts([tmp_path / "job" / "parts"], tmp_path / "job" / "out.vrt")
    shutil.move(tmp_path / "job", tmp_path / "moved")
    translate_raster(source, model, tmp_path / "single.tif", SPEC)
    same_raster(tmp_path / "single.tif", tmp_path / "moved" / "out.vrt")


def test_missing_foreign_and_damaged_parts_are_refused(model, tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, 600, 70))
    parts = tmp_path / "parts"
    translate_part(source, model, parts, dataclasses.replace(SPEC, part=(0, 2)))
    with pytest.raises(Pix2PixError, match=r"1 of 2 parts are missing or unfinished: 1/2"):
        assemble_parts([parts], tmp_path / "out.vrt")
    assert not (tmp_path / "out.vrt").exists()
    # A part of another run (other options) in the same folder is not mixed in.
    translate_part(source, model, parts, dataclasses.replace(SPEC, part=(1, 2), overlap=24))
    with pytest.raises(Pix2PixError, match="different runs"):
        assemble_parts([parts], tmp_path / "out.vrt")
    translate_part(source, model, parts, dataclasses.replace(SPEC, part=(1, 2)))
    assemble_parts([parts], tmp_path / "out.vrt")  # complete now
    tif, sidecar = part_paths(parts, 1, 2)
    document = json.loads(sidecar.read_text())
    document["rows"] = [200, 600]
    sidecar.write_text(json.dumps(document))
    with pytest.raises(Pix2PixError, match="gap or an overlap"):
        assemble_parts([parts], tmp_path / "out.vrt")
    write_raster(tif, np.zeros((3, 10, 70), np.uint8))
    document["rows"] = [256, 600]
    sidecar.write_text(json.dumps(document))
    with pytest.raises(Pix2PixError, match="does not match its sidecar"):
        assemble_parts([parts], tmp_path / "out.vrt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(Pix2PixError, match="No finished parts"):
        assemble_parts([tmp_path / "empty"], tmp_path / "out.vrt")


def test_part_output_must_be_a_folder(model, tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, 300, 70))
    with pytest.raises(Pix2PixError, match="OUTPUT is the folder"):
        translate_part(source, model, tmp_path / "out.tif", dataclasses.replace(SPEC, part=(0, 2)))


def torchrun(*args: str) -> list[str]:
    launcher = Path(sys.executable).with_name("torchrun")
    head = [str(launcher)] if launcher.exists() else [sys.executable, "-m", "torch.distributed.run"]
    return [*head, "--standalone", *args]


def test_torchrun_ranks_translate_their_parts_and_the_cli_assembles_them(model, tmp_path, rng):
    import subprocess

    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, 530, 90))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        torchrun("--nproc-per-node", "2", "-m", "pix2pix_qgis", "translate", str(source), str(model),
                 str(tmp_path / "parts"), "--overlap", "16", "--progress", "json"),
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = events("\n".join(line for line in proc.stdout.splitlines() if line.startswith("{")))
    results = [e["result"] for e in lines if e["type"] == "result"]
    assert len(results) == 1 and results[0]["part"] == [0, 2]  # rank 1 is quiet
    assembled = cli_process("assemble", str(tmp_path / "parts"), str(tmp_path / "out.vrt"), "--cog",
                            str(tmp_path / "out.tif"), "--progress", "json")
    assert assembled.returncode == 0, assembled.stdout + assembled.stderr
    assert events(assembled.stdout)[-1]["result"]["parts"] == 2
    assert cli_process("translate", str(source), str(model), str(tmp_path / "single.tif"), "--overlap", "16",
                       "--cog").returncode == 0
    same_raster(tmp_path / "single.tif", tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.vrt") as vrt, rasterio.open(tmp_path / "single.tif") as single:
        np.testing.assert_array_equal(vrt.read(), single.read())
    missing = cli_process("assemble", str(part_paths(tmp_path / "parts", 0, 2)[1]), str(tmp_path / "x.vrt"),
                          "--progress", "json")
    assert missing.returncode == 2 and "1/2" in events(missing.stdout)[-1]["message"]


def test_parts_of_an_extent_window_equal_the_single_run_of_it(model, tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, 700, 90))
    x0, y0 = UTM_TRANSFORM @ (5, 650)
    x1, y1 = UTM_TRANSFORM @ (85, 40)
    spec = dataclasses.replace(SPEC, extent=(x0, y0, x1, y1), blend="crop")
    translate_raster(source, model, tmp_path / "single.tif", spec)
    write_parts(source, model, tmp_path / "parts", 3, spec)
    assemble_parts([tmp_path / "parts"], tmp_path / "out.vrt")
    same_raster(tmp_path / "single.tif", tmp_path / "out.vrt")


def test_cli_part_errors_name_the_fix(model, tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, 300, 70))
    cog = cli_process("translate", str(source), str(model), str(tmp_path / "parts"), "--part", "0/2", "--cog",
                      "--progress", "json")
    assert cog.returncode == 2 and "--cog to 'assemble'" in events(cog.stdout)[-1]["message"]
    too_many = cli_process("translate", str(source), str(model), str(tmp_path / "parts"), "--part", "2/3",
                           "--progress", "json")
    assert too_many.returncode == 2 and "at most 2 part(s)" in events(too_many.stdout)[-1]["message"]
    assert not any((tmp_path / "parts").glob("*.json"))


@pytest.mark.parametrize(("part", "vrt_folder", "expected"), [
    (r"C:\runs\parts\part-0000-of-0002.tif", r"C:\runs", ("parts/part-0000-of-0002.tif", True)),
    (r"C:\runs\parts\p.tif", r"C:\runs\vrt", ("../parts/p.tif", True)),
    (r"c:\runs\parts\p.tif", "C:/runs", ("parts/p.tif", True)),  # drive letters ignore case
    (r"\\server\share\parts\p.tif", r"\\server\share\vrt", ("../parts/p.tif", True)),
    (r"D:\parts\p.tif", r"C:\out", (r"D:\parts\p.tif", False)),  # another drive: no relative path
    (r"\\server\share\parts\p.tif", r"C:\out", (r"\\server\share\parts\p.tif", False)),
    (r"\\server\other\parts\p.tif", r"\\server\share\vrt", (r"\\server\other\parts\p.tif", False)),
])
def test_vrt_names_parts_relatively_where_windows_allows_and_absolutely_elsewhere(part, vrt_folder, expected):
    assert source_filename(part, vrt_folder, ntpath) == expected


def test_vrt_names_parts_relatively_on_posix():
    assert source_filename("/data/job/parts/p.tif", "/data/job", posixpath) == ("parts/p.tif", True)
