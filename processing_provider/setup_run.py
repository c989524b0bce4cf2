"""Run ``engine_setup.py`` in a base Python through the engine runner (same protocol, feedback and cancel).

The engine runner starts ``python -m pix2pix_qgis``; set-up must run before that interpreter
exists, so this subclass only changes what is started and how a failure is shown: pip's own
output goes to the log as an error, then the run fails with the set-up's message.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingException, QgsProcessingFeedback

from .engine import EngineRun
from .interpreter import engine_environment

SETUP_SCRIPT = Path(__file__).resolve().parent / "engine_setup.py"


def base_python() -> str:
    """A plain Python to create the environment with (inside QGIS ``sys.executable`` may be qgis itself)."""
    executable = Path(sys.executable)
    if executable.name.lower().startswith("python"):
        return str(executable)
    if sys.platform == "win32":
        for candidate in (Path(sys.prefix) / "python.exe", Path(sys.prefix) / "python3.exe"):
            if candidate.exists():
                return str(candidate)
    found = shutil.which("python3") or shutil.which("python")
    if not found:
        raise QgsProcessingException(
            "No Python 3 was found to create the engine's environment. Install Python 3.9 or newer, or give "
            "its path in the set-up's 'Base Python' option."
        )
    return found


class SetupRun(EngineRun):
    """``<base python> -u engine_setup.py ARGS --progress json``, streamed like an engine run."""

    def __init__(self, arguments: list[str], feedback: QgsProcessingFeedback, python: str):
        super().__init__(arguments, feedback)
        self.python, self.python_source = python, "the base Python of the set-up"

    def _start(self) -> subprocess.Popen:
        argv = [self.python, "-u", str(SETUP_SCRIPT), *self.command, "--progress", "json"]
        self.feedback.pushCommandInfo(" ".join(argv))
        options: dict[str, Any] = {}
        if sys.platform == "win32":
            options["creationflags"] = subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined]
        try:
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=engine_environment(), text=True, encoding="utf-8", errors="replace", bufsize=1, **options,
            )
        except OSError as exc:
            raise QgsProcessingException(
                f"The Python '{self.python}' cannot be started to set up the engine: {exc.strerror or exc}. "
                "Give another one in the 'Base Python' option."
            ) from exc

    def _error_message(self, error: dict[str, Any]) -> str:
        output = str(error.get("output") or "").strip()
        if output:
            self.feedback.reportError(output, False)
        return super()._error_message(error)


def run_setup(arguments: list[str], feedback: QgsProcessingFeedback, python: str | None = None) -> dict[str, Any]:
    """Run the set-up script with ``arguments`` in ``python`` (default: the base Python), relaying progress."""
    return SetupRun(arguments, feedback, python or base_python()).run()
