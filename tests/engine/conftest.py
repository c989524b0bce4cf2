"""Fixtures that make small real GeoTIFFs with rasterio."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

UTM_TRANSFORM = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 5_000_000.0)

MakeRaster = Callable[..., Path]


def write_raster(
    path: Path,
    data: np.ndarray,
    crs: str | None = "EPSG:32633",
    transform: Affine = UTM_TRANSFORM,
    nodata: Any = None,
    **profile: Any,
) -> Path:
    """Write ``data`` (bands, rows, cols) as a GeoTIFF and return its path."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    if data.shape[0] != 3:
        profile.setdefault("photometric", "MINISBLACK")  # no implicit alpha band
    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
        dtype=data.dtype, crs=crs, transform=transform, nodata=nodata, **profile,
    ) as dst:
        dst.write(data)
    return path


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
