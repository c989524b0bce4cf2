"""The Esri "Export Tiles" side files: written with our export, read from ArcGIS Pro's folders.

Writing: ``esri_accumulated_stats.json``, ``esri_model_definition.emd`` and ``map.txt``, so
arcgis.learn can train on our export too.

Reading: Pro's *Export Training Data For Deep Learning* writes per-band Min, Max, Mean and
StdDev of all tiles into ``esri_model_definition.emd`` (``AllTilesStats`` for the input
raster, ``AllTilesStats2`` for the additional raster) and a running-moments form of the
input's into ``esri_accumulated_stats.json`` (``BandStatsState``). :func:`pro_ranges` turns
them into per-band [low, high] ranges; ``data.folder`` makes the normalisation of them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract.errors import Pix2PixError


def _band_stats(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"BandIndex": s["band"] - 1, "Min": s["min"], "Max": s["max"], "Mean": s["mean"], "StdDev": s["std"]}
        for s in stats
    ]


def write_esri_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``esri_accumulated_stats.json``, ``esri_model_definition.emd`` and ``map.txt``."""
    tile = manifest["tile_size"]
    names = [chip["name"] for chip in manifest["chips"]]
    grid = manifest["grid"]
    cell = {"x": grid["cell_size"][0], "y": grid["cell_size"][1], "spatialReference": {"wkt": grid["crs_wkt"]}}
    accumulated = {
        "Version": "1.0",
        "MetaDataMode": "Export_Tiles",
        "NumTiles": len(names),
        "NumTilesAsDouble": float(len(names)),
        "NextTileIndex": len(names),
        "TileSizeX": tile,
        "TileSizeY": tile,
        "NumBands": len(manifest["a"]["bands"]),
        "NumClasses": 0,
        "OutputFeatures": 0,
        "MinCellSize": cell,
        "MaxCellSize": cell,
        "InputRastersProps": {
            "RasterCount": 2,
            "BandNames": [f"Band_{b}" for b in manifest["a"]["bands"]],
        },
        "BandStatsState": _band_stats(manifest["a"]["statistics"]),
    }
    (folder / "esri_accumulated_stats.json").write_text(json.dumps(accumulated, indent=2))
    definition = {
        "Framework": "arcgis.learn.models._inferencing",
        "ModelType": "ImageTranslation",
        "ImageHeight": tile,
        "ImageWidth": tile,
        "ExtractBands": [b - 1 for b in manifest["a"]["bands"]],
        "AllTilesStats": _band_stats(manifest["a"]["statistics"]),
        "AllTilesStats2": _band_stats(manifest["b"]["statistics"]),
    }
    (folder / "esri_model_definition.emd").write_text(json.dumps(definition, indent=2))
    lines = [f"images\\{name} images2\\{name}" for name in names]
    (folder / "map.txt").write_text("\n".join(lines) + ("\n" if lines else ""))


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
    if minimum is None or maximum is None or mean is None or std is None:
        return None
    return {"min": minimum, "max": maximum, "mean": mean, "std": std}


def _bands(entries: Any) -> list[dict[str, float]] | None:
    if not isinstance(entries, list) or not entries:
        return None
    bands = [_band(entry) for entry in entries]
    return None if any(b is None for b in bands) else bands  # type: ignore[return-value]


@dataclass(frozen=True)
class ProRange:
    """Per-band [low, high] taken from Pro's statistics, and where they came from (for the log and model.json)."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    source: str


def range_from_pro(bands: list[dict[str, float]], source: str) -> ProRange:
    """[max(Min, mean − z·std), min(Max, mean + z·std)] per band: Pro's moments as a p01/p99 estimate."""
    low, high = [], []
    for band in bands:
        lo = max(band["min"], band["mean"] - Z_99 * band["std"])
        hi = min(band["max"], band["mean"] + Z_99 * band["std"])
        if hi <= lo:  # a constant band: centre it instead of dividing by zero
            lo, hi = lo - 0.5, hi + 0.5
        low.append(lo)
        high.append(hi)
    return ProRange(tuple(low), tuple(high),
                    f"{source}: mean ± {Z_99:.3f}·std within [Min, Max] (normal estimate of p01/p99)")


def pro_ranges(root: Path, bands_a: int, bands_b: int) -> tuple[ProRange | None, ProRange | None, list[str]]:
    """Ranges of the input and the target from Pro's side files in ``root``, where usable.

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
    found: dict[str, ProRange | None] = {}
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
            found[role] = range_from_pro(bands, source)
            notes.append(f"Normalising the {role} with ArcGIS Pro's statistics from {source} (mean ± "
                         f"{Z_99:.2f}·std within [Min, Max]).")
            break
        if found[role] is None:
            notes.append(f"No usable ArcGIS Pro statistics for the {role}: its 1st–99th percentiles are computed "
                         "from a sample of the training chips.")
    return found["input"], found["target"], notes
