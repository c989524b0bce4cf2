"""Which Python runs the engine: ``PIX2PIX_PYTHON``, then the provider setting, then a default.

The default is the managed environment that "Set up engine" creates (outside the plugin
folder, so upgrades keep it) when it exists, else ``python3``/``python`` on PATH.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .engine_setup import venv_python

ENV_VARIABLE = "PIX2PIX_PYTHON"
SETTING_KEY = "PIX2PIX_PYTHON"
PLUGIN_DIR = Path(__file__).resolve().parent.parent


def managed_environment() -> Path:
    """Folder of the plugin-managed engine environment (per user, outside the plugin)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "pix2pix_toolbox" / "venv"


def managed_python() -> Path:
    """The interpreter of the environment that *Set up engine* makes (it may not exist yet)."""
    return venv_python(managed_environment())


def check_interpreter(value: str) -> None:
    """Validator of the provider setting: empty, or an executable file.

    Processing's own check for FILE settings asks, from QGIS 3.44 on, for a file the user may
    *write*, which an interpreter (root-owned, or on a read-only mount) seldom is: with it,
    *Set up engine* could not save the environment it made.
    """
    if value and not (os.path.isfile(value) and os.access(value, os.X_OK)):
        raise ValueError(f"The Python interpreter '{value}' does not exist or cannot be run. Give the python of "
                         "the engine's environment (Pix2Pix › Set up engine makes one), or leave it empty.")


def configured_setting() -> str:
    """The provider setting (Processing › Options › Providers › Pix2Pix), or '' when unset."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig
    except ImportError:  # processing plugin not loaded (e.g. qgis_process --no-python)
        return ""
    value = ProcessingConfig.getSetting(SETTING_KEY)
    return str(value).strip() if value else ""


def resolve_python() -> tuple[str, str]:
    """Return (interpreter, where it came from) for messages that say what to change."""
    from_env = os.environ.get(ENV_VARIABLE, "").strip()
    if from_env:
        return from_env, f"environment variable {ENV_VARIABLE}"
    from_setting = configured_setting()
    if from_setting:
        return from_setting, "Processing › Options › Providers › Pix2Pix › Python interpreter"
    managed = managed_python()
    if managed.exists():
        return str(managed), "the managed engine environment"
    found = shutil.which("python3") or shutil.which("python")
    return (found or "python3"), "the default (python3 on PATH)"


def engine_environment() -> dict[str, str]:
    """The child's environment: QGIS's Python and GDAL/PROJ paths removed, the bundled engine first.

    QGIS sets PYTHONPATH/PYTHONHOME for its own interpreter and GDAL_DATA/PROJ_LIB for its
    own GDAL; handed to another interpreter with its own rasterio wheel they break imports
    or CRS lookups ("proj.db ... DATABASE.LAYOUT.VERSION").
    """
    env = dict(os.environ)
    for name in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PROJ_LIB", "PROJ_DATA", "GDAL_DATA",
                 "GDAL_DRIVER_PATH", "QT_PLUGIN_PATH"):
        env.pop(name, None)
    env["PYTHONPATH"] = str(PLUGIN_DIR)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def fix_hint(python: str) -> str:
    """The pip command that installs the engine's requirements into ``python``."""
    return f'"{python}" -m pip install -r "{PLUGIN_DIR / "requirements.txt"}"'
