"""Export unpaired chips: two rasters of other CRSs and cell sizes, far apart; exact chips per domain, split,
Esri's CycleGAN layout, the output folder's rules, hostile options, cancel."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from pix2pix_qgis import Cancelled, Pix2PixError, Progress, UnpairedSpec, export_unpaired
from pix2pix_qgis.chips.manifest import UNPAIRED, load_manifest
from pix2pix_qgis.chips.unpaired import EARTH_RADIUS_M

from ..builders import UTM_TRANSFORM

# B: WGS 84 over South America (A is UTM 33N, in Europe): no pixel in common, another CRS and unit.
B_TRANSFORM = Affine(0.0002, 0.0, -60.0, 0.0, -0.0002, -10.0)


def chip(folder: Path, name: str):
    with rasterio.open(folder / name) as src:
        return src.read(), src.profile, src.read_masks(1)


@pytest.fixture
def rasters(make_raster, rng):
    """A: 3-band uint8, nodata 0, 10 m UTM, 96×128. B: 1-band float64 whose value is each pixel's longitude."""
    a = rng.integers(1, 255, (3, 96, 128), dtype="uint8")
    cols = np.arange(150) + 0.5
    b = np.broadcast_to(B_TRANSFORM.c + B_TRANSFORM.a * cols, (140, 150)).astype("float64")[None].copy()
    return (make_raster("a.tif", a, nodata=0), a,
            make_raster("b.tif", b, crs="EPSG:4326", transform=B_TRANSFORM, nodata=-9999.0), b)


