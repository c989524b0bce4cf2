"""ArcGIS Pro's "Export Tiles" statistics → this engine's normalisation.

Pro's *Export Training Data For Deep Learning* writes per-band Min, Max, Mean and StdDev
of all tiles into ``esri_model_definition.emd`` (``AllTilesStats`` for the input raster,
``AllTilesStats2`` for the additional raster) and a running-moments form of the input's
into ``esri_accumulated_stats.json`` (``BandStatsState``: Min, Max, M1 = mean, M2 = sum of
squared deviations, Num); see ``../shared/research/arcgis.md`` §1.2. arcgis.learn reads
the ``.emd`` ones, and so do we, falling back to ``BandStatsState`` for the input.

Which statistic becomes our range: the engine maps each band's robust range [p01, p99]
onto [-1, 1], so that one spike (a DSM's birds and pits, a hot pixel) does not squash the
rest of the histogram. Pro records no percentiles; the normal approximation
mean ± 2.326·std is exactly p01/p99 for a Gaussian band, and it is cut to [Min, Max] so it
never reaches past values that occur (for flat, bounded histograms such as 8-bit imagery
it then equals Min/Max, which is what arcgis.learn uses). Using Min/Max alone would let a
single outlier set the scale.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .dataset import Normalization
from .errors import Pix2PixError

EMD = "esri_model_definition.emd"
ACCUMULATED = "esri_accumulated_stats.json"
Z_99 = 2.3263478740408408  # standard normal quantile of 0.99


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8-sig"))  # Pro on Windows may write a BOM
    except (UnicodeDecodeError, ValueError) as exc:
        raise Pix2PixError(
            f"{path} is not valid JSON ({exc}). Re-export from ArcGIS Pro, or delete the file to have the "
            "statistics computed from the chips instead."
        ) from exc
    return value if isinstance(value, dict) else None


def _number(entry: dict[str, Any], *names: str) -> float | None:
    for name in names:
        value = entry.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def _band(entry: Any) -> dict[str, float] | None:
    """Min, max, mean, std of one band entry (``.emd`` or ``BandStatsState`` spelling); None if incomplete."""
    if not isinstance(entry, dict):
        return None
    minimum, maximum = _number(entry, "Min"), _number(entry, "Max")
    mean = _number(entry, "Mean", "M1")
    std = _number(entry, "StdDev")
    if std is None and _number(entry, "M2") is not None and (_number(entry, "Num") or 0) > 0:
        std = math.sqrt(max(_number(entry, "M2") or 0.0, 0.0) / (_number(entry, "Num") or 1.0))
    if None in (minimum, maximum, mean, std):
        return None
    return {"min": minimum, "max": maximum, "mean": mean, "std": std}


def _bands(entries: Any) -> list[dict[str, float]] | None:
    if not isinstance(entries, list) or not entries:
        return None
    bands = [_band(entry) for entry in entries]
    return None if any(b is None for b in bands) else bands  # type: ignore[return-value]


def normalization_from_pro(bands: list[dict[str, float]], source: str) -> Normalization:
    """[max(Min, mean − z·std), min(Max, mean + z·std)] per band: Pro's moments as a p01/p99 estimate."""
    low, high = [], []
    for band in bands:
        lo = max(band["min"], band["mean"] - Z_99 * band["std"])
        hi = min(band["max"], band["mean"] + Z_99 * band["std"])
        if hi <= lo:  # a constant band: centre it instead of dividing by zero
            lo, hi = lo - 0.5, hi + 0.5
        low.append(lo)
        high.append(hi)
    return Normalization(tuple(low), tuple(high), "percentile-clip",
                         f"{source}: mean ± {Z_99:.3f}·std within [Min, Max] (normal estimate of p01/p99)")


def pro_normalizations(root: Path, bands_a: int, bands_b: int) -> tuple[Normalization | None, Normalization | None,
                                                                         list[str]]:
    """Normalisations of the input and the target from Pro's side files in ``root``, where usable.

    Returns (input, target, notes); a role is None when Pro's files hold no usable
    statistics for it (then the caller computes percentiles from the chips), and the notes
    say which source each role got and why.
    """
    emd = _read_json(root / EMD) or {}
    accumulated = _read_json(root / ACCUMULATED) or {}
    notes = []
    mode = accumulated.get("MetaDataMode")
    if mode is not None and mode != "Export_Tiles":
        notes.append(f"{ACCUMULATED} says MetaDataMode {mode!r}, not 'Export_Tiles': this folder was not exported "
                     "for image translation; its images/ and images2/ chips are used as input and target anyway.")
    candidates = {
        "input": [(f"{EMD} AllTilesStats", emd.get("AllTilesStats")),
                  (f"{ACCUMULATED} BandStatsState", accumulated.get("BandStatsState"))],
        "target": [(f"{EMD} AllTilesStats2", emd.get("AllTilesStats2"))],
    }
    expected = {"input": bands_a, "target": bands_b}
    found: dict[str, Normalization | None] = {}
    for role, sources in candidates.items():
        found[role] = None
        for source, entries in sources:
            bands = _bands(entries)
            if bands is None:
                continue
            if len(bands) != expected[role]:
                notes.append(f"{source} has {len(bands)} band(s) but the {role} chips have {expected[role]}; "
                             "ignored.")
                continue
            found[role] = normalization_from_pro(bands, source)
            notes.append(f"Normalising the {role} with ArcGIS Pro's statistics from {source} (mean ± "
                         f"{Z_99:.2f}·std within [Min, Max]).")
            break
        if found[role] is None:
            notes.append(f"No usable ArcGIS Pro statistics for the {role}: its 1st–99th percentiles are computed "
                         "from a sample of the training chips.")
    return found["input"], found["target"], notes
