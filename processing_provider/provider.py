"""The "Pix2Pix" Processing provider (id ``pix2pix``) and its settings."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms.check_engine import CheckEngineAlgorithm
from .algorithms.evaluate import EvaluateAlgorithm
from .algorithms.evaluate_unpaired import EvaluateUnpairedAlgorithm
from .algorithms.export_chips import ExportChipsAlgorithm
from .algorithms.export_unpaired import ExportUnpairedAlgorithm
from .algorithms.setup_engine import SetupEngineAlgorithm
from .algorithms.train import TrainAlgorithm
from .algorithms.train_cyclegan import TrainCycleGANAlgorithm
from .algorithms.translate import TranslateAlgorithm
from .interpreter import SETTING_KEY, check_interpreter

ICON = Path(__file__).resolve().parent.parent / "icon.svg"


def _version() -> str:
    metadata = Path(__file__).resolve().parent.parent / "metadata.txt"
    for line in metadata.read_text(encoding="utf-8").splitlines():
        if line.startswith("version="):
            return line.split("=", 1)[1].strip()
    return ""


class Pix2PixProvider(QgsProcessingProvider):
    """The Pix2Pix Processing provider: its algorithms and the engine-interpreter setting."""
    def id(self) -> str:
        """Stable provider id, the ``pix2pix:`` prefix of every algorithm id."""
        return "pix2pix"

    def name(self) -> str:
        """Name shown as the toolbox group and on the settings page."""
        return "Pix2Pix"

    def longName(self) -> str:
        """Name with the plugin's version, for the toolbox tooltip."""
        return f"Pix2Pix image translation ({_version()})"

    def versionInfo(self) -> str:
        """The plugin's version, read from metadata.txt."""
        return _version()

    def icon(self) -> QIcon:
        """The plugin's icon for the toolbox group."""
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:
        """Path of the plugin's SVG icon."""
        return str(ICON)

    def load(self) -> bool:
        """Add the engine-interpreter setting (when the Processing framework is there) and load the algorithms."""
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting
        except ImportError:  # no Processing framework (qgis_process --no-python): no settings page
            pass
        else:
            ProcessingConfig.settingIcons[self.name()] = self.icon()
            ProcessingConfig.addSetting(Setting(
                self.name(), SETTING_KEY,
                "Python interpreter for the engine (empty: PIX2PIX_PYTHON, the managed environment, or python3)",
                "", valuetype=Setting.FILE, validator=check_interpreter,
            ))
            ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        """Remove the engine-interpreter setting again."""
        try:
            from processing.core.ProcessingConfig import ProcessingConfig
        except ImportError:
            return
        ProcessingConfig.removeSetting(SETTING_KEY)

    def loadAlgorithms(self) -> None:
        """Register the tools: paired and unpaired export, the two trainings, translate, the two evaluations, and
        engine set-up and check."""
        for algorithm in (ExportChipsAlgorithm, ExportUnpairedAlgorithm, TrainAlgorithm, TrainCycleGANAlgorithm,
                          TranslateAlgorithm, EvaluateAlgorithm, EvaluateUnpairedAlgorithm, SetupEngineAlgorithm,
                          CheckEngineAlgorithm):
            self.addAlgorithm(algorithm())

    def defaultRasterFileExtension(self) -> str:
        """GeoTIFF, the only raster format the engine writes."""
        return "tif"

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        """Only ``tif``: the output dialogs offer GeoTIFF, the one raster format the engine writes."""
        return ["tif"]  # the engine writes GeoTIFF (or COG) only
