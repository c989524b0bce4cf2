"""Fixtures shared by the engine's test modules: small real GeoTIFFs, a seeded generator, an unpaired export.

The plain functions they use are in ``builders.py``; a test module imports those, never another test module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pix2pix_qgis import export_unpaired

from .builders import UNPAIRED_SPEC, unpaired_rasters, write_raster

MakeRaster = Callable[..., Path]


@pytest.fixture
def make_raster(tmp_path: Path) -> MakeRaster:
    """``make_raster(name, data, crs=..., transform=..., nodata=...)`` → path under tmp_path."""

    def make(name: str, data: np.ndarray, **kwargs: Any) -> Path:
        return write_raster(tmp_path / name, data, **kwargs)

    return make


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The engine's per-user caches (exported ONNX graphs) go to a test folder, not the home folder."""
    import os

    os.environ["PIX2PIX_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def unpaired(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The rasters A and B (far apart, other CRS and dtype) and their unpaired export (``UNPAIRED_SPEC``, 32 px
    chips): ``(a, b, chips folder)``, for the CycleGAN trainer, its API and its torchrun runs."""
    root = tmp_path_factory.mktemp("unpaired")
    a, b = unpaired_rasters(root)
    export_unpaired(a, b, root / "chips", UNPAIRED_SPEC)
    return a, b, root / "chips"
