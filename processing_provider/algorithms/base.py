"""What every Pix2Pix algorithm shares: no sub-group, help link, translation, instancing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import QgsCoordinateReferenceSystem, QgsProcessingAlgorithm
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

HELP_URL = "https://github.com/pix2pix-qgis/pix2pix-qgis#readme"
ICON = Path(__file__).resolve().parents[2] / "icon.svg"


class EngineAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses declare parameters and build the engine command line."""

    def group(self) -> str:
        return ""

    def groupId(self) -> str:
        return ""

    def helpUrl(self) -> str:
        return HELP_URL

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:
        return str(ICON)

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("Pix2Pix", text)

    def set_help(self, texts: dict[str, str]) -> None:
        """Tooltip and ``qgis_process help`` text of each parameter."""
        for parameter, text in texts.items():
            self.parameterDefinition(parameter).setHelp(self.tr(text))

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
