"""Real QGIS, headless: one QgsApplication per session with the Pix2Pix provider registered.

These tests run in QGIS's own Python (Debian: /usr/bin/python3 with python3-qgis) and run
the engine in the project's venv (.venv) as a subprocess, exactly as users' installs do.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .paths import ENGINE_PYTHON, REPO
from .rasters import write_raster

os.environ["PIX2PIX_PYTHON"] = ENGINE_PYTHON
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PIX2PIX_CACHE_DIR", tempfile.mkdtemp(prefix="pix2pix-cache-"))  # not the home folder
if "XDG_RUNTIME_DIR" not in os.environ:
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="xdg-")


def pytest_configure(config: pytest.Config) -> None:
    """Deprecated QGIS API called by the plugin or these tests fails the run: sip warns at the caller,
    and what 3.40 deprecates is what QGIS 4 removes."""
    import qgis.utils  # noqa: F401 (resets warning filters when imported: now, not inside a test's own filters)

    for module in ("pix2pix_toolbox", "tests.qgis", "test_"):
        config.addinivalue_line("filterwarnings", f"error::DeprecationWarning:{module}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which QGIS, Qt and engine this run used: the version matrix reads it from each suite's log."""
    from qgis.core import Qgis
    from qgis.PyQt.QtCore import QT_VERSION_STR

    return [f"QGIS {Qgis.QGIS_VERSION}, Qt {QT_VERSION_STR}, Python {sys.version.split()[0]}, engine {ENGINE_PYTHON}"]


@pytest.fixture(scope="session")
def qgis_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from qgis.core import QgsApplication

    plugins = tmp_path_factory.mktemp("plugins")
    (plugins / "pix2pix_toolbox").symlink_to(REPO)
    sys.path.insert(0, str(plugins))
    sys.path.append("/usr/share/qgis/python/plugins")
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    from pix2pix_toolbox.processing_provider.provider import Pix2PixProvider

    provider = Pix2PixProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    yield app
    QgsApplication.processingRegistry().removeProvider("pix2pix")


@pytest.fixture
def make_raster(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str, data: np.ndarray, **kwargs: Any) -> Path:
        return write_raster(tmp_path / name, data, **kwargs)

    return make


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)
