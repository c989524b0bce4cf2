"""Where the QGIS tests find the repository, the engine's interpreter and ``qgis_process``: plain constants
shared by ``conftest.py``, the test modules and their helpers (pytest discourages importing ``conftest``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The engine runs in the project's venv unless PIX2PIX_PYTHON names another interpreter (the chroots' own).
ENGINE_PYTHON = os.environ.get("PIX2PIX_PYTHON") or str(REPO / ".venv" / "bin" / "python")


def _qgis_process_binary() -> str:
    for candidate in ("/usr/bin/qgis_process.bin", "qgis_process.bin", "qgis_process"):
        found = subprocess.run(["which", candidate], capture_output=True, text=True).stdout.strip()
        if found:
            return found
    return "qgis_process"


QGIS_PROCESS = _qgis_process_binary()
