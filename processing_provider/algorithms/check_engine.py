"""Pix2Pix › Check engine (``pix2pix:checkengine``): versions, CUDA and devices of the interpreter in use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputBoolean,
    QgsProcessingOutputString,
    QgsProcessingParameterFileDestination,
)

from ..engine import run_engine
from ..engine_report import check_report
from ..interpreter import fix_hint, resolve_python
from .base import EngineAlgorithm


class _ProblemRecorder:
    """Forwards feedback and keeps the engine's warnings: doctor's problems, even when it exits non-zero."""

    def __init__(self, feedback: Any) -> None:
        self._feedback = feedback
        self.problems: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._feedback, name)

    def pushWarning(self, message: str) -> None:  # noqa: N802 (QGIS's name)
        self.problems.append(message)
        self._feedback.reportError(message, False)


class CheckEngineAlgorithm(EngineAlgorithm):
    """Check engine: runs the engine's ``doctor`` and reports interpreter, versions, CUDA and devices."""
    OUTPUT_HTML, PYTHON, TORCH, CUDA, OK = "OUTPUT_HTML", "PYTHON", "TORCH", "CUDA", "OK"

    def name(self) -> str:
        """Stable id ``pix2pix:checkengine`` (scripts and models use it; never translated)."""
        return "checkengine"

    def displayName(self) -> str:
        """The tool's translated name in the Processing toolbox."""
        return self.tr("Check engine")

    def shortDescription(self) -> str:
        """One translated line: the toolbox tooltip and the modeler's description."""
        return self.tr("Report the engine's interpreter, library versions, CUDA and devices.")

    def tags(self) -> list[str]:
        """Translated words the toolbox search matches besides the name."""
        return self.tr("pix2pix,doctor,check,diagnostics,versions,cuda,gpu,environment").split(",")

    def help_text(self) -> str:
        """What the tool does, what each option trades and typical values (translated HTML)."""
        return self.tr(
            "<p>Starts the engine's Python the way every Pix2Pix tool does and reports what it finds: which "
            "interpreter is used and why (PIX2PIX_PYTHON, the provider setting, the environment made by "
            "<i>Set up engine</i>, or python3), the versions of PyTorch, NumPy, rasterio/GDAL, shapely, "
            "safetensors and Pillow, whether PyTorch sees CUDA, and the devices.</p>"
            "<p>The report opens in the Results Viewer; attach it to a bug report. A broken set-up gives a report "
            "too, naming the problem and the fix, instead of failing.</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        """Declare the report destination and the interpreter, PyTorch, CUDA and ready outputs (no engine table)."""
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT_HTML, self.tr("Engine report"),
                                                                self.tr("HTML files (*.html)")))
        self.addOutput(QgsProcessingOutputString(self.PYTHON, self.tr("Engine interpreter")))
        self.addOutput(QgsProcessingOutputString(self.TORCH, self.tr("PyTorch version")))
        self.addOutput(QgsProcessingOutputBoolean(self.CUDA, self.tr("CUDA available")))
        self.addOutput(QgsProcessingOutputBoolean(self.OK, self.tr("Engine ready")))
        self.set_help({"OUTPUT_HTML": "The HTML report (versions, CUDA, devices, problems and their fix)."})

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict[str, Any]:
        """Run ``doctor`` in the configured interpreter and write the HTML report, also when the engine cannot start.

        Returns the interpreter, PyTorch version, CUDA and whether the engine is ready.
        """
        output = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        python, source = resolve_python()
        error = ""
        recorder = _ProblemRecorder(feedback)
        try:
            report = run_engine(["doctor"], recorder)  # type: ignore[arg-type]
        except QgsProcessingException as exc:
            report = {"python_executable": python, "ok": False, "problems": recorder.problems}
            error = "" if recorder.problems else str(exc)
            feedback.reportError(error or "; ".join(recorder.problems), False)
        report["source"] = source
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(check_report(report, error, fix_hint(python)), encoding="utf-8")
        ok = bool(report.get("ok")) and not error
        feedback.pushInfo(self.tr("Interpreter {0} (from {1}): torch {2}, CUDA {3}, {4}.").format(
            report.get("python_executable", python), source, report.get("torch"),
            self.tr("yes") if report.get("cuda_available") else self.tr("no"),
            self.tr("ready") if ok else self.tr("NOT ready")))
        return {self.OUTPUT_HTML: output, self.PYTHON: report.get("python_executable", python),
                self.TORCH: report.get("torch") or "", self.CUDA: bool(report.get("cuda_available")), self.OK: ok}
