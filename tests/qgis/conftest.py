"""Real QGIS, headless: one QgsApplication per session with the Pix2Pix provider registered.

These tests run in QGIS's own Python (Debian: /usr/bin/python3 with python3-qgis) and run
the engine in the project's venv (.venv) as a subprocess, exactly as users' installs do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE_PYTHON = os.environ.get("PIX2PIX_PYTHON") or str(REPO / ".venv" / "bin" / "python")
os.environ["PIX2PIX_PYTHON"] = ENGINE_PYTHON
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PIX2PIX_CACHE_DIR", tempfile.mkdtemp(prefix="pix2pix-cache-"))  # not the home folder
if "XDG_RUNTIME_DIR" not in os.environ:
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="xdg-")
UTM_GEOTRANSFORM = (500_000.0, 10.0, 0.0, 5_000_000.0, 0.0, -10.0)


def _qgis_process_binary() -> str:
    for candidate in ("/usr/bin/qgis_process.bin", "qgis_process.bin", "qgis_process"):
        found = subprocess.run(["which", candidate], capture_output=True, text=True).stdout.strip()
        if found:
            return found
    return "qgis_process"


QGIS_PROCESS = _qgis_process_binary()


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


def write_raster(path: Path, data: np.ndarray, epsg: int = 32633,
                 geotransform: tuple = UTM_GEOTRANSFORM, nodata: float | None = None) -> Path:
    """Write (bands, rows, cols) ``data`` as a GeoTIFF with GDAL (QGIS's own bindings)."""
    from osgeo import gdal, osr

    gdal.UseExceptions()
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    types = {"uint8": gdal.GDT_Byte, "uint16": gdal.GDT_UInt16, "int16": gdal.GDT_Int16,
             "float32": gdal.GDT_Float32}
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[2], data.shape[1], data.shape[0],
                                                   types[str(data.dtype)], ["PHOTOMETRIC=MINISBLACK"])
    dataset.SetGeoTransform(geotransform)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    dataset.SetProjection(srs.ExportToWkt())
    for index, band in enumerate(data, start=1):
        dataset.GetRasterBand(index).WriteArray(band)
        if nodata is not None:
            dataset.GetRasterBand(index).SetNoDataValue(nodata)
    dataset = None
    return path


def read_raster(path: Path) -> tuple[np.ndarray, tuple, str]:
    """(data, geotransform, projection WKT) of a raster, read with GDAL."""
    from osgeo import gdal

    dataset = gdal.Open(str(path))
    return dataset.ReadAsArray(), dataset.GetGeoTransform(), dataset.GetProjection()


@pytest.fixture
def make_raster(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str, data: np.ndarray, **kwargs: Any) -> Path:
        return write_raster(tmp_path / name, data, **kwargs)

    return make


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)
