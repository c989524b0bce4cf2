"""Real rasters that more than one QGIS test module builds (test modules never import each other)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .paths import ENGINE_PYTHON

RELIEF_WINDOW = "Window(2600, 700, 256, 256)"  # 6.7°E–23.7°E, 43.3°N–26.3°N
IMAGERY_WINDOW = "Window(1000, 700, 256, 256)"  # 113°W–96°W, same latitudes


def write_unpaired(folder: Path) -> dict[str, Path]:
    """relief.tif (EPSG:4326) and imagery.tif (EPSG:3857, ~8 km cells) of two distant windows."""
    from osgeo import gdal

    subprocess.run([ENGINE_PYTHON, "-c", "import sys; from pathlib import Path; from rasterio.windows import Window; "
                    "from pix2pix_qgis.sample import basemap_file, write_window; folder = Path(sys.argv[1]); "
                    f"write_window(basemap_file('etopo1.jpg'), folder / 'relief.tif', {RELIEF_WINDOW}); "
                    f"write_window(basemap_file('bmng.jpg'), folder / 'imagery_4326.tif', {IMAGERY_WINDOW})",
                    str(folder)], check=True)
    gdal.UseExceptions()
    gdal.Warp(str(folder / "imagery.tif"), str(folder / "imagery_4326.tif"), dstSRS="EPSG:3857",
              xRes=8000, yRes=8000, resampleAlg="bilinear")
    return {"relief": folder / "relief.tif", "imagery": folder / "imagery.tif", "folder": folder}
