"""Export paired chips: exact windows, grids, bands, nodata, masks, split, errors, cancel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from pix2pix_qgis import Cancelled, ChipSpec, Pix2PixError, Progress, export_chips
from pix2pix_qgis.chips.manifest import load_manifest

from ..builders import UTM_TRANSFORM


def read_chip(folder: Path, sub: str, name: str):
    with rasterio.open(folder / sub / name) as src:
        return src.read(), src.transform, src.crs, src.nodata, src.read_masks()


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_chips_equal_source_windows_with_exact_georeferencing(make_raster, tmp_path, rng, dtype):
    info = np.iinfo(dtype) if dtype != "float32" else None
    high = min(info.max, 5000) if info else 1.0
    a = rng.integers(0, high, (3, 200, 300)).astype(dtype) if info else rng.random((3, 200, 300), dtype=dtype)
    b = (a[:1].astype("float32") * 2 + 1).astype("float32")
    path_a, path_b = make_raster("a.tif", a), make_raster("b.tif", b)
    result = export_chips(path_a, path_b, tmp_path / "chips", ChipSpec(tile_size=64, stride=32, validation=0.2))
    manifest = load_manifest(tmp_path / "chips")
    assert result["chips"] == len(manifest["chips"]) > 0
    assert manifest["a"]["dtype"] == dtype and manifest["b"]["dtype"] == "float32"
    for chip in manifest["chips"]:
        row, col = chip["row_off"], chip["col_off"]
        chip_a, transform, crs, _, _ = read_chip(tmp_path / "chips", "images", chip["name"])
        chip_b, transform_b, _, _, _ = read_chip(tmp_path / "chips", "images2", chip["name"])
        np.testing.assert_array_equal(chip_a, a[:, row:row + 64, col:col + 64])
        np.testing.assert_array_equal(chip_b, b[:, row:row + 64, col:col + 64])
        assert chip_a.dtype == np.dtype(dtype)
        assert transform == transform_b == window_transform(Window(col, row, 64, 64), UTM_TRANSFORM)
        assert crs == rasterio.crs.CRS.from_epsg(32633)


def test_names_are_contiguous_nine_digit_and_esri_files_written(make_raster, tmp_path, rng):
    a = rng.integers(0, 255, (3, 256, 256), dtype="uint8")
    export_chips(make_raster("a.tif", a), make_raster("b.tif", a[::-1].copy()), tmp_path / "out",
                 ChipSpec(tile_size=64, stride=32))
    out = tmp_path / "out"
    names = sorted(p.name for p in (out / "images").iterdir())
    assert names == [f"{i:09d}.tif" for i in range(len(names))]
    assert names == sorted(p.name for p in (out / "images2").iterdir())
    stats = json.loads((out / "esri_accumulated_stats.json").read_text())
    assert stats["MetaDataMode"] == "Export_Tiles" and stats["NumTiles"] == len(names)
    assert stats["TileSizeX"] == stats["TileSizeY"] == 64
    emd = json.loads((out / "esri_model_definition.emd").read_text())
    assert len(emd["AllTilesStats"]) == 3 and len(emd["AllTilesStats2"]) == 3
    lines = (out / "map.txt").read_bytes().split(b"\r\n")  # as Pro 3.3 writes it: CRLF, a trailing space
    assert lines[0] == b"images\\000000000.tif images2\\000000000.tif " and len(lines) == len(names) + 1


def test_target_in_other_crs_and_resolution_is_resampled_onto_a_grid(make_raster, tmp_path):
    # A: UTM 33N, 10 m. B: WGS 84 at ~3 m whose value is its own longitude (a linear field,
    # which bilinear resampling reproduces), so each B chip must equal the longitude of A's pixels.
    a = np.zeros((1, 128, 128), dtype="uint8")
    path_a = make_raster("a.tif", a)
    with rasterio.open(path_a) as src:
        left, bottom, right, top = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    margin = 0.001
    width, height = 500, 450
    transform_b = rasterio.transform.from_bounds(left - margin, bottom - margin, right + margin, top + margin,
                                                 width, height)
    cols = np.arange(width) + 0.5
    lon = transform_b.c + transform_b.a * cols
    b = np.broadcast_to(lon, (height, width)).astype("float64")[None]
    path_b = make_raster("b.tif", b, crs="EPSG:4326", transform=transform_b)
    events = []
    export_chips(path_a, path_b, tmp_path / "chips", ChipSpec(tile_size=64, stride=64, validation=0),
                 Progress(events.append))
    assert any(e["type"] == "info" and "resampling" in e["message"] for e in events)
    manifest = load_manifest(tmp_path / "chips")
    assert manifest["b"]["resampled"] is True and len(manifest["chips"]) == 4
    for chip in manifest["chips"]:
        chip_b, transform, crs, _, _ = read_chip(tmp_path / "chips", "images2", chip["name"])
        assert crs == rasterio.crs.CRS.from_epsg(32633)
        rows, cols = np.mgrid[0:64, 0:64] + 0.5
        xs, ys = transform @ (cols.ravel(), rows.ravel())
        expected_lon, _ = rasterio.warp.transform("EPSG:32633", "EPSG:4326", xs, ys)
        np.testing.assert_allclose(chip_b[0].ravel(), expected_lon, atol=2e-6)


def test_aligned_target_with_other_extent_is_read_exactly(make_raster, tmp_path, rng):
    a = rng.integers(0, 1000, (1, 96, 96), dtype="uint16")
    big = rng.integers(0, 1000, (2, 150, 150), dtype="uint16")
    offset = UTM_TRANSFORM @ Affine.translation(-20, -30)  # B starts 20 px left and 30 px up of A
    path_b = make_raster("b.tif", big, transform=offset)
    export_chips(make_raster("a.tif", a), path_b, tmp_path / "c", ChipSpec(tile_size=32, stride=32, validation=0))
    for chip in load_manifest(tmp_path / "c")["chips"]:
        r, c = chip["row_off"], chip["col_off"]
        chip_b, *_ = read_chip(tmp_path / "c", "images2", chip["name"])
        np.testing.assert_array_equal(chip_b, big[:, r + 30:r + 62, c + 20:c + 52])


def test_band_selection_orders_and_subsets_bands(make_raster, tmp_path, rng):
    a = rng.integers(0, 255, (4, 64, 64), dtype="uint8")
    b = rng.integers(0, 255, (3, 64, 64), dtype="uint8")
    export_chips(make_raster("a.tif", a), make_raster("b.tif", b), tmp_path / "c",
                 ChipSpec(tile_size=64, stride=64, bands_a=(4, 2), bands_b=(3,), validation=0))
    chip_a, *_ = read_chip(tmp_path / "c", "images", "000000000.tif")
    chip_b, *_ = read_chip(tmp_path / "c", "images2", "000000000.tif")
    np.testing.assert_array_equal(chip_a, a[[3, 1]])
    np.testing.assert_array_equal(chip_b, b[[2]])
    manifest = load_manifest(tmp_path / "c")
    assert manifest["a"]["bands"] == [4, 2] and manifest["b"]["bands"] == [3]
    with pytest.raises(Pix2PixError, match=r"has 3 band\(s\); band\(s\) \[5\]"):
        export_chips(tmp_path / "a.tif", tmp_path / "b.tif", tmp_path / "d", ChipSpec(tile_size=64, bands_b=(5,)))


def test_nodata_chips_skipped_kept_chips_keep_nodata_and_stats_exclude_it(make_raster, tmp_path, rng):
    a = rng.integers(1, 200, (1, 128, 128)).astype("int16")
    a[:, :40, :40] = -9999  # nodata corner touches only the top-left 64 px chip
    b = rng.random((1, 128, 128), dtype="float32")
    path_a, path_b = make_raster("a.tif", a, nodata=-9999), make_raster("b.tif", b)
    strict = export_chips(path_a, path_b, tmp_path / "strict", ChipSpec(tile_size=64, stride=64, validation=0))
    assert strict["chips"] == 3 and strict["skipped_nodata"] == 1
    loose = export_chips(path_a, path_b, tmp_path / "loose",
                         ChipSpec(tile_size=64, stride=64, validation=0, max_nodata=0.5))
    assert loose["chips"] == 4
    manifest = load_manifest(tmp_path / "loose")
    first = next(c for c in manifest["chips"] if c["row_off"] == 0 and c["col_off"] == 0)
    assert first["nodata_fraction"] == pytest.approx(1600 / 4096)
    chip_a, _, _, nodata, masks = read_chip(tmp_path / "loose", "images", first["name"])
    assert nodata == -9999 and (chip_a[0, :40, :40] == -9999).all() and (masks[0, :40, :40] == 0).all()
    valid = a[0][a[0] != -9999]
    stats = manifest["a"]["statistics"][0]
    assert stats["count"] == valid.size and stats["min"] == valid.min()
    assert stats["mean"] == pytest.approx(valid.mean()) and stats["std"] == pytest.approx(valid.std())


def test_nan_nodata_rasters_export_and_the_manifest_stays_strict_json(make_raster, tmp_path, rng):
    a = rng.random((1, 128, 128), dtype="float32")
    a[:, :30, :30] = np.nan
    b = rng.random((1, 128, 128), dtype="float32")
    path_a, path_b = make_raster("a.tif", a, nodata=np.nan), make_raster("b.tif", b, nodata=np.nan)
    result = export_chips(path_a, path_b, tmp_path / "chips",
                          ChipSpec(tile_size=64, stride=64, validation=0, max_nodata=0.5))
    assert result["chips"] == 4
    text = (tmp_path / "chips" / "chips.json").read_text()
    manifest = json.loads(text, parse_constant=lambda name: pytest.fail(f"chips.json holds {name}"))
    assert manifest["a"]["nodata"] is None and manifest["b"]["nodata"] is None
    assert manifest["a"]["statistics"][0]["count"] == 128 * 128 - 900


def test_internal_masks_are_respected_and_carried_into_chips(make_raster, tmp_path, rng):
    a = rng.integers(0, 255, (1, 64, 64), dtype="uint8")
    b = rng.integers(1, 255, (1, 64, 64), dtype="uint8")
    path_b = make_raster("b.tif", b)
    valid = np.full((64, 64), 255, dtype="uint8")
    valid[:, 40:] = 0  # B has no nodata value but an internal mask hiding its right 24 columns
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path_b, "r+") as dst:
        dst.write_mask(valid)
    path_a = make_raster("a.tif", a)
    with pytest.raises(Pix2PixError, match="All 1 candidate chips have more than 0% nodata"):
        export_chips(path_a, path_b, tmp_path / "strict", ChipSpec(tile_size=64, validation=0))
    assert not (tmp_path / "strict").exists()
    export_chips(path_a, path_b, tmp_path / "c", ChipSpec(tile_size=64, validation=0, max_nodata=0.5))
    chip_b, _, _, nodata, masks = read_chip(tmp_path / "c", "images2", "000000000.tif")
    assert nodata is None
    np.testing.assert_array_equal(masks[0], valid)
    np.testing.assert_array_equal(chip_b[0, :, :40], b[0, :, :40])
    stats = load_manifest(tmp_path / "c")["b"]["statistics"][0]
    assert stats["count"] == 64 * 40 and stats["mean"] == pytest.approx(b[0, :, :40].mean())

def test_mask_keeps_only_chips_fully_inside_polygons(make_raster, tmp_path, rng):
    a = rng.integers(0, 255, (1, 128, 128), dtype="uint8")
    path_a, path_b = make_raster("a.tif", a), make_raster("b.tif", a)
    # Polygon over the western 70 px of A (in A's CRS): only chips in columns 0..69 fit.
    x0, y0 = UTM_TRANSFORM @ (0, 0)
    x1, y1 = UTM_TRANSFORM @ (70, 128)
    polygon = {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
    mask = tmp_path / "mask.geojson"
    mask.write_text(json.dumps({
        "type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32633"}},
        "features": [{"type": "Feature", "properties": {}, "geometry": polygon}],
    }))
    result = export_chips(path_a, path_b, tmp_path / "c",
                          ChipSpec(tile_size=32, stride=16, validation=0, mask=mask))
    chips = load_manifest(tmp_path / "c")["chips"]
    assert result["skipped_mask"] > 0 and chips
    assert all(c["col_off"] + 32 <= 70 for c in chips)
    assert len(chips) == len(range(0, 70 - 32 + 1, 16)) * len(range(0, 128 - 32 + 1, 16))


def test_extent_limits_chips_to_the_area(make_raster, tmp_path, rng):
    a = rng.integers(0, 255, (1, 128, 128), dtype="uint8")
    x0, y1 = UTM_TRANSFORM @ (64, 64)
    x1, y0 = UTM_TRANSFORM @ (128, 0)
    export_chips(make_raster("a.tif", a), make_raster("b.tif", a), tmp_path / "c",
                 ChipSpec(tile_size=32, stride=32, validation=0, extent=(x0, y1, x1, y0)))
    chips = load_manifest(tmp_path / "c")["chips"]
    assert {(c["row_off"], c["col_off"]) for c in chips} == {(r, c) for r in (0, 32) for c in (64, 96)}


def test_no_training_chip_overlaps_a_validation_chip_and_split_is_seeded(make_raster, tmp_path, rng):
    a = rng.integers(0, 255, (1, 512, 512), dtype="uint8")
    path_a, path_b = make_raster("a.tif", a), make_raster("b.tif", a)
    spec = ChipSpec(tile_size=64, stride=32, validation=0.2, seed=7)
    result = export_chips(path_a, path_b, tmp_path / "one", spec)
    chips = load_manifest(tmp_path / "one")["chips"]
    train = [c for c in chips if c["split"] == "train"]
    val = [c for c in chips if c["split"] == "validation"]
    assert train and val and result["validation"] == len(val)
    for t in train:
        for v in val:
            assert abs(t["row_off"] - v["row_off"]) >= 64 or abs(t["col_off"] - v["col_off"]) >= 64
    export_chips(path_a, path_b, tmp_path / "two", spec)
    assert load_manifest(tmp_path / "two")["chips"] == chips
    export_chips(path_a, path_b, tmp_path / "three", ChipSpec(tile_size=64, stride=32, validation=0.2, seed=8))
    assert load_manifest(tmp_path / "three")["chips"] != chips


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (dict(tile_size=512), r"Tile size 512 px is larger than the area to export \(100×80 px"),
        (dict(stride=0), r"Stride 0 is invalid"),
        (dict(max_nodata=2.0), r"MAX_NODATA"),
        (dict(validation=1.0), r"VALIDATION"),
    ],
)
def test_bad_options_give_clear_errors_and_no_output(make_raster, tmp_path, spec, message):
    data = np.ones((1, 80, 100), dtype="uint8")
    path = make_raster("a.tif", data)
    with pytest.raises(Pix2PixError, match=message):
        export_chips(path, path, tmp_path / "out", ChipSpec(**{"tile_size": 32, **spec}))
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a.tif"]


def test_missing_file_and_non_overlapping_rasters_are_named(make_raster, tmp_path):
    data = np.ones((1, 64, 64), dtype="uint8")
    path_a = make_raster("a.tif", data)
    with pytest.raises(Pix2PixError, match=r"target \(B\) raster .*missing.tif does not exist"):
        export_chips(path_a, tmp_path / "missing.tif", tmp_path / "out")
    far = make_raster("far.tif", data, transform=UTM_TRANSFORM @ Affine.translation(1000, 0))
    with pytest.raises(Pix2PixError) as info:
        export_chips(path_a, far, tmp_path / "out")
    text = str(info.value)
    assert "do not overlap" in text and "[500000, 4.99936e+06, 500640, 5e+06]" in text
    assert "[510000, 4.99936e+06, 510640, 5e+06]" in text
    assert not (tmp_path / "out").exists()


def test_unwritable_output_is_refused_before_work(make_raster, tmp_path):
    path = make_raster("a.tif", np.ones((1, 64, 64), dtype="uint8"))
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(Pix2PixError, match="is a file, not a folder"):
        export_chips(path, path, blocker / "chips", ChipSpec(tile_size=32))


def test_existing_folder_is_replaced_only_when_it_is_a_previous_export(make_raster, tmp_path):
    path = make_raster("a.tif", np.ones((1, 64, 64), dtype="uint8"))
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    with pytest.raises(Pix2PixError, match="not empty and does not hold a previous export"):
        export_chips(path, path, foreign, ChipSpec(tile_size=32, validation=0))
    assert (foreign / "notes.txt").read_text() == "precious"
    out = tmp_path / "chips"
    export_chips(path, path, out, ChipSpec(tile_size=32, validation=0))
    export_chips(path, path, out, ChipSpec(tile_size=64, validation=0))
    assert load_manifest(out)["tile_size"] == 64 and len(list((out / "images").iterdir())) == 1


def test_cancel_leaves_nothing_behind(make_raster, tmp_path, rng):
    path = make_raster("a.tif", rng.integers(0, 255, (1, 256, 256), dtype="uint8"))
    progress = Progress()
    seen = []

    def on_event(event):
        seen.append(event)
        if len(seen) == 3:
            progress.cancel_event.set()

    progress._callback = on_event
    with pytest.raises(Cancelled):
        export_chips(path, path, tmp_path / "out", ChipSpec(tile_size=16, stride=4), progress)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif"]
