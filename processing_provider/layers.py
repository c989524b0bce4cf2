"""Turning QGIS inputs into what the engine reads: raster file paths and GeoJSON masks."""

from __future__ import annotations

import json
import os
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureSource,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingUtils,
    QgsRasterLayer,
)


def local_raster_path(layer: QgsRasterLayer | None, parameter: str) -> str:
    """The file behind a GDAL raster layer; anything else gets an actionable error."""
    if layer is None:
        raise QgsProcessingException(f"{parameter}: no raster layer or file was given.")
    source = layer.source()
    if layer.providerType() == "gdal" and os.path.isfile(source):
        return source
    raise QgsProcessingException(
        f"{parameter}: the layer '{layer.name()}' is not a local raster file (source: {source[:200]}). "
        "Save it as a GeoTIFF first (right-click › Export › Save As…) and use that file."
    )


def crs_text(crs: QgsCoordinateReferenceSystem) -> str:
    """An identifier rasterio understands: the authority id, or WKT for custom CRSs."""
    return crs.authid() or crs.toWkt()


def mask_to_geojson(
    source: QgsFeatureSource, target_crs: QgsCoordinateReferenceSystem, context: QgsProcessingContext
) -> str:
    """Write the mask's polygons, reprojected to the raster's CRS, to a temporary GeoJSON."""
    transform = QgsCoordinateTransform(source.sourceCrs(), target_crs, context.transformContext())
    features = []
    for feature in source.getFeatures():
        geometry = feature.geometry()
        if geometry is None or geometry.isEmpty():
            continue
        geometry.transform(transform)
        features.append({"type": "Feature", "properties": {}, "geometry": json.loads(geometry.asJson())})
    if not features:
        raise QgsProcessingException("MASK: the mask layer has no polygons (or none are selected).")
    path = Path(QgsProcessingUtils.generateTempFilename("mask.geojson"))
    path.parent.mkdir(parents=True, exist_ok=True)
    collection = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": crs_text(target_crs)}},
        "features": features,
    }
    path.write_text(json.dumps(collection), encoding="utf-8")
    return str(path)
