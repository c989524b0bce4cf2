"""``chips.json``: the manifest every later stage reads instead of re-deriving anything.

Format (version 1) is documented in ``docs/chips-format.md``. ``load_manifest`` checks the
parts later stages depend on and names the folder and field in every error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..contract.errors import Pix2PixError
from ..core.outputs import staged_file
from ..core.schema import CHIPS_SCHEMA, validate

MANIFEST_NAME = "chips.json"
FORMAT_NAME = "pix2pix-chips"
FORMAT_VERSION = 1


def is_chips_folder(folder: Path) -> bool:
    """Whether ``folder`` has this engine's ``chips.json`` (an Esri folder has none)."""
    return (Path(folder) / MANIFEST_NAME).is_file()


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
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise Pix2PixError(f"{path} is not valid JSON ({exc}); re-run the export.") from exc
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
