"""The ablation behind the training defaults: one factor at a time from the reference's settings.

    .venv/bin/python benchmarks/ablation.py run --out DIR [--jobs 2] [--only NAME …]
    .venv/bin/python benchmarks/ablation.py table --out DIR

``run`` trains every run of :data:`RUNS` not yet in ``DIR`` with ``bench_quality.py``
(``DIR/<name>.json``, its log ``DIR/<name>.log``, its model ``DIR/<name>.p2p``), ``--jobs`` at a time, each on one torch
thread under ``nice -n 19`` so it takes idle CPU only. ``table`` prints the Markdown table
of BENCHMARKS.md, "Choosing the defaults", from the JSON files, with each run's command.

Design (small but honest): every run has the same budget of training chips seen
(``--samples``), so results do not depend on how busy the machine was; the sweep changes
one factor at a time from the reference's settings (transposed-convolution upsampling, one
70×70 PatchGAN, vanilla GAN, λ_L1 100) at NGF 16 (the demo's; NGF 32 is one of the factors),
so that the whole sweep fits the shared 2-core machine; the winners of each factor are then
combined and confirmed at the same budget and at twice the budget, on both tasks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUDGET = 6000  # training chips seen per run
FULL_BUDGET = 22000  # about the 30 CPU minutes per run at NGF 16 with resize upsampling
COMMON = ["--samples", str(BUDGET), "--ngf", "16", "--threads", "1"]

# name: (task, what changes from the reference settings, the options that change it); run in this order.
RUNS: dict[str, tuple[str, str, list[str]]] = {
    "R01-reference": ("relief", "reference settings", []),
    "R02-resize": ("relief", "upsampling: resize + conv", ["--upsample", "resize"]),
    "R03-d2-fm": ("relief", "2-scale D + feature matching (λ_feat 10)", ["--d-scales", "2", "--lambda-feat", "10"]),
    "R04-lsgan": ("relief", "loss: LSGAN", ["--gan-mode", "lsgan"]),
    "R05-hinge-sn": ("relief", "loss: hinge, spectral norm in D", ["--gan-mode", "hinge", "--spectral-norm"]),
    "R06-l1-10": ("relief", "λ_L1 10", ["--lambda-l1", "10"]),
    "R07-l1-1000": ("relief", "λ_L1 1000", ["--lambda-l1", "1000"]),
    "G01-reference": ("grey", "reference settings", []),
    "G02-resize": ("grey", "upsampling: resize + conv", ["--upsample", "resize"]),
    "G03-d2-fm": ("grey", "2-scale D + feature matching (λ_feat 10)", ["--d-scales", "2", "--lambda-feat", "10"]),
    "R08-ngf32": ("relief", "NGF = NDF 32", ["--ngf", "32"]),
    "R09-sn": ("relief", "spectral norm in D", ["--spectral-norm"]),
    "R10-d3-fm": ("relief", "3-scale D + feature matching (λ_feat 10)", ["--d-scales", "3", "--lambda-feat", "10"]),
    "R11-half-budget": ("relief", f"half the budget ({BUDGET // 2} chips)", ["--samples", str(BUDGET // 2)]),
    # Not in the first plan: R01's validation L1 jumped from epoch to epoch, which BatchNorm's running
    # statistics (batch 4) can cause at eval time; instance norm computes the same at training and eval.
    "R12-instance-norm": ("relief", "instance norm instead of batch norm", ["--norm", "instance"]),
    # The combination: the upsampling that removes the checkerboard (R02) with instance norm (R12).
    "R13-resize-instance": ("relief", "resize + conv and instance norm",
                            ["--upsample", "resize", "--norm", "instance"]),
    # The whole budget: 30 CPU minutes per run (R02 took 8 for 6000 chips), for the default (R02)
    # and the only PSNR winner (R13); C02 is R02 again from the same commit, as their control.
    # The kept epoch picked by structure (SSIM) or PSNR on the validation chips instead of L1, on the defaults.
    "S02-resize-best-ssim": ("relief", "R02, kept epoch by validation SSIM", ["--upsample", "resize",
                                                                            "--best-metric", "ssim"]),
    "P02-resize-best-psnr": ("relief", "R02, kept epoch by validation PSNR", ["--upsample", "resize",
                                                                            "--best-metric", "psnr"]),
    "C02-resize-control": ("relief", "upsampling: resize + conv (R02 again, as the control)", ["--upsample", "resize"]),
    "B02-resize-full-budget": ("relief", f"R02 at the 30 CPU-minute budget ({FULL_BUDGET} chips)",
                               ["--upsample", "resize", "--samples", str(FULL_BUDGET)]),
    "B13-resize-instance-full-budget": ("relief", f"R13 at the 30 CPU-minute budget ({FULL_BUDGET} chips)",
                                        ["--upsample", "resize", "--norm", "instance", "--samples", str(FULL_BUDGET)]),
}


def options(name: str) -> list[str]:
    task, _, changes = RUNS[name]
    return ["--task", task, *COMMON, *changes]


def command(name: str, cache: Path) -> list[str]:
    return [sys.executable, str(HERE / "bench_quality.py"), *options(name), "--cache", str(cache),
            "--keep", str(cache.parent / f"{name}.p2p")]  # kept so the held-out areas can be translated again


def run_one(name: str, out: Path, cache: Path) -> int:
    result = out / f"{name}.json"
    partial = out / f"{name}.json.partial"
    with partial.open("w") as stdout, (out / f"{name}.log").open("w") as log:
        code = subprocess.run(["nice", "-n", "19", *command(name, cache)], stdout=stdout, stderr=log).returncode
    if code == 0:
        partial.replace(result)
    return code


def run(out: Path, jobs: int, only: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "cache"
    for task in sorted({task for task, _, _ in RUNS.values()}):  # export each task's chips once, not in parallel
        subprocess.run(["nice", "-n", "19", sys.executable, str(HERE / "bench_quality.py"), "--task", task,
                        "--samples", "1", "--ngf", "2", "--threads", "1", "--cache", str(cache)],
                       stdout=subprocess.DEVNULL, check=True)
    todo = [name for name in (only or RUNS) if not (out / f"{name}.json").exists()]
    with ThreadPoolExecutor(jobs) as pool:
        for name, code in zip(todo, pool.map(lambda name: run_one(name, out, cache), todo)):
            print(f"{name}: {'done' if code == 0 else f'failed ({code}), see {out / name}.log'}", flush=True)


def _cell(value: float, best: bool, digits: int = 2) -> str:
    """``value`` to ``digits`` decimals, bold when it beats the baseline."""
    text = f"{value:.{digits}f}"
    return f"**{text}**" if best else text


def table(out: Path) -> str:
    results = {name: json.loads((out / f"{name}.json").read_text()) for name in RUNS if (out / f"{name}.json").exists()}
    lines = ["| run | task | change from the reference settings | region | MAE ↓ | RMSE ↓ | PSNR dB ↑ | SSIM ↑ | "
             "linear PSNR / SSIM | Δ PSNR dB | checkerboard ×10⁻⁶ (imagery) | epochs (best) | CPU min |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, result in results.items():
        task, change, _ = RUNS[name]
        for region, scores in result["held_out"].items():
            model, linear = scores["pix2pix"], scores["linear_colour_regression"]
            cb = scores["checkerboard"]
            lines.append(
                f"| {name} | {task} | {change} | {region.replace('_', ' ')} | {model['mae']:.2f} | "
                f"{model['rmse']:.2f} | {_cell(model['psnr'], model['psnr'] > linear['psnr'])} | "
                f"{_cell(model['ssim'], model['ssim'] > linear['ssim'], 3)} | "
                f"{linear['psnr']:.2f} / {linear['ssim']:.3f} | "
                f"{model['psnr'] - linear['psnr']:+.2f} | {cb['pix2pix'] * 1e6:.0f} ({cb['imagery'] * 1e6:.0f}) | "
                f"{result['config']['epochs']} ({result['best_epoch']}) | {result['train_cpu_seconds'] / 60:.0f} |")
    commands = [f"- {name}: `.venv/bin/python benchmarks/bench_quality.py {' '.join(options(name))}`"
                for name in results]
    return "\n".join([*lines, "", *commands])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="action", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--jobs", type=int, default=2)
    r.add_argument("--only", nargs="*", default=[])
    t = sub.add_parser("table")
    t.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    if args.action == "run":
        run(args.out, args.jobs, args.only)
    else:
        print(table(args.out))


if __name__ == "__main__":
    main()
