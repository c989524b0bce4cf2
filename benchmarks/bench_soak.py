"""Soak: export → brief training → translation, many times in one process; memory and open files must stay flat.

    .venv/bin/python benchmarks/bench_soak.py [--iterations 20] [--size 384] [--tile 64]

In-process on purpose (the Python API, as a notebook or a long-lived service uses it): a
subprocess per run would start from a clean slate every time and hide any leak. Each
iteration exports chips from the bundled relief → imagery sample (``size``² px), trains one
epoch (ngf = ndf = 8) into a new model, translates the relief with it, then deletes the
outputs. After each iteration (and a ``gc.collect``) it records the resident set size
(``VmRSS``), the open file descriptors (``/proc/self/fd``: files, GDAL datasets, lock files)
and the live threads (reader and writer pools). The first iteration is a warm-up (lazy imports, allocator
pools, GDAL's block cache); the verdict compares iterations 2 and N and fits a slope over
them. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, today, upsampled_pair  # noqa: E402

from pix2pix_qgis.chips.export import export_chips
from pix2pix_qgis.chips.spec import ChipSpec
from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.train.config import TrainConfig
from pix2pix_qgis.train.loop import train


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def one_iteration(a: Path, b: Path, work: Path, tile: int) -> dict[str, float]:
    started = time.perf_counter()
    chips = work / "chips"
    export_chips(a, b, chips, ChipSpec(tile_size=tile, stride=tile, validation=0.1))
    exported = time.perf_counter()
    model = work / "model.p2p"
    train(chips, model, TrainConfig(epochs=1, ngf=8, ndf=8, device="cpu", preview_chips=1))
    trained = time.perf_counter()
    translate_raster(a, model, work / "out.tif", TranslateSpec(device="cpu"))
    translated = time.perf_counter()
    for path in work.iterdir():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return {"export_s": exported - started, "train_s": trained - exported, "translate_s": translated - trained}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--tile", type=int, default=64)
    args = parser.parse_args()
    a, b = upsampled_pair(args.size)
    rows = []
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        work = Path(folder)
        for index in range(1, args.iterations + 1):
            times = one_iteration(a, b, work, args.tile)
            gc.collect()
            rows.append({"iteration": index, "rss_mib": round(rss_mib(), 1), "open_fds": open_fds(),
                         "threads": threading.active_count(), **{k: round(v, 2) for k, v in times.items()}})
            print(json.dumps(rows[-1]), flush=True)
    steady = rows[1:]
    x = np.array([row["iteration"] for row in steady], dtype=float)
    slope = float(np.polyfit(x, [row["rss_mib"] for row in steady], 1)[0]) if len(steady) > 1 else 0.0
    summary = {
        "date": today(), "machine": machine(), "iterations": args.iterations, "size": args.size, "tile": args.tile,
        "rss_mib_first": rows[0]["rss_mib"], "rss_mib_second": steady[0]["rss_mib"] if steady else None,
        "rss_mib_last": rows[-1]["rss_mib"], "rss_mib_max": max(row["rss_mib"] for row in rows),
        "rss_slope_mib_per_iteration": round(slope, 3),
        "open_fds": sorted({row["open_fds"] for row in rows}), "threads": sorted({row["threads"] for row in rows}),
        "median_iteration_s": round(float(np.median([r["export_s"] + r["train_s"] + r["translate_s"]
                                                     for r in rows])), 2),
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
