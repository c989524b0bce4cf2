"""The Esri "Export Tiles" side files: written with our export, read from ArcGIS Pro's folders.

What Pro writes is pinned by the real files in ``tests/engine/fixtures/pro/`` (provenance in
their README): a Pro 3.3 *Export Tiles* export with an *Additional Input Raster*, and older
exports whose ``.emd`` is a template without statistics.

Writing (:func:`write_esri_files`): ``esri_accumulated_stats.json``, ``esri_model_definition.emd``
and ``map.txt`` with Pro 3.3's keys, spellings and layout, so arcgis.learn's ``prepare_data``
reads our export as it reads Pro's. Statistics cover every exported chip ("AllTilesStats"),
because arcgis.learn scales each chip, training or validation, by them.

Reading (:func:`pro_ranges`): Pro records per-band statistics of all tiles twice. The ``.emd``
has ``AllTilesStats`` (input) and ``AllTilesStats2`` (additional raster) with Min, Max, Mean and
StdDev. ``esri_accumulated_stats.json`` has ``BandStatsState`` / ``BandStatsState2`` with Min,
Max and the running moments M1 (mean), M2 (sum of squared deviations) and Num (pixels); there
Pro writes ``"Mean" : 0, "StdDev" : 0`` as placeholders, so the moments come from M1 and
√(M2/Num) and the placeholders are ignored. The range that normalises a band is Pro's
[Min, Max], the range arcgis.learn itself scales by (why not percentiles: BENCHMARKS.md,
"Normalising an ArcGIS Pro folder"). ``data.folder`` makes the normalisation of it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.documents import read_document

EMD = "esri_model_definition.emd"
ACCUMULATED = "esri_accumulated_stats.json"
MAP = "map.txt"
ESRI_FILES = (ACCUMULATED, EMD, MAP)

# arcgis.learn's Pix2Pix accepts only chips whose side is a multiple of this
# (arcgis/learn/models/_pix2pix.py:70 and :118 in arcgis 2.4.4).
ESRI_TILE_MULTIPLE = 256

# The .emd template strings Pro 3.3 keeps in an Export Tiles .emd (fixtures/pro/drawinggui_export_tiles_pro33).
_EMD_TEMPLATE = {
    "Framework": "e.g. TensorFlow or PyTorch",
    "ModelConfiguration": "e.g. UNet or FasterRCNN",
    "ModelType": "e.g. ObjectDetection or ImageClassification",
    "ModelFile": "e.g. ./trained.model",
    "Description": "e.g. which data model was trained on, when, by whom, mAP, etc",
}
_EMD_OPTIONAL = {
    "ExtractBands": "e.g. [0, 1, 2]",
    "DataRange": "e.g. [0.1, 1.0] (optional)",
    "ModelPadding": "e.g. 64 (optional)",
    "BatchSize": "e.g. 8 (optional)",
    "PerProcessGPUMemoryFraction": "e.g. 0.8 (optional)",
}
_WELL_KNOWN_KEY = "WellKnownBandNames (FYI, these band names can be used in ExtractBands)"
_WELL_KNOWN = ["Red", "Green", "Blue", "Infrared", "CoastalBlue", "Yellow", "RedEdge", "ShortWaveInfrared",
               "NearInfrared", "NearInfrared_1", "NearInfrared_2", "MidInfrared", "MidInfrared_1", "MidInfrared_2",
               "Thermal", "Thermal_1", "Thermal_2", "Panchromatic", "PseudoRed", "PseudoGreen", "PseudoBlue", "QA"]


def pro_json(value: Any) -> str:
    """JSON laid out as Pro writes it: two-space indent, ``"key" : value``, no final newline."""
    return json.dumps(value, indent=2, separators=(",", " : "), allow_nan=False)


def _plain(value: float | None) -> float | int | None:
    """Whole numbers as JSON integers, as Pro writes Min/Max of integer rasters (``"Max" : 255``)."""
    return int(value) if value is not None and float(value).is_integer() else value


def _band_names(count: int) -> list[str]:
    """Pro's names for unnamed bands: "" in a 3-band raster, else Band_1, Band_2, ….

    arcgis.learn treats a 3-band, 8-bit input as RGB only if every name is one of
    red/green/blue/r/g/b/"" (arcgis/learn/_data.py:2382-2385); "" keeps that.
    """
    return [""] * 3 if count == 3 else [f"Band_{i}" for i in range(1, count + 1)]


def _raster_props(count: int) -> dict[str, Any]:
    return {"RasterCount": 1, "SensorName": "Undefined", "BandNames": _band_names(count)}


def _cell(grid: dict[str, Any]) -> dict[str, Any]:
    crs = grid.get("crs") or ""
    if crs.upper().startswith("EPSG:") and crs[5:].isdigit():
        reference: dict[str, Any] = {"wkid": int(crs[5:]), "latestWkid": int(crs[5:])}
    else:
        reference = {"wkt": grid.get("crs_wkt") or ""}
    return {"x": grid["cell_size"][0], "y": grid["cell_size"][1], "spatialReference": reference}


def _all_tiles_stats(stats: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    return [{"BandName": name, "Min": _plain(s["min"]), "Max": _plain(s["max"]), "Mean": s["mean"],
             "StdDev": s["std"]} for s, name in zip(stats, names)]


def _band_stats_state(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pro's running-moments form: M1 = mean, M2 = Σ(x − mean)² = std²·Num, Num = valid pixels."""
    entries = []
    for s in stats:
        count = int(s["count"])
        m2 = None if s["std"] is None else s["std"] ** 2 * count
        entries.append({"Min": _plain(s["min"]), "Max": _plain(s["max"]), "Mean": s["mean"], "StdDev": s["std"],
                        "M1": s["mean"], "M2": m2, "Num": count})
    return entries


