"""Training: loop overhead against bare forward+backward, and held-out quality on real data.

    .venv/bin/python benchmarks/bench_training.py throughput [--epochs 6] [--ngf 32]
    .venv/bin/python benchmarks/bench_training.py real [--epochs 30] [--ngf 32]

throughput: ``train`` on 128 px chips of the bundled relief → imagery sample, samples/s of
each epoch's training steps (data loading, augmentation, masking, progress included;
validation, checkpoint and package writing excluded: ``train_call_seconds`` has the whole
calls), against the textbook pix2pix step (G forward, D on fake and real, G loss, two Adam
steps) of the same networks on random in-memory tensors of the same batch size. The two
alternate epoch by epoch in one process (``train`` resumes its checkpoint each time), so
machine noise hits both. Medians; the first epoch of each is a warm-up and is dropped.

real: train on one region of the relief → imagery pair (Europe, North Africa, Middle East),
then predict two held-out regions (the neighbouring Asia, and North America) tile by tile
(non-overlapping 128 px tiles) and compare with the imagery there: MAE, RMSE, PSNR and
SSIM with data range 255 (8-bit), against a per-pixel linear colour regression (least
squares from A's 3 bands + 1 to each B band) fitted on the training region.
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
import torch.nn.functional as F
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, today  # noqa: E402

from pix2pix_qgis import ChipSpec, Progress, export_chips  # noqa: E402
from pix2pix_qgis.data.folder import open_chips
from pix2pix_qgis.evaluate.metrics import compute_metrics
from pix2pix_qgis.model.networks import GeneratorSpec, build_discriminator, build_generator
from pix2pix_qgis.model.package import load_model, predict, read_package
from pix2pix_qgis.sample import DEMO_WINDOW, basemap_file, write_window
from pix2pix_qgis.train.config import TrainConfig, choose_depth
from pix2pix_qgis.train.loop import train

TRAIN_WINDOW = DEMO_WINDOW  # Europe, North Africa, Middle East
HELD_OUT = {  # same size and latitudes as the training region, no pixel shared with it
    "asia": Window(col_off=3424, row_off=450, width=1024, height=768),  # 48°E–117°E: the neighbour to the east
    "north_america": Window(col_off=768, row_off=450, width=1024, height=768),  # 129°W–61°W: another continent
}


def write_pair(folder: Path, window: Window, name: str) -> tuple[Path, Path]:
    return (write_window(basemap_file("etopo1.jpg"), folder / f"{name}_relief.tif", window),
            write_window(basemap_file("bmng.jpg"), folder / f"{name}_imagery.tif", window))


def bare_epoch(spec: GeneratorSpec, ndf: int, batch: int, steps: int, size: int) -> float:
    """Seconds for ``steps`` textbook pix2pix steps of fresh networks on random tensors."""
    generator = build_generator(spec, torch.Generator().manual_seed(0))
    discriminator = build_discriminator(spec.in_channels + spec.out_channels, ndf,
                                        generator=torch.Generator().manual_seed(1))
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    a = torch.rand(batch, spec.in_channels, size, size) * 2 - 1
    b = torch.rand(batch, spec.out_channels, size, size) * 2 - 1

    def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))

    start = time.perf_counter()
    for _ in range(steps):
        fake = generator(a)
        discriminator.requires_grad_(True)
        opt_d.zero_grad()
        loss_d = 0.5 * (bce(discriminator(torch.cat([a, fake.detach()], 1)), False)
                        + bce(discriminator(torch.cat([a, b], 1)), True))
        loss_d.backward()
        opt_d.step()
        discriminator.requires_grad_(False)
        opt_g.zero_grad()
        loss_g = bce(discriminator(torch.cat([a, fake], 1)), True) + 100 * F.l1_loss(fake, b)
        loss_g.backward()
        opt_g.step()
    return time.perf_counter() - start


def throughput(epochs: int, ngf: int, batch: int, tile: int, stride: int, work: Path) -> dict[str, Any]:
    """Alternate one bare epoch and one epoch of ``train`` (resumed), so machine noise hits both."""
    relief, imagery = write_pair(work, TRAIN_WINDOW, "train")
    chips = work / "chips"
    export_chips(relief, imagery, chips, ChipSpec(tile_size=tile, stride=stride, validation=0.1))
    opened = open_chips(chips)
    spec = GeneratorSpec(3, 3, choose_depth(TrainConfig(), tile), ngf)
    steps = -(-len(opened.train) // batch)
    samples = len(opened.train)
    bare, loop, runs = [], [], []
    for epoch in range(1, epochs + 1):
        bare.append(samples / bare_epoch(spec, ngf, batch, steps, tile))
        config = TrainConfig(epochs=epoch, epochs_decay=0, ngf=ngf, ndf=ngf, batch_size=batch, seed=0)
        started = time.perf_counter()
        result = train(chips, work / "model.p2p", config, Progress(), resume=epoch > 1)
        runs.append(time.perf_counter() - started)
        loop.append(read_package(work / "model.p2p")[0].metrics.history[-1]["samples_per_s"])
    loop_median, bare_median = statistics.median(loop[1:]), statistics.median(bare[1:])
    return {
        "chips": {"train": samples, "validation": len(opened.validation), "tile": tile, "stride": stride,
                  "batch": batch, "steps_per_epoch": steps},
        "network": {"depth": spec.depth, "ngf": ngf, "ndf": ngf, "generator_parameters": result["parameters"]},
        "train_loop_samples_per_s": [round(v, 2) for v in loop],
        "bare_samples_per_s": [round(v, 2) for v in bare],
        "train_loop_median": round(loop_median, 2),
        "bare_median": round(bare_median, 2),
        "overhead_percent": round((bare_median / loop_median - 1) * 100, 1),
        "train_call_seconds": [round(v, 2) for v in runs],
        "torch_threads": torch.get_num_threads(),
    }


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def linear_colour_regression(a_train: np.ndarray, b_train: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (4, C_b) mapping [A bands, 1] to each B band, per pixel."""
    design = np.concatenate([a_train.reshape(3, -1).T.astype(np.float64), np.ones((a_train[0].size, 1))], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, b_train.reshape(b_train.shape[0], -1).T.astype(np.float64), rcond=None)
    return coefficients


