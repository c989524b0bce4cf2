"""The README's install path, for tests: build the zip, unzip it as QGIS's installer does, fresh profile."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from .paths import QGIS_PROCESS, REPO


def install_from_zip(root: Path) -> Path:
    """Build dist zip into ``root`` and extract it into ``root/plugins``; return that folder."""
    archive = root / "pix2pix_toolbox.zip"
    subprocess.run([sys.executable, str(REPO / "scripts" / "build_plugin.py"), str(archive)], check=True,
                   capture_output=True)
    plugins = root / "plugins"
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(plugins)
    return plugins


def fresh_profile_env(root: Path, engine_python: str | None) -> dict[str, str]:
    """Environment of a QGIS with a brand-new profile root and the plugin from the zip, enabled.

    ``engine_python`` None: no PIX2PIX_PYTHON, and the per-user data folder (where *Set up engine*
    puts its environment by default) is a new, empty one under ``root``.
    """
    env = {**os.environ, "QGIS_PLUGINPATH": str(install_from_zip(root)),
           "QGIS_CUSTOM_CONFIG_PATH": str(root / "profile"), "QT_QPA_PLATFORM": "offscreen",
           "XDG_DATA_HOME": str(root / "data")}
    env.pop("PIX2PIX_PYTHON", None)
    if engine_python:
        env["PIX2PIX_PYTHON"] = engine_python
    enabled = subprocess.run([QGIS_PROCESS, "plugins", "enable", "pix2pix_toolbox"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    return env
