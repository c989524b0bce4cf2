"""Translation: old against new default, throughput against the bare backend, memory, seams, kernels.

    .venv/bin/python benchmarks/bench_translate.py compare --old DIR [--repeats 3]
    .venv/bin/python benchmarks/bench_translate.py throughput [--size 2048] [--repeats 3]
    .venv/bin/python benchmarks/bench_translate.py memory [--width 30000] [--heights 1024 2048 4096]
    .venv/bin/python benchmarks/bench_translate.py seams [--model demo-output/model.p2p] [--size 1024]
    .venv/bin/python benchmarks/bench_translate.py lattice [--model demo-output/model.p2p]
    .venv/bin/python benchmarks/bench_translate.py shapes [--size 4096] [--mosaic 20000] [--source-tile 480]
    .venv/bin/python benchmarks/bench_translate.py kernels
    .venv/bin/python benchmarks/bench_translate.py precision [--model demo-output/model.p2p] [--size 1024]
    .venv/bin/python benchmarks/bench_translate.py heldout [--model demo-output/model.p2p]

compare: translate_raster at default settings with the code in DIR (e.g. the previous commit:
  ``git archive HEAD~1 | tar -x -C DIR``) and with this checkout, alternating fresh processes;
  NGF 64 on 2048² and NGF 8 on 4096²; medians, ratio, model time / wall time and whether the
  outputs of repeated runs are identical (SHA-256 of the pixels).
throughput: translate_raster at defaults against the bare backend on as many tiles, in the
  same process, alternating; medians. The overlap's compute factor is reported separately.
memory: peak RSS of fresh processes translating full-width windows of a width×width
  raster; flat across heights means memory does not grow with height.
seams: PSNR of tiled against single-pass output, and the ratio of the error's horizontal
  gradient at tile boundaries (mid-overlap) to elsewhere, for several tilings.
lattice: how much the network's output changes when its input moves by s px (off the 2^depth lattice).
shapes: MP/s of an NGF 8 model on a square GeoTIFF, a 16384×1024 strip and a VRT mosaic of
  480 px GeoTIFFs (made with gdalbuildvrt), alternating fresh processes; share of the square's rate.
kernels: ms per tile of the CPU kernels and call shapes, and batch invariance.
precision: how far PRECISION bfloat16 moves a trained model's translated raster from float32
  (mean, 99.9th percentile and largest difference in output levels). On a CPU without
  bfloat16 instructions ``translate`` refuses bfloat16; here the check is bypassed so that
  PyTorch's emulation computes it: the differences are meaningful, the times are not.
heldout: a trained model's held-out metrics (the real-data benchmark's Asia and North America,
  relief → imagery) with the pre-issue tiling (chip-size tiles, a quarter chip of overlap)
  and with today's default: whether larger tiles change what a BatchNorm model outputs, and
  which way; ``--tta`` compares the default tiling without and with 8-view test-time
  augmentation instead, ``--recalibrate-bn CHIPS`` the model with its BatchNorm running
  statistics recomputed over the training chips in CHIPS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import DATA, machine, today, upsampled_pair  # noqa: E402

from pix2pix_qgis.core.progress import Progress
from pix2pix_qgis.infer.backends import TorchBackend, _onednn
from pix2pix_qgis.infer.tiling import TilePlan
from pix2pix_qgis.infer.translate import TranslateSpec, _Translator, default_tiling, translate_raster
from pix2pix_qgis.model.package import load_model
from tests.engine.models import write_model  # noqa: E402


def ngf64_model() -> Path:
    path = DATA / "ngf64_rgb.p2p"
    if not path.exists():
        write_model(path, in_bands=3, out_bands=3, depth=8, ngf=64, chip=256)
    return path


def throughput(args: argparse.Namespace) -> None:
    """translate_raster at defaults against the bare backend on the same tiles, for NGF 64 and NGF 8 models."""
    relief, _ = upsampled_pair(args.size)
    models = {"NGF 64 (depth 8, chip 256)": ngf64_model(), "NGF 8 (depth 7, chip 128)": ngf8_model()}
    print(f"## Translation throughput against the bare forward pass ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py throughput --size {args.size} "
          f"--repeats {args.repeats}`")
    print(f"- Machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; load average "
          f"{os.getloadavg()[0]:.2f}")
    for label, model_path in models.items():
        if args.models and not any(name in label for name in args.models):
            continue
        generator, card = load_model(model_path)
        tiling = default_tiling(card, None, None, args.size, args.size)
        tile, overlap = tiling.tile, tiling.overlap
        plan = TilePlan.build(args.size, args.size, tile, overlap, align=tiling.align)
        backend = TorchBackend(generator, card, torch.device("cpu"), False, 4, tile, tiles=len(plan))
        tiles = np.random.default_rng(0).uniform(-1, 1, (backend.batch, 3, tile, tile)).astype(np.float32)

        translate_times, bare_times, model_times, setup_times = [], [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeats):
                start = time.perf_counter()
                result = translate_raster(relief, model_path, Path(tmp) / "out.tif", TranslateSpec(device="cpu"))
                translate_times.append(time.perf_counter() - start)
                model_times.append(result["model_seconds"])
                setup_times.append(result["setup_seconds"])
                start = time.perf_counter()
                for _ in range(0, len(plan), backend.batch):  # the backend translation uses, as many tiles
                    backend(tiles)
                bare_times.append(time.perf_counter() - start)
        t, b, m, s = (statistics.median(x) for x in (translate_times, bare_times, model_times, setup_times))
        pipeline = statistics.median(w - x - y for w, x, y in zip(translate_times, setup_times, model_times))
        print(f"- {label}: {args.size}² px, tile {tile}, overlap {overlap}, {len(plan)} tiles in batches of "
              f"{backend.batch}, compute factor {plan.compute_factor:.2f}")
        print(f"  - translate_raster: median {t:.2f} s = {args.size**2 / 1e6 / t:.3f} MP/s "
              f"(runs {', '.join(f'{x:.2f}' for x in translate_times)}); its model time {m:.2f} s = "
              f"{100 * m / t:.0f} % of wall")
        print(f"  - of which setup (load the .p2p, backend, memory check) median {s:.2f} s; reading, normalising, "
              f"blending and writing (wall − setup − model) median {pipeline:.2f} s = "
              f"**{100 * pipeline / m:.1f} % of the model time**")
        print(f"  - bare backend, same tiles: median {b:.2f} s (runs {', '.join(f'{x:.2f}' for x in bare_times)})")
        print(f"  - everything but the model (read, normalise, blend, write, load): {100 * (t - b) / b:.1f} % of "
              f"the bare model time")


def ngf8_model() -> Path:
    path = DATA / "ngf8_rgb_128.p2p"
    if not path.exists():
        write_model(path, in_bands=3, out_bands=3, depth=7, ngf=8, chip=128)
    return path


RUN_ONE = (
    "import hashlib, json, sys, rasterio; from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster; "
    "r = translate_raster(sys.argv[1], sys.argv[2], sys.argv[3], TranslateSpec(device='cpu')); "
    "r['sha256'] = hashlib.sha256(rasterio.open(sys.argv[3]).read().tobytes()).hexdigest(); print(json.dumps(r))"
)


def compare(args: argparse.Namespace) -> None:
    """Old default against new default, end to end, alternating fresh processes of each code base."""
    cases = [("NGF 64, 2048²", ngf64_model(), upsampled_pair(2048)[0]),
             ("NGF 8, 4096²", ngf8_model(), upsampled_pair(4096)[0])]
    new = str(Path(__file__).resolve().parent.parent)
    print(f"## Translation, old default against new default ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py compare --old {args.old} "
          f"--repeats {args.repeats}`")
    print(f"- Machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads; load average "
          f"before {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, model_path, raster in cases:
            runs: dict[str, list[dict]] = {"old": [], "new": []}
            for _ in range(args.repeats):
                for name, root in (("old", args.old), ("new", new)):
                    out = Path(tmp) / f"{name}.tif"
                    done = subprocess.run([sys.executable, "-c", RUN_ONE, str(raster), str(model_path), str(out)],
                                          capture_output=True, text=True, check=True, cwd=root,
                                          env={**os.environ, "PYTHONPATH": root})
                    runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            old, new_ = (statistics.median(r["seconds"] for r in runs[k]) for k in ("old", "new"))
            print(f"- {label}:")
            for name in ("old", "new"):
                r = runs[name]
                wall = [x["seconds"] for x in r]
                model = [x["model_seconds"] for x in r]
                print(f"  - {name}: tile {r[0]['tile_size']}, overlap {r[0]['overlap']}, {r[0]['tiles']} tiles, "
                      f"compute factor {r[0]['compute_factor']}; median {statistics.median(wall):.2f} s "
                      f"(runs {', '.join(f'{x:.2f}' for x in wall)}); model time / wall "
                      f"{statistics.median(m / w for m, w in zip(model, wall)):.2f}; outputs identical across runs: "
                      f"{len({x['sha256'] for x in r}) == 1}")
            print(f"  - **new is {old / new_:.2f}× faster**")
    print(f"- Load average after: {os.getloadavg()[0]:.2f}")


def memory(args: argparse.Namespace) -> None:
    path = DATA / f"wide_{args.width}.tif"
    if not path.exists():
        relief, _ = upsampled_pair(2048)
        with rasterio.open(relief) as src:
            tile = src.read()
            profile = {**src.profile, "width": args.width, "height": args.width, "bigtiff": "YES"}
            profile["transform"] = rasterio.transform.from_origin(0, args.width * 10.0, 10.0, 10.0)
            profile["crs"] = "EPSG:32633"
        partial = path.with_suffix(".partial.tif")
        with rasterio.open(partial, "w", **profile) as dst:
            for row in range(0, args.width, 2048):
                for col in range(0, args.width, 2048):
                    window = rasterio.windows.Window(col, row, min(2048, args.width - col), min(2048, args.width - row))
                    dst.write(tile[:, : int(window.height), : int(window.width)], window=window)
        partial.rename(path)
    model_path = ngf64_model()
    print(f"## Translation memory ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py memory --width {args.width} "
          f"--heights {' '.join(map(str, args.heights))}`")
    print(f"- Machine: {machine()}")
    tiling = default_tiling(load_model(model_path)[1], None, None, max(args.heights), args.width)
    print(f"- Input: {args.width}×{args.width} px, 3 × uint8, tiled GeoTIFF; NGF 64 model (chip 256) at default "
          f"settings: tile {tiling.tile}, overlap {tiling.overlap}, starts on multiples of {tiling.align} px; load "
          f"average {os.getloadavg()[0]:.2f}")
    for height in args.heights:
        script = (
            "import resource, sys, time; from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster; "
            f"t = time.perf_counter(); r = translate_raster({str(path)!r}, {str(model_path)!r}, "
            f"{str(DATA / 'wide_out.tif')!r}, TranslateSpec(device='cpu', extent=(0.0, "
            f"{(args.width - height) * 10.0}, {args.width * 10.0}, {args.width * 10.0}))); "
            "print(r['tile_size'], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t)"
        )
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
        print(f"- {args.width} wide × {height} rows, tile {out[-3]}: peak RSS {int(out[-2]) / 1024:.0f} MiB "
              f"({float(out[-1]):.0f} s)")
    (DATA / "wide_out.tif").unlink(missing_ok=True)


SEAM_TILINGS = ("default", "1:0.25:hann", "2:0.25:hann", "3:0.25:hann", "4:0.5:hann", "4:0.5:hann:0.125:0.5",
                "4:0.5:hann:0.125:1", "4:0.5:crop:0.125:0.5", "8:1:hann:0.25:1")


class ArrayWriter:
    """Collects translated rows in memory (float32), standing in for translate's GeoTIFF writer."""

    def __init__(self, bands: int, height: int, width: int) -> None:
        self.values = np.zeros((bands, height, width), dtype=np.float32)

    def submit(self, row: int, values: np.ndarray, valid: np.ndarray) -> None:
        self.values[:, row:row + values.shape[1]] = values


