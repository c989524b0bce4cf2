"""What every Pix2Pix algorithm shares: no sub-group, help link, translation, instancing."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsCoordinateReferenceSystem, QgsProcessingAlgorithm
from qgis.PyQt.QtCore import QCoreApplication

HELP_URL = "https://github.com/pix2pix-qgis/pix2pix-qgis#readme"


class EngineAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses declare parameters and build the engine command line."""

    def group(self) -> str:
        return ""

    def groupId(self) -> str:
        return ""

    def helpUrl(self) -> str:
        return HELP_URL

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("Pix2Pix", text)

    def createInstance(self) -> EngineAlgorithm:
        return type(self)()

    def extent_arguments(self, parameters: dict[str, Any], name: str, context: Any,
                         crs: QgsCoordinateReferenceSystem) -> list[str]:
        """``--extent XMIN YMIN XMAX YMAX`` in ``crs`` (QGIS reprojects it), or nothing when unset."""
        if not parameters.get(name):
            return []
        extent = self.parameterAsExtent(parameters, name, context, crs)
        values = (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum())
        return ["--extent", *(repr(v) for v in values)]
