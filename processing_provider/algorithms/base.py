"""What every Pix2Pix algorithm shares: no sub-group, help link, translation, instancing."""

from __future__ import annotations

from qgis.core import QgsProcessingAlgorithm
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
