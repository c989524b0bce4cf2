"""What to export: the chip specification (:class:`ChipSpec`) and the plan of chip windows on A's grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rasterio.windows import Window

from ..contract.errors import Pix2PixError
from ..core.grid import RESAMPLING, Bounds, Grid


@dataclass(frozen=True)
class ChipSpec:
    """Validated export options (pixels unless stated). Bands are 1-based; None means all."""

    tile_size: int = 256
    stride: int = 128
    bands_a: tuple[int, ...] | None = None
    bands_b: tuple[int, ...] | None = None
    extent: Bounds | None = None  # in extent_crs, or A's CRS when extent_crs is None
    extent_crs: str | None = None
    mask: Path | None = None  # GeoJSON polygons; only chips fully inside are kept
    max_nodata: float = 0.0
    validation: float = 0.1
    seed: int = 0
    resampling: str = "bilinear"
    esri_compatible: bool = False  # refuse what arcgis.learn's Pix2Pix would train differently (else warn)

    def __post_init__(self) -> None:
        if self.tile_size < 8:
            raise Pix2PixError(f"Tile size {self.tile_size} is too small; use at least 8 pixels (256 is typical).")
        if self.stride < 1:
            raise Pix2PixError(
                f"Stride {self.stride} is invalid; it must be at least 1 pixel "
                f"(half the tile size, {self.tile_size // 2}, gives 50 % overlap)."
            )
        if not 0.0 <= self.max_nodata <= 1.0:
            raise Pix2PixError(f"MAX_NODATA {self.max_nodata} must be a fraction between 0 and 1.")
        if not 0.0 <= self.validation < 1.0:
            raise Pix2PixError(f"VALIDATION {self.validation} must be a fraction in [0, 1), e.g. 0.1.")
        if self.resampling not in RESAMPLING:
            raise Pix2PixError(f"Resampling '{self.resampling}' is unknown; use one of {', '.join(RESAMPLING)}.")
        if self.extent is not None:
            left, bottom, right, top = self.extent
            if not (right > left and top > bottom):
                raise Pix2PixError(f"The extent {self.extent} is empty; give xmin ymin xmax ymax with xmin < xmax.")


def select_bands(requested: tuple[int, ...] | None, count: int, role: str) -> list[int]:
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
    t = grid.transform
    x0, y0 = t @ (col_off, row_off)
    x1, y1 = t @ (col_off + tile, row_off + tile)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
