"""What to export: the chip specification and the plan of chip windows on A's grid."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rasterio.crs import CRS
from rasterio.warp import transform_geom
from rasterio.windows import Window
from shapely import prepared
from shapely.geometry import box, shape
from shapely.ops import unary_union

from .errors import Pix2PixError
from .grid import RESAMPLING, Bounds, Grid


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


def load_mask(path: Path, grid_crs: CRS | None) -> Any:
    """Polygons of a GeoJSON file as one prepared shapely geometry in the grid's CRS.

    The file's CRS is its ``crs`` member when present, else WGS 84 as RFC 7946 says (or
    none, for a raster without a CRS). The QGIS provider always writes the mask in A's CRS
    with an explicit ``crs`` member.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Pix2PixError(f"The mask {path} cannot be read as GeoJSON: {exc}") from exc
    features = data.get("features", [data] if data.get("type") == "Feature" else [])
    geometries = [f.get("geometry") for f in features if f.get("geometry")]
    if data.get("type") in ("Polygon", "MultiPolygon"):
        geometries = [data]
    polygons = [g for g in geometries if g.get("type") in ("Polygon", "MultiPolygon")]
    if not polygons:
        raise Pix2PixError(f"The mask {path} has no polygon features; give a polygon layer.")
    crs_name = (data.get("crs") or {}).get("properties", {}).get("name")
    mask_crs = CRS.from_user_input(crs_name) if crs_name else (CRS.from_epsg(4326) if grid_crs else None)
    if grid_crs is not None and mask_crs is not None and mask_crs != grid_crs:
        polygons = [transform_geom(mask_crs, grid_crs, g) for g in polygons]
    union = unary_union([shape(g).buffer(0) for g in polygons])
    return prepared.prep(union)


def chip_bounds(grid: Grid, row_off: int, col_off: int, tile: int) -> Bounds:
    t = grid.transform
    x0, y0 = t @ (col_off, row_off)
    x1, y1 = t @ (col_off + tile, row_off + tile)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def inside_mask(mask: Any, bounds: Bounds) -> bool:
    return bool(mask.contains(box(*bounds)))