def _accumulated(tile: int, count: int, cell: dict[str, Any], mode: str, stats: list[list[dict[str, Any]]]
                 ) -> dict[str, Any]:
    """``esri_accumulated_stats.json`` of one export folder; ``stats`` per raster (input, then additional)."""
    second = len(stats) > 1
    return {
        "Version": 1,
        "NumBands": len(stats[0]),
        "TileSizeX": tile,
        "TileSizeY": tile,
        "NumClasses": 0,
        "NumTiles": count,
        "NumTilesAsDouble": count,
        "NextTileIndex": count,
        "OutputFeatures": True,  # what Pro 3.3 writes for Export Tiles
        "MetaDataMode": mode,
        "MinCellSize": cell,
        "MaxCellSize": cell,
        "FeatureStats": {"NumClasses": 0, "NumImagesTotal": 0, "NumFeaturesTotal": 0, "NumImagesPerClass": [],
                         "NumFeaturesPerClass": [],
                         "NumFeaturesPerImage": {"Min": 0, "Max": 0, "Mean": 0, "Sum": 0, "Count": 0},
                         "FeatureAreaPerClass": []},
        "InputRastersProps": _raster_props(len(stats[0])),
        **({"InputRastersProps2": _raster_props(len(stats[1]))} if second else {}),
        "BandStatsState": _band_stats_state(stats[0]),
        **({"BandStatsState2": _band_stats_state(stats[1])} if second else {}),
    }