def tiled(raster: Path, model_path: Path, plan: TilePlan) -> np.ndarray:
    """``raster`` translated by translate's tile walk with ``plan`` (any alignment), in float32 target units."""
    generator, card = load_model(model_path)
    backend = TorchBackend(generator, card, torch.device("cpu"), False, 4, plan.rows.tile, tiles=len(plan))
    with rasterio.open(raster) as src:
        writer = ArrayWriter(card.generator.out_channels, src.height, src.width)
        _Translator(plan, src, list(range(1, src.count + 1)), rasterio.windows.Window(0, 0, src.width, src.height),
                    card.input.normalization, backend, writer, card.generator.out_channels, Progress()).run()
    return writer.values


def relief_crop(folder: Path, size: int) -> Path:
    """A size² GeoTIFF of the relief in ``folder``: up to 1024 px the window at (600, 400) of the 2048² relief
    (the earlier sections' crop), beyond it the whole relief from its corner."""
    relief, _ = upsampled_pair(max(2048, size))
    window = rasterio.windows.Window(*((600, 400) if size <= 1024 else (0, 0)), size, size)
    crop = folder / "crop.tif"
    with rasterio.open(relief) as src:
        profile = {**src.profile, "width": size, "height": size,
                   "transform": rasterio.windows.transform(window, src.transform)}
        with rasterio.open(crop, "w", **profile) as dst:
            dst.write(src.read(window=window))
    return crop


