"""Build ``dist/pix2pix_toolbox.zip``: the QGIS plugin with the engine bundled inside.

Installable with Plugins › Manage and Install Plugins › Install from ZIP. The engine's
Python dependencies (torch, rasterio, ...) are not in the zip; the provider runs the
engine with an interpreter that has them (see README, "Install in your own QGIS").
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_NAME = "pix2pix_toolbox"
FILES = ["__init__.py", "plugin.py", "metadata.txt", "icon.svg", "requirements.txt", "README.md", "LICENSE"]
PACKAGES = ["processing_provider", "pix2pix_qgis"]


def plugin_files() -> list[Path]:
    files = [ROOT / name for name in FILES if (ROOT / name).exists()]
    for package in PACKAGES:
        files += sorted(p for p in (ROOT / package).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return files


def build(destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in plugin_files():
            archive.write(path, f"{PLUGIN_NAME}/{path.relative_to(ROOT).as_posix()}")
    partial.replace(destination)
    return destination


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist" / f"{PLUGIN_NAME}.zip"
    print(build(target))
