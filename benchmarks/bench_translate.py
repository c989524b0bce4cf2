"""Translation: old against new default, throughput against the bare backend, memory, seams, kernels.

    .venv/bin/python benchmarks/bench_translate.py compare --old DIR [--repeats 3]
    .venv/bin/python benchmarks/bench_translate.py throughput [--size 2048] [--repeats 3]
    .venv/bin/python benchmarks/bench_translate.py memory [--width 30000] [--heights 1024 2048 4096]
    .venv/bin/python benchmarks/bench_translate.py seams [--model demo-output/model.p2p] [--size 1024]
    .venv/bin/python benchmarks/bench_translate.py kernels

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
kernels: ms per tile of the CPU kernels and call shapes, and batch invariance.
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

import numpy as np
import rasterio
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import DATA, machine, today, upsampled_pair  # noqa: E402

from pix2pix_qgis.infer.backends import TorchBackend, _onednn
from pix2pix_qgis.infer.tiling import TilePlan
from pix2pix_qgis.infer.translate import TranslateSpec, default_tiling, translate_raster
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
    print(f"## Translation throughput against the bare forward pass ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py throughput --size {args.size} "
          f"--repeats {args.repeats}`")
    print(f"- Machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; load average "
          f"{os.getloadavg()[0]:.2f}")
    for label, model_path in (("NGF 64 (depth 8, chip 256)", ngf64_model()), ("NGF 8 (depth 7, chip 128)",
                                                                                ngf8_model())):
        generator, card = load_model(model_path)
        tile, overlap = default_tiling(card, None, None)
        plan = TilePlan.build(args.size, args.size, tile, overlap)
        backend = TorchBackend(generator, card, torch.device("cpu"), False, 4, tile, tiles=len(plan))
        tiles = np.random.default_rng(0).uniform(-1, 1, (backend.batch, 3, tile, tile)).astype(np.float32)

        translate_times, bare_times, model_times = [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeats):
                start = time.perf_counter()
                result = translate_raster(relief, model_path, Path(tmp) / "out.tif", TranslateSpec(device="cpu"))
                translate_times.append(time.perf_counter() - start)
                model_times.append(result["model_seconds"])
                start = time.perf_counter()
                for _ in range(0, len(plan), backend.batch):  # the backend translation uses, as many tiles
                    backend(tiles)
                bare_times.append(time.perf_counter() - start)
        t, b, m = (statistics.median(x) for x in (translate_times, bare_times, model_times))
        print(f"- {label}: {args.size}² px, tile {tile}, overlap {overlap}, {len(plan)} tiles in batches of "
              f"{backend.batch}, compute factor {plan.compute_factor:.2f}")
        print(f"  - translate_raster: median {t:.2f} s = {args.size**2 / 1e6 / t:.3f} MP/s "
              f"(runs {', '.join(f'{x:.2f}' for x in translate_times)}); its model time {m:.2f} s = "
              f"{100 * m / t:.0f} % of wall")
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
    print(f"- Input: {args.width}×{args.width} px, 3 × uint8, tiled GeoTIFF; NGF 64 model, tile 256, "
          "overlap 64, batch 4")
    for height in args.heights:
        script = (
            "import resource, sys, time; from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster; "
            f"t = time.perf_counter(); r = translate_raster({str(path)!r}, {str(model_path)!r}, "
            f"{str(DATA / 'wide_out.tif')!r}, TranslateSpec(device='cpu', extent=(0.0, "
            f"{(args.width - height) * 10.0}, {args.width * 10.0}, {args.width * 10.0}))); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t)"
        )
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
        print(f"- {args.width} wide × {height} rows: peak RSS {int(out[-2]) / 1024:.0f} MiB ({float(out[-1]):.0f} s)")
    (DATA / "wide_out.tif").unlink(missing_ok=True)


def seams(args: argparse.Namespace) -> None:
    """Tiled against single-pass output for the old and new default tilings and neighbours of the new one."""
    relief, _ = upsampled_pair(2048)
    model_path = Path(args.model)
    chip = load_model(model_path)[1].chip_size
    size = args.size
    window = rasterio.windows.Window(600, 400, size, size)
    with tempfile.TemporaryDirectory() as tmp, rasterio.open(relief) as src:
        crop = Path(tmp) / "crop.tif"
        profile = {**src.profile, "width": size, "height": size,
                   "transform": rasterio.windows.transform(window, src.transform)}
        with rasterio.open(crop, "w", **profile) as dst:
            dst.write(src.read(window=window))
        translate_raster(crop, model_path, Path(tmp) / "single.tif",
                         TranslateSpec(tile_size=size, overlap=0, dtype="float32"))
        reference = rasterio.open(Path(tmp) / "single.tif").read().astype(np.float64)
        print(f"## Seams ({today()})")
        print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py seams --model {args.model} --size {size}`")
        print(f"- Model: {model_path.name} (chip {chip}); {size}×{size} px of the relief; single pass = one "
              f"{size} px tile")
        print("| tile | overlap | blend | PSNR against single pass | boundary / interior error-gradient ratio | "
              f"compute factor {size}² / 2048² / 16384² |")
        print("| --- | --- | --- | --- | --- | --- |")
        for multiple, quarters, blend in ((1, 1, "hann"), (1, 0.5, "hann"), (2, 1, "hann"), (2, 0.5, "hann"),
                                          (2, 1, "crop"), (3, 1, "hann"), (4, 1, "hann")):
            tile, overlap = chip * multiple, int(chip * quarters) // 4
            out = Path(tmp) / f"{tile}-{overlap}-{blend}.tif"
            translate_raster(crop, model_path, out, TranslateSpec(tile_size=tile, overlap=overlap, blend=blend,
                                                                  dtype="float32"))
            error = rasterio.open(out).read() - reference
            plan = TilePlan.build(size, size, tile, overlap)
            starts = plan.cols.starts
            cuts = [(starts[k] + starts[k - 1] + tile) // 2 for k in range(1, len(starts))]  # mid-overlap
            gradient = np.abs(np.diff(error, axis=-1)).mean(axis=(0, 1))
            keep = np.ones_like(gradient, dtype=bool)
            for c in cuts:
                keep[max(0, c - 3): c + 2] = False
            ratio = np.mean([gradient[c - 1] for c in cuts]) / gradient[keep].mean()
            psnr = 10 * np.log10(255**2 / np.mean(error**2))
            factors = " / ".join(f"{TilePlan.build(n, n, tile, overlap).compute_factor:.2f}"
                                 for n in (size, 2048, 16384))
            print(f"| {tile} | {overlap} | {blend} | {psnr:.1f} dB | {ratio:.2f} | {factors} |")


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


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("throughput")
    p.add_argument("--size", type=int, default=2048)
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
    p = commands.add_parser("kernels")
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(run=kernels)
    p = commands.add_parser("seams")
    p.add_argument("--model", default="demo-output/model.p2p")
    p.add_argument("--size", type=int, default=1024)
    p.set_defaults(run=seams)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
