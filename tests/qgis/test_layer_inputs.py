"""Any QGIS raster layer as input: XYZ tiles, a GeoPackage raster, a VRT — real layers, real engine runs.

XYZ without a network: a local tile folder served as ``type=xyz&url=file:///…/{z}/{x}/{y}.png``.
Tiles hold a known pattern, so the temporary GeoTIFF is checked pixel for pixel and the
engine's output grid (CRS, transform, size) exactly.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from .processing_runs import recording_feedback
from .rasters import read_raster, write_raster
from .tiny_models import train_tiny_model

HALF_WORLD = 20037508.342789244
ZOOM = 2
RES = 2 * HALF_WORLD / (256 * 2**ZOOM)  # native cell size of zoom 2


def tile_pixels(x: int, y: int) -> np.ndarray:
    """(3, 256, 256) uint8: a pattern that differs in every tile, row and column."""
    rows, cols = np.mgrid[0:256, 0:256]
    return np.stack([(rows + 40 * x) % 256, (cols + 40 * y) % 256, (rows + cols) % 256]).astype("uint8")


def assert_native_tiles(written: np.ndarray, expected: np.ndarray) -> None:
    """Tiles read at their native zoom, on their own pixel grid: exact up to QGIS 3.40.

    QGIS 3.44 draws each XYZ tile into a destination rectangle widened to whole pixels (qgis/QGIS
    pull request 61591, against hairline gaps), so a tile whose edge falls exactly on a pixel edge
    can land one pixel off and its outer ring can take the neighbour's or the background's pixels.
    There every pixel off the tiles' outer rings must still be its own value or its neighbour's.
    """
    from qgis.core import Qgis

    if Qgis.QGIS_VERSION_INT < 34400:
        np.testing.assert_array_equal(written, expected)
        return
    assert written.shape == expected.shape
    rows, cols = written.shape[1:]
    padded = np.pad(expected, ((0, 0), (1, 1), (1, 1)), mode="edge")
    near = np.zeros(written.shape, dtype=bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            near |= written == padded[:, 1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols]
    in_tile_row, in_tile_col = np.arange(rows) % 256, np.arange(cols) % 256
    ring = np.isin(in_tile_row, (0, 255))[:, None] | np.isin(in_tile_col, (0, 255))[None, :]
    assert near[:, ~ring].all(), f"{(~near[:, ~ring]).sum()} pixels are more than one pixel off"


@pytest.fixture(scope="module")
def xyz_layer(tmp_path_factory):
    from osgeo import gdal
    from qgis.core import QgsRasterLayer

    root = tmp_path_factory.mktemp("tiles")
    for x in (1, 2):
        for y in (1, 2):
            folder = root / str(ZOOM) / str(x)
            folder.mkdir(parents=True, exist_ok=True)
            memory = gdal.GetDriverByName("MEM").Create("", 256, 256, 3, gdal.GDT_Byte)
            for band, values in enumerate(tile_pixels(x, y), start=1):
                memory.GetRasterBand(band).WriteArray(values)
            gdal.GetDriverByName("PNG").CreateCopy(str(folder / f"{y}.png"), memory)
    uri = f"type=xyz&url=file://{root}/{{z}}/{{x}}/{{y}}.png&zmin={ZOOM}&zmax={ZOOM}"
    layer = QgsRasterLayer(uri, "local tiles", "wms")
    assert layer.isValid(), layer.error().summary()
    return layer


@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory) -> Path:
    return train_tiny_model(tmp_path_factory.mktemp("model"))


def temporary_file(feedback) -> Path:
    for info in feedback.infos:
        found = re.search(r"temporary GeoTIFF \(.*\): (.+\.tif)$", info)
        if found:
            return Path(found.group(1))
    raise AssertionError(f"no temporary GeoTIFF in the log: {feedback.infos}")


def extent_text(x0: float, y0: float, x1: float, y1: float) -> str:
    return f"{x0!r},{x1!r},{y0!r},{y1!r} [EPSG:3857]"


def test_xyz_layer_is_translated_through_an_exact_temporary_geotiff(qgis_app, xyz_layer, rgb_model, tmp_path):
    import processing

    # tiles (1, 1) and (2, 1): 512 × 256 px, the top-left corner of tile (1, 1)
    x0, y1 = -HALF_WORLD + 256 * RES, HALF_WORLD - 256 * RES
    extent = extent_text(x0, y1 - 256 * RES, x0 + 512 * RES, y1)
    feedback = recording_feedback()
    result = processing.run("pix2pix:translate", {"INPUT": xyz_layer, "MODEL": str(rgb_model), "EXTENT": extent,
                                                  "DEVICE": "cpu", "OUTPUT": str(tmp_path / "out.tif")},
                            feedback=feedback)
    written, transform, projection = read_raster(temporary_file(feedback))
    expected = np.concatenate([tile_pixels(1, 1), tile_pixels(2, 1)], axis=2)
    assert_native_tiles(written, expected)  # native zoom, nothing resampled
    assert transform == pytest.approx((x0, RES, 0.0, y1, 0.0, -RES), rel=0, abs=1e-6)
    out, out_transform, out_projection = read_raster(Path(result["OUTPUT"]))
    assert out.shape == (3, 256, 512) and out.dtype == np.uint8
    assert out_transform == transform and out_projection == projection and "3857" in projection


def test_xyz_layer_at_a_chosen_resolution(qgis_app, xyz_layer, rgb_model, tmp_path):
    import processing

    x0, y1 = -HALF_WORLD + 256 * RES, HALF_WORLD - 256 * RES
    extent = extent_text(x0, y1 - 512 * RES, x0 + 512 * RES, y1)
    feedback = recording_feedback()
    result = processing.run("pix2pix:translate", {"INPUT": xyz_layer, "MODEL": str(rgb_model), "EXTENT": extent,
                                                  "RESOLUTION": 4 * RES, "DEVICE": "cpu",
                                                  "OUTPUT": str(tmp_path / "coarse.tif")}, feedback=feedback)
    written, transform, _ = read_raster(temporary_file(feedback))
    assert written.shape == (3, 128, 128)
    assert transform == pytest.approx((x0, 4 * RES, 0.0, y1, 0.0, -4 * RES), rel=0, abs=1e-6)
    out, out_transform, _ = read_raster(Path(result["OUTPUT"]))
    assert out.shape == (3, 128, 128) and out_transform == transform


def test_a_whole_web_layer_at_its_finest_zoom_is_refused_with_the_fix(qgis_app, xyz_layer, rgb_model, tmp_path):
    import processing
    from qgis.core import QgsProcessingException, QgsRasterLayer

    uri = xyz_layer.source().replace(f"zmax={ZOOM}", "zmax=19")
    with pytest.raises(QgsProcessingException, match="Set EXTENT to the area you need or a coarser RESOLUTION"):
        processing.run("pix2pix:translate", {"INPUT": QgsRasterLayer(uri, "deep", "wms"), "MODEL": str(rgb_model),
                                             "OUTPUT": str(tmp_path / "never.tif")})
    assert not (tmp_path / "never.tif").exists()


def test_geopackage_raster_exports_the_same_chips_as_its_geotiff(qgis_app, tmp_path, rng):
    import processing
    from osgeo import gdal
    from qgis.core import QgsRasterLayer

    a = rng.integers(0, 255, (3, 128, 128)).astype("uint8")
    tif = write_raster(tmp_path / "a.tif", a)
    gdal.Translate(str(tmp_path / "a.gpkg"), str(tif), format="GPKG", creationOptions=["RASTER_TABLE=scan"])
    layer = QgsRasterLayer(f"GPKG:{tmp_path / 'a.gpkg'}:scan", "scan", "gdal")
    assert layer.isValid() and not Path(layer.source()).is_file()
    feedback = recording_feedback()
    processing.run("pix2pix:exportchips", {"INPUT": layer, "INPUT2": str(tif), "TILE_SIZE": 64, "STRIDE": 64,
                                           "VALIDATION": 0, "OUTPUT": str(tmp_path / "chips")}, feedback=feedback)
    written, transform, _ = read_raster(temporary_file(feedback))
    np.testing.assert_array_equal(written, a)
    assert transform == read_raster(tif)[1]
    chip, chip_transform, _ = read_raster(tmp_path / "chips" / "images" / "000000003.tif")
    np.testing.assert_array_equal(chip, a[:, 64:, 64:])
    assert chip_transform == (500_640.0, 10.0, 0.0, 4_999_360.0, 0.0, -10.0)


def test_xyz_target_is_read_onto_the_input_grid(qgis_app, xyz_layer, tmp_path):
    """B as a web layer: written directly on A's grid, so the engine pairs pixels without resampling."""
    import processing

    x0, y1 = -HALF_WORLD + 256 * RES, HALF_WORLD - 256 * RES
    a = np.arange(256 * 256, dtype="uint16").reshape(1, 256, 256)
    path_a = write_raster(tmp_path / "a.tif", a, epsg=3857, geotransform=(x0, RES, 0.0, y1, 0.0, -RES))
    feedback = recording_feedback()
    processing.run("pix2pix:exportchips", {"INPUT": str(path_a), "INPUT2": xyz_layer, "TILE_SIZE": 128,
                                           "STRIDE": 128, "VALIDATION": 0, "OUTPUT": str(tmp_path / "chips")},
                   feedback=feedback)
    written, transform, _ = read_raster(temporary_file(feedback))
    assert_native_tiles(written, tile_pixels(1, 1))
    assert transform == read_raster(path_a)[1]
    chip, _, _ = read_raster(tmp_path / "chips" / "images2" / "000000003.tif")
    np.testing.assert_array_equal(chip, written[:, 128:, 128:])  # the engine pairs B's pixels as written


def test_local_files_including_vrt_go_to_the_engine_as_they_are(qgis_app, tmp_path, rng):
    import processing
    from osgeo import gdal

    tif = write_raster(tmp_path / "a.tif", rng.integers(0, 255, (1, 128, 128)).astype("uint8"))
    gdal.BuildVRT(str(tmp_path / "a.vrt"), [str(tif)])
    feedback = recording_feedback()
    processing.run("pix2pix:exportchips", {"INPUT": str(tmp_path / "a.vrt"), "INPUT2": str(tif), "TILE_SIZE": 64,
                                           "STRIDE": 64, "VALIDATION": 0, "OUTPUT": str(tmp_path / "chips")},
                   feedback=feedback)
    assert not any("temporary GeoTIFF" in info for info in feedback.infos)
    assert len(list((tmp_path / "chips" / "images").glob("*.tif"))) == 4
