"""Per-band linear maps between raster units and the networks' [-1, 1] (:class:`Normalization`).

Each band is mapped from its robust range [p01, p99] onto [-1, 1] and clipped, so a few
outliers do not squash the rest of the histogram into a sliver of the Tanh range; the model
can therefore not produce target values outside [p01, p99] of the training target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..contract.errors import Pix2PixError

NORMALIZATION_METHODS = ("percentile-clip", "fixed-range")


@dataclass(frozen=True)
class Normalization:
    """Per-band linear map of [low, high] (target or input units) onto [-1, 1], clipped.

    ``method`` says what [low, high] is: the robust range [p01, p99] of the training data
    ("percentile-clip", possibly estimated, see ``source``) or a fixed range such as the
    reference pix2pix's [0, 255] ("fixed-range"). The map itself is the same for both.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    method: str = "percentile-clip"
    source: str | None = None  # where low/high came from, recorded in model.json

    @classmethod
    def from_statistics(cls, statistics: Sequence[dict[str, Any]], role: str) -> Normalization:
        """The [p01, p99] map of each band's statistics; a band with no valid pixel is an error naming ``role``."""
        low, high = [], []
        for band in statistics:
            if band.get("p01") is None or band.get("p99") is None:
                raise Pix2PixError(
                    f"Band {band.get('band')} of the {role} has no valid pixel in the training chips, so it "
                    "cannot be normalised. Check its nodata value, or export without that band."
                )
            lo, hi = float(band["p01"]), float(band["p99"])
            if hi <= lo:  # a constant band: centre it instead of dividing by zero
                lo, hi = lo - 0.5, hi + 0.5
            low.append(lo)
            high.append(hi)
        return cls(tuple(low), tuple(high))

    @property
    def bands(self) -> int:
        """Number of bands the map covers."""
        return len(self.low)

    def _scale(self, like: Any) -> tuple[Any, Any]:
        low = np.asarray(self.low, dtype=np.float64)
        span = np.asarray(self.high, dtype=np.float64) - low
        if isinstance(like, torch.Tensor):
            shape = (-1, 1, 1)
            return (torch.as_tensor(low, dtype=like.dtype, device=like.device).view(shape),
                    torch.as_tensor(span, dtype=like.dtype, device=like.device).view(shape))
        return low[:, None, None], span[:, None, None]

    def apply(self, data: np.ndarray) -> np.ndarray:
        """(C, H, W) in source units → float32 in [-1, 1]."""
        low, span = self._scale(data)
        return np.clip((data - low) / span * 2.0 - 1.0, -1.0, 1.0).astype(np.float32)

    def invert(self, data: Any) -> Any:
        """(…, C, H, W) in [-1, 1] (numpy or torch) → source units."""
        low, span = self._scale(data)
        return (data + 1.0) * 0.5 * span + low

    def to_dict(self) -> dict[str, Any]:
        """The map as written in ``model.json`` (method, low, high, target range, source)."""
        data: dict[str, Any] = {"method": self.method}
        if self.method == "percentile-clip":
            data["percentiles"] = [1, 99]
        data.update({"low": list(self.low), "high": list(self.high), "to": [-1.0, 1.0]})
        if self.source:
            data["source"] = self.source
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        """Read the map back from its ``to_dict`` form; an unknown method is an error that says to update."""
        if data.get("method") not in NORMALIZATION_METHODS or len(data.get("low", [])) != len(data.get("high", [])):
            raise Pix2PixError(f"Normalisation {data!r} is not understood by this engine; update the plugin.")
        return cls(tuple(float(v) for v in data["low"]), tuple(float(v) for v in data["high"]), data["method"],
                   data.get("source"))
