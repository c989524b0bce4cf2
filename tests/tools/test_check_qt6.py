"""The Qt 6 spelling check (scripts/check_qt6.py) finds what PyQt6 lacks and passes what it has."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_qt6.py"
spec = importlib.util.spec_from_file_location("check_qt6", SCRIPT)
check_qt6 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_qt6)


def findings(source: str) -> list[str]:
    return check_qt6.check_source(source, Path("example.py"))


@pytest.mark.parametrize("source, problem", [
    ("from PyQt5.QtCore import QTimer", "import Qt through qgis.PyQt"),
    ("import PyQt6.QtWidgets", "import Qt through qgis.PyQt"),
    ("import sip", "import Qt through qgis.PyQt"),
    ("dialog.exec_()", ".exec_() is Qt5-only"),
    ("from qgis.PyQt.QtCore import QRegExp", "QRegExp is gone in Qt 6"),
    ("pattern = QtCore.QRegExp('x')", "QRegExp is gone in Qt 6"),
    ("size = QApplication.desktop().size()", "desktop() is gone"),
    ("label.setAlignment(Qt.AlignLeft)", "Qt.AlignLeft: unscoped enum member"),
    ("image = QImage(8, 8, QImage.Format_RGB32)", "QImage.Format_RGB32: unscoped"),
    ("field = QVariant.Int", "QVariant.Int: unscoped"),
    ("x = QgsContrastEnhancement.StretchToMinimumMaximum", "unscoped enum member"),
])
def test_qt5_only_spellings_are_found(source, problem):
    found = findings(source)
    assert len(found) == 1 and problem in found[0] and found[0].startswith("example.py:1:"), found


@pytest.mark.parametrize("source", [
    "from qgis.PyQt.QtCore import Qt, QTimer\nfrom qgis.PyQt import sip",
    "dialog.exec()",
    "label.setAlignment(Qt.AlignmentFlag.AlignLeft)",
    "QTimer.singleShot(10, f)",
    "text = QCoreApplication.translate('Pix2Pix', 'x')",
    "version = Qgis.QGIS_VERSION_INT",
    "member = getattr(Qgis, 'Byte')  # compat.py's way: by name",
    "options = QgsProcessingModelChildParameterSource.FromModelParameter(x)",  # constructor-like call
    "# Qt.AlignLeft in a comment\ns = 'exec_() QRegExp'",
])
def test_qt6_spellings_pass(source):
    assert findings(source) == []


def test_the_repository_has_no_qt5_only_spelling():
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
