"""What every Pix2Pix algorithm shares: no sub-group, help link, translation, instancing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..raster_export import Grid, PreparedRaster, file_grid, layer_grid, prepare, temporary_geotiff

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

    def help_text(self) -> str:
        """What the algorithm does, what each option trades, typical values (HTML)."""
        raise NotImplementedError

    def shortHelpString(self) -> str:
        return self.help_text() + self.tr(
            f"<p>Guide, examples and the meaning of every option: <a href='{HELP_URL}'>README</a>. "
            "The engine runs in its own Python: if a tool says a dependency is missing, run "
            "<i>Pix2Pix › Set up engine</i>.</p>")

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

    def prepareAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> bool:  # noqa: N802
        """Take what the worker needs of each raster layer here, in the main thread (providers are cloned)."""
        self._rasters: dict[str, PreparedRaster] = {}
        for definition in self.parameterDefinitions():
            if isinstance(definition, QgsProcessingParameterRasterLayer):
                layer = self.parameterAsRasterLayer(parameters, definition.name(), context)
                if layer is not None:
                    self._rasters[definition.name()] = prepare(layer)
        return True

    def raster(self, name: str) -> PreparedRaster:
        if name not in self._rasters:
            raise QgsProcessingException(f"{name}: no raster layer or file was given.")
        return self._rasters[name]

    def raster_file(self, name: str, context: Any, feedback: Any, extent: Any = None,
                    resolution: float | None = None, grid: Grid | None = None) -> tuple[str, Grid, bool]:
        """(file for the engine, its grid, whether it was written here) for a raster parameter.

        Local files go as they are (grid: the file's, cut to ``extent``); other layers are written
        to a temporary GeoTIFF on ``grid`` when given, else on their own grid at ``resolution``.
        """
        raster = self.raster(name)
        if raster.path:
            return raster.path, file_grid(raster, extent), False
        target = grid or layer_grid(raster, name, extent, resolution)
        return temporary_geotiff(raster, target, name, feedback, context.transformContext()), target, True

    def extent_arguments(self, parameters: dict[str, Any], name: str, context: Any,
                         crs: QgsCoordinateReferenceSystem) -> list[str]:
        """``--extent XMIN YMIN XMAX YMAX`` in ``crs`` (QGIS reprojects it), or nothing when unset."""
        if not parameters.get(name):
            return []
        extent = self.parameterAsExtent(parameters, name, context, crs)
        values = (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum())
        return ["--extent", *(repr(v) for v in values)]
