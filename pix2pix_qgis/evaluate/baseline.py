"""The yardstick a translation model must beat: a per-pixel linear colour regression from A to B.

Each band of B is fitted by least squares as a linear function of A's bands plus a
constant, over every valid pixel of a training area. It sees one pixel at a time, so
whatever a model gains over it comes from context (texture, shape, neighbourhood), which
is what an image-to-image network is for. Arrays are (C, H, W) in each raster's own units.
"""

from __future__ import annotations

import numpy as np


def _design(a: np.ndarray) -> np.ndarray:
    """(C_A, H, W) → (H·W, C_A + 1): each pixel's bands and a 1."""
    pixels = a.reshape(a.shape[0], -1).T.astype(np.float64)
    return np.concatenate([pixels, np.ones((pixels.shape[0], 1))], axis=1)


def fit_linear(a: np.ndarray, b: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Least-squares coefficients (C_A + 1, C_B) from ``a`` (C_A, H, W) to ``b`` (C_B, H, W) over ``valid`` (H, W)."""
    design = _design(a)
    targets = b.reshape(b.shape[0], -1).T.astype(np.float64)
    if valid is not None:
        keep = np.asarray(valid, bool).ravel()
        design, targets = design[keep], targets[keep]
    coefficients, *_ = np.linalg.lstsq(design, targets, rcond=None)
    return coefficients


def apply_linear(coefficients: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The regression's prediction (C_B, H, W), float64, of ``a`` (C_A, H, W)."""
    return (_design(a) @ coefficients).T.reshape(coefficients.shape[1], *a.shape[1:])
