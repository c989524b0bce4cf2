"""Translation: throughput against the bare forward pass, peak memory, and seam quality.

    .venv/bin/python benchmarks/bench_translate.py throughput [--size 2048] [--repeats 3]
    .venv/bin/python benchmarks/bench_translate.py memory [--width 30000] [--heights 1024 2048 4096]
    .venv/bin/python benchmarks/bench_translate.py seams [--model demo-output/model.p2p]
    .venv/bin/python benchmarks/bench_translate.py kernels

throughput: translate_raster on a size×size 3-band raster with an NGF 64 model (tile 256,
  default overlap) against the bare generator forward over the same number of tiles, same
  batch size and kernels, alternating runs; medians. The overlap's compute factor is
  reported separately (tiles × tile area / raster area).
memory: peak RSS of fresh processes translating full-width windows of a width×width
  raster; flat across heights means memory does not grow with height.
seams: PSNR of tiled against single-pass output, and the ratio of the error's horizontal
  gradient at tile boundaries to elsewhere, for the default blend and for plain tiles.
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

from pix2pix_qgis.infer.backends import _onednn
from pix2pix_qgis.infer.tiling import TilePlan
from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.model.package import load_model
from tests.engine.models import write_model  # noqa: E402


def ngf64_model() -> Path:
    path = DATA / "ngf64_rgb.p2p"
    if not path.exists():
        write_model(path, in_bands=3, out_bands=3, depth=8, ngf=64, chip=256)
    return path


def throughput(args: argparse.Namespace) -> None:
    relief, _ = upsampled_pair(args.size)
    model_path = ngf64_model()
    spec = TranslateSpec(batch_size=args.batch, device="cpu")
    plan = TilePlan.build(args.size, args.size, 256, 64)
    generator, _ = load_model(model_path)
    batch = torch.randn(args.batch, 3, 256, 256)

    def bare() -> None:
        # The same kernels and call pattern translation uses on the CPU: native, one tile per call.
        with torch.inference_mode(), _onednn(False):
            for _ in range(len(plan)):
                generator(batch[:1])

    translate_times, bare_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            start = time.perf_counter()
            translate_raster(relief, model_path, Path(tmp) / "out.tif", spec)
            translate_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            bare()
            bare_times.append(time.perf_counter() - start)
    t, b = statistics.median(translate_times), statistics.median(bare_times)
    megapixels = args.size**2 / 1e6
    print(f"## Translation throughput ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py throughput --size {args.size} "
          f"--repeats {args.repeats} --batch {args.batch}`")
    print(f"- Machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(f"- {args.size}×{args.size} px, 3 bands, NGF 64 U-Net (depth 8), tile 256, overlap 64: {len(plan)} tiles, "
          f"compute factor {plan.compute_factor:.2f}")
    print(f"- translate_raster: median {t:.2f} s = {megapixels / t:.3f} MP/s effective "
          f"(runs {', '.join(f'{x:.2f}' for x in translate_times)})")
    runs = ", ".join(f"{x:.2f}" for x in bare_times)
    print(f"- bare forward, same tiles, native kernels one tile per call: median {b:.2f} s (runs {runs})")
    print(f"- Pipeline overhead over the bare forward: {100 * (t - b) / b:.1f} %")


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
    relief, _ = upsampled_pair(2048)
    model_path = Path(args.model)
    tile = load_model(model_path)[1].chip_size
    size = 4 * tile
    window = rasterio.windows.Window(700, 500, size, size)
    with tempfile.TemporaryDirectory() as tmp, rasterio.open(relief) as src:
        crop = Path(tmp) / "crop.tif"
        profile = {**src.profile, "width": size, "height": size,
                   "transform": rasterio.windows.transform(window, src.transform)}
        with rasterio.open(crop, "w", **profile) as dst:
            dst.write(src.read(window=window))
        translate_raster(crop, model_path, Path(tmp) / "single.tif", TranslateSpec(tile_size=size, dtype="float32"))
        reference = rasterio.open(Path(tmp) / "single.tif").read().astype(np.float64)
        print(f"## Seams ({today()})")
        print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py seams --model {args.model}`")
        print(f"- Model: {model_path.name} (chip {tile}); {size}×{size} px of the relief; single pass = one "
              f"{size} px tile")
        for name, blend, overlap in (("default (Hann, overlap tile/4, margin overlap/4)", "hann", tile // 4),
                                     ("plain cropping (overlap tile/4, hard cut mid-overlap)", "crop", tile // 4),
                                     ("no overlap", "crop", 0)):
            out = Path(tmp) / f"{blend}{overlap}.tif"
            translate_raster(crop, model_path, out, TranslateSpec(overlap=overlap, blend=blend, dtype="float32"))
            error = rasterio.open(out).read() - reference
            cuts = [s + overlap // 2 for s in TilePlan.build(size, size, tile, overlap).cols.starts[1:]]
            gradient = np.abs(np.diff(error, axis=-1)).mean(axis=(0, 1))
            keep = np.ones_like(gradient, dtype=bool)
            for c in cuts:
                keep[max(0, c - 3): c + 2] = False
            ratio = np.mean([gradient[c - 1] for c in cuts]) / gradient[keep].mean()
            psnr = 10 * np.log10(255**2 / np.mean(error**2))
            print(f"- {name}: PSNR against single pass {psnr:.1f} dB, boundary/interior error-gradient ratio "
                  f"{ratio:.2f}")


def kernels(args: argparse.Namespace) -> None:
    """What bit-for-bit batch invariance on the CPU costs: native kernels against oneDNN."""
    generator, _ = load_model(ngf64_model())
    batch = torch.randn(8, 3, 256, 256)
    rows = []
    with torch.inference_mode():
        for label, onednn, size in (("oneDNN, batch 8", True, 8), ("oneDNN, batch 1", True, 1),
                                    ("native (used), batch 8", False, 8), ("native (used), batch 1", False, 1)):
            with _onednn(onednn):
                generator(batch[:size])
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    for i in range(0, 8, size):
                        generator(batch[i:i + size])
                    times.append((time.perf_counter() - start) / 8)
                same = torch.equal(generator(batch[:1]), generator(batch[:3])[:1])
            rows.append((label, statistics.median(times), same))
    print(f"## CPU kernels and batch invariance ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/bench_translate.py kernels --repeats {args.repeats}`")
    print(f"- Machine: {machine()}; NGF 64 U-Net, 256 px tiles")
    for label, seconds, same in rows:
        print(f"- {label}: median {seconds * 1000:.0f} ms per tile; tile 1 of a batch of 3 equals it alone: {same}")


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("throughput")
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=4)
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
    p.set_defaults(run=seams)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