def test_each_domain_is_chipped_on_its_own_grid_exactly(rasters, tmp_path):
    path_a, a, path_b, _ = rasters
    result = export_unpaired(path_a, path_b, tmp_path / "out", UnpairedSpec(tile_size=32, stride=32,
                                                                            validation=0.25))
    manifest = load_manifest(tmp_path / "out", UNPAIRED)
    # A: native grid, every chip a pixel-exact window with A's CRS, transform, dtype and nodata.
    assert manifest["a"]["resampled"] is False and manifest["a"]["grid"]["transform"] == list(UTM_TRANSFORM)[:6]
    assert len(manifest["a"]["chips"]) == 3 * 4 == result["a_train"] + result["a_validation"]
    for entry in manifest["a"]["chips"]:
        data, profile, _ = chip(tmp_path / "out" / "A" / "images", entry["name"])
        row, col = entry["row_off"], entry["col_off"]
        np.testing.assert_array_equal(data, a[:, row:row + 32, col:col + 32])
        assert (profile["width"], profile["height"], profile["count"]) == (32, 32, 3)
        assert profile["dtype"] == "uint8" and profile["nodata"] == 0
        assert profile["crs"] == rasterio.crs.CRS.from_epsg(32633)
        assert profile["transform"] == window_transform(Window(col, row, 32, 32), UTM_TRANSFORM)
    # B: its own CRS, resampled to A's 10 m on the ground at B's latitude (centre -10.014°).
    degree = math.pi / 180 * EARTH_RADIUS_M
    latitude = -10.0 - 140 * 0.0002 / 2
    cell = (10 / (degree * math.cos(math.radians(latitude))), 10 / degree)
    assert manifest["b"]["resampled"] is True and result["resampled_b"] is True
    np.testing.assert_allclose(manifest["b"]["grid"]["cell_size"], cell, rtol=1e-12)
    width, height = math.ceil(150 * 0.0002 / cell[0]), math.ceil(140 * 0.0002 / cell[1])
    assert (manifest["b"]["grid"]["width"], manifest["b"]["grid"]["height"]) == (width, height) == (329, 312)
    grid_b = Affine(cell[0], 0, -60.0, 0, -cell[1], -10.0)
    candidates = (1 + (width - 32) // 32) * (1 + (height - 32) // 32)
    assert len(manifest["b"]["chips"]) + result["b_skipped_nodata"] == candidates == 10 * 9
    for entry in manifest["b"]["chips"]:
        data, profile, valid = chip(tmp_path / "out" / "B" / "images", entry["name"])
        row, col = entry["row_off"], entry["col_off"]
        assert profile["crs"] == rasterio.crs.CRS.from_epsg(4326) and profile["dtype"] == "float64"
        assert profile["nodata"] == -9999.0 and (profile["width"], profile["height"]) == (32, 32)
        transform = window_transform(Window(col, row, 32, 32), grid_b)
        assert profile["transform"].almost_equals(transform, precision=1e-12)
        assert valid.all()
        longitude = transform.c + transform.a * (np.arange(32) + 0.5)  # bilinear keeps a linear field …
        inside = (longitude > -60.0 + 0.5 * 0.0002) & (longitude < -60.0 + 149.5 * 0.0002)  # … between B's centres
        np.testing.assert_allclose(data[0][:, inside], np.broadcast_to(longitude[inside], (32, inside.sum())),
                                   rtol=0, atol=1e-9)

def test_a_chosen_cell_size_and_b_own_cell_size_are_kept_bit_for_bit(make_raster, tmp_path, rng):
    a = rng.integers(0, 255, (1, 64, 64), dtype="uint8")
    b = rng.integers(0, 60000, (2, 80, 70), dtype="uint16")
    far = Affine(10.0, 0, 900_000.0, 0, -10.0, 4_000_000.0)  # same CRS and cell size as A, 400 km away
    path_a, path_b = make_raster("a.tif", a), make_raster("b.tif", b, transform=far)
    result = export_unpaired(path_a, path_b, tmp_path / "same", UnpairedSpec(tile_size=16, stride=16,
                                                                             validation=0))
    manifest = load_manifest(tmp_path / "same", UNPAIRED)
    assert result["resampled_b"] is False and manifest["b"]["grid"]["transform"] == list(far)[:6]
    for entry in manifest["b"]["chips"]:
        data, profile, _ = chip(tmp_path / "same" / "B" / "images", entry["name"])
        np.testing.assert_array_equal(data, b[:, entry["row_off"]:entry["row_off"] + 16,
                                               entry["col_off"]:entry["col_off"] + 16])
        assert profile["dtype"] == "uint16" and profile["count"] == 2
    assert len(manifest["b"]["chips"]) == 5 * 4 and manifest["b"]["chips"][0]["split"] == "train"
    events = []
    export_unpaired(path_a, path_b, tmp_path / "coarse", UnpairedSpec(tile_size=16, stride=16, validation=0,
                                                                      cell_size_b=20.0, bands_b=(2,)),
                    Progress(events.append))
    assert not [e for e in events if e["type"] == "warning"]
    manifest = load_manifest(tmp_path / "coarse", UNPAIRED)
    assert manifest["b"]["grid"]["cell_size"] == [20.0, 20.0] and manifest["b"]["bands"] == [2]
    assert (manifest["b"]["grid"]["width"], manifest["b"]["grid"]["height"]) == (35, 40)
    assert len(manifest["b"]["chips"]) == 2 * 2
    export_unpaired(path_a, path_b, tmp_path / "fine", UnpairedSpec(tile_size=16, stride=16, validation=0,
                                                                    cell_size_b=2.0), Progress(events.append))
    (warning,) = [e["message"] for e in events if e["type"] == "warning"]
    assert warning.startswith("B's cells become 5× finer than its own (10×10 → 2×2 in EPSG:32633)")
    assert "about 25× more of them" in warning and "CELL_SIZE2 10;" in warning


def test_each_domain_has_its_own_split_statistics_and_nodata(make_raster, tmp_path, rng):
    a = rng.integers(1, 100, (1, 256, 256), dtype="uint8")
    b = rng.normal(1000, 50, (1, 192, 192)).astype("float32")
    b[:, :64, :] = np.nan  # the top third of B is nodata (NaN without a nodata value)
    path_a = make_raster("a.tif", a, nodata=0)
    path_b = make_raster("b.tif", b, transform=Affine(30.0, 0, 0.0, 0, -30.0, 0.0))
    spec = UnpairedSpec(tile_size=32, stride=16, validation=0.2, seed=3, cell_size_b=30.0)
    result = export_unpaired(path_a, path_b, tmp_path / "out", spec)
    manifest = load_manifest(tmp_path / "out", UNPAIRED)
    for key in ("a", "b"):
        chips = manifest[key]["chips"]
        train = [c for c in chips if c["split"] == "train"]
        val = [c for c in chips if c["split"] == "validation"]
        assert train and val and result[f"{key}_validation"] == len(val)
        for t in train:
            for v in val:
                assert abs(t["row_off"] - v["row_off"]) >= 32 or abs(t["col_off"] - v["col_off"]) >= 32
    assert all(c["row_off"] >= 64 for c in manifest["b"]["chips"]) and result["b_skipped_nodata"] == 4 * 11
    assert result["a_skipped_nodata"] == 0 and manifest["b"]["nodata"] is None
    (stats_a,), (stats_b,) = manifest["a"]["statistics"], manifest["b"]["statistics"]
    assert 1 <= stats_a["min"] and stats_a["max"] <= 99 and 40 < stats_a["mean"] < 60
    assert 950 < stats_b["mean"] < 1050 and 40 < stats_b["std"] < 60
    export_unpaired(path_a, path_b, tmp_path / "again", spec)
    again = load_manifest(tmp_path / "again", UNPAIRED)
    assert again["a"]["chips"] == manifest["a"]["chips"] and again["b"]["chips"] == manifest["b"]["chips"]


def test_each_domain_has_its_own_mask(rasters, tmp_path):
    path_a, _, path_b, _ = rasters
    mask_b = tmp_path / "b.geojson"  # WGS 84 degrees: the left half of B
    mask_b.write_text(json.dumps({"type": "Polygon", "coordinates": [
        [[-60.0, -10.0], [-59.985, -10.0], [-59.985, -10.03], [-60.0, -10.03], [-60.0, -10.0]]]}))
    result = export_unpaired(path_a, path_b, tmp_path / "out", UnpairedSpec(tile_size=32, stride=32,
                                                                            validation=0, mask_b=mask_b))
    manifest = load_manifest(tmp_path / "out", UNPAIRED)
    cell = manifest["b"]["grid"]["cell_size"][0]
    inside = {col for col in range(0, 329 - 31, 32) if (col + 32) * cell <= 0.015}
    assert {c["col_off"] for c in manifest["b"]["chips"]} == inside == {0, 32, 64, 96, 128}
    assert result["b_skipped_mask"] == 10 * 9 - len(manifest["b"]["chips"]) == 5 * 9
    assert result["a_skipped_mask"] == 0 and len(manifest["a"]["chips"]) == 12


def test_esri_cyclegan_layout_with_per_domain_files(rasters, tmp_path):
    path_a, _, path_b, _ = rasters
    export_unpaired(path_a, path_b, tmp_path / "out", UnpairedSpec(tile_size=32, stride=32, validation=0.25))
    out = tmp_path / "out"
    manifest = load_manifest(out, UNPAIRED)
    # arcgis.learn takes a folder as CycleGAN when the root has no Esri files and A/ and B/ have all three.
    assert not any((out / name).exists() for name in ("esri_accumulated_stats.json", "esri_model_definition.emd",
                                                       "map.txt"))
    for domain, bands in (("A", 3), ("B", 1)):
        names = sorted(p.name for p in (out / domain / "images").iterdir())
        assert names == [f"{i:09d}.tif" for i in range(len(manifest[domain.lower()]["chips"]))]
        stats = json.loads((out / domain / "esri_accumulated_stats.json").read_text(encoding="ascii"))
        assert stats["MetaDataMode"] == "CycleGAN" and stats["NumTiles"] == len(names) and stats["NumBands"] == bands
        assert "BandStatsState2" not in stats and len(stats["BandStatsState"]) == bands
        emd = json.loads((out / domain / "esri_model_definition.emd").read_text(encoding="ascii"))
        assert len(emd["AllTilesStats"]) == bands and "AllTilesStats2" not in emd
        assert emd["ImageHeight"] == emd["ImageWidth"] == 32
        lines = (out / domain / "map.txt").read_bytes().split(b"\r\n")
        assert lines[0] == b"images\\000000000.tif " and len(lines) == len(names) + 1
    cell_b = json.loads((out / "B" / "esri_model_definition.emd").read_text())["MinCellSize"]
    assert cell_b["spatialReference"] == {"wkid": 4326, "latestWkid": 4326}
    assert cell_b["x"] == manifest["b"]["grid"]["cell_size"][0]


def test_reexport_replaces_our_files_keeps_arcgis_learns_and_refuses_foreign_ones(rasters, tmp_path):
    path_a, _, path_b, _ = rasters
    out = tmp_path / "out"
    export_unpaired(path_a, path_b, out, UnpairedSpec(tile_size=32, stride=32, validation=0))
    (out / "A" / "models" / "cyclegan").mkdir(parents=True)
    (out / "A" / "models" / "cyclegan" / "cyclegan.pth").write_bytes(b"weights")
    (out / "A" / "esri_normalization_stats_a.json").write_text("{}")
    (out / "B" / "esri_normalization_stats_b.json").write_text("{}")
    export_unpaired(path_a, path_b, out, UnpairedSpec(tile_size=16, stride=16, validation=0))
    assert load_manifest(out, UNPAIRED)["tile_size"] == 16
    assert (out / "A" / "models" / "cyclegan" / "cyclegan.pth").read_bytes() == b"weights"
    assert (out / "B" / "esri_normalization_stats_b.json").is_file()
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    (out / "B" / "images" / "mine.txt").write_text("precious")
    (out / "B" / "esri_normalization_stats_a.json").write_text("{}")  # A's cache in B/: not where arcgis.learn puts it
    with pytest.raises(Pix2PixError, match=r"2 entries neither .*: B/esri_normalization_stats_a.json, "
                                           r"B/images/mine.txt\. Replacing"):
        export_unpaired(path_a, path_b, out, UnpairedSpec(tile_size=32, stride=32, validation=0))
    assert (out / "B" / "images" / "mine.txt").read_text() == "precious"
    after = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert after == sorted([*before, "B/images/mine.txt", "B/esri_normalization_stats_a.json"])


def test_a_paired_export_or_any_other_folder_is_not_replaced(rasters, tmp_path):
    from pix2pix_qgis import ChipSpec, export_chips

    path_a, _, path_b, _ = rasters
    paired = tmp_path / "paired"
    export_chips(path_a, path_a, paired, ChipSpec(tile_size=32, stride=32, validation=0))
    with pytest.raises(Pix2PixError, match=r"images/, images2/, map.txt\. It is a paired export \('export'\)"):
        export_unpaired(path_a, path_b, paired, UnpairedSpec(tile_size=32))
    unpaired = tmp_path / "unpaired"
    export_unpaired(path_a, path_b, unpaired, UnpairedSpec(tile_size=32, validation=0))
    with pytest.raises(Pix2PixError, match=r"A/, B/\. It is an unpaired export \('export-unpaired'\)"):
        export_chips(path_a, path_a, unpaired, ChipSpec(tile_size=32))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("precious")
    with pytest.raises(Pix2PixError, match="not empty and does not hold a previous export"):
        export_unpaired(path_a, path_b, other, UnpairedSpec(tile_size=32))
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(tile_size=100), r"Tile size 100 px is larger than domain A \(128×96 px\)"),
        (dict(cell_size_b=0.01), r"Tile size 32 px is larger than domain B \(3×3 px at the cell size"),
        (dict(cell_size_b=float("nan")), r"Cell size of B nan is invalid \(CELL_SIZE2, --cell-size2\)"),
        (dict(cell_size_b=-1.0), r"CELL_SIZE2"),
        (dict(cell_size_b=1e-12), r"raster B would be .* px\. Give a larger cell size of B"),
        (dict(tile_size=0), r"TILE_SIZE"),
        (dict(stride=-1), r"STRIDE"),
        (dict(max_nodata=float("inf")), r"MAX_NODATA"),
        (dict(validation=0.95), r"VALIDATION"),
        (dict(bands_b=(2,)), r"domain B raster has 1 band\(s\); band\(s\) \[2\] do not exist"),
        (dict(validation=0.9, tile_size=16, stride=16, cell_size_b=0.0006),
         r"Domain B: A spatial validation split of 90% leaves no training chips \(6 chips in 2 blocks"),
    ],
)
def test_hostile_options_are_refused_and_nothing_is_written(rasters, tmp_path, options, message):
    path_a, _, path_b, _ = rasters
    with pytest.raises(Pix2PixError, match=message):
        export_unpaired(path_a, path_b, tmp_path / "out", UnpairedSpec(**{"tile_size": 32, **options}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif"]


def test_hostile_paths_exit_2_naming_them_on_the_command_line(rasters, tmp_path):
    path_a, _, path_b, _ = rasters

    def run(*args):
        return subprocess.run([sys.executable, "-m", "pix2pix_qgis", "export-unpaired", *map(str, args),
                               "--progress", "none"], capture_output=True, text=True, timeout=120)

    same = run(path_a, path_b, path_a)
    assert same.returncode == 2 and "a.tif" in same.stderr and "Traceback" not in same.stderr
    missing = run(path_a, tmp_path / "nope.tif", tmp_path / "out")
    assert missing.returncode == 2 and "domain B raster" in missing.stderr
    assert "nope.tif does not exist" in missing.stderr
    bad = run(path_a, path_b, tmp_path / "out", "--cell-size2", "nan")
    assert bad.returncode == 2 and "--cell-size2" in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif"]


def test_cancel_leaves_nothing_behind_and_the_previous_export_whole(rasters, tmp_path):
    path_a, _, path_b, _ = rasters
    out = tmp_path / "out"
    export_unpaired(path_a, path_b, out, UnpairedSpec(tile_size=32, stride=32, validation=0))
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    progress = Progress()
    seen = []

    def on_event(event):
        seen.append(event)
        if len(seen) == 30:  # during domain B
            progress.cancel_event.set()

    progress._callback = on_event
    with pytest.raises(Cancelled):
        export_unpaired(path_a, path_b, out, UnpairedSpec(tile_size=16, stride=4), progress)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif", "out"]
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
