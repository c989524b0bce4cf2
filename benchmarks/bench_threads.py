"""Wall time when another process wants a core: torch's thread count and OpenMP's wait policy.

    .venv/bin/python benchmarks/bench_threads.py [--model demo-output/model.p2p] [--size 1024] [--repeats 3]
    .venv/bin/python benchmarks/bench_threads.py --job train [--chips demo-output/chips] [--repeats 3]

Why: a GIS analyst's machine is rarely idle (QGIS renders, a browser runs), and this VM's own
benchmarks saw a CycleGAN step 20× slower with torch's default of one thread per core than with
one thread when the machine was busy. PyTorch's CPU wheels run intra-op work on GNU OpenMP,
whose threads spin at every barrier; a thread whose core is taken stalls its peers.

Method: ``python -m pix2pix_qgis translate`` of a size² relief crop with the given model (or,
``--job train``, ``train`` of one epoch at NGF 16 on a chips folder), in a fresh process per
run, under each setting (environment variables as a user would set them):
torch's default threads, ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep instead of spinning), and
one thread (``OMP_NUM_THREADS=1``); each on a quiet machine and beside ``--busy`` processes
that spin on a core (pure Python loops at the same nice level). Settings alternate within
each repeat, so drift in the machine's load falls on all of them alike. Prints wall-clock
medians (s) and each setting's ratio to the default under the same load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_translate import relief_crop  # noqa: E402
from common import machine, today  # noqa: E402

SETTINGS = {
    "torch default threads": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "one thread (OMP_NUM_THREADS=1)": {"OMP_NUM_THREADS": "1"},
}
SPIN = "while True: pass"


def cli_seconds(arguments: list[str], extra: dict[str, str]) -> float:
    """Wall seconds of one engine command in a fresh process with ``extra`` in its environment."""
    env = {**os.environ, **extra}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pix2pix_qgis", *arguments, "--device", "cpu", "--progress", "none"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("demo-output/model.p2p"))
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="spinning processes beside the run")
    parser.add_argument("--job", choices=("translate", "train"), default="translate")
    parser.add_argument("--chips", type=Path, default=Path("demo-output/chips"), help="for --job train")
    args = parser.parse_args()
    job = (f"--job train --chips {args.chips}" if args.job == "train" else f"--model {args.model} --size {args.size}")
    print(f"## Threads under load: {args.job} ({today()})")
    print(f"- Command: `.venv/bin/python benchmarks/bench_threads.py {job} "
          f"--repeats {args.repeats} --busy {' '.join(map(str, args.busy))}`")
    print(f"- Machine: {machine()}; load average before {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")
    print("| spinning processes | setting | median s | runs (s) | against torch's default |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        if args.job == "train":
            command = ["train", str(args.chips), str(Path(tmp) / "model.p2p"), "--epochs", "1", "--ngf", "16",
                       "--ndf", "16"]
        else:
            command = ["translate", str(relief_crop(Path(tmp), args.size)), str(args.model), str(Path(tmp) / "out.tif")]
        cli_seconds(command, {})  # warm the page cache and the input files
        for busy in args.busy:
            spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(busy)]
            try:
                times: dict[str, list[float]] = {name: [] for name in SETTINGS}
                for _ in range(args.repeats):
                    for name, extra in SETTINGS.items():
                        times[name].append(cli_seconds(command, extra))
            finally:
                for spinner in spinners:
                    spinner.kill()
                    spinner.wait()
            default = statistics.median(times["torch default threads"])
            for name, runs in times.items():
                median = statistics.median(runs)
                print(f"| {busy} | {name} | {median:.2f} | {', '.join(f'{t:.2f}' for t in runs)} | "
                      f"{median / default:.2f} |", flush=True)


if __name__ == "__main__":
    main()
