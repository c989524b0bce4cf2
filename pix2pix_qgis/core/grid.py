"""Pixel grids: what a raster's grid is, whether two grids agree, and how to put B on A's grid.

Chips must be pixel-exact windows of raster A; raster B is read through a GDAL warped VRT
on A's grid whenever the two grids differ (CRS, cell size or alignment), so resampling
happens on the fly, one window at a time, and memory never depends on raster size.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from ..contract.errors import Pix2PixError
from ..contract.tables import EXPORT

Bounds = tuple[float, float, float, float]  # (left, bottom, right, top) in map units

DEFAULT_GDAL_CACHE_MB = 256


def gdal_cache_mb() -> int:
    """GDAL's block cache for our reads: ``GDAL_CACHEMAX`` (MB) if the user set it, else 256 MB.

    GDAL's own default is 5 % of RAM, which dominates peak memory while bringing nothing to
    strip-by-strip reads that touch each block once or twice.
    """
    value = os.environ.get("GDAL_CACHEMAX", "")
    return int(value) if value.isdigit() else DEFAULT_GDAL_CACHE_MB


RESAMPLING = {name: Resampling[name] for name in EXPORT["RESAMPLING"].choices}


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: CRS, affine transform (pixel → map) and size in pixels."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @classmethod
    def of(cls, dataset: Any) -> Grid:
        """The grid of an open rasterio dataset."""
        return cls(dataset.crs, dataset.transform, dataset.width, dataset.height)

    @property
    def bounds(self) -> Bounds:
        """(left, bottom, right, top) in the CRS's map units, whatever the sign of the cell size."""
        left, top = self.transform.c, self.transform.f
        right = left + self.transform.a * self.width
        bottom = top + self.transform.e * self.height
        return (min(left, right), min(top, bottom), max(left, right), max(top, bottom))

    @property
    def cell_size(self) -> tuple[float, float]:
        """(x, y) cell size in map units, both positive."""
        return (abs(self.transform.a), abs(self.transform.e))

    def same_as(self, other: Grid) -> bool:
        """True when every pixel of one grid is the same pixel of the other."""
        if (self.width, self.height) != (other.width, other.height) or not _same_crs(self.crs, other.crs):
            return False
        tolerance = 1e-6 * min(self.cell_size)
        return all(math.isclose(a, b, rel_tol=0, abs_tol=tolerance) for a, b in zip(self.transform, other.transform))

    def window_of(self, bounds: Bounds) -> Window:
        """The smallest window of whole pixels covering ``bounds``, clipped to the grid."""
        window = from_bounds(*bounds, transform=self.transform)
        window = window.round_offsets(op="floor").round_lengths(op="ceil")
        col0 = max(0, int(window.col_off))
        row0 = max(0, int(window.row_off))
        col1 = min(self.width, int(math.ceil(window.col_off + window.width - 1e-9)))
        row1 = min(self.height, int(math.ceil(window.row_off + window.height - 1e-9)))
        return Window(col0, row0, max(0, col1 - col0), max(0, row1 - row0))

    def describe(self) -> dict[str, Any]:
        """The grid as JSON-ready values (CRS as string and WKT, transform, size, bounds) for manifests and cards."""
        return {
            "crs": self.crs.to_string() if self.crs else None,
            "crs_wkt": self.crs.to_wkt() if self.crs else None,
            "transform": list(self.transform)[:6],
            "cell_size": list(self.cell_size),
            "width": self.width,
            "height": self.height,
            "bounds": list(self.bounds),
        }


def _same_crs(a: CRS | None, b: CRS | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a == b


def open_raster(path: str | Path, role: str) -> Any:
    """Open a raster for reading with an error that names its role (input A / target B)."""
    path = Path(path)
    if not path.exists():
        raise Pix2PixError(f"The {role} raster {path} does not exist. Check the path.")
    try:
        dataset = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise Pix2PixError(f"The {role} raster {path} cannot be read as a raster: {exc}") from exc
    transform = dataset.transform
    if transform.b != 0 or transform.d != 0:
        dataset.close()
        raise Pix2PixError(
            f"The {role} raster {path} has a rotated geotransform; chips need a north-up grid. "
            "Warp it first (Raster › Projections › Warp)."
        )
    if transform.is_identity and dataset.crs is None:
        dataset.close()
        raise Pix2PixError(
            f"The {role} raster {path} has no georeferencing. Georeference it or assign a CRS first."
        )
    return dataset


def bounds_in(bounds: Bounds, src_crs: CRS | None, dst_crs: CRS | None) -> Bounds:
    """``bounds`` moved from ``src_crs`` to ``dst_crs`` (densified edges); unchanged if either CRS is missing."""
    if src_crs is None or dst_crs is None or src_crs == dst_crs:
        return bounds
    return transform_bounds(src_crs, dst_crs, *bounds, densify_pts=21)


def extent_in(extent: Bounds, extent_crs: str | None, crs: CRS | None) -> Bounds:
    """A user's extent (in ``extent_crs``, e.g. "EPSG:4326"; None: already in ``crs``) in ``crs``."""
    source = CRS.from_user_input(extent_crs) if extent_crs else crs
    return bounds_in(extent, source, crs)


def intersect(a: Bounds, b: Bounds) -> Bounds | None:
    """The overlap of two bounds in the same CRS, or None when they do not overlap."""
    left, bottom = max(a[0], b[0]), max(a[1], b[1])
    right, top = min(a[2], b[2]), min(a[3], b[3])
    if right <= left or top <= bottom:
        return None
    return (left, bottom, right, top)


def format_bounds(bounds: Bounds, crs: CRS | None) -> str:
    """Bounds and CRS as one readable string for messages."""
    name = crs.to_string() if crs else "no CRS"
    return "[{}] ({})".format(", ".join(f"{v:.6g}" for v in bounds), name)


def valid_mask(dataset: Any, data: np.ndarray, bands: list[int] | None = None,
               window: Window | None = None) -> np.ndarray:
    """(H, W) bool for ``data`` read from ``dataset``: valid in every band read.

    Invalid means what GDAL's masks say (nodata value, alpha band, internal mask) or, for
    float data, not finite (NaN without a nodata value, inf).
    """
    masks = dataset.read_masks(bands, window=window) if bands else dataset.read_masks(window=window)
    valid = np.all(masks > 0, axis=0)
    if np.issubdtype(data.dtype, np.floating):
        valid &= np.isfinite(data).all(axis=0)
    return valid


def on_grid(dataset: Any, grid: Grid, resampling: str) -> tuple[Any, bool]:
    """Return a reader of ``dataset`` on ``grid`` and whether it resamples.

    Identical grids are read directly (bit-exact). Otherwise a ``WarpedVRT`` warps on the
    fly; when the source has no nodata value an alpha band marks pixels the source does
    not cover, so they become masked rather than silently zero.
    """
    if Grid.of(dataset).same_as(grid):
        return dataset, False
    if (dataset.crs is None) != (grid.crs is None):
        raise Pix2PixError(
            "One raster has a CRS and the other has none, so they cannot be aligned. "
            "Assign the missing CRS (Raster › Projections › Assign Projection)."
        )
    options: dict[str, Any] = {
        "crs": grid.crs,
        "transform": grid.transform,
        "width": grid.width,
        "height": grid.height,
        "resampling": RESAMPLING[resampling],
    }
    if dataset.nodata is not None:
        options.update(src_nodata=dataset.nodata, nodata=dataset.nodata)
    else:
        options.update(add_alpha=True)
    return WarpedVRT(dataset, **options), True
