"""Training: loop overhead against bare forward+backward (held-out quality: ``bench_quality.py``).

    .venv/bin/python benchmarks/bench_training.py throughput [--epochs 6] [--ngf 32]

throughput: ``train`` on 128 px chips of the bundled relief → imagery sample, samples/s of
each epoch's training steps (data loading, augmentation, masking, progress included;
validation, checkpoint and package writing excluded: ``train_call_seconds`` has the whole
calls), against the textbook pix2pix step (G forward, D on fake and real, G loss, two Adam
steps) of the same networks on random in-memory tensors of the same batch size. The two
alternate epoch by epoch in one process (``train`` resumes its checkpoint each time), so
machine noise hits both. Medians; the first epoch of each is a warm-up and is dropped.
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

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, today  # noqa: E402

from pix2pix_qgis import ChipSpec, Progress, export_chips  # noqa: E402
from pix2pix_qgis.data.folder import open_chips
from pix2pix_qgis.model.discriminators import DiscriminatorSpec, build_discriminator
from pix2pix_qgis.model.generators import build_generator
from pix2pix_qgis.model.networks import GeneratorSpec
from pix2pix_qgis.model.package import read_package
from pix2pix_qgis.sample import make_sample_pair
from pix2pix_qgis.train.config import TrainConfig, choose_depth
from pix2pix_qgis.train.loop import train

# The reference's networks on both sides, so the comparison measures the loop, not the options.
REFERENCE = {"upsample": "transpose", "d_scales": 1, "spectral_norm": False, "lambda_feat": 0.0, "gan_mode": "vanilla"}


def bare_epoch(spec: GeneratorSpec, ndf: int, batch: int, steps: int, size: int) -> float:
    """Seconds for ``steps`` textbook pix2pix steps of fresh networks on random tensors."""
    generator = build_generator(spec, torch.Generator().manual_seed(0))
    discriminator = build_discriminator(DiscriminatorSpec(spec.in_channels + spec.out_channels, ndf),
                                        torch.Generator().manual_seed(1)).scales[0]
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
    relief, imagery = make_sample_pair(work)
    chips = work / "chips"
    export_chips(relief, imagery, chips, ChipSpec(tile_size=tile, stride=stride, validation=0.1))
    opened = open_chips(chips)
    spec = GeneratorSpec(3, 3, choose_depth(TrainConfig(), tile), ngf)
    steps = -(-len(opened.train) // batch)
    samples = len(opened.train)
    bare, loop, runs = [], [], []
    for epoch in range(1, epochs + 1):
        bare.append(samples / bare_epoch(spec, ngf, batch, steps, tile))
        config = TrainConfig(epochs=epoch, epochs_decay=0, ngf=ngf, ndf=ngf, batch_size=batch, seed=0,
                             **REFERENCE)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", choices=["throughput"])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--stride", type=int, default=64, help="chip stride (default 64)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        result = throughput(args.epochs, args.ngf, args.batch_size, args.tile, args.stride, Path(tmp))
    print(json.dumps({"benchmark": args.which, "machine": machine(), "date": today(),
                      "command": " ".join([".venv/bin/python", *sys.argv]), **result}, indent=1))


if __name__ == "__main__":
    main()
