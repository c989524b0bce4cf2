"""What to export: the chip specification (:class:`ChipSpec`) and the plan of chip windows on A's grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rasterio.windows import Window

from ..contract.errors import Pix2PixError
from ..contract.tables import EXPORT
from ..core.grid import Bounds, Grid


@dataclass(frozen=True)
class ChipSpec:
    """Validated export options (pixels unless stated). Bands are 1-based; None means all."""

    tile_size: int = EXPORT["TILE_SIZE"].default
    stride: int = EXPORT["STRIDE"].default
    bands_a: tuple[int, ...] | None = None
    bands_b: tuple[int, ...] | None = None
    extent: Bounds | None = None  # in extent_crs, or A's CRS when extent_crs is None
    extent_crs: str | None = None
    mask: Path | None = None  # GeoJSON polygons; only chips fully inside are kept
    max_nodata: float = EXPORT["MAX_NODATA"].default
    validation: float = EXPORT["VALIDATION"].default
    seed: int = EXPORT["SEED"].default
    resampling: str = EXPORT["RESAMPLING"].default
    esri_compatible: bool = EXPORT["ESRI_COMPATIBLE"].default  # refuse what arcgis.learn would train differently

    def __post_init__(self) -> None:
        EXPORT.check_object(self)


def select_bands(requested: tuple[int, ...] | None, count: int, role: str) -> list[int]:
    """The 1-based bands to read of a ``count``-band raster (all if none requested); ``role`` names it in errors."""
    if not requested:
        return list(range(1, count + 1))
    bad = [b for b in requested if not 1 <= b <= count]
    if bad:
        raise Pix2PixError(f"The {role} raster has {count} band(s); band(s) {bad} do not exist (bands count from 1).")
    return list(requested)


def plan_origins(window: Window, tile: int, stride: int) -> list[tuple[int, int]]:
    """Chip origins (row_off, col_off) on a stride lattice whose tiles lie inside ``window``."""
    rows = range(int(window.row_off), int(window.row_off + window.height) - tile + 1, stride)
    cols = range(int(window.col_off), int(window.col_off + window.width) - tile + 1, stride)
    return [(r, c) for r in rows for c in cols]


def chip_bounds(grid: Grid, row_off: int, col_off: int, tile: int) -> Bounds:
    """Map-unit bounds (left, bottom, right, top) of the ``tile`` px chip whose top-left pixel is (row_off, col_off)."""
    t = grid.transform
    x0, y0 = t @ (col_off, row_off)
    x1, y1 = t @ (col_off + tile, row_off + tile)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
