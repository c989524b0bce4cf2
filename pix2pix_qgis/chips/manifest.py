"""``chips.json``: the manifest every later stage reads instead of re-deriving anything.

Format (version 1) is documented in ``docs/chips-format.md``. ``load_manifest`` checks the
parts later stages depend on and names the folder and field in every error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..contract.errors import Pix2PixError
from ..core.documents import read_document
from ..core.outputs import staged_file
from ..core.schema import CHIPS_SCHEMA, validate
from .esri import ACCUMULATED, EMD, MAP

MANIFEST_NAME = "chips.json"
FORMAT_NAME = "pix2pix-chips"
FORMAT_VERSION = 1

CHIP_FOLDERS = ("images", "images2")
EXPORT_FILES = (MANIFEST_NAME, ACCUMULATED, EMD, MAP)
# A chip and the side files GDAL (or QGIS, opening it) may write beside it.
_CHIP_FILE = re.compile(r"^\d{9}\.tif(?:\.aux\.xml|\.ovr|\.msk)?$")
_SYSTEM_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")  # written by file browsers, not by users


def is_chips_folder(folder: Path) -> bool:
    """Whether ``folder`` has this engine's ``chips.json`` (an Esri folder has none)."""
    return (Path(folder) / MANIFEST_NAME).is_file()


def foreign_entries(folder: Path) -> list[str]:
    """What a previous export folder holds besides what the export writes (paths relative to it).

    arcgis.learn, for one, saves its models in ``models/`` inside the chips folder it
    trained on; replacing the folder must never take those along.
    """
    folder = Path(folder)
    foreign = []
    for entry in sorted(folder.iterdir()):
        if entry.name in CHIP_FOLDERS and entry.is_dir() and not entry.is_symlink():
            foreign += [f"{entry.name}/{chip.name}" for chip in sorted(entry.iterdir())
                        if not (_CHIP_FILE.match(chip.name) and chip.is_file()) and chip.name not in _SYSTEM_FILES]
        elif not ((entry.name in EXPORT_FILES and entry.is_file()) or entry.name in _SYSTEM_FILES):
            foreign.append(entry.name + ("/" if entry.is_dir() else ""))
    return foreign


def is_previous_export(folder: Path) -> bool:
    """True when ``folder`` holds a previous export and nothing else, so replacing it loses nothing of the user's."""
    return is_chips_folder(folder) and not foreign_entries(folder)


def refuse_foreign_entries(folder: Path) -> None:
    """Refuse to replace a previous export folder that holds anything the export did not write, naming it."""
    folder = Path(folder).absolute()
    if not (folder.is_dir() and is_chips_folder(folder)):
        return
    foreign = foreign_entries(folder)
    if foreign:
        shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
        raise Pix2PixError(
            f"The output folder {folder} holds a previous export, but also {len(foreign)} entr"
            f"{'y' if len(foreign) == 1 else 'ies'} the export did not write: {shown}. Replacing the folder would "
            "delete them. Move them out of it, or choose another output folder; nothing was written."
        )


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    """Write ``chips.json`` atomically into ``folder``; returns its path."""
    path = Path(folder) / MANIFEST_NAME
    with staged_file(path) as staging:  # a folder being replaced in place never shows half a manifest
        staging.write_text(json.dumps(manifest, indent=1, allow_nan=False), encoding="utf-8")
    return path


def load_manifest(folder: str | Path) -> dict[str, Any]:
    """Read and check ``chips.json`` in ``folder``."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise Pix2PixError(f"{folder} has no {MANIFEST_NAME}; it is not a chips folder from 'export'.")
    manifest = read_document(path, "manifest", str(path), "Re-run the export.")
    if not isinstance(manifest, dict):
        raise Pix2PixError(f"{path} must hold a JSON object; re-run the export.")
    version = manifest.get("format_version")
    if manifest.get("format") != FORMAT_NAME or (isinstance(version, int) and version > FORMAT_VERSION):
        raise Pix2PixError(
            f"{path} is format {manifest.get('format')!r} version {version}; this engine reads "
            f"{FORMAT_NAME!r} up to version {FORMAT_VERSION}. Update the plugin or re-run the export."
        )
    validate(manifest, CHIPS_SCHEMA, path, MANIFEST_NAME, "Re-run the export.")
    return manifest
