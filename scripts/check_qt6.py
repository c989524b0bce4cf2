#!/usr/bin/env python3
"""Static check for Qt5-only spellings, so the plugin can declare ``supportsQt6=True`` (QGIS 4, Qt 6).

QGIS 4 runs plugins on PyQt6 and there is no QGIS 4 to test on here; what breaks there is known
spellings, so they are refused at the source (``make lint``):

- Qt imported other than through ``qgis.PyQt`` (``PyQt5``, ``PyQt6``, bare ``sip``): only QGIS's
  shim picks the binding QGIS itself was built with.
- ``exec_()`` / ``print_()``: PyQt6 has only ``exec()`` / ``print()``.
- Classes removed in Qt 6: ``QRegExp`` (→ ``QRegularExpression``), ``QDesktopWidget`` and
  ``QApplication.desktop()`` (→ ``QScreen``), ``QGLWidget``, ``QSound``, ``QMatrix``, the ``QtWebKit``
  modules.
- Unscoped enum members (``Qt.AlignLeft``, ``QImage.Format_RGB32``, ``QVariant.Int``, and QGIS's own
  ``QgsContrastEnhancement.StretchToMinimumMaximum``): PyQt6 knows only the scoped spelling
  (``Qt.AlignmentFlag.AlignLeft``). Members that differ between QGIS versions are chosen once in
  ``processing_provider/compat.py``, by name, so they never appear as attributes.

The rule for enums is syntactic: ``Q…Owner.Capitalised`` that is not itself followed by another
attribute (``Qt.AlignmentFlag.AlignLeft`` passes), not called (nested classes are constructed) and
not an ALL_CAPS constant (``Qgis.QGIS_VERSION``). Python's ``ast`` reads the code, so comments and
strings never match.

Usage: ``check_qt6.py [PATH...]`` (default: every tracked ``*.py`` of the repository); exit 1 on a finding.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_MODULES = ("PyQt5", "PyQt6", "sip", "PySide2", "PySide6")
QT5_ONLY_NAMES = {
    "QRegExp": "QRegularExpression",
    "QRegExpValidator": "QRegularExpressionValidator",
    "QDesktopWidget": "QScreen (QApplication.screens())",
    "QGLWidget": "QOpenGLWidget",
    "QSound": "QSoundEffect",
    "QMatrix": "QTransform",
    "QtWebKit": "QtWebEngine or QgsWebView",
    "QtWebKitWidgets": "QtWebEngine or QgsWebView",
}
QT5_ONLY_METHODS = {"exec_": "exec()", "print_": "print()"}
CONSTANT = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _finding(path: Path, node: ast.AST, message: str) -> str:
    return f"{path}:{node.lineno}:{node.col_offset + 1}: {message}"


def check_source(source: str, path: Path) -> list[str]:
    """Every Qt5-only spelling in ``source``, as ``path:line:col: message`` lines."""
    tree = ast.parse(source, str(path))
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(_finding(path, node, f"import {alias.name}: import Qt through qgis.PyQt"))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(_finding(path, node, f"from {module} import …: import Qt through qgis.PyQt"))
            found += [_finding(path, node, _gone(alias.name)) for alias in node.names if alias.name in QT5_ONLY_NAMES]
        elif isinstance(node, ast.Name) and node.id in QT5_ONLY_NAMES:
            found.append(_finding(path, node, _gone(node.id)))
        elif isinstance(node, ast.Attribute):
            found += _check_attribute(node, parents.get(node), path)
    return found


def _gone(name: str) -> str:
    return f"{name} is gone in Qt 6: use {QT5_ONLY_NAMES[name]}"


def _check_attribute(node: ast.Attribute, parent: ast.AST | None, path: Path) -> list[str]:
    if node.attr in QT5_ONLY_METHODS:
        return [_finding(path, node, f".{node.attr}() is Qt5-only: use .{QT5_ONLY_METHODS[node.attr]}")]
    if node.attr in QT5_ONLY_NAMES:
        return [_finding(path, node, _gone(node.attr))]
    owner = node.value
    if not isinstance(owner, ast.Name) or not owner.id.startswith("Q"):
        return []
    if node.attr == "desktop" and owner.id.endswith("Application"):
        return [_finding(path, node, f"{owner.id}.desktop() is gone in Qt 6: use QScreen (screens())")]
    scoped_further = isinstance(parent, ast.Attribute) and parent.value is node
    called = isinstance(parent, ast.Call) and parent.func is node
    if node.attr[:1].isupper() and not CONSTANT.match(node.attr) and not scoped_further and not called:
        return [_finding(path, node, f"{owner.id}.{node.attr}: unscoped enum member, which PyQt6 does not have; "
                                     "use the scoped name (Owner.Enum.Member) or a processing_provider/compat.py "
                                     "constant")]
    return []


def python_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "*.py"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / name for name in listed.split("\0") if name]


def main(argv: list[str]) -> int:
    paths = [Path(arg) for arg in argv] or python_files()
    found = []
    for path in paths:
        found += check_source(path.read_text(encoding="utf-8"), path.relative_to(REPO) if path.is_absolute()
                              and REPO in path.parents else path)
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} Qt5-only spelling(s): metadata.txt declares supportsQt6=True, which needs none.",
              file=sys.stderr)
        return 1
    print(f"Qt 6 spellings: {len(paths)} Python files checked, none Qt5-only.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
