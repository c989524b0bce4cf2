"""Pix2Pix › Set up engine (``pix2pix:setupengine``): the engine's own Python environment, from QGIS."""

from __future__ import annotations

import os
from typing import Any

from qgis.core import (
    QgsProcessingOutputBoolean,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
)

from ..compat import FILE_FILE, FILE_FOLDER, make_advanced
from ..engine_setup import BUILDS
from ..interpreter import ENV_VARIABLE, SETTING_KEY, managed_environment
from ..setup_run import run_setup
from .base import EngineAlgorithm


class SetupEngineAlgorithm(EngineAlgorithm):
    """Set up engine: creates the engine's own Python environment with pinned PyTorch and makes it the provider's."""
    FOLDER, WHEELS, DEVICE, TORCH_INDEX, BASE_PYTHON = "FOLDER", "WHEELS", "DEVICE", "TORCH_INDEX", "BASE_PYTHON"
    PYTHON, TORCH, CUDA = "PYTHON", "TORCH", "CUDA"

    def __init__(self) -> None:
        super().__init__()
        self._interpreter = ""

    def name(self) -> str:
        """Stable id ``pix2pix:setupengine`` (scripts and models use it; never translated)."""
        return "setupengine"

    def displayName(self) -> str:
        """The tool's translated name in the Processing toolbox."""
        return self.tr("Set up engine")

    def shortDescription(self) -> str:
        """One translated line: the toolbox tooltip and the modeler's description."""
        return self.tr("Install PyTorch and the engine's libraries into their own Python environment.")

    def tags(self) -> list[str]:
        """Translated words the toolbox search matches besides the name."""
        return self.tr("pix2pix,install,setup,dependencies,pytorch,torch,cuda,environment,venv").split(",")

    def help_text(self) -> str:
        """What the tool does, what each option trades and typical values (translated HTML)."""
        return self.tr(
            "<p>Run this once before the other Pix2Pix tools. It creates a Python virtual environment for the "
            "deep-learning engine <b>outside the plugin folder</b> (plugin upgrades keep it), installs the pinned "
            "PyTorch and rasterio, shapely, safetensors and Pillow, checks that the new interpreter starts and "
            "imports all of them, and makes it the interpreter of the Pix2Pix tools (Processing › Options › "
            "Providers › Pix2Pix).</p>"
            "<p>PyTorch runs in that environment, never inside QGIS, so it cannot clash with QGIS's own "
            "libraries. <b>Device</b> <i>auto</i> installs the CUDA build when <tt>nvidia-smi</tt> finds an "
            "NVIDIA GPU (about 2.5 GB to download) and the CPU build otherwise (about 200 MB).</p>"
            "<p>Offline sites: download the wheels on a connected machine (<tt>pip download -r requirements.txt "
            "-d wheels</tt>) and give that folder as <b>Wheels folder</b>. Running the tool again completes or "
            "repairs an existing environment. If pip fails, its own error message is shown in the log.</p>"
            "<p>Then run <i>Check engine</i> to see versions and devices.</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        """Declare the parameters and outputs.

        Environment folder, PyTorch build, offline wheels, torch index and base Python, with their help; outputs
        interpreter, PyTorch and CUDA.
        """
        add = self.addParameter
        add(make_advanced(QgsProcessingParameterFolderDestination(
            self.FOLDER, self.tr("Environment folder"), defaultValue=str(managed_environment()), optional=True)))
        add(QgsProcessingParameterEnum(self.DEVICE, self.tr("PyTorch build"), list(BUILDS), defaultValue=BUILDS[0],
                                       usesStaticStrings=True))
        add(QgsProcessingParameterFile(self.WHEELS, self.tr("Wheels folder (offline install)"),
                                       behavior=FILE_FOLDER, optional=True))
        add(make_advanced(QgsProcessingParameterString(self.TORCH_INDEX, self.tr("PyTorch package index URL"),
                                                       optional=True)))
        add(make_advanced(QgsProcessingParameterFile(self.BASE_PYTHON, self.tr("Base Python"), behavior=FILE_FILE,
                                                     optional=True)))
        self.addOutput(QgsProcessingOutputString(self.PYTHON, self.tr("Engine interpreter")))
        self.addOutput(QgsProcessingOutputString(self.TORCH, self.tr("PyTorch version")))
        self.addOutput(QgsProcessingOutputBoolean(self.CUDA, self.tr("CUDA available")))
        self.parameterDefinition(self.FOLDER).setHelp(self.tr(
            "Where the environment lives. Default: a per-user folder outside the plugin ({0}), which the tools find "
            "by themselves.").format(managed_environment()))
        self.set_help({
            "DEVICE": "auto: CUDA build when nvidia-smi finds an NVIDIA GPU, else CPU build. cpu: always the small "
                      "CPU build. cuda: the CUDA build even if no GPU is visible now.",
            "WHEELS": "Offline install: a folder with the wheels of torch and requirements.txt "
                      "(pip download -r requirements.txt -d FOLDER). Nothing is downloaded.",
            "TORCH_INDEX": "Take torch from this index instead, e.g. https://download.pytorch.org/whl/cu126 for an "
                           "older NVIDIA driver.",
            "BASE_PYTHON": "The Python 3.9+ that creates the environment. Default: python3 on PATH (the "
                           "interpreter of QGIS on Windows).",
        })

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict[str, Any]:
        """Run ``engine_setup.py`` with the base Python (not the engine, which may not exist yet).

        Returns the new interpreter, its PyTorch and CUDA.
        """
        folder = self.parameterAsFileOutput(parameters, self.FOLDER, context) or str(managed_environment())
        arguments = [folder, "--device", self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto"]
        wheels = self.parameterAsFile(parameters, self.WHEELS, context)
        if wheels:
            arguments += ["--wheels", wheels]
        index = (self.parameterAsString(parameters, self.TORCH_INDEX, context) or "").strip()
        if index:
            arguments += ["--torch-index", index]
        base = self.parameterAsFile(parameters, self.BASE_PYTHON, context) or None
        result = run_setup(arguments, feedback, base)
        self._interpreter = result["interpreter"]
        feedback.pushInfo(self.tr(
            "Engine ready: {interpreter} — Python {python}, torch {torch}, rasterio {rasterio} (GDAL {gdal}), "
            "devices: {0}").format(", ".join(d["name"] for d in result["devices"]), **result))
        if os.environ.get(ENV_VARIABLE):
            feedback.reportError(self.tr(
                "The environment variable {0} is set ({1}) and wins over this environment; unset it to use the new "
                "one.").format(ENV_VARIABLE, os.environ[ENV_VARIABLE]), False)
        return {self.PYTHON: result["interpreter"], self.TORCH: result["torch"],
                self.CUDA: bool(result["cuda_available"])}

    def postProcessAlgorithm(self, context: Any, feedback: Any) -> dict[str, Any]:
        """Make the new interpreter the provider's (in the main thread, where settings are safe to write)."""
        if self._interpreter:
            from processing.core.ProcessingConfig import ProcessingConfig

            ProcessingConfig.setSettingValue(SETTING_KEY, self._interpreter)
            feedback.pushInfo(self.tr("Processing › Options › Providers › Pix2Pix › Python interpreter is now "
                                      "{0}.").format(self._interpreter))
        return {}
