"""GeoJSON polygon masks: read into a grid's CRS as one prepared geometry, and the inside test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rasterio.crs import CRS
from rasterio.warp import transform_geom
from shapely import prepared
from shapely.geometry import box, shape
from shapely.ops import unary_union

from ..contract.errors import Pix2PixError
from .grid import Bounds


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


def inside_mask(mask: Any, bounds: Bounds) -> bool:
    """Whether the box ``bounds`` lies wholly inside the mask geometry (same CRS)."""
    return bool(mask.contains(box(*bounds)))
