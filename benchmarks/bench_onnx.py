"""Translate on the CPU: the torch backend against the ONNX Runtime backend, side by side.

    .venv/bin/python benchmarks/bench_onnx.py [--size 2048] [--repeats 5] [--tiles 8]

NGF 64 U-Net (depth 8), the relief → imagery test raster, tiles of translate's default size
for it. Three measurements, each alternating torch and ONNX Runtime run by run (medians):
- forward: real tiles in each backend's call shape (torch: oneDNN, channels-last, the fixed
  batch shape translate uses for that tile size; ONNX Runtime: the same tiles in one call);
- translate_raster end to end on a size×size raster at default settings, per backend (the ONNX Runtime runs
  load the graph from the per-user cache; the first, exporting use is timed separately);
- accuracy: both backends' outputs on real tiles against a float64 forward, and the
  largest difference between the two translated rasters in 8-bit units.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_translate import ngf64_model  # noqa: E402
from common import machine, today, upsampled_pair  # noqa: E402

from pix2pix_qgis.infer.backends import TorchBackend
from pix2pix_qgis.infer.onnxruntime import OnnxRuntimeBackend
from pix2pix_qgis.infer.translate import TranslateSpec, default_tiling, translate_raster
from pix2pix_qgis.interop.onnx import compare_with_torch
from pix2pix_qgis.model.card import ModelCard
from pix2pix_qgis.model.package import load_model


def real_tiles(path: Path, card: ModelCard, count: int, tile: int) -> np.ndarray:
    norm = card.input.normalization
    with rasterio.open(path) as src:
        step = (src.width - tile) // max(count - 1, 1)
        tiles = [norm.apply(src.read(window=rasterio.windows.Window(i * step, i * step // 2, tile, tile)).astype(
            np.float32)) for i in range(count)]
    return np.stack(tiles)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tiles", type=int, default=8)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    relief, _ = upsampled_pair(args.size)
    model_path = ngf64_model()
    generator, card = load_model(model_path)
    tile = default_tiling(card, None, None, args.size, args.size).tile
    tiles = real_tiles(relief, card, args.tiles, tile)
    os.environ["PIX2PIX_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-onnx-cache-")  # start cold
    started = time.perf_counter()
    OnnxRuntimeBackend(generator, card, tile, tta=False)  # also end to end's cache entry
    setup = time.perf_counter() - started
    started = time.perf_counter()
    onnx_model = OnnxRuntimeBackend(generator, card, tile, tta=False)
    warm_setup = time.perf_counter() - started
    torch_model = TorchBackend(generator, card, torch.device("cpu"), False, 4, tile, tiles=args.tiles)
    per_call = torch_model.batch
    batches = [tiles[i:i + per_call] for i in range(0, len(tiles) - per_call + 1, per_call)]

    # Alternating tile by tile, so that both backends see the same load from other jobs.
    forward: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
    for _ in range(args.repeats):
        for batch in batches:
            for name, model in (("torch", torch_model), ("onnxruntime", onnx_model)):
                start = time.perf_counter()
                model(batch)
                forward[name].append((time.perf_counter() - start) / len(batch))

    errors = compare_with_torch(generator, lambda b: onnx_model.session.run(None, {"input": b})[0], tiles)
    end_to_end: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
    outputs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(max(1, args.repeats // 2)):
            for backend in ("torch", "onnxruntime"):
                out = Path(tmp) / f"{backend}.tif"
                start = time.perf_counter()
                translate_raster(relief, model_path, out, TranslateSpec(device="cpu", backend=backend))
                end_to_end[backend].append(time.perf_counter() - start)
                with rasterio.open(out) as dst:
                    outputs[backend] = dst.read().astype(np.int16)
    diff = np.abs(outputs["torch"] - outputs["onnxruntime"])

    f_t, f_o = statistics.median(forward["torch"]), statistics.median(forward["onnxruntime"])
    e_t, e_o = statistics.median(end_to_end["torch"]), statistics.median(end_to_end["onnxruntime"])
    import onnxruntime

    print(f"## ONNX Runtime against torch for CPU translation ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/bench_onnx.py --size {args.size} --repeats {args.repeats} "
          f"--tiles {args.tiles}`")
    print(f"- Machine: {machine()}; load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
          f"torch {torch.__version__} "
          f"({torch.get_num_threads()} threads, oneDNN, channels-last), onnxruntime {onnxruntime.__version__} "
          f"({torch.get_num_threads()} intra-op threads)")
    print(f"- Model: NGF 64 U-Net, depth 8, 3→3 bands, {tile} px tiles (translate's default for {args.size}², "
          f"{per_call} per call) (benchmarks/data/ngf64_rgb.p2p)")
    print()
    print("| | torch | ONNX Runtime | torch / ORT |")
    print("| --- | --- | --- | --- |")
    print(f"| forward, per {tile} px tile, {per_call} per call (median of {len(forward['torch'])}) | "
          f"{f_t * 1000:.0f} ms | "
          f"{f_o * 1000:.0f} ms | {f_t / f_o:.2f}× |")
    print(f"| translate_raster {args.size}×{args.size} px at defaults, end to end, ONNX graph from the cache "
          f"(median of {len(end_to_end['torch'])}) | {e_t:.2f} s | {e_o:.2f} s | {e_t / e_o:.2f}× |")
    print(f"| first use of a model: export to ONNX + cache + session (once) | — | {setup:.2f} s | |")
    print(f"| later uses: session from the cached graph (once) | — | {warm_setup:.2f} s | |")
    print()
    print(f"- Runs (s): torch {', '.join(f'{x:.2f}' for x in end_to_end['torch'])}; ONNX Runtime "
          f"{', '.join(f'{x:.2f}' for x in end_to_end['onnxruntime'])}")
    print(f"- Accuracy on {args.tiles} real tiles, largest |error| against a float64 forward, in [-1, 1] units: "
          f"torch {errors['torch_error']:.2e}, ONNX Runtime {errors['onnx_error']:.2e}; largest torch − ORT "
          f"difference {errors['max_abs_diff_vs_torch']:.2e}")
    print(f"- Translated rasters (uint8): {100 * (diff > 0).mean():.2f} % of values differ, by at most {diff.max()} "
          f"(mean {diff.mean():.4f})")


if __name__ == "__main__":
    main()
