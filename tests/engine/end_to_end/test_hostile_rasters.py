"""Rasters as GDAL sees them: south-up grids, complex pixels, VRTs, virtual paths, subdatasets, CRS trouble.

Legal rasters that are not the usual north-up GeoTIFF must work (pixel-exact) or be refused
with the fix; GDAL names must reach GDAL as they are; nothing may end in a traceback.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from pix2pix_qgis.chips.export import export_chips
from pix2pix_qgis.chips.spec import ChipSpec
from pix2pix_qgis.evaluate.rasters import evaluate_rasters

from ..builders import UTM_TRANSFORM, smooth_field, write_raster
from ..cli_runs import fingerprint, run_cli
from ..models import write_model

SOUTH_UP = Affine(10.0, 0.0, 500_000.0, 0.0, 10.0, 4_999_360.0)  # positive pixel height: row 0 is the south edge
CPU = ("--device", "cpu")


@pytest.fixture
def pair(tmp_path, rng) -> tuple[np.ndarray, np.ndarray]:
    a = smooth_field(rng, 3, 64)
    return a, (255 - a[[2, 0, 1]]).astype("uint8")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_model(tmp_path_factory.mktemp("model") / "m.p2p", chip=32, depth=3)


def test_south_up_rasters_export_pixel_exact_chips(tmp_path, pair):
    a, b = pair
    spec = ChipSpec(tile_size=32, stride=16, validation=0.0)
    north = export_chips(write_raster(tmp_path / "na.tif", a), write_raster(tmp_path / "nb.tif", b),
                         tmp_path / "north", spec)
    south_a = write_raster(tmp_path / "sa.tif", a, transform=SOUTH_UP)
    south = export_chips(south_a, write_raster(tmp_path / "sb.tif", b, transform=SOUTH_UP), tmp_path / "south", spec)
    assert south["chips"] == north["chips"] == 9
    manifest = json.loads((tmp_path / "south" / "chips.json").read_text())
    for chip in manifest["chips"]:
        row, col = chip["row_off"], chip["col_off"]
        for folder, source in (("images", a), ("images2", b)):
            with rasterio.open(tmp_path / "south" / folder / chip["name"]) as dst:
                assert (dst.read() == source[:, row:row + 32, col:col + 32]).all()
                assert dst.transform == SOUTH_UP * Affine.translation(col, row) and dst.crs == "EPSG:32633"


def test_a_south_up_extent_selects_the_pixels_under_it(tmp_path, pair):
    a, b = pair
    south_a = write_raster(tmp_path / "sa.tif", a, transform=SOUTH_UP)
    south_b = write_raster(tmp_path / "sb.tif", b, transform=SOUTH_UP)
    # x 500 100–500 420, y from the raster's south edge + 50 to + 370: columns 10–42, rows 5–37 (row 0 is south)
    extent = (500_100.0, 4_999_410.0, 500_420.0, 4_999_730.0)
    export_chips(south_a, south_b, tmp_path / "chips", ChipSpec(tile_size=32, stride=32, validation=0.0,
                                                                extent=extent))
    manifest = json.loads((tmp_path / "chips" / "chips.json").read_text())
    assert manifest["window"] == {"col_off": 10, "row_off": 5, "width": 32, "height": 32}


def test_south_up_rasters_translate_and_evaluate_like_north_up_ones(tmp_path, pair, model):
    a, b = pair
    north = write_raster(tmp_path / "north.tif", a)
    south = write_raster(tmp_path / "south.tif", a, transform=SOUTH_UP)
    for source, out in ((north, "north_out.tif"), (south, "south_out.tif")):
        assert run_cli("translate", str(source), str(model), str(tmp_path / out), *CPU, "--overlap", "8").code == 0
    with rasterio.open(tmp_path / "north_out.tif") as n, rasterio.open(tmp_path / "south_out.tif") as s:
        assert (n.read() == s.read()).all()  # the engine works on pixels; the grid only travels along
        assert s.transform == SOUTH_UP and s.crs == "EPSG:32633" and s.shape == (64, 64)
    reference_north = write_raster(tmp_path / "rn.tif", b)
    reference_south = write_raster(tmp_path / "rs.tif", b, transform=SOUTH_UP)
    north_metrics = evaluate_rasters(tmp_path / "north_out.tif", reference_north)
    south_metrics = evaluate_rasters(tmp_path / "south_out.tif", reference_south, error_raster=tmp_path / "err.tif")
    assert south_metrics["bands"] == north_metrics["bands"] and south_metrics["pixels"] == 64 * 64
    with rasterio.open(tmp_path / "err.tif") as err:
        assert err.transform == SOUTH_UP
    mixed = run_cli("evaluate", str(tmp_path / "south_out.tif"), str(reference_north))
    assert mixed.refused("rows or columns run in opposite directions", "Warp one")


@pytest.mark.parametrize("command", ["export", "translate", "evaluate"])
def test_complex_rasters_are_refused_with_the_fix(tmp_path, pair, model, command):
    a, _ = pair
    complex_raster = write_raster(tmp_path / "c.tif", (a.astype("float32") + 1j * a).astype("complex64"))
    plain = write_raster(tmp_path / "p.tif", a)
    args = {"export": (str(complex_raster), str(plain), str(tmp_path / "out"), "--tile-size", "32"),
            "translate": (str(complex_raster), str(model), str(tmp_path / "out.tif"), *CPU),
            "evaluate": (str(complex_raster), str(plain))}[command]
    run = run_cli(command, *args)
    assert run.refused(f"{complex_raster} has complex pixels (complex64)", "amplitude", "real and imaginary")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.tif").exists()


def vrt_with_missing_source(folder: Path) -> Path:
    vrt = folder / "mosaic.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="64" rasterYSize="64"><SRS>EPSG:32633</SRS>'
        "<GeoTransform>500000, 10, 0, 5000000, 0, -10</GeoTransform>"
        + "".join(f'<VRTRasterBand dataType="Byte" band="{band}"><SimpleSource>'
                  '<SourceFilename relativeToVRT="1">gone.tif</SourceFilename>'
                  f"<SourceBand>{band}</SourceBand></SimpleSource></VRTRasterBand>" for band in (1, 2, 3))
        + "</VRTDataset>")
    return vrt


@pytest.mark.parametrize("command", ["export", "translate", "evaluate"])
def test_a_vrt_whose_source_is_missing_is_refused_naming_it(tmp_path, pair, model, command):
    vrt = vrt_with_missing_source(tmp_path)
    plain = write_raster(tmp_path / "p.tif", pair[0])
    args = {"export": (str(vrt), str(plain), str(tmp_path / "out"), "--tile-size", "32"),
            "translate": (str(vrt), str(model), str(tmp_path / "out.tif"), *CPU),
            "evaluate": (str(plain), str(vrt))}[command]
    run = run_cli(command, *args)
    assert run.refused(f"{vrt} refers to 1 file(s) that do not exist: {tmp_path / 'gone.tif'}", "Restore")


def test_gdal_virtual_paths_and_subdatasets_reach_gdal_as_they_are(tmp_path, pair, model):
    source = write_raster(tmp_path / "in.tif", pair[0])
    zipped = tmp_path / "in.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(source, "inside/in.tif")
    for name in (f"/vsizip/{zipped}/inside/in.tif", f"GTIFF_DIR:1:{source}"):
        run = run_cli("translate", name, str(model), str(tmp_path / "out.tif"), *CPU)
        assert run.code == 0, run.message
        assert run.events[-1]["result"]["width"] == 64
    run = run_cli("translate", "/vsicurl/http://127.0.0.1:9/none.tif", str(model), str(tmp_path / "out2.tif"), *CPU)
    assert run.refused("cannot be read as a raster: ") and "Check the path" not in run.message  # GDAL's reason
    run = run_cli("translate", f"/vsizip/{zipped}/inside/other.tif", str(model), str(tmp_path / "out2.tif"), *CPU)
    assert run.refused("cannot be read as a raster")


def test_a_netcdf_subdataset_name_reaches_gdal(tmp_path, pair):
    """``NETCDF:"f.nc":var`` is not a path on disk: it used to be refused as "does not exist"."""
    import rasterio.shutil

    nc = tmp_path / "f.nc"
    rasterio.shutil.copy(write_raster(tmp_path / "one.tif", pair[0][:1]), nc, driver="netCDF")  # rasterio: copy only
    model = write_model(tmp_path / "m1.p2p", in_bands=1, out_bands=1, chip=32, depth=3)
    name = f'NETCDF:"{nc}":Band1'
    run = run_cli("translate", name, str(model), str(tmp_path / "out.tif"), *CPU)
    assert run.code == 0, run.message
    with rasterio.open(tmp_path / "out.tif") as out:
        assert out.shape == (64, 64) and out.transform == UTM_TRANSFORM and out.crs == "EPSG:32633"
    assert run_cli("translate", f'NETCDF:"{nc}":nothing', str(model), str(tmp_path / "o2.tif"), *CPU).refused(
        "cannot be read as a raster")
    assert run_cli("translate", name, str(model), str(nc), *CPU).refused("is the input raster of this run")


@pytest.mark.parametrize("command", ["export", "translate", "evaluate"])
def test_a_fifo_or_device_as_a_raster_is_refused_without_blocking(tmp_path, pair, model, command):
    """GDAL opening a FIFO waits for a writer for ever (SIGTERM only wakes it to wait again)."""
    import os

    import rasterio.shutil

    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    plain = write_raster(tmp_path / "p.tif", pair[0])
    vrt = tmp_path / "through.vrt"
    rasterio.shutil.copy(plain, vrt, driver="VRT")
    vrt.write_text(vrt.read_text().replace(">p.tif<", ">pipe.tif<"))
    for bad, expected in ((fifo, (f"{fifo} is a FIFO (named pipe), not a raster file",)),
                          ("/dev/zero", ("/dev/zero is a device",)),
                          (vrt, ("The source of the", f"{vrt}, {fifo} is a FIFO"))):
        args = {"export": (str(plain), str(bad), str(tmp_path / "out"), "--tile-size", "32"),
                "translate": (str(bad), str(model), str(tmp_path / "out.tif"), *CPU),
                "evaluate": (str(plain), str(bad))}[command]
        run = run_cli(command, *args, timeout=120)
        assert run.refused(*expected), run.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.tif", "pipe.tif", "through.vrt"]


def test_an_extent_crs_on_a_raster_without_crs_is_refused(tmp_path, pair, model):
    source = write_raster(tmp_path / "no crs.tif", pair[0], crs=None)
    run = run_cli("translate", str(source), str(model), str(tmp_path / "out.tif"), *CPU,
                  "--extent", "0", "0", "1", "1", "--extent-crs", "EPSG:4326")
    assert run.refused("has no CRS, so an extent given in EPSG:4326 cannot be placed on it", "assign the raster a CRS")


@pytest.mark.parametrize("command", ["export", "translate", "evaluate"])
def test_an_unknown_extent_crs_is_refused(tmp_path, pair, model, command):
    source = write_raster(tmp_path / "in.tif", pair[0])
    extent = ("--extent", "0", "0", "1", "1", "--extent-crs", "EPSG:99999")
    args = {"export": (str(source), str(source), str(tmp_path / "out"), "--tile-size", "32", *extent),
            "translate": (str(source), str(model), str(tmp_path / "out.tif"), *CPU, *extent),
            "evaluate": (str(source), str(source), *extent)}[command]
    assert run_cli(command, *args).refused("The extent CRS 'EPSG:99999' is not a CRS that PROJ knows", "EPSG:4326")


def projected_mask(path: Path, crs: str | None) -> Path:
    left, top = UTM_TRANSFORM.c, UTM_TRANSFORM.f
    ring = [[left, top - 640], [left + 640, top - 640], [left + 640, top], [left, top], [left, top - 640]]
    document = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    if crs:
        document["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize("command", ["export", "evaluate"])
def test_a_projected_mask_without_a_crs_member_is_refused_with_the_fix(tmp_path, pair, command):
    source = write_raster(tmp_path / "in.tif", pair[0])
    mask = projected_mask(tmp_path / "mask.geojson", None)
    args = ((str(source), str(source), str(tmp_path / "out"), "--tile-size", "32", "--validation", "0")
            if command == "export" else (str(source), str(source)))
    run = run_cli(command, *args, "--mask", str(mask))
    assert run.refused(f"The mask {mask} has no 'crs' member", "not degrees", '"name": "EPSG:32633"')
    named = projected_mask(tmp_path / "named.geojson", "EPSG:32633")
    assert run_cli(command, *args, "--mask", str(named)).code == 0  # with its CRS named, the same polygon works


def test_an_unknown_mask_crs_is_refused(tmp_path, pair):
    source = write_raster(tmp_path / "in.tif", pair[0])
    mask = projected_mask(tmp_path / "mask.geojson", "EPSG:99999")
    run = run_cli("export", str(source), str(source), str(tmp_path / "out"), "--tile-size", "32", "--mask", str(mask))
    assert run.refused(f"The CRS of the mask {mask} 'EPSG:99999' is not a CRS that PROJ knows")


def test_creation_options_gdal_refuses_are_refused_before_any_tile(tmp_path, pair, model):
    source = write_raster(tmp_path / "in.tif", pair[0])
    before = fingerprint(tmp_path)
    run = run_cli("translate", str(source), str(model), str(tmp_path / "out.tif"), *CPU, "--co", "BLOCKXSIZE=7")
    assert run.refused("creation options BLOCKXSIZE=7", "multiples of 16", "--co")
    assert not any(e["type"] == "progress" for e in run.events)
    assert fingerprint(tmp_path) == before
