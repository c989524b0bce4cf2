"""Turning QGIS inputs into what the engine reads: GeoJSON masks and CRS identifiers (rasters: raster_export)."""

from __future__ import annotations

import json
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureSource,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingUtils,
)


def crs_text(crs: QgsCoordinateReferenceSystem) -> str:
    """An identifier rasterio understands: the authority id, or WKT for custom CRSs."""
    return crs.authid() or crs.toWkt()


def mask_to_geojson(
    source: QgsFeatureSource, target_crs: QgsCoordinateReferenceSystem, context: QgsProcessingContext,
    name: str = "MASK",
) -> str:
    """Write the mask's polygons, reprojected to the raster's CRS, to a temporary GeoJSON.

    ``name`` is the parameter the message names when the layer has no polygons.
    """
    transform = QgsCoordinateTransform(source.sourceCrs(), target_crs, context.transformContext())
    features = []
    for feature in source.getFeatures():
        geometry = feature.geometry()
        if geometry is None or geometry.isEmpty():
            continue
        geometry.transform(transform)
        features.append({"type": "Feature", "properties": {}, "geometry": json.loads(geometry.asJson())})
    if not features:
        raise QgsProcessingException(f"{name}: the mask layer has no polygons (or none are selected).")
    path = Path(QgsProcessingUtils.generateTempFilename("mask.geojson"))
    path.parent.mkdir(parents=True, exist_ok=True)
    collection = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": crs_text(target_crs)}},
        "features": features,
    }
    path.write_text(json.dumps(collection), encoding="utf-8")
    return str(path)
