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
# What arcgis.learn 2.4.4 saves into a chips folder it trains on: its models (``models/``,
# arcgis/learn/_data.py:973-978 and the learner's model_dir) and its normalisation cache
# (esri_normalization_stats_a.json / _b.json for Pix2Pix, _data_utils/pix2pix_data.py:186;
# esri_normalization_stats.json for its single-input models). A re-export keeps them.
ARCGIS_LEARN_FOLDER = "models"
_ARCGIS_LEARN_FILE = re.compile(r"^esri_normalization_stats(?:_[ab])?\.json$")


def is_chips_folder(folder: Path) -> bool:
    """Whether ``folder`` has this engine's ``chips.json`` (an Esri folder has none)."""
    return (Path(folder) / MANIFEST_NAME).is_file()


def _is_arcgis_learn_entry(entry: Path) -> bool:
    """Whether ``entry`` (directly in a chips folder) is one arcgis.learn writes there, of the kind it writes."""
    if entry.is_symlink():
        return False
    if entry.name == ARCGIS_LEARN_FOLDER:
        return entry.is_dir()
    return bool(_ARCGIS_LEARN_FILE.match(entry.name)) and entry.is_file()


def arcgis_learn_entries(folder: Path) -> list[str]:
    """Names of the entries arcgis.learn saved in ``folder`` (kept by a re-export), sorted."""
    return [entry.name for entry in sorted(Path(folder).iterdir()) if _is_arcgis_learn_entry(entry)]


def foreign_entries(folder: Path) -> list[str]:
    """What a previous export folder holds besides the export's files and arcgis.learn's (paths relative to it).

    Those are the user's: a re-export refuses rather than delete them. arcgis.learn's own
    entries (:func:`arcgis_learn_entries`) are not foreign; the export keeps them.
    """
    folder = Path(folder)
    foreign = []
    for entry in sorted(folder.iterdir()):
        if entry.name in CHIP_FOLDERS and entry.is_dir() and not entry.is_symlink():
            foreign += [f"{entry.name}/{chip.name}" for chip in sorted(entry.iterdir())
                        if not (_CHIP_FILE.match(chip.name) and chip.is_file()) and chip.name not in _SYSTEM_FILES]
        elif not ((entry.name in EXPORT_FILES and entry.is_file()) or entry.name in _SYSTEM_FILES
                  or _is_arcgis_learn_entry(entry)):
            foreign.append(entry.name + ("/" if entry.is_dir() else ""))
    return foreign


def is_previous_export(folder: Path) -> bool:
    """True when ``folder`` holds a previous export and at most arcgis.learn's entries (which the export keeps)."""
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
            f"{'y' if len(foreign) == 1 else 'ies'} neither the export nor arcgis.learn wrote: {shown}. Replacing the "
            "folder would delete them. Choose an empty (or new) output folder, or move those entries out of it; "
            "nothing was written."
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
