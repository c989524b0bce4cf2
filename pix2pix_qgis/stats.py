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
        count = np.zeros(self.bands)
        mean = np.zeros(self.bands)
        m2 = np.zeros(self.bands)
        low = np.full(self.bands, np.inf)
        high = np.full(self.bands, -np.inf)
        sample: list[np.ndarray] = []
        n_valid = int(valid.sum())
        pick = None
        if n_valid:
            take = min(self.sample_per_chip, n_valid)
            pick = self.rng.choice(n_valid, size=take, replace=False) if take < n_valid else slice(None)
        for band in range(self.bands):
            values = data[band][valid].astype(np.float64)
            if values.size:
                count[band] = values.size
                mean[band] = values.mean()
                m2[band] = ((values - mean[band]) ** 2).sum()
                low[band], high[band] = values.min(), values.max()
                sample.append(values[pick].astype(np.float32))
            else:
                sample.append(np.empty(0, np.float32))
        self.counts.append(count)
        self.means.append(mean)
        self.m2s.append(m2)
        self.mins.append(low)
        self.maxs.append(high)
        self.samples.append(sample)

    def summarize(self, chips: list[int]) -> list[dict[str, float | int | None]]:
        """Statistics per band over the given chip indices (empty bands report None)."""
        result = []
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