def _definition(tile: int, cell: dict[str, Any], mode: str, stats: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """``esri_model_definition.emd`` of one export folder; ``stats`` per raster (input, then additional)."""
    second = len(stats) > 1
    return {
        **_EMD_TEMPLATE,
        "ImageHeight": tile,
        "ImageWidth": tile,
        **_EMD_OPTIONAL,
        "MetaDataMode": mode,
        "BlackenAroundFeature": False,
        "IsMultidimensional": False,
        "CropTileMode": "Fixed_Size",
        "ImageSpaceUsed": "MAP_SPACE",
        "MinCellSize": cell,
        "MaxCellSize": cell,
        "InputRastersProps": _raster_props(len(stats[0])),
        **({"InputRastersProps2": _raster_props(len(stats[1]))} if second else {}),
        "AllTilesStats": _all_tiles_stats(stats[0], _band_names(len(stats[0]))),
        **({"AllTilesStats2": _all_tiles_stats(stats[1], _band_names(len(stats[1])))} if second else {}),
        _WELL_KNOWN_KEY: _WELL_KNOWN,
    }


def write_esri_files(folder: Path, manifest: dict[str, Any], stats_a: list[dict[str, Any]],
                     stats_b: list[dict[str, Any]]) -> None:
    """Write Pro's side files for the chips listed in ``manifest``.

    ``stats_a`` / ``stats_b``: per-band count, min, max, mean, std over every exported chip
    (the manifest's own statistics cover the training chips only).
    """
    tile = manifest["tile_size"]
    names = [chip["name"] for chip in manifest["chips"]]
    cell = _cell(manifest["grid"])
    stats = [stats_a, stats_b]
    (folder / ACCUMULATED).write_text(pro_json(_accumulated(tile, len(names), cell, "Export_Tiles", stats)),
                                      encoding="ascii")
    (folder / EMD).write_text(pro_json(_definition(tile, cell, "Export_Tiles", stats)), encoding="ascii")
    # Pro 3.3: one space between the paths, a trailing space, Windows line ends.
    (folder / MAP).write_bytes("".join(f"images\\{n} images2\\{n} \r\n" for n in names).encode("ascii"))


def write_esri_domain_files(folder: Path, names: list[str], tile: int, grid: dict[str, Any],
                            stats: list[dict[str, Any]]) -> None:
    """Write one domain's side files of Esri's CycleGAN layout into ``folder`` (``A/`` or ``B/``).

    arcgis.learn takes a folder for CycleGAN when both ``A/`` and ``B/`` hold the three files
    (``_data.py``: ``_check_esri_files(path / "A") and _check_esri_files(path / "B")``) and
    scales each domain by the Min/Max of its ``.emd`` ``AllTilesStats`` (``_utils/cyclegan.py``
    ``_batch_stats_json``); it reads nothing else of them. The rest is Pro 3.3's Export Tiles
    layout with one raster: ``MetaDataMode`` "CycleGAN" (the tool's metadata format name, as
    "Export_Tiles" is for Export Tiles) and ``map.txt`` naming each chip once are inferred,
    not seen in a Pro CycleGAN export (none was found published).
    ``stats``: per-band count, min, max, mean, std over every chip of the domain.
    """
    cell = _cell(grid)
    (folder / ACCUMULATED).write_text(pro_json(_accumulated(tile, len(names), cell, "CycleGAN", [stats])),
                                      encoding="ascii")
    (folder / EMD).write_text(pro_json(_definition(tile, cell, "CycleGAN", [stats])), encoding="ascii")
    (folder / MAP).write_bytes("".join(f"images\\{n} \r\n" for n in names).encode("ascii"))


def arcgis_learn_caveats(tile: int, bands_a: int, bands_b: int) -> list[str]:
    """What arcgis.learn 2.4.4 will do with an export of this shape that differs from what we train."""
    caveats = []
    if tile % ESRI_TILE_MULTIPLE:
        caveats.append(
            f"Tile size {tile} is not a multiple of {ESRI_TILE_MULTIPLE}: arcgis.learn's prepare_data loads these "
            "chips, but its Pix2Pix(data) stops with 'Image chip sizes should be in multiples of 256'. Use a tile "
            f"size of {max(ESRI_TILE_MULTIPLE, tile // ESRI_TILE_MULTIPLE * ESRI_TILE_MULTIPLE)} to train there too."
        )
    if bands_a != bands_b:
        fewer, more = ("input", "target") if bands_a < bands_b else ("target", "input")
        caveats.append(
            f"The input has {bands_a} band(s) and the target {bands_b}: arcgis.learn repeats the last band of the "
            f"{fewer} until it has the {more}'s {max(bands_a, bands_b)}, and its Pix2Pix then predicts "
            f"{max(bands_a, bands_b)} bands"
            + (" (copies of one band)" if bands_b < bands_a else "")
            + ". This engine trains on the bands as they are."
        )
    return caveats


# --- reading a Pro folder ---------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    # Pro on Windows may write a byte-order mark; a band without statistics may read NaN (then unused).
    value = read_document(path, "statistics file", str(path), "Re-export from ArcGIS Pro, or delete the file to have "
                           "the statistics computed from the chips instead.", finite=False)
    return value if isinstance(value, dict) else None


def _number(entry: dict[str, Any], name: str) -> float | None:
    value = entry.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass(frozen=True)
class ProBand:
    """One band's statistics as Pro recorded them; ``mean``/``std`` are None when Pro wrote none."""

    minimum: float
    maximum: float
    mean: float | None
    std: float | None

    def describe(self) -> str:
        """The range and, when Pro wrote them, the moments, as the training log shows them."""
        moments = "" if self.mean is None or self.std is None else f" (mean {self.mean:.6g}, std {self.std:.6g})"
        return f"[{self.minimum:.6g}, {self.maximum:.6g}]{moments}"


def read_band(entry: Any) -> ProBand | str:
    """A band entry in ``.emd`` or ``BandStatsState`` spelling, or why it is unusable.

    With M1/M2/Num (``BandStatsState``) the moments are M1 and √(M2/Num), and the entry's
    Mean/StdDev — placeholders (0) in Pro's files — are ignored.
    """
    if not isinstance(entry, dict):
        return "an entry is not a JSON object"
    minimum, maximum = _number(entry, "Min"), _number(entry, "Max")
    if minimum is None or maximum is None:
        return "an entry lacks a numeric Min or Max"
    if maximum < minimum:
        return f"an entry has Max {maximum:g} below Min {minimum:g}"
    if any(key in entry for key in ("M1", "M2", "Num")):
        mean, m2, num = _number(entry, "M1"), _number(entry, "M2"), _number(entry, "Num")
        std = math.sqrt(max(m2, 0.0) / num) if m2 is not None and num else None
    else:
        mean, std = _number(entry, "Mean"), _number(entry, "StdDev")
    return ProBand(minimum, maximum, mean, std)


@dataclass(frozen=True)
class ProRange:
    """Per-band [low, high] taken from Pro's statistics, and where they came from (for the log and model.json)."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    source: str


def range_from_pro(bands: list[ProBand], source: str) -> ProRange:
    """Pro's [Min, Max] per band, the range arcgis.learn scales by; a constant band is widened by ±0.5."""
    low, high = [], []
    for band in bands:
        lo, hi = band.minimum, band.maximum
        if hi <= lo:  # a constant band: centre it instead of dividing by zero
            lo, hi = lo - 0.5, hi + 0.5
        low.append(lo)
        high.append(hi)
    return ProRange(tuple(low), tuple(high), f"ArcGIS Pro's Min/Max per band from {source}")


def _usable(entries: Any, expected: int) -> list[ProBand] | str:
    if entries is None:
        return "absent"
    if not isinstance(entries, list) or not entries:
        return "empty or not a list"
    bands = [read_band(entry) for entry in entries]
    for band in bands:
        if isinstance(band, str):
            return band
    if len(bands) != expected:
        return f"has {len(bands)} band(s) but the chips have {expected}"
    return bands  # type: ignore[return-value]


def pro_ranges(root: Path, bands_a: int, bands_b: int) -> tuple[ProRange | None, ProRange | None, list[str]]:
    """Ranges of the input and the target from Pro's side files in ``root``, where usable.

    Returns (input, target, notes); a role is None when Pro's files hold no usable
    statistics for it (then the caller computes percentiles from the chips). The notes say,
    per role, which file and key gave which values, or why each candidate was passed over.
    """
    emd_path, accumulated_path = root / EMD, root / ACCUMULATED
    emd = _read_json(emd_path) or {}
    accumulated = _read_json(accumulated_path) or {}
    notes = []
    mode = accumulated.get("MetaDataMode")
    if mode is not None and mode != "Export_Tiles":
        notes.append(f"{accumulated_path} says MetaDataMode {mode!r}, not 'Export_Tiles': this folder was not "
                     "exported for image translation; its images/ and images2/ chips are used as input and target "
                     "anyway.")
    candidates = {
        "input": [(emd_path, emd, "AllTilesStats"), (accumulated_path, accumulated, "BandStatsState")],
        "target": [(emd_path, emd, "AllTilesStats2"), (accumulated_path, accumulated, "BandStatsState2")],
    }
    input_range = _role_range("input", candidates["input"], bands_a, notes)
    target_range = _role_range("target", candidates["target"], bands_b, notes)
    return input_range, target_range, notes


def _role_range(role: str, sources: list[tuple[Path, dict[str, Any], str]], expected: int,
                notes: list[str]) -> ProRange | None:
    """The first usable statistics of ``sources`` (file, its content, key) as a range; says why in ``notes``."""
    passed_over = []
    for path, content, key in sources:
        if not path.is_file():
            passed_over.append(f"{path.name} is missing")
            continue
        bands = _usable(content.get(key), expected)
        if isinstance(bands, str):
            passed_over.append(f"{path.name} {key} {bands}")
            continue
        notes.append(f"Normalising the {role} with ArcGIS Pro's Min/Max per band from {path} {key}: "
                     + "; ".join(f"band {i} {band.describe()}" for i, band in enumerate(bands, 1)) + ".")
        return range_from_pro(bands, f"{path.name} {key}")
    notes.append(f"No usable ArcGIS Pro statistics for the {role} ({', '.join(passed_over)}): its "
                 "1st–99th percentiles are computed from a sample of the training chips.")
    return None


def domain_range(folder: Path, bands: int, role: str) -> tuple[ProRange | None, list[str]]:
    """The range of one domain of a CycleGAN export (``folder`` is its ``A/`` or ``B/``), where usable.

    The ``.emd`` ``AllTilesStats`` first (what arcgis.learn scales a CycleGAN domain by), then
    ``esri_accumulated_stats.json`` ``BandStatsState``. Returns (range or None, notes).
    """
    emd_path, accumulated_path = folder / EMD, folder / ACCUMULATED
    notes: list[str] = []
    sources = [(emd_path, _read_json(emd_path) or {}, "AllTilesStats"),
               (accumulated_path, _read_json(accumulated_path) or {}, "BandStatsState")]
    return _role_range(role, sources, bands, notes), notes