def seams(args: argparse.Namespace) -> None:
    """Tiled against single-pass output for tilings CHIPS:OVERLAP:BLEND[:MARGIN[:ALIGN]], all in chips."""
    model_path = Path(args.model)
    _, card = load_model(model_path)
    chip, lattice = card.chip_size, 2**card.generator.depth
    size = args.size
    with tempfile.TemporaryDirectory() as tmp:
        crop = relief_crop(Path(tmp), size)
        reference = tiled(crop, model_path, TilePlan.build(size, size, size, 0)).astype(np.float64)
        default = default_tiling(card, None, None, 16384, 16384)
        print(f"## Seams ({today()})")
        print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py seams --model {args.model} --size {size}"
              f" --tilings {' '.join(args.tilings)}`")
        print(f"- Machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
        print(f"- Model: {model_path.name} (chip {chip}, depth {card.generator.depth}, NGF {card.generator.ngf}, "
              f"{card.generator.norm} norm); {size}×{size} px of the relief; single pass = one {size} px tile; "
              f"default tiling of a 16384² raster: tile {default.tile}, overlap {default.overlap}, starts on "
              f"multiples of {default.align} px")
        print("| tile | overlap | margin | blend | starts on multiples of | PSNR against single pass | boundary / "
              "interior error-gradient ratio (columns, rows) | error gradient at boundaries (levels) | compute "
              f"factor {size}² / 4096² / 16384² |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for tiling in args.tilings:
            if tiling == "default":  # translate's default tiling of this raster
                chosen = default_tiling(card, None, None, size, size)
                tile, overlap, blend, align, margin = chosen.tile, chosen.overlap, "hann", chosen.align, None
            else:
                multiple, overlap_chips, blend, *rest = tiling.split(":")
                tile, overlap = int(float(multiple) * chip), int(float(overlap_chips) * chip)
                margin = int(float(rest[0]) * chip) if rest else None
                align = max(1, int(float(rest[1]) * lattice)) if len(rest) > 1 else 1
            plan = TilePlan.build(size, size, tile, overlap, margin, blend, align)
            error = tiled(crop, model_path, plan) - reference
            (ratio_c, step_c), (ratio_r, step_r) = (seam_ratio(error, plan.cols.starts, tile),
                                                    seam_ratio(error.swapaxes(-1, -2), plan.rows.starts, tile))
            psnr = 10 * np.log10(255**2 / max(np.mean(error**2), 1e-30))
            factors = " / ".join(f"{TilePlan.build(n, n, tile, overlap, margin, blend, align).compute_factor:.2f}"
                                 for n in (size, 4096, 16384))
            print(f"| {tile}{' (default)' if tiling == 'default' else ''} | {overlap} | "
                  f"{overlap // 4 if margin is None else margin} | {blend} | {align} px | {psnr:.1f} dB | "
                  f"{ratio_c:.2f}, {ratio_r:.2f} | {step_c:.3f}, {step_r:.3f} | {factors} |", flush=True)


def lattice(args: argparse.Namespace) -> None:
    """PSNR between the network's output on a window and on the window moved by s px, away from every edge."""
    generator, card = load_model(Path(args.model))
    relief, _ = upsampled_pair(2048)
    with rasterio.open(relief) as src:
        data = src.read(window=rasterio.windows.Window(600, 400, 640 + 128, 640))
    x = torch.from_numpy(card.input.normalization.apply(data))[None]
    print(f"## Shifts off the stride lattice ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py lattice --model {args.model}`")
    print(f"- Model: {Path(args.model).name} (depth {card.generator.depth}, lattice {2 ** card.generator.depth} px); "
          "a 640 px window of the relief against the same window moved right by s px, compared 192 px from every "
          "edge (2 x 127.5 output units = 255 levels)")
    print("| shift (px) | PSNR |")
    print("| --- | --- |")
    with torch.inference_mode():
        reference = generator(x[..., :, :640])[0].numpy()
        for shift in (1, 2, 4, 8, 16, 32, 64, 96, 128):
            moved = generator(x[..., :, shift:shift + 640])[0].numpy()
            width = min(448, 640 - shift) - 192
            error = (reference[..., 192:448, shift + 192:shift + 192 + width] - moved[..., 192:448, 192:192 + width])
            print(f"| {shift} | {10 * np.log10(4 / np.mean(error ** 2)):.1f} dB |", flush=True)


def seam_ratio(error: np.ndarray, starts: tuple[int, ...], tile: int) -> tuple[float, float]:
    """(ratio, step): mean |horizontal error gradient| at mid-overlap columns over its mean elsewhere (1.0: no
    visible seam), and the mean at mid-overlap columns in output levels."""
    cuts = [(starts[k] + starts[k - 1] + tile) // 2 for k in range(1, len(starts)) if
            (starts[k] + starts[k - 1] + tile) // 2 < error.shape[-1]]
    if not cuts:
        return float("nan"), float("nan")
    gradient = np.abs(np.diff(error, axis=-1)).mean(axis=(0, 1))
    keep = np.ones_like(gradient, dtype=bool)
    for c in cuts:
        keep[max(0, c - 3): c + 2] = False
    step = float(np.mean([gradient[c - 1] for c in cuts]))
    return step / float(gradient[keep].mean()), step


def _strip_and_mosaic(size: int, strip: tuple[int, int], mosaic: int, source_tile: int) -> dict[str, Path]:
    """A size² GeoTIFF, a strip (width, height) GeoTIFF and a VRT mosaic of ``source_tile`` px GeoTIFFs (cached)."""
    relief, _ = upsampled_pair(2048)
    with rasterio.open(relief) as src:
        texture = src.read()
        base = {**src.profile, "crs": "EPSG:32633", "tiled": True, "blockxsize": 512, "blockysize": 512}

    def write(path: Path, width: int, height: int, col: int = 0, row: int = 0, **more: object) -> None:
        """The relief repeated over width × height px, as the window at (row, col) of one large grid."""
        if path.exists():
            return
        rows = (np.arange(row, row + height) % 2048)[:, None]
        cols = (np.arange(col, col + width) % 2048)[None, :]
        profile = {**base, "width": width, "height": height, **more,
                   "transform": rasterio.transform.from_origin(500000 + col * 0.5, 5000000 - row * 0.5, 0.5, 0.5)}
        partial = path.with_suffix(".partial.tif")
        with rasterio.open(partial, "w", **profile) as dst:
            dst.write(texture[:, rows, cols])
        partial.rename(path)

    paths = {f"GeoTIFF {size}×{size}": DATA / f"square_{size}.tif",
             f"GeoTIFF strip {strip[0]}×{strip[1]}": DATA / f"strip_{strip[0]}x{strip[1]}.tif",
             f"VRT {mosaic}×{mosaic} of {source_tile} px GeoTIFFs": DATA / f"mosaic_{mosaic}_{source_tile}.vrt"}
    square, long_strip, vrt = paths.values()
    write(square, size, size)
    write(long_strip, *strip)
    if not vrt.exists():
        folder = DATA / f"mosaic_{mosaic}_{source_tile}"
        folder.mkdir(exist_ok=True)
        names = []
        for row in range(0, mosaic, source_tile):
            for col in range(0, mosaic, source_tile):
                name = folder / f"tile_{row}_{col}.tif"
                write(name, min(source_tile, mosaic - col), min(source_tile, mosaic - row), col, row,
                      blockxsize=256, blockysize=256, tiled=source_tile >= 256)
                names.append(str(name))
        listing = folder / "files.txt"
        listing.write_text("\n".join(names) + "\n")
        subprocess.run(["gdalbuildvrt", "-q", "-input_file_list", str(listing), str(vrt)], check=True)
    return paths


def shapes(args: argparse.Namespace) -> None:
    """MP/s of one model on a square GeoTIFF, a long strip and a VRT mosaic, alternating fresh processes."""
    paths = _strip_and_mosaic(args.size, (args.strip_width, args.strip_height), args.mosaic, args.source_tile)
    model_path = ngf8_model()
    print(f"## Throughput by raster shape and container ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py shapes --size {args.size} --strip-width "
          f"{args.strip_width} --strip-height {args.strip_height} --mosaic {args.mosaic} --source-tile "
          f"{args.source_tile} --repeats {args.repeats}`")
    print(f"- Machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads; load average "
          f"before {os.getloadavg()[0]:.2f}")
    print(f"- Model: {model_path.name} (NGF 8, depth 7, chip 128), translate_raster at defaults, fresh process per run")
    runs: dict[str, list[dict]] = {label: [] for label in paths}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for label, raster in paths.items():
                out = Path(tmp) / "out.tif"
                done = subprocess.run([sys.executable, "-c", RUN_ONE, str(raster), str(model_path), str(out)],
                                      capture_output=True, text=True, check=True)
                runs[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
    reference = statistics.median(r["megapixels_per_second"] for r in runs[next(iter(paths))])
    print("| raster | tile, tiles, compute factor | MP/s median (runs) | model time / wall | against the square |")
    print("| --- | --- | --- | --- | --- |")
    for label, r in runs.items():
        rates = [x["megapixels_per_second"] for x in r]
        share = statistics.median(x["model_seconds"] / x["seconds"] for x in r)
        print(f"| {label} | {r[0]['tile_size']} px, {r[0]['tiles']}, {r[0]['compute_factor']} | "
              f"{statistics.median(rates):.3f} ({', '.join(f'{x:.3f}' for x in rates)}) | {share:.2f} | "
              f"{100 * statistics.median(rates) / reference:.0f} % |")
    print(f"- Load average after: {os.getloadavg()[0]:.2f}")


def kernels(args: argparse.Namespace) -> None:
    """ms per tile of the CPU kernels and call shapes, and what each does to a tile's bits."""
    generator, _ = load_model(ngf64_model())
    batch = torch.randn(8, 3, 256, 256)
    mates = torch.randn(8, 3, 256, 256)
    mates[0] = batch[0]
    rows = []
    with torch.inference_mode():
        for label, onednn, size, layout in (
                ("native kernels, one tile per call (the old default)", False, 1, torch.contiguous_format),
                ("oneDNN, batch 4", True, 4, torch.contiguous_format),
                ("oneDNN, channels-last, batch 1", True, 1, torch.channels_last),
                ("oneDNN, channels-last, batch 4 (the new default)", True, 4, torch.channels_last),
                ("oneDNN, channels-last, batch 8", True, 8, torch.channels_last)):
            net = generator.to(memory_format=layout)
            with _onednn(onednn):
                x = batch.contiguous(memory_format=layout)
                net(x[:size])
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    for i in range(0, 8, size):
                        net(x[i:i + size])
                    times.append((time.perf_counter() - start) / 8)
                other_mates = torch.equal(net(x[:size])[0], net(mates.contiguous(memory_format=layout)[:size])[0])
                alone = torch.equal(net(x[:1])[0], net(x[:size])[0])
            rows.append((label, statistics.median(times), other_mates, alone))
    print(f"## CPU kernels and batch invariance ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py kernels --repeats {args.repeats}`")
    print(f"- Machine: {machine()}; NGF 64 U-Net, 256 px tiles; load average {os.getloadavg()[0]:.2f}")
    print("| kernels | ms per tile | tile 1 equal with other batch-mates | tile 1 equal alone |")
    print("| --- | --- | --- | --- |")
    for label, seconds, other_mates, alone in rows:
        print(f"| {label} | {seconds * 1000:.0f} | {other_mates} | {alone} |")


def precision(args: argparse.Namespace) -> None:
    """float32 against bfloat16 on a trained model and a real raster: differences in output levels."""
    from pix2pix_qgis.model import device as model_device

    native = model_device.cpu_supports_bfloat16()
    model_device.cpu_supports_bfloat16 = lambda: True  # emulated where the CPU lacks bf16 (see the docstring)
    size = args.size
    outputs, seconds, dtype = {}, {}, ""
    with tempfile.TemporaryDirectory() as tmp:
        crop = relief_crop(Path(tmp), size)
        for name in ("float32", "bfloat16"):
            out = Path(tmp) / f"{name}.tif"
            result = translate_raster(crop, args.model, out, TranslateSpec(device="cpu", precision=name))
            seconds[name] = result["model_seconds"]
            with rasterio.open(out) as done:
                outputs[name], dtype = done.read().astype(np.float64), done.dtypes[0]
    diff = np.abs(outputs["bfloat16"] - outputs["float32"])
    print(f"## PRECISION bfloat16 against float32 ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py precision --model {args.model} --size {size}`")
    print(f"- Machine: {machine()}; torch {torch.__version__}; bfloat16 instructions: "
          f"{'yes' if native else 'no (PyTorch emulation: differences valid, times not)'}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"- Model: {Path(args.model).name}; {size}×{size} px of the relief at translate's defaults; "
          f"output {outputs['float32'].shape[0]} bands of {dtype}")
    print(f"- Difference in output levels: mean {diff.mean():.3f}, 99.9th percentile "
          f"{np.percentile(diff, 99.9):.0f}, max {diff.max():.0f}; values that differ by more than 1 level "
          f"{100 * np.mean(diff > 1):.4f} %, that differ at all {100 * np.mean(diff > 0):.2f} %")
    print(f"- Model time: float32 {seconds['float32']:.2f} s, bfloat16 {seconds['bfloat16']:.2f} s")


def recalibrated_copy(model: Path, chips_folder: Path, destination: Path) -> Path:
    """``model`` with its BatchNorm running statistics recomputed over every training chip of ``chips_folder``.

    One cumulative pass (momentum None, dropout off, batches of 4 in chip order), as
    ``torch.optim.swa_utils.update_bn`` does; the weights stay as they are.
    """
    from torch.utils.data import DataLoader

    from pix2pix_qgis.data.dataset import ChipDataset
    from pix2pix_qgis.data.folder import open_chips
    from pix2pix_qgis.model.package import write_package

    generator, card = load_model(model)
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    generator.train()
    for module in generator.modules():
        if isinstance(module, torch.nn.Dropout):
            module.eval()
    with torch.no_grad():
        for sample in DataLoader(ChipDataset(open_chips(chips_folder), "train"), batch_size=4):
            generator(sample["a"])
    return write_package(destination, card, generator.eval().state_dict())


def heldout(args: argparse.Namespace) -> None:
    """Held-out metrics of one model in two variants, each against the imagery and against the other.

    Default: chip-size tiles (the pre-issue default) against the default tiling; ``--tta``: the
    default tiling without and with 8-view test-time augmentation; ``--recalibrate-bn CHIPS``:
    the model against its copy with BatchNorm statistics recomputed on the training chips.
    """
    from bench_quality import HELD_OUT, write_pair

    from pix2pix_qgis.evaluate.metrics import compute_metrics

    model = Path(args.model)
    _, card = load_model(model)
    chip = card.chip_size
    with tempfile.TemporaryDirectory() as tmp:
        variants: dict[str, tuple[Path, dict[str, Any]]]
        if args.recalibrate_bn:
            copy = recalibrated_copy(model, Path(args.recalibrate_bn), Path(tmp) / "recalibrated.p2p")
            variants = {"as trained": (model, {}), "BatchNorm statistics recomputed": (copy, {})}
            option, subject = f" --recalibrate-bn {args.recalibrate_bn}", "BatchNorm statistics"
        elif args.tta:
            variants = {"default tiling": (model, {}), "default tiling, 8-view TTA": (model, {"tta": True})}
            option, subject = " --tta", "test-time augmentation"
        else:
            variants = {f"{chip} px tiles, overlap {chip // 4} (pre-issue default)":
                        (model, {"tile_size": chip, "overlap": chip // 4}), "default tiling": (model, {})}
            option, subject = "", "tiling"
        print(f"## Held-out metrics by {subject} ({today()})")
        print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py heldout --model {args.model}{option}`")
        print(f"- Machine: {machine()}; model {model.name} (chip {chip}, depth {card.generator.depth}, "
              f"NGF {card.generator.ngf}, {card.generator.norm} norm); metrics against the imagery, data range 255")
        print("| region | variant | tile, overlap | MAE | RMSE | PSNR dB | SSIM | mean / max difference to the other "
              "variant (levels) |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for region, window in HELD_OUT.items():
            relief, imagery = write_pair(Path(tmp), window, region, "relief")
            with rasterio.open(imagery) as src:
                target = src.read().astype(np.float64)
            outputs, rows = [], []
            for label, (path, options) in variants.items():
                out = Path(tmp) / f"{region}_{len(outputs)}.tif"
                result = translate_raster(relief, path, out, TranslateSpec(device="cpu", **options))
                with rasterio.open(out) as done:
                    outputs.append(done.read().astype(np.float64))
                m = compute_metrics(outputs[-1], target, data_range=255)
                rows.append(f"| {region} | {label} | {result['tile_size']}, {result['overlap']} | {m['mae']:.2f} | "
                            f"{m['rmse']:.2f} | {m['psnr']:.2f} | {m['ssim']:.3f} |")
            diff = np.abs(outputs[0] - outputs[1])
            for row in rows:
                print(f"{row} {diff.mean():.2f} / {diff.max():.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("throughput")
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--models", nargs="*", default=[], help="only these, e.g. 'NGF 8'")
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(run=throughput)
    p = commands.add_parser("memory")
    p.add_argument("--width", type=int, default=30000)
    p.add_argument("--heights", type=int, nargs="+", default=[512, 1024, 2048])
    p.set_defaults(run=memory)
    p = commands.add_parser("compare")
    p.add_argument("--old", required=True, help="a checkout of the previous commit (git archive … | tar -x -C DIR)")
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(run=compare)
    p = commands.add_parser("lattice")
    p.add_argument("--model", default="demo-output/model.p2p")
    p.set_defaults(run=lattice)
    p = commands.add_parser("shapes")
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--strip-width", type=int, default=16384)
    p.add_argument("--strip-height", type=int, default=1024)
    p.add_argument("--mosaic", type=int, default=20000)
    p.add_argument("--source-tile", type=int, default=480)
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(run=shapes)
    p = commands.add_parser("kernels")
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(run=kernels)
    p = commands.add_parser("precision")
    p.add_argument("--model", default="demo-output/model.p2p")
    p.add_argument("--size", type=int, default=1024)
    p.set_defaults(run=precision)
    p = commands.add_parser("heldout")
    p.add_argument("--model", default="demo-output/model.p2p")
    variant = p.add_mutually_exclusive_group()
    variant.add_argument("--tta", action="store_true", help="compare the default tiling without and with 8-view TTA")
    variant.add_argument("--recalibrate-bn", metavar="CHIPS",
                         help="compare the model with its BatchNorm statistics recomputed on CHIPS' training chips")
    p.set_defaults(run=heldout)
    p = commands.add_parser("seams")
    p.add_argument("--model", default="demo-output/model.p2p")
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--tilings", nargs="+", default=list(SEAM_TILINGS),
                   help="default (translate's) or CHIPS:OVERLAP:BLEND[:MARGIN[:ALIGN]] in chips (ALIGN in 2^depth), "
                        "e.g. 4:0.5:hann:0.125:0.5 (margin default: overlap/4, align: 1 px)")
    p.set_defaults(run=seams)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
