"""``chips.json``: the manifest every later stage reads instead of re-deriving anything.

Format (version 1) is documented in ``docs/chips-format.md``. ``load_manifest`` checks the
parts later stages depend on and names the folder and field in every error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract.errors import Pix2PixError
from ..core.documents import read_document
from ..core.outputs import staged_file
from ..core.schema import CHIPS_SCHEMA, UNPAIRED_CHIPS_SCHEMA, validate
from .esri import ACCUMULATED, EMD, MAP

MANIFEST_NAME = "chips.json"
FORMAT_NAME = "pix2pix-chips"
FORMAT_VERSION = 1
UNPAIRED_FORMAT_NAME = "pix2pix-unpaired-chips"
UNPAIRED_FORMAT_VERSION = 1

# A chip and the side files GDAL (or QGIS, opening it) may write beside it.
_CHIP_FILE = re.compile(r"^\d{9}\.tif(?:\.aux\.xml|\.ovr|\.msk)?$")
_SYSTEM_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")  # written by file browsers, not by users


@dataclass(frozen=True)
class Layout:
    """What an export writes into its folder, and what arcgis.learn may add there, as paths relative to it.

    A re-export replaces the export's own entries, keeps arcgis.learn's and refuses anything
    else (the user's), so this is the whole list of what may be in the folder.
    """

    format: str  # the chips.json format of this layout
    chip_folders: tuple[str, ...]  # folders of numbered chips
    files: tuple[str, ...]  # the export's other files
    learn_folders: tuple[str, ...]  # folders arcgis.learn saves models into
    learn_files: re.Pattern[str]  # arcgis.learn's normalisation caches (matched against the relative path)

    def folders(self) -> set[str]:
        """Every folder the layout names, with the folders above them (``A`` for ``A/images``)."""
        named = {*self.chip_folders, *self.learn_folders, *(str(Path(f).parent) for f in self.files)}
        return {str(parent) for entry in named for parent in (Path(entry), *Path(entry).parents)} - {"."}


# What arcgis.learn 2.4.4 saves into a chips folder it trains on: its models (``models/``,
# arcgis/learn/_data.py:973-978 and the learner's model_dir) and its normalisation cache
# (esri_normalization_stats_a.json / _b.json for Pix2Pix, _data_utils/pix2pix_data.py:186;
# esri_normalization_stats.json for its single-input models). A re-export keeps them.
PAIRED = Layout(
    format=FORMAT_NAME,
    chip_folders=("images", "images2"),
    files=(MANIFEST_NAME, ACCUMULATED, EMD, MAP),
    learn_folders=("models",),
    learn_files=re.compile(r"^esri_normalization_stats(?:_[ab])?\.json$"),
)
# Esri's CycleGAN layout: one Export Tiles folder per domain, A/ and B/. arcgis.learn 2.0.1
# (_utils/cyclegan.py: cyclegan_paths, _batch_stats_json, ImageTupleListMS.from_folders) caches
# each domain's statistics beside its images (A/esri_normalization_stats_a.json,
# B/esri_normalization_stats_b.json) and saves models under the folder (multispectral) or
# under A/ (RGB): models/ or A/models/.
UNPAIRED = Layout(
    format=UNPAIRED_FORMAT_NAME,
    chip_folders=("A/images", "B/images"),
    files=(MANIFEST_NAME, *(f"{domain}/{name}" for domain in "AB" for name in (ACCUMULATED, EMD, MAP))),
    learn_folders=("models", "A/models"),
    learn_files=re.compile(r"^(?:A/esri_normalization_stats_a|B/esri_normalization_stats_b)\.json$"),
)


def is_chips_folder(folder: Path) -> bool:
    """Whether ``folder`` has this engine's ``chips.json`` (an Esri folder has none)."""
    return (Path(folder) / MANIFEST_NAME).is_file()


def _relative(entry: Path, folder: Path) -> str:
    return entry.relative_to(folder).as_posix()


def _is_arcgis_learn_entry(entry: Path, folder: Path, layout: Layout) -> bool:
    """Whether ``entry`` (in a chips folder) is one arcgis.learn writes there, of the kind it writes."""
    if entry.is_symlink():
        return False
    relative = _relative(entry, folder)
    if relative in layout.learn_folders:
        return entry.is_dir()
    return bool(layout.learn_files.match(relative)) and entry.is_file()


def _walk(folder: Path, layout: Layout) -> list[Path]:
    """Every entry of ``folder`` the layout does not explain, plus arcgis.learn's (told apart by the callers)."""
    found = []
    pending = [folder]
    while pending:
        current = pending.pop()
        for entry in sorted(current.iterdir()):
            relative = _relative(entry, folder)
            if entry.name in _SYSTEM_FILES:
                continue
            if relative in layout.chip_folders and entry.is_dir() and not entry.is_symlink():
                found += [chip for chip in sorted(entry.iterdir())
                          if not (_CHIP_FILE.match(chip.name) and chip.is_file()) and chip.name not in _SYSTEM_FILES]
            elif relative in layout.files and entry.is_file() and not entry.is_symlink():
                continue
            elif (relative in layout.folders() and relative not in layout.learn_folders and entry.is_dir()
                  and not entry.is_symlink()):
                pending.append(entry)
            else:
                found.append(entry)
    return sorted(found)


def arcgis_learn_entries(folder: Path, layout: Layout = PAIRED) -> list[str]:
    """Paths (relative to ``folder``) of what arcgis.learn saved there (kept by a re-export), sorted."""
    folder = Path(folder)
    return [_relative(entry, folder) for entry in _walk(folder, layout)
            if _is_arcgis_learn_entry(entry, folder, layout)]


def foreign_entries(folder: Path, layout: Layout = PAIRED) -> list[str]:
    """What a previous export folder holds besides the export's files and arcgis.learn's (paths relative to it).

    Those are the user's: a re-export refuses rather than delete them. arcgis.learn's own
    entries (:func:`arcgis_learn_entries`) are not foreign; the export keeps them.
    """
    folder = Path(folder)
    return [_relative(entry, folder) + ("/" if entry.is_dir() else "") for entry in _walk(folder, layout)
            if not _is_arcgis_learn_entry(entry, folder, layout)]


def manifest_format(folder: Path) -> str | None:
    """The ``format`` a folder's ``chips.json`` declares, or None when it has none or cannot be read."""
    try:
        value = json.loads((Path(folder) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value.get("format") if isinstance(value, dict) and isinstance(value.get("format"), str) else None


def is_previous_export(folder: Path, layout: Layout = PAIRED) -> bool:
    """True when ``folder`` holds a previous export and at most arcgis.learn's entries (which the export keeps)."""
    return is_chips_folder(folder) and not foreign_entries(folder, layout)


def refuse_foreign_entries(folder: Path, layout: Layout = PAIRED) -> None:
    """Refuse to replace a previous export folder that holds anything the export did not write, naming it."""
    folder = Path(folder).absolute()
    if not (folder.is_dir() and is_chips_folder(folder)):
        return
    foreign = foreign_entries(folder, layout)
    if foreign:
        shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
        found = manifest_format(folder)
        other = {FORMAT_NAME: " It is a paired export ('export'), which this command does not replace.",
                 UNPAIRED_FORMAT_NAME: " It is an unpaired export ('export-unpaired'), which this command does not "
                 "replace."}.get(found or "", "") if found != layout.format else ""
        raise Pix2PixError(
            f"The output folder {folder} holds a previous export, but also {len(foreign)} entr"
            f"{'y' if len(foreign) == 1 else 'ies'} neither the export nor arcgis.learn wrote: {shown}.{other} "
            "Replacing the folder would delete them. Choose an empty (or new) output folder, or move those entries "
            "out of it; nothing was written."
        )


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    """Write ``chips.json`` atomically into ``folder``; returns its path."""
    path = Path(folder) / MANIFEST_NAME
    with staged_file(path) as staging:  # a folder being replaced in place never shows half a manifest
        staging.write_text(json.dumps(manifest, indent=1, allow_nan=False), encoding="utf-8")
    return path


_WRONG_KIND = {
    FORMAT_NAME: "paired chips from 'export' (images/ and images2/); CycleGAN reads unpaired chips from "
                 "'export-unpaired' (A/images and B/images). Run export-unpaired",
    UNPAIRED_FORMAT_NAME: "unpaired chips from 'export-unpaired' (A/images and B/images); Pix2Pix needs paired chips. "
                          "Train CycleGAN on it (train --model cyclegan), or run 'export' for paired chips",
}


def load_manifest(folder: str | Path, layout: Layout = PAIRED) -> dict[str, Any]:
    """Read and check ``chips.json`` in ``folder`` (a paired export by default; ``UNPAIRED`` for the other)."""
    path = Path(folder) / MANIFEST_NAME
    command = "export" if layout is PAIRED else "export-unpaired"
    if not path.is_file():
        raise Pix2PixError(f"{folder} has no {MANIFEST_NAME}; it is not a chips folder from '{command}'.")
    manifest = read_document(path, "manifest", str(path), "Re-run the export.")
    if not isinstance(manifest, dict):
        raise Pix2PixError(f"{path} must hold a JSON object; re-run the export.")
    version = manifest.get("format_version")
    found = manifest.get("format")
    expected, newest, schema = ((FORMAT_NAME, FORMAT_VERSION, CHIPS_SCHEMA) if layout is PAIRED else
                                (UNPAIRED_FORMAT_NAME, UNPAIRED_FORMAT_VERSION, UNPAIRED_CHIPS_SCHEMA))
    if found != expected and isinstance(found, str) and found in _WRONG_KIND:
        raise Pix2PixError(f"{path} describes {_WRONG_KIND[found]}.")
    if found != expected or (isinstance(version, int) and version > newest):
        raise Pix2PixError(
            f"{path} is format {found!r} version {version}; this engine reads "
            f"{expected!r} up to version {newest}. Update the plugin or re-run the export."
        )
    validate(manifest, schema, path, MANIFEST_NAME, "Re-run the export.")
    return manifest
