"""Distributed translation: the price of halos, counted and measured.

    .venv/bin/python benchmarks/bench_parts.py halo [--sizes 4096 16384 65536] [--parts 2 4 8 16 32]
    .venv/bin/python benchmarks/bench_parts.py measure [--size 1024] [--parts 2] [--repeats 3]

halo: a part computes every tile touching its rows, so tile rows that straddle a boundary
  are computed by both neighbours. Counted exactly from the tile plan (tile 256, default
  overlap 64): tiles of all parts against the single run's.
measure: one process translating the whole raster against the parts run one after the
  other on the same machine (the sum is the total work; on a cluster they run at once),
  with an NGF 64 model, plus the assemble step (VRT and COG); medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_translate import ngf64_model  # noqa: E402
from common import machine, today, upsampled_pair  # noqa: E402

from pix2pix_qgis.infer.tiling import TilePlan, part_rows
from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.scale.assemble import assemble_parts
from pix2pix_qgis.scale.parts import translate_part


def part_tiles(plan: TilePlan, rows: tuple[int, int]) -> int:
    tile = plan.rows.tile
    touching = [s for s in plan.rows.starts if s < rows[1] and s + tile > rows[0]]
    return len(touching) * len(plan.cols.starts)


def halo(args: argparse.Namespace) -> None:
    print(f"# halo overhead, tile {args.tile}, overlap {args.overlap} ({today()})")
    print("| raster (px) | parts | tiles, single run | tiles, all parts | extra |")
    print("| --- | --- | --- | --- | --- |")
    for size in args.sizes:
        plan = TilePlan.build(size, size, args.tile, args.overlap)
        for count in args.parts:
            if count > -(-size // 256):
                continue  # fewer 256-row bands than parts
            total = sum(part_tiles(plan, part_rows(size, i, count)) for i in range(count))
            print(f"| {size}×{size} | {count} | {len(plan)} | {total} | {100 * (total / len(plan) - 1):.1f} % |")


def measure(args: argparse.Namespace) -> None:
    print(f"# {machine()} ({today()})")
    relief, _ = upsampled_pair(args.size)
    model = ngf64_model()
    spec = TranslateSpec()
    single, parts, joined = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in range(args.repeats):
            started = time.perf_counter()
            translate_raster(relief, model, folder / "single.tif", spec)
            single.append(time.perf_counter() - started)
            shutil.rmtree(folder / "parts", ignore_errors=True)
            started = time.perf_counter()
            for index in range(args.parts):
                translate_part(relief, model, folder / "parts", dataclasses.replace(spec, part=(index, args.parts)))
            parts.append(time.perf_counter() - started)
            started = time.perf_counter()
            assemble_parts([folder / "parts"], folder / "out.vrt", folder / "out.tif")
            joined.append(time.perf_counter() - started)
    for name, runs in (("single run", single), (f"{args.parts} parts, one after another", parts),
                       ("assemble (VRT + COG)", joined)):
        print(f"| {name} | {statistics.median(runs):.2f} s | {', '.join(f'{r:.2f}' for r in runs)} |")
    print(f"parts / single: {statistics.median(parts) / statistics.median(single):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("halo")
    p.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384, 65536])
    p.add_argument("--parts", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--overlap", type=int, default=64)
    p.set_defaults(run=halo)
    p = commands.add_parser("measure")
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--parts", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(run=measure)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
