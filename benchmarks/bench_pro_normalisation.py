"""Normalising an ArcGIS Pro folder: Pro's Min/Max against percentiles of the chips, on held-out regions.

    .venv/bin/python benchmarks/bench_pro_normalisation.py [--epochs 15] [--ngf 16] [--work DIR]

About two hours on the 2-core development machine. ``--work DIR`` keeps the working folder,
so a stopped run continues where it was: a finished model is reused and a training with a
checkpoint resumes from it (to the step, with the same result as an unbroken run).

The training region of the relief → imagery pair (Europe, North Africa, Middle East) is
exported, then laid out twice as ArcGIS Pro writes an Export Tiles folder (no chips.json):

- ``pro_min_max``: Pro's placeholder case — the ``.emd`` is Pro's template without
  statistics and ``BandStatsState`` / ``BandStatsState2`` carry ``"Mean" : 0, "StdDev" : 0``
  beside the real Min, Max, M1, M2, Num. The engine normalises each band by [Min, Max].
- ``chip_percentiles``: the same chips without Pro's side files. The engine normalises each
  band by the 1st–99th percentiles of a sample of the training chips.

Both train with the same seed, settings and chips (the same seeded hold-out), then translate
two held-out regions (Asia, the eastern neighbour; North America) with ``translate`` defaults,
scored with ``evaluate`` against the real imagery (8-bit, data range 255).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import HELD_OUT, TRAIN_WINDOW, write_pair  # noqa: E402
from common import machine, today  # noqa: E402

from pix2pix_qgis import ChipSpec, Progress, export_chips  # noqa: E402
from pix2pix_qgis.chips.esri import ACCUMULATED, EMD, pro_json  # noqa: E402
from pix2pix_qgis.data.folder import open_chips  # noqa: E402
from pix2pix_qgis.evaluate.rasters import evaluate_rasters  # noqa: E402
from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster  # noqa: E402
from pix2pix_qgis.model.checkpoint import checkpoint_path  # noqa: E402
from pix2pix_qgis.model.package import read_package  # noqa: E402
from pix2pix_qgis.train.config import TrainConfig  # noqa: E402
from pix2pix_qgis.train.loop import train  # noqa: E402

PRO_TEMPLATE_EMD = Path(__file__).resolve().parents[1] / "tests/engine/fixtures/pro/daremitsu_classified_tiles" / EMD


def pro_layouts(chips: Path, work: Path) -> dict[str, Path]:
    """The two Pro-style folders of the same chips (see the module docstring)."""
    folders = {name: work / name for name in ("pro_min_max", "chip_percentiles")}
    if all(folder.is_dir() for folder in folders.values()):
        return folders  # a kept working folder (--work): the same chips and side files as before
    for folder in folders.values():
        for sub in ("images", "images2"):
            shutil.copytree(chips / sub, folder / sub)
    accumulated = json.loads((chips / ACCUMULATED).read_text())
    for key in ("BandStatsState", "BandStatsState2"):
        for entry in accumulated[key]:
            entry["Mean"], entry["StdDev"] = 0, 0  # Pro's placeholders
    (folders["pro_min_max"] / ACCUMULATED).write_text(pro_json(accumulated))
    shutil.copyfile(PRO_TEMPLATE_EMD, folders["pro_min_max"] / EMD)
    shutil.copyfile(chips / "map.txt", folders["pro_min_max"] / "map.txt")
    return folders


def run(epochs: int, ngf: int, batch: int, tile: int, stride: int, work: Path) -> dict[str, Any]:
    if not (work / "chips").is_dir():
        relief, imagery = write_pair(work, TRAIN_WINDOW, "train")
        export_chips(relief, imagery, work / "chips", ChipSpec(tile_size=tile, stride=stride, validation=0))
    held_out = {name: write_pair(work, window, name) for name, window in HELD_OUT.items()}
    results: dict[str, Any] = {}
    for name, folder in pro_layouts(work / "chips", work).items():
        config = TrainConfig(epochs=epochs, ngf=ngf, ndf=ngf, batch_size=batch, seed=0, validation=0.1)
        model = work / f"{name}.p2p"
        started = time.perf_counter()
        if not model.exists():
            train(folder, model, config, Progress(), resume=checkpoint_path(model).exists())
        card, _ = read_package(model)
        opened = open_chips(folder, config.validation, config.seed)
        entry: dict[str, Any] = {
            "train_seconds_this_run": round(time.perf_counter() - started, 1),
            "chips": [len(opened.train), len(opened.validation)],
            "normalization": {role: {"method": side.normalization.method, "low": list(side.normalization.low),
                                     "high": list(side.normalization.high)}
                              for role, side in (("input", card.input), ("output", card.output))},
        }
        for region, (a, b) in held_out.items():
            prediction = work / f"{name}_{region}.tif"
            translate_raster(a, work / f"{name}.p2p", prediction, TranslateSpec(device="cpu"))
            metrics = evaluate_rasters(prediction, b)
            entry[region] = {key: round(metrics[key], 3) for key in ("mae", "rmse", "psnr", "ssim", "bias")}
        results[name] = entry
    return {"chips": {"tile": tile, "stride": stride},
            "config": {"epochs": epochs, "ngf": ngf, "ndf": ngf, "batch_size": batch, "seed": 0,
                       "validation": 0.1}, **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--stride", type=int, default=64)
    parser.add_argument("--work", type=Path, help="working folder to keep (and to continue a stopped run in)")
    args = parser.parse_args()
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        result = run(args.epochs, args.ngf, args.batch_size, args.tile, args.stride, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-pro-") as tmp:
            result = run(args.epochs, args.ngf, args.batch_size, args.tile, args.stride, Path(tmp))
    print(json.dumps({"benchmark": "pro_normalisation", "machine": machine(), "date": today(),
                      "command": " ".join([".venv/bin/python", *sys.argv]), **result}, indent=1))


if __name__ == "__main__":
    main()
