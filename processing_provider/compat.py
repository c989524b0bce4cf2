"""Enum spellings that changed between QGIS 3.22 and 4.x (scoped enums from ~3.36 / Qt6)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    Qgis,
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
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


def make_advanced(parameter: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    parameter.setFlags(parameter.flags() | FLAG_ADVANCED)
    return parameter
