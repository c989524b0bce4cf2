"""Any QGIS raster layer as engine input: local files as they are, others written to a temporary GeoTIFF.

The engine reads files with rasterio. A layer that is not a local file (a GeoPackage raster
table, a WMS or XYZ layer, a PostGIS raster, ...) is read block by block through QGIS's own
data provider (cloned in the main thread, as QGIS's native algorithms do) and written to a
temporary GeoTIFF on a stated grid: the layer's own pixel grid at a chosen resolution, or
another raster's grid (through a ``QgsRasterProjector``) so paired inputs line up exactly.
Web layers (ARGB colour data) become three bands R, G, B with an internal mask from alpha.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from osgeo import gdal, osr
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingUtils,
    QgsRasterDataProvider,
    QgsRasterLayer,
    QgsRasterProjector,
    QgsRectangle,
)

from .compat import ARGB_DATA_TYPES, RASTER_SIZE_CAPABILITY, WKT_PREFERRED_GDAL

MAX_PIXELS = 1_000_000_000
STRIP_PIXELS = 4_000_000
_GDAL_TYPES = {1: gdal.GDT_Byte, 2: gdal.GDT_UInt16, 3: gdal.GDT_Int16, 4: gdal.GDT_UInt32, 5: gdal.GDT_Int32,
               6: gdal.GDT_Float32, 7: gdal.GDT_Float64}
_NUMPY_TYPES = {1: np.uint8, 2: np.uint16, 3: np.int16, 4: np.uint32, 5: np.int32, 6: np.float32, 7: np.float64}


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: CRS, extent (exact multiple of the cell size) and size in pixels."""

    crs: QgsCoordinateReferenceSystem
    extent: QgsRectangle
    width: int
    height: int

    @property
    def resolution(self) -> tuple[float, float]:
        """(x, y) cell size in map units."""
        return self.extent.width() / self.width, self.extent.height() / self.height


@dataclass
class PreparedRaster:
    """What the worker thread needs of a raster layer, taken in the main thread (QGIS's threading rule)."""

    name: str
    crs: QgsCoordinateReferenceSystem
    extent: QgsRectangle
    width: int
    height: int
    native: float | None
    path: str  # the local file, or '' when the layer must be written out
    provider: QgsRasterDataProvider | None  # a clone, for layers that are not local files


def is_local_file(layer: QgsRasterLayer) -> bool:
    """Whether the engine can read the layer's source directly (a GDAL file on disk), with no export."""
    return layer.providerType() == "gdal" and os.path.isfile(layer.source())


def native_resolution(layer: QgsRasterLayer) -> float | None:
    """Finest native cell size: a tiled service's finest zoom level, else the raster's own cell."""
    provider = layer.dataProvider()
    resolutions = [r for r in provider.nativeResolutions() if r > 0]
    if resolutions:
        return min(resolutions)
    if layer.width() > 0 and provider.capabilities() & RASTER_SIZE_CAPABILITY:
        return layer.rasterUnitsPerPixelX()
    return None


def prepare(layer: QgsRasterLayer) -> PreparedRaster:
    """What the worker thread needs of ``layer``, taken in the main thread (a provider clone for non-file layers)."""
    local = is_local_file(layer)
    return PreparedRaster(layer.name(), layer.crs(), QgsRectangle(layer.extent()), layer.width(), layer.height(),
                          native_resolution(layer), layer.source() if local else "",
                          None if local else layer.dataProvider().clone())


def layer_grid(layer: PreparedRaster, parameter: str, extent: QgsRectangle | None = None,
               resolution: float | None = None) -> Grid:
    """The layer's pixel grid (anchored at its extent's corner) over ``extent`` ∩ the layer, at ``resolution``."""
    cell = resolution or layer.native
    if not cell:
        raise QgsProcessingException(
            f"{parameter}: the layer '{layer.name}' has no native resolution; set RESOLUTION (cell size in the "
            "layer's CRS units).")
    full = layer.extent
    area = full if extent is None or extent.isNull() else full.intersect(extent)
    if area.isEmpty():
        raise QgsProcessingException(f"{parameter}: the extent does not overlap the layer '{layer.name}'.")
    x0 = full.xMinimum() + math.floor((area.xMinimum() - full.xMinimum()) / cell + 1e-9) * cell
    y1 = full.yMaximum() - math.floor((full.yMaximum() - area.yMaximum()) / cell + 1e-9) * cell
    width = max(1, math.ceil((area.xMaximum() - x0) / cell - 1e-9))
    height = max(1, math.ceil((y1 - area.yMinimum()) / cell - 1e-9))
    if width * height > MAX_PIXELS:
        raise QgsProcessingException(
            f"{parameter}: the layer '{layer.name}' would be {width}×{height} pixels at a cell size of {cell:g}. "
            "Set EXTENT to the area you need or a coarser RESOLUTION.")
    return Grid(layer.crs, QgsRectangle(x0, y1 - height * cell, x0 + width * cell, y1), width, height)


def file_grid(layer: PreparedRaster, extent: QgsRectangle | None = None) -> Grid:
    """A raster's own pixel grid, cut to ``extent`` (snapped outward to its pixels)."""
    whole = Grid(layer.crs, QgsRectangle(layer.extent), layer.width, layer.height)
    if extent is None or extent.isNull():
        return whole
    try:
        return layer_grid(layer, "", extent, layer.extent.width() / layer.width)
    except QgsProcessingException:  # no overlap: the engine says so, with both extents
        return whole


