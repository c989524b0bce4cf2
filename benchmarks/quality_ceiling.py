"""How much a model can gain over the per-pixel linear baseline on bench_quality's held-out regions.

    .venv/bin/python benchmarks/quality_ceiling.py --cache DIR [--task relief|grey] [--levels 16]

Issue 15 asks pix2pix to beat the per-pixel linear colour regression by ≥ 3 dB PSNR on Asia
after training on Africa and Europe. This measures what per-pixel mappings reach on the same
rasters (``bench_quality.py``'s, read from its ``--cache``), to separate what the data allows
from what training achieves:

- ``linear, training region``: the baseline of the table (fitted on Africa and Europe).
- ``lookup, training region``: the best per-pixel function of A's colour learnt on the
  training region (the mean of B over each colour cell, A's bands quantised to ``--levels``
  levels; a cell the training region never saw falls back to the linear map). A network that
  ignored context could at best do this.
- ``linear, in region`` and ``lookup, in region``: the same fitted on the held-out region
  itself, as an oracle that has seen the answer. ``lookup, in region`` is the ceiling of any
  per-pixel mapping there; what a model gains beyond it must come from context.

Prints a Markdown table: PSNR and SSIM (data range 255, averaged over the bands) and the
PSNR gain over the baseline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import HELD_OUT, as_levels, read  # noqa: E402
from common import machine, today  # noqa: E402

from pix2pix_qgis.evaluate.baseline import apply_linear, fit_linear  # noqa: E402
from pix2pix_qgis.evaluate.metrics import compute_metrics  # noqa: E402


def cells(a: np.ndarray, levels: int) -> np.ndarray:
    """(H·W,) colour-cell index of each pixel of ``a`` (C, H, W) uint8, each band cut into ``levels`` bins."""
    binned = (a.reshape(a.shape[0], -1).astype(np.int64) * levels) // 256
    return np.ravel_multi_index(tuple(binned), (levels,) * a.shape[0])


def fit_lookup(a: np.ndarray, b: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(means (cells, C_B), seen (cells,)): the mean of ``b`` over each colour cell of ``a``."""
    index, count = cells(a, levels), levels ** a.shape[0]
    seen = np.bincount(index, minlength=count)
    sums = np.stack([np.bincount(index, weights=band.ravel(), minlength=count) for band in b.astype(np.float64)], 1)
    return sums / np.maximum(seen, 1)[:, None], seen > 0


def apply_lookup(lookup: tuple[np.ndarray, np.ndarray], a: np.ndarray, fallback: np.ndarray, levels: int) -> np.ndarray:
    """The lookup's prediction (C_B, H, W) of ``a``; cells it never saw take ``fallback`` (C_B, H, W)."""
    means, seen = lookup
    index = cells(a, levels)
    flat = fallback.reshape(fallback.shape[0], -1).T.copy()
    known = seen[index]
    flat[known] = means[index[known]]
    return flat.T.reshape(fallback.shape)


def scores(prediction: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(PSNR dB, SSIM) of ``prediction`` rounded and clipped to uint8 levels, as the benchmark's outputs are."""
    metrics = compute_metrics(as_levels(prediction), target.astype(np.float64), data_range=255)
    return metrics["psnr"], metrics["ssim"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="bench_quality.py's --cache folder")
    parser.add_argument("--task", choices=("relief", "grey"), default="relief")
    parser.add_argument("--region", default="africa-europe", help="the training region bench_quality used")
    parser.add_argument("--levels", type=int, default=16, help="bins per band of A's colour cells (default 16)")
    args = parser.parse_args()
    folder = args.cache / f"{args.task}-{args.region}"
    a_name = "grey" if args.task == "grey" else "relief"
    train_a, train_b = read(folder / f"train_{a_name}.tif"), read(folder / "train_imagery.tif")
    linear_train = fit_linear(train_a, train_b)
    lookup_train = fit_lookup(train_a, train_b, args.levels)
    print(f"## Per-pixel ceilings on the held-out regions ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/quality_ceiling.py --cache DIR --task {args.task} "
          f"--levels {args.levels}`")
    print(f"- Machine: {machine()}")
    print("| region | mapping | fitted on | PSNR dB | SSIM | Δ PSNR over the baseline dB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for region in HELD_OUT:
        a, b = read(folder / f"{region}_{a_name}.tif"), read(folder / f"{region}_imagery.tif")
        baseline = apply_linear(linear_train, a)
        linear_here = apply_linear(fit_linear(a, b), a)
        rows = {
            ("linear", "training region"): baseline,
            ("lookup", "training region"): apply_lookup(lookup_train, a, baseline, args.levels),
            ("linear", "held-out region (oracle)"): linear_here,
            ("lookup", "held-out region (oracle)"): apply_lookup(fit_lookup(a, b, args.levels), a, linear_here,
                                                                 args.levels),
        }
        reference, _ = scores(baseline, b)
        for (mapping, fitted), prediction in rows.items():
            psnr, ssim = scores(prediction, b)
            print(f"| {region.replace('_', ' ')} | {mapping} | {fitted} | {psnr:.2f} | {ssim:.3f} | "
                  f"{psnr - reference:+.2f} |", flush=True)


if __name__ == "__main__":
    main()
