"""The Esri "Export Tiles" side files, so arcgis.learn can train on our export too.

Field names follow what ArcGIS Pro writes as far as it is documented
(``../shared/research/arcgis.md`` §1.2); arcgis.learn itself only needs ``images/``,
``images2/`` and ``MetaDataMode == "Export_Tiles"`` to recognise a Pix2Pix dataset, and
reads per-band Min/Max/Mean/StdDev from the ``.emd``'s ``AllTilesStats``/``AllTilesStats2``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