def _to_gdal(grid: Grid, path: str, bands: int, data_type: int, mask: bool) -> gdal.Dataset:
    gdal.UseExceptions()
    options = ["TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"]
    dataset = gdal.GetDriverByName("GTiff").Create(path, grid.width, grid.height, bands, data_type, options)
    x_res, y_res = grid.resolution
    dataset.SetGeoTransform((grid.extent.xMinimum(), x_res, 0.0, grid.extent.yMaximum(), 0.0, -y_res))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(grid.crs.toWkt(WKT_PREFERRED_GDAL))
    dataset.SetProjection(srs.ExportToWkt())
    if mask:
        dataset.CreateMaskBand(gdal.GMF_PER_DATASET)
    return dataset


def _argb_to_rgba(raw: bytes, rows: int, cols: int, premultiplied: bool) -> np.ndarray:
    """QGIS ARGB32 pixels (little-endian B, G, R, A bytes) → (4, rows, cols) uint8 R, G, B, A."""
    bgra = np.frombuffer(raw, dtype=np.uint8, count=rows * cols * 4).reshape(rows, cols, 4)
    rgba = bgra[..., [2, 1, 0, 3]].transpose(2, 0, 1).astype(np.uint16)
    if premultiplied:
        alpha = rgba[3]
        partial = (alpha > 0) & (alpha < 255)
        for band in rgba[:3]:
            band[partial] = np.minimum(255, (band[partial] * 255 + alpha[partial] // 2) // alpha[partial])
    return rgba.astype(np.uint8)


def write_geotiff(provider: QgsRasterDataProvider, grid: Grid, path: str, feedback: QgsProcessingFeedback,
                  transform_context: QgsCoordinateTransformContext) -> str:
    """Read ``provider`` on ``grid`` strip by strip (reprojecting when the CRSs differ) into a GeoTIFF."""
    source = provider
    if provider.crs() != grid.crs:
        source = QgsRasterProjector()
        source.setInput(provider)
        source.setCrs(provider.crs(), grid.crs, transform_context)
    band_count = provider.bandCount()
    data_type = provider.dataType(1)
    argb = data_type in ARGB_DATA_TYPES
    premultiplied = argb and data_type == ARGB_DATA_TYPES[-1]
    code = getattr(data_type, "value", data_type)  # scoped enums (QGIS 4) carry their number in .value
    if not argb and int(code) not in _GDAL_TYPES:
        raise QgsProcessingException(f"Raster data type {data_type} cannot be written to a GeoTIFF for the engine.")
    dataset = _to_gdal(grid, path, 3 if argb else band_count, gdal.GDT_Byte if argb else _GDAL_TYPES[int(code)],
                       mask=argb)
    if not argb:
        for band in range(1, band_count + 1):
            if provider.sourceHasNoDataValue(band):
                dataset.GetRasterBand(band).SetNoDataValue(provider.sourceNoDataValue(band))
    x_res, y_res = grid.resolution
    rows_per_strip = max(1, STRIP_PIXELS // grid.width)
    for row in range(0, grid.height, rows_per_strip):
        if feedback.isCanceled():
            dataset = None
            os.remove(path)
            raise QgsProcessingException("Cancelled by the user; no output was written.")
        rows = min(rows_per_strip, grid.height - row)
        top = grid.extent.yMaximum() - row * y_res
        strip = QgsRectangle(grid.extent.xMinimum(), top - rows * y_res, grid.extent.xMaximum(), top)
        if argb:
            block = source.block(1, strip, grid.width, rows)
            rgba = _argb_to_rgba(bytes(block.data()), rows, grid.width, premultiplied)
            for index in range(3):
                dataset.GetRasterBand(index + 1).WriteArray(rgba[index], 0, row)
            dataset.GetRasterBand(1).GetMaskBand().WriteArray(np.where(rgba[3] > 0, 255, 0).astype(np.uint8), 0, row)
        else:
            for band in range(1, band_count + 1):
                block = source.block(band, strip, grid.width, rows)
                values = np.frombuffer(bytes(block.data()), dtype=_NUMPY_TYPES[int(code)],
                                       count=rows * grid.width).reshape(rows, grid.width)
                dataset.GetRasterBand(band).WriteArray(values, 0, row)
        feedback.setProgress(100.0 * (row + rows) / grid.height)
    dataset.FlushCache()
    dataset = None
    return path


def temporary_geotiff(layer: PreparedRaster, grid: Grid, parameter: str, feedback: QgsProcessingFeedback,
                      transform_context: QgsCoordinateTransformContext) -> str:
    """Write a non-file layer on ``grid`` to a new temporary GeoTIFF; return its path."""
    assert layer.provider is not None
    path = QgsProcessingUtils.generateTempFilename(f"{parameter.lower()}.tif")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    x_res, y_res = grid.resolution
    feedback.pushInfo(f"{parameter}: '{layer.name}' is not a local file; writing it to a temporary GeoTIFF "
                      f"({grid.width}×{grid.height} px, cell {x_res:g}×{y_res:g}, {grid.crs.authid()}): {path}")
    return write_geotiff(layer.provider, grid, path, feedback, transform_context)


def grid_in(grid: Grid, crs: QgsCoordinateReferenceSystem, context: QgsCoordinateTransformContext) -> QgsRectangle:
    """``grid``'s extent expressed in ``crs`` (for cutting another layer to the same area)."""
    if grid.crs == crs:
        return QgsRectangle(grid.extent)
    return QgsCoordinateTransform(grid.crs, crs, context).transformBoundingBox(grid.extent)
