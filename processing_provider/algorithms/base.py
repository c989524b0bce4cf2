"""What every Pix2Pix algorithm shares: no sub-group, help link, translation, instancing, and parameters
declared from the engine's table of the algorithm's command."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ...pix2pix_qgis.contract.errors import Pix2PixError
from ...pix2pix_qgis.contract.params import QGIS_BUILT, Command, Param, check, to_argv
from ..interpreter import resolve_python
from ..params import arguments, build, built, finish, read
from ..raster_export import Grid, PreparedRaster, file_grid, layer_grid, prepare, temporary_geotiff

HELP_URL = "https://github.com/pix2pix-qgis/pix2pix-qgis#readme"
ICON = Path(__file__).resolve().parents[2] / "icon.svg"


# A hand-written definition (layer, file, extent, destination) from its name and translated label.
Declare = Callable[[str, str], QgsProcessingParameterDefinition]


class EngineAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses declare parameters and build the engine command line.

    ``COMMAND`` is the engine command's parameter table: :meth:`declare` adds its QGIS
    parameters in table order, :meth:`table_arguments` turns their values into engine
    words, and :meth:`checkParameterValues` refuses bad values with the engine's message.
    """

    COMMAND: Command | None = None  # None: the algorithm does not run an engine command
    # Parameters of COMMAND this algorithm neither shows nor passes: those of the command's other model
    # type (``train`` serves Train Pix2Pix and Train CycleGAN, each with options only it has).
    HIDDEN: frozenset[str] = frozenset()
    # Parameters of COMMAND the algorithm itself sets, e.g. Train CycleGAN's ``MODEL_TYPE`` ``cyclegan``.
    FIXED: dict[str, Any] = {}

    def group(self) -> str:
        """No group: the provider's tools sit directly under Pix2Pix in the toolbox."""
        return ""

    def groupId(self) -> str:
        """No group id (see :meth:`group`)."""
        return ""

    def helpUrl(self) -> str:
        """The README, where every option is explained with examples."""
        return HELP_URL

    def help_text(self) -> str:
        """What the algorithm does, what each option trades, typical values (HTML)."""
        raise NotImplementedError

    def shortHelpString(self) -> str:
        """The help panel: :meth:`help_text`, then where to read more and what to do if the engine is missing."""
        return self.help_text() + self.tr(
            "<p>Guide, examples and the meaning of every option: <a href='{0}'>README</a>. "
            "The engine runs in its own Python: if a tool says a dependency is missing, run "
            "<i>Pix2Pix › Set up engine</i>.</p>").format(HELP_URL)

    def canExecute(self) -> tuple[bool, str]:  # noqa: N802 (QGIS's name)
        """Up front, without starting it: does the engine's interpreter exist?"""
        if self.COMMAND is None:
            return True, ""
        python, source = resolve_python()
        if os.path.isfile(python) or (os.sep not in python and shutil.which(python)):
            return True, ""
        return False, self.tr(
            "The Python interpreter for the engine, {0} (from {1}), does not exist. Run Pix2Pix › Set up engine, "
            "or choose an interpreter in Processing › Options › Providers › Pix2Pix › Python interpreter."
        ).format(python, source)

    def shown(self) -> list[Param]:
        """The parameters of ``COMMAND`` that this algorithm shows, in table order."""
        return [p for p in self.COMMAND or () if p.qgis and p.name not in self.HIDDEN and p.name not in self.FIXED]

    def declare(self, hand_written: dict[str, Declare] | None = None) -> None:
        """Add the QGIS parameters of :meth:`shown` in table order: built from the table, or by
        ``hand_written[name](name, label)`` for layers, files, extents and destinations."""
        hand_written = hand_written or {}
        for param in self.shown():
            if param.kind in QGIS_BUILT:
                definition = build(param, self.tr)
            else:
                definition = hand_written[param.name](param.name, self.tr(param.label))
            self.addParameter(finish(definition, param, self.tr))

    def table_arguments(self, parameters: dict[str, Any], context: Any) -> list[str]:
        """The engine words of the fixed parameters, then of every shown one built from the table
        (``--model cyclegan --tile-size 256 …``)."""
        fixed = [word for name, value in self.FIXED.items() for word in to_argv(self.COMMAND[name], value)]
        return fixed + arguments(self, self.shown(), parameters, context)

    def argv(self, name: str, value: Any) -> list[str]:
        """The engine words giving the hand-written parameter ``name`` the value ``value`` (none for None/'')."""
        return to_argv(self.COMMAND[name], value or None) if self.COMMAND else []

    def checkParameterValues(self, parameters: dict[str, Any], context: Any) -> tuple[bool, str]:  # noqa: N802
        """The engine's own check and message for every built parameter, then QGIS's checks."""
        for param in built(self.shown()):
            try:
                check(param, read(self, param, parameters, context))
            except Pix2PixError as exc:
                return False, str(exc)
        return super().checkParameterValues(parameters, context)

    def icon(self) -> QIcon:
        """The plugin's icon for the toolbox and dialogs."""
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:
        """Path of the plugin's SVG icon (used by the graphical modeler)."""
        return str(ICON)

    def tr(self, text: str) -> str:
        """``text`` translated in the plugin's ``Pix2Pix`` context."""
        return QCoreApplication.translate("Pix2Pix", text)

    def set_help(self, texts: dict[str, str]) -> None:
        """Tooltip and ``qgis_process help`` text of parameters that no engine table describes."""
        for parameter, text in texts.items():
            self.parameterDefinition(parameter).setHelp(self.tr(text))

    def createInstance(self) -> EngineAlgorithm:
        """A fresh copy of this algorithm; Processing runs each execution on its own instance."""
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
        """The raster prepared in :meth:`prepareAlgorithm` for parameter ``name``; an error if none was given."""
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

    def resolution(self, parameters: dict[str, Any], context: Any) -> float | None:
        """``RESOLUTION`` (cell size of layers that are not local files), None for native."""
        param = self.COMMAND["RESOLUTION"] if self.COMMAND else None
        return (read(self, param, parameters, context) or None) if param else None

    def extent_arguments(self, parameters: dict[str, Any], name: str, context: Any,
                         crs: QgsCoordinateReferenceSystem) -> list[str]:
        """``--extent XMIN YMIN XMAX YMAX`` in ``crs`` (QGIS reprojects it), or nothing when unset."""
        if not parameters.get(name):
            return []
        extent = self.parameterAsExtent(parameters, name, context, crs)
        return self.argv(name, (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()))
