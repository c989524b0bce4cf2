"""GeoJSON polygon masks: read into a grid's CRS as one prepared geometry, and the inside test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from shapely import prepared
from shapely.errors import ShapelyError
from shapely.geometry import box, shape
from shapely.ops import unary_union

from ..contract.errors import Pix2PixError
from .documents import read_document
from .grid import Bounds, parse_crs


def load_mask(path: Path, grid_crs: CRS | None) -> Any:
    """Polygons of a GeoJSON file as one prepared shapely geometry in the grid's CRS.

    The file's CRS is its ``crs`` member when present, else WGS 84 as RFC 7946 says (or
    none, for a raster without a CRS). The QGIS provider always writes the mask in A's CRS
    with an explicit ``crs`` member. Coordinates that cannot be degrees in a file without
    a ``crs`` member are refused: they are a projected layer saved without its CRS, and
    reading them as degrees would fail or select nothing.
    """
    fix = "Save the polygons as GeoJSON again (e.g. Export › Save Features As…)."
    data = read_document(Path(path), "mask", f"The mask {path}", fix)
    polygons = _polygons(data) if isinstance(data, dict) else []
    if not polygons:
        raise Pix2PixError(f"The mask {path} has no polygon features; give a polygon layer.")
    crs_member = data.get("crs")
    crs_name = crs_member.get("properties", {}).get("name") if isinstance(crs_member, dict) else None
    if crs_name is not None and not isinstance(crs_name, str):
        raise Pix2PixError(f"The mask {path} has a crs member whose name is not text ({crs_name!r}). {fix}")
    mask_crs = parse_crs(crs_name, f"CRS of the mask {path}") if crs_name else (
        CRS.from_epsg(4326) if grid_crs else None)
    try:
        geometries = [shape(g) for g in polygons]
        if crs_name is None and grid_crs is not None:
            _refuse_projected_coordinates(geometries, path)
        if grid_crs is not None and mask_crs is not None and mask_crs != grid_crs:
            geometries = [shape(transform_geom(mask_crs, grid_crs, g)) for g in polygons]
        union = unary_union([g.buffer(0) for g in geometries])
    except (ShapelyError, CPLE_BaseError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise Pix2PixError(f"The mask {path} holds a polygon that cannot be read ({exc}). {fix}") from exc
    return prepared.prep(union)


def _polygons(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The Polygon and MultiPolygon geometries of a FeatureCollection, a Feature or a bare geometry."""
    if data.get("type") in ("Polygon", "MultiPolygon"):
        return [data]
    features = data.get("features", [data] if data.get("type") == "Feature" else [])
    if not isinstance(features, list):
        return []
    geometries = [f.get("geometry") for f in features if isinstance(f, dict)]
    return [g for g in geometries if isinstance(g, dict) and g.get("type") in ("Polygon", "MultiPolygon")]


def _refuse_projected_coordinates(geometries: list[Any], path: Path) -> None:
    left, bottom, right, top = unary_union(geometries).bounds
    if left < -360 or right > 360 or bottom < -90 or top > 90:
        raise Pix2PixError(
            f"The mask {path} has no 'crs' member, so its coordinates are read as WGS 84 degrees (as GeoJSON "
            f"prescribes), but they span x {left:.6g} … {right:.6g}, y {bottom:.6g} … {top:.6g}, which are not "
            "degrees. Save the mask in WGS 84 (EPSG:4326), or add a crs member naming its CRS, e.g. "
            '"crs": {"type": "name", "properties": {"name": "EPSG:32633"}}.'
        )


def inside_mask(mask: Any, bounds: Bounds) -> bool:
    """Whether the box ``bounds`` lies wholly inside the mask geometry (same CRS)."""
    return bool(mask.contains(box(*bounds)))
