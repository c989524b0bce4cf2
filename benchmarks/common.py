"""Shared benchmark helpers: the real-imagery test pair at any size, timing, machine facts."""

from __future__ import annotations

import datetime as dt
import platform
import statistics
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning

from pix2pix_qgis.sample import basemap_file

DATA = Path(__file__).resolve().parent / "data"


def machine() -> str:
    model = ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import os

    return f"{model or platform.processor()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def today() -> str:
    return dt.date.today().isoformat()


def upsampled_pair(size: int) -> tuple[Path, Path]:
    """Relief (A) and imagery (B) of the whole globe resampled to size×size, tiled GeoTIFFs."""
    DATA.mkdir(exist_ok=True)
    paths = (DATA / f"relief_{size}.tif", DATA / f"imagery_{size}.tif")
    for source, destination in zip(("etopo1.jpg", "bmng.jpg"), paths):
        if destination.exists():
            continue
        transform = Affine(360 / size, 0, -180, 0, -180 / size, 90)
        profile = {"driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
                   "crs": "EPSG:4326", "transform": transform, "tiled": True, "blockxsize": 512,
                   "blockysize": 512, "compress": "deflate"}
        partial = destination.with_suffix(".partial.tif")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain JPEG; its grid is known
            with rasterio.open(basemap_file(source)) as src:
                data = src.read(out_shape=(3, size, size), resampling=Resampling.bilinear)
        with rasterio.open(partial, "w", **profile) as dst:
            dst.write(data)
        partial.rename(destination)
    return paths


def median_time(function: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


__all__ = ["machine", "today", "upsampled_pair", "median_time"]
