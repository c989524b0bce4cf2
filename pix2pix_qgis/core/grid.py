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
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from ..contract.errors import Pix2PixError
from ..contract.tables import EXPORT
from .paths import check_raster_node

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
    """A pixel grid without rotation: CRS, affine transform (pixel → map) and size in pixels."""

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
        """The smallest window of whole pixels covering ``bounds``, clipped to the grid.

        Any grid without rotation: north-up, south-up (a positive pixel height, which GDAL
        allows) or with columns running west. The others are read as their north-up mirror
        image, so a north-up grid's windows are exactly what they always were.
        """
        flip_cols, flip_rows = self.transform.a < 0, self.transform.e > 0
        north_up = self.transform
        if flip_cols:
            north_up = north_up * Affine.translation(self.width, 0) * Affine.scale(-1, 1)
        if flip_rows:
            north_up = north_up * Affine.translation(0, self.height) * Affine.scale(1, -1)
        window = from_bounds(*bounds, transform=north_up)
        window = window.round_offsets(op="floor").round_lengths(op="ceil")
        col0 = max(0, int(window.col_off))
        row0 = max(0, int(window.row_off))
        col1 = min(self.width, int(math.ceil(window.col_off + window.width - 1e-9)))
        row1 = min(self.height, int(math.ceil(window.row_off + window.height - 1e-9)))
        if flip_cols:
            col0, col1 = self.width - col1, self.width - col0
        if flip_rows:
            row0, row1 = self.height - row1, self.height - row0
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


def open_raster(name: str | Path, role: str) -> Any:
    """Open a raster for reading, with errors that name its role (input A / target B) and the fix.

    ``name`` goes to GDAL as it is, so ``/vsizip/``, ``/vsicurl/`` and subdataset names
    (``NETCDF:"f.nc":var``, ``GTIFF_DIR:2:f.tif``) work or fail with GDAL's reason; only a
    plain path that is absent is reported as missing. Refused up front, before any pixel is
    read: a rotated grid, no georeferencing, complex pixels, and a VRT whose sources are gone.
    """
    name = os.fspath(name)
    check_raster_node(name, f"{role} raster")
    try:
        dataset = rasterio.open(name)
    except rasterio.errors.RasterioIOError as exc:
        raise Pix2PixError(_unopenable(name, role, exc)) from exc
    try:
        _check_readable(dataset, name, role)
    except BaseException:
        dataset.close()
        raise
    return dataset


def _unopenable(name: str, role: str, exc: Exception) -> str:
    long_parts = [part for part in Path(name).parts if len(os.fsencode(part)) > 255]
    if long_parts:
        return (f"The {role} raster {name} cannot exist: its name {long_parts[0][:40]}… is "
                f"{len(os.fsencode(long_parts[0]))} bytes long, more than a file name can be (255). Check the path.")
    plain = not name.startswith("/vsi") and ":" not in name  # else a GDAL name: GDAL's reason says more
    if plain and not os.path.lexists(name):
        return f"The {role} raster {name} does not exist. Check the path."
    return f"The {role} raster {name} cannot be read as a raster: {exc}"


def _check_readable(dataset: Any, name: str, role: str) -> None:
    transform = dataset.transform
    if transform.b != 0 or transform.d != 0:
        raise Pix2PixError(
            f"The {role} raster {name} has a rotated geotransform; chips need a grid without rotation. "
            "Warp it first (Raster › Projections › Warp)."
        )
    if transform.is_identity and dataset.crs is None:
        raise Pix2PixError(
            f"The {role} raster {name} has no georeferencing. Georeference it or assign a CRS first."
        )
    complex_types = sorted({t for t in dataset.dtypes if t.startswith("complex")})
    if complex_types:
        raise Pix2PixError(
            f"The {role} raster {name} has complex pixels ({', '.join(complex_types)}); the model needs real "
            "numbers, and reading them as real would silently drop the imaginary part. Make real bands first: the "
            "amplitude (e.g. Raster Calculator abs(), or gdal_translate through a VRT 'mod' pixel function), or the "
            "real and imaginary parts as separate bands, and use that raster."
        )
    sources = [f for f in dataset.files[1:] if not f.startswith("/vsi") and not os.path.lexists(f)]
    if sources:
        raise Pix2PixError(
            f"The {role} raster {name} refers to {len(sources)} file(s) that do not exist: "
            f"{', '.join(sources[:5])}. Restore them, or rebuild {Path(name).name} from files that exist."
        )
    for source in dataset.files[1:]:  # a VRT's source that is a FIFO or device would block or never end
        check_raster_node(source, f"source of the {role} raster {name},")


def bounds_in(bounds: Bounds, src_crs: CRS | None, dst_crs: CRS | None) -> Bounds:
    """``bounds`` moved from ``src_crs`` to ``dst_crs`` (densified edges); unchanged if either CRS is missing."""
    if src_crs is None or dst_crs is None or src_crs == dst_crs:
        return bounds
    return transform_bounds(src_crs, dst_crs, *bounds, densify_pts=21)


def parse_crs(text: str, what: str) -> CRS:
    """A CRS from a user's text (``EPSG:4326``, WKT, PROJ), or an error naming ``what`` it is and the fix."""
    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise Pix2PixError(f"The {what} {text!r} is not a CRS that PROJ knows ({exc}). Give an authority code such "
                           "as EPSG:4326, or a WKT or PROJ definition.") from exc


def extent_in(extent: Bounds, extent_crs: str | None, crs: CRS | None) -> Bounds:
    """A user's extent (in ``extent_crs``, e.g. "EPSG:4326"; None: already in ``crs``) in ``crs``."""
    if not extent_crs:
        return extent
    source = parse_crs(extent_crs, "extent CRS")
    if crs is None:
        raise Pix2PixError(
            f"The raster has no CRS, so an extent given in {extent_crs} cannot be placed on it. Give the extent in "
            "the raster's own coordinates (without an extent CRS), or assign the raster a CRS first "
            "(Raster › Projections › Assign Projection)."
        )
    try:
        bounds = bounds_in(extent, source, crs)
    except (CRSError, CPLE_BaseError) as exc:
        raise Pix2PixError(f"The extent {list(extent)} in {extent_crs} cannot be expressed in the raster's CRS "
                           f"({exc}). Give an extent inside the area where both CRSs are defined.") from exc
    if not all(math.isfinite(v) for v in bounds):
        raise Pix2PixError(f"The extent {list(extent)} in {extent_crs} lies outside the area where the raster's CRS "
                           "is defined. Give an extent over the raster.")
    return bounds


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
