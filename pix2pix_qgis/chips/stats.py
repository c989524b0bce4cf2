"""Per-band statistics over valid pixels, accumulated chip by chip and merged for any subset.

Each chip keeps (count, mean, M2, min, max) per band plus a small random sample of its
valid pixels; merging uses Chan's parallel formula, so the mean and standard deviation are
exact and stable, and percentiles come from the pooled sample. This lets the export compute
statistics over the training chips only, after the spatial split is known, without a
second pass over the rasters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class BandStatsAccumulator:
    """Per-chip, per-band running statistics (count, mean, M2, min, max, pixel sample), merged on demand."""
    bands: int
    sample_per_chip: int
    rng: np.random.Generator
    counts: list[np.ndarray] = field(default_factory=list)
    means: list[np.ndarray] = field(default_factory=list)
    m2s: list[np.ndarray] = field(default_factory=list)
    mins: list[np.ndarray] = field(default_factory=list)
    maxs: list[np.ndarray] = field(default_factory=list)
    samples: list[list[np.ndarray]] = field(default_factory=list)

    def add(self, data: np.ndarray, valid: np.ndarray) -> None:
        """Record one chip: ``data`` is (bands, H, W), ``valid`` is (H, W) bool."""
        flat = data.reshape(self.bands, -1)
        if not valid.all():
            flat = flat[:, valid.ravel()]
        n = flat.shape[1]
        if n == 0:
            self.counts.append(np.zeros(self.bands))
            for store, fill in ((self.means, 0.0), (self.m2s, 0.0), (self.mins, np.inf), (self.maxs, -np.inf)):
                store.append(np.full(self.bands, fill))
            self.samples.append([np.empty(0, np.float32)] * self.bands)
            return
        mean = flat.mean(axis=1, dtype=np.float64)
        centred = flat - mean[:, None]
        self.counts.append(np.full(self.bands, float(n)))
        self.means.append(mean)
        self.m2s.append(np.einsum("ij,ij->i", centred, centred))
        self.mins.append(flat.min(axis=1).astype(np.float64))
        self.maxs.append(flat.max(axis=1).astype(np.float64))
        take = min(self.sample_per_chip, n)
        picked = flat[:, self.rng.choice(n, size=take, replace=False)] if take < n else flat
        self.samples.append(list(picked.astype(np.float32)))

    def summarize(self, chips: list[int]) -> list[dict[str, float | int | None]]:
        """Statistics per band over the given chip indices (empty bands report None)."""
        result: list[dict[str, float | int | None]] = []
        for band in range(self.bands):
            counts = np.array([self.counts[i][band] for i in chips])
            total = counts.sum()
            if total == 0:
                result.append({"band": band + 1, "count": 0, "min": None, "max": None,
                               "mean": None, "std": None, "p01": None, "p99": None})
                continue
            means = np.array([self.means[i][band] for i in chips])
            m2 = np.array([self.m2s[i][band] for i in chips])
            mean = float((counts * means).sum() / total)
            variance = float((m2 + counts * (means - mean) ** 2).sum() / total)
            pooled = np.concatenate([self.samples[i][band] for i in chips])
            p01, p99 = np.percentile(pooled, [1, 99])
            result.append({
                "band": band + 1,
                "count": int(total),
                "min": float(min(self.mins[i][band] for i in chips)),
                "max": float(max(self.maxs[i][band] for i in chips)),
                "mean": mean,
                "std": float(np.sqrt(max(variance, 0.0))),
                "p01": float(p01),
                "p99": float(p99),
            })
        return result
