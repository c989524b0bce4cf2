"""Enum spellings that changed between QGIS 3.22 and 4.x (scoped enums from ~3.36 / Qt6)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    Qgis,
    QgsContrastEnhancement,
    QgsCoordinateReferenceSystem,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsRasterInterface,
    QgsRasterMinMaxOrigin,
)


def _scoped(scope: str, member: str, fallback: Any) -> Any:
    enum = getattr(Qgis, scope, None)
    return getattr(enum, member) if enum is not None and hasattr(enum, member) else fallback


def _legacy(owner: Any, name: str) -> Any:
    return getattr(owner, name, None)


_Definition = QgsProcessingParameterDefinition
FLAG_ADVANCED = _scoped("ProcessingParameterFlag", "Advanced", _legacy(_Definition, "FlagAdvanced"))
FLAG_OPTIONAL = _scoped("ProcessingParameterFlag", "Optional", _legacy(_Definition, "FlagOptional"))
NUMBER_INTEGER = _scoped("ProcessingNumberParameterType", "Integer", _legacy(QgsProcessingParameterNumber, "Integer"))
NUMBER_DOUBLE = _scoped("ProcessingNumberParameterType", "Double", _legacy(QgsProcessingParameterNumber, "Double"))
FILE_FOLDER = _scoped("ProcessingFileParameterBehavior", "Folder", _legacy(QgsProcessingParameterFile, "Folder"))
FILE_FILE = _scoped("ProcessingFileParameterBehavior", "File", _legacy(QgsProcessingParameterFile, "File"))
SOURCE_POLYGON = _scoped("ProcessingSourceType", "VectorPolygon", _legacy(QgsProcessing, "TypeVectorPolygon"))
ALGORITHM_SUPPORTS_BATCH = _scoped("ProcessingAlgorithmFlag", "SupportsBatch",
                                   _legacy(QgsProcessingAlgorithm, "FlagSupportsBatch"))
RASTER_SIZE_CAPABILITY = _scoped("RasterInterfaceCapability", "Size", _legacy(QgsRasterInterface, "Size"))
_ENHANCEMENT = getattr(QgsContrastEnhancement, "ContrastEnhancementAlgorithm", QgsContrastEnhancement)
STRETCH_TO_MIN_MAX = _ENHANCEMENT.StretchToMinimumMaximum
CUMULATIVE_CUT = _scoped("RasterRangeLimit", "CumulativeCut", _legacy(QgsRasterMinMaxOrigin, "CumulativeCut"))
WKT_PREFERRED_GDAL = _scoped("CrsWktVariant", "PreferredGdal",
                             _legacy(QgsCoordinateReferenceSystem, "WKT_PREFERRED_GDAL"))
DATA_TYPE_BYTE = _scoped("DataType", "Byte", _legacy(Qgis, "Byte"))
ARGB_DATA_TYPES = tuple(value for value in (
    _scoped("DataType", "ARGB32", _legacy(Qgis, "ARGB32")),
    _scoped("DataType", "ARGB32_Premultiplied", _legacy(Qgis, "ARGB32_Premultiplied"))) if value is not None)


def make_advanced(parameter: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    """``parameter`` flagged advanced (folded away in the dialog), on every QGIS version; returns it."""
    parameter.setFlags(parameter.flags() | FLAG_ADVANCED)
    return parameter
