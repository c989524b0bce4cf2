"""GeoTIFFs written and read with GDAL (QGIS's own bindings): plain helpers shared by ``conftest.py``
(its ``make_raster`` fixture), the test modules and their helpers (pytest discourages importing ``conftest``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

UTM_GEOTRANSFORM = (500_000.0, 10.0, 0.0, 5_000_000.0, 0.0, -10.0)


def write_raster(path: Path, data: np.ndarray, epsg: int = 32633,
                 geotransform: tuple = UTM_GEOTRANSFORM, nodata: float | None = None) -> Path:
    """Write (bands, rows, cols) ``data`` as a GeoTIFF with GDAL (QGIS's own bindings)."""
    from osgeo import gdal, osr

    gdal.UseExceptions()
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    types = {"uint8": gdal.GDT_Byte, "uint16": gdal.GDT_UInt16, "int16": gdal.GDT_Int16,
             "float32": gdal.GDT_Float32}
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[2], data.shape[1], data.shape[0],
                                                   types[str(data.dtype)], ["PHOTOMETRIC=MINISBLACK"])
    dataset.SetGeoTransform(geotransform)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    dataset.SetProjection(srs.ExportToWkt())
    for index, band in enumerate(data, start=1):
        dataset.GetRasterBand(index).WriteArray(band)
        if nodata is not None:
            dataset.GetRasterBand(index).SetNoDataValue(nodata)
    dataset = None
    return path


def read_raster(path: Path) -> tuple[np.ndarray, tuple, str]:
    """(data, geotransform, projection WKT) of a raster, read with GDAL."""
    from osgeo import gdal

    dataset = gdal.Open(str(path))
    return dataset.ReadAsArray(), dataset.GetGeoTransform(), dataset.GetProjection()