def apply_regression(coefficients: np.ndarray, a: np.ndarray) -> np.ndarray:
    design = np.concatenate([a.reshape(3, -1).T.astype(np.float64), np.ones((a[0].size, 1))], axis=1)
    return np.clip(design @ coefficients, 0, 255).T.reshape(-1, *a.shape[1:])


def predict_tiles(model_path: Path, a: np.ndarray, tile: int) -> np.ndarray:
    """The model's prediction of a whole array, in non-overlapping tiles (sides must be multiples of tile)."""
    generator, card = load_model(model_path)
    norm_in, norm_out = card.input.normalization, card.output.normalization
    out = np.zeros((card.generator.out_channels, *a.shape[1:]), np.float32)
    for row in range(0, a.shape[1], tile):
        for col in range(0, a.shape[2], tile):
            x = torch.from_numpy(norm_in.apply(a[:, row:row + tile, col:col + tile].astype(np.float32)))[None]
            out[:, row:row + tile, col:col + tile] = predict(generator, x, norm_out)[0].numpy()
    return out


def summary(metrics: dict[str, Any]) -> dict[str, float]:
    return {key: round(metrics[key], 4) for key in ("mae", "rmse", "psnr", "ssim", "bias", "r2")}


def real(epochs: int, ngf: int, batch: int, tile: int, stride: int, work: Path, keep: Path | None) -> dict[str, Any]:
    relief, imagery = write_pair(work, TRAIN_WINDOW, "train")
    chips = work / "chips"
    export_chips(relief, imagery, chips, ChipSpec(tile_size=tile, stride=stride, validation=0.1, seed=0))
    config = TrainConfig(epochs=epochs, ngf=ngf, ndf=ngf, batch_size=batch, seed=0)
    started = time.perf_counter()
    result = train(chips, work / "model.p2p", config, Progress())
    seconds = time.perf_counter() - started
    if keep is not None:
        keep.write_bytes((work / "model.p2p").read_bytes())
    coefficients = linear_colour_regression(read(relief), read(imagery))
    held_out = {}
    for name, window in HELD_OUT.items():
        a_held, b_held = (read(path) for path in write_pair(work, window, name))
        prediction = np.round(np.clip(predict_tiles(work / "model.p2p", a_held, tile), 0, 255))
        held_out[name] = {
            "region": _window(window),
            "pix2pix": summary(compute_metrics(prediction, b_held.astype(np.float64), data_range=255)),
            "linear_colour_regression": summary(compute_metrics(
                np.round(apply_regression(coefficients, a_held)), b_held.astype(np.float64), data_range=255)),
        }
    return {
        "train_region": _window(TRAIN_WINDOW),
        "chips": {"tile": tile, "stride": stride, "train": result["train_chips"],
                  "validation": result["validation_chips"]},
        "config": {"epochs": epochs, "ngf": ngf, "ndf": ngf, "batch_size": batch, "depth": result["depth"],
                   "lr": config.lr, "lambda_l1": config.lambda_l1, "best_metric": config.best_metric},
        "train_seconds": round(seconds, 1), "best_epoch": result["best_epoch"],
        "samples_per_s": {
            "whole_run": round(result["train_chips"] * epochs / seconds, 2),
            "training_steps_median": statistics.median(
                row["samples_per_s"] for row in read_package(work / "model.p2p")[0].metrics.history),
        },
        "validation_in_train_region": {"l1": round(result["val_l1"], 4), "mae": round(result["val_mae"], 3),
                                       "psnr": round(result["val_psnr"], 3), "ssim": round(result["val_ssim"], 4)},
        "held_out": held_out,
    }


def _window(window: Window) -> dict[str, Any]:
    c, r, w, h = int(window.col_off), int(window.row_off), int(window.width), int(window.height)
    return {"col_off": c, "row_off": r, "width": w, "height": h,
            "lon": [round(-180 + c / 15, 2), round(-180 + (c + w) / 15, 2)],
            "lat": [round(90 - r / 15, 2), round(90 - (r + h) / 15, 2)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", choices=["throughput", "real"])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--stride", type=int, default=64, help="chip stride (default 64)")
    parser.add_argument("--keep", type=Path, help="real: also save the trained model package here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        if args.which == "throughput":
            result = throughput(args.epochs or 6, args.ngf, args.batch_size, args.tile, args.stride, Path(tmp))
        else:
            result = real(args.epochs or 30, args.ngf, args.batch_size, args.tile, args.stride, Path(tmp), args.keep)
    print(json.dumps({"benchmark": args.which, "machine": machine(), "date": today(),
                      "command": " ".join([".venv/bin/python", *sys.argv]), **result}, indent=1))


if __name__ == "__main__":
    main()
