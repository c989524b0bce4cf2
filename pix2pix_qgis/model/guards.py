"""Resource guards: refuse up front what cannot fit in memory, and back off on CUDA out-of-memory.

A tile or batch that does not fit would otherwise end with the kernel's OOM killer
(SIGKILL: no message, a frozen machine first) or a CUDA error mid-run. The estimates
trace the network on PyTorch's ``meta`` device (shapes only, no memory, instant even
for absurd sizes; translation traces its loaded generator at the smallest tile and scales)
and add up every layer's output: what autograd keeps for training,
what inference holds at its peak. They are calibrated against measured peaks
(``docs/reliability.md``) and only refuse what is clearly too large, with the estimate
and the largest setting that would fit.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..contract.errors import Pix2PixError
from ..core.progress import Progress
from .discriminators import DiscriminatorSpec, MultiscaleDiscriminator
from .generators import AnyGeneratorSpec, make_generator
from .networks import GeneratorSpec

# Bytes held per traced float32 layer output. Measured on the CPU (docs/reliability.md,
# "Memory estimates"): inference peaks at 0.31× the traced outputs (skip tensors plus a few
# transients), a training step at about 0.3× (G plus three passes of D, with gradients);
# these factors over-estimate both, so only what clearly cannot fit is refused.
INFERENCE_FACTOR = 0.5
TRAINING_FACTOR = 1.0
# Allocator slack, libraries, the interpreter: never plan to use the very last bytes.
HEADROOM = 0.9


def _gib(count: float) -> str:
    if count >= 2**40:
        return f"{count / 2**40:.1f} TiB"
    return f"{count / 2**30:.1f} GiB" if count >= 2**28 else f"{count / 2**20:.0f} MiB"


def available_memory() -> int | None:
    """Bytes the system can give this process without swapping (Linux MemAvailable), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def cuda_free_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA ``device`` now; None for other devices or when CUDA cannot say."""
    if device.type != "cuda":
        return None
    try:
        return int(torch.cuda.mem_get_info(device)[0])
    except RuntimeError:
        return None


def _traced_outputs(net: nn.Module, shape: tuple[int, ...], device: torch.device | str = "meta") -> int:
    """Elements of all leaf-module outputs of ``net`` for an input of ``shape`` on ``device`` (``net``'s)."""
    total = 0

    def count(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel()

    hooks = [m.register_forward_hook(count) for m in net.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            net(torch.zeros(shape, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    return total


@dataclass(frozen=True)
class NetworkCost:
    """Bytes of one generator (+ discriminator) at a tile size: parameters and per-sample activations."""

    parameters: int
    activations: int  # elements of all layer outputs for one sample

    @classmethod
    def generator(cls, spec: AnyGeneratorSpec, tile: int, net: nn.Module | None = None) -> NetworkCost:
        """The cost of ``spec``'s generator on ``tile`` px tiles, traced on the meta device (no memory used).

        Given the loaded U-Net ``net`` (eval mode), one real forward pass at the smallest tile it
        takes (2^depth px) is traced instead and scaled: every layer's output at ``tile`` px is
        exactly (tile / 2^depth)² times as large. That pass takes milliseconds to a tenth of a
        second, where a process's first meta trace imports torch's compiler stack (about 1.2 s,
        BENCHMARKS.md "CPU translation"). Other generators (their padding layers do not scale
        exactly) are always traced on the meta device.
        """
        if net is None or not isinstance(spec, GeneratorSpec):
            with torch.device("meta"):
                meta = make_generator(spec)
            return cls(sum(p.numel() for p in meta.parameters()),
                       _traced_outputs(meta, (1, spec.in_channels, tile, tile)))
        smallest = spec.multiple
        traced = _traced_outputs(net, (1, spec.in_channels, smallest, smallest), next(net.parameters()).device)
        return cls(sum(p.numel() for p in net.parameters()), traced * tile * tile // (smallest * smallest))

    @classmethod
    def discriminator(cls, spec: DiscriminatorSpec, tile: int) -> NetworkCost:
        """The cost of the discriminator on ``tile`` px pairs, all its scales, traced on the meta device."""
        with torch.device("meta"):  # spectral normalisation adds no parameters and vectors of negligible size
            net = MultiscaleDiscriminator(spec)
        parameters = sum(p.numel() for p in net.parameters())
        return cls(parameters, _traced_outputs(net, (1, spec.in_channels, tile, tile)))


def _refuse(what: str, estimate: int, available: int, where: str, fix: str) -> None:
    raise Pix2PixError(
        f"{what} needs about {_gib(estimate)} of {where} but only {_gib(available)} is available; it would be "
        f"killed by the system part way. {fix}"
    )


def _translation_bytes(spec: AnyGeneratorSpec, tile: int, batch: int, width: int, tiles_per_row: int,
                       input_dtype: str, device: torch.device, tta: bool,
                       generator: nn.Module | None = None) -> tuple[int, int, int]:
    """(host bytes, device bytes, device bytes per tile) of a translation."""
    net = NetworkCost.generator(spec, tile, generator)
    per_tile = int(net.activations * 4 * INFERENCE_FACTOR)  # float32 (PRECISION's default)
    model = net.parameters * 4 + batch * per_tile
    tiles = batch * (spec.in_channels + spec.out_channels * (2 if tta else 1)) * tile * tile * 4
    strips = 2 * tile * width * spec.in_channels * (np.dtype(input_dtype).itemsize + 1)  # current + prefetched
    # Tile rows whose tiles may wait for batch-mates (translate.batch_group, at most this many more).
    waiting = -(-batch // max(1, tiles_per_row))
    accumulator = ((waiting + 1) * tile + 256) * width * (spec.out_channels * 4 + 1) \
        + 2 * 256 * width * spec.out_channels * 4
    host = int(tiles + strips + accumulator + (model if device.type == "cpu" else 0))
    return host, int(model), per_tile


def check_translation_memory(spec: AnyGeneratorSpec, tile: int, batch: int, width: int, tiles_per_row: int,
                             input_dtype: str, device: torch.device, tta: bool,
                             generator: nn.Module | None = None) -> dict[str, int]:
    """Refuse a translation whose tile, batch (tiles per forward call) or raster width cannot fit; returns bytes.

    ``generator``: the loaded network, traced for real at its smallest tile (see ``NetworkCost.generator``).
    """
    host, gpu, per_tile = _translation_bytes(spec, tile, batch, width, tiles_per_row, input_dtype, device, tta,
                                             generator)
    available, free = available_memory(), cuda_free_memory(device)

    def fits(size: int) -> bool:
        h, g, _ = _translation_bytes(spec, size, batch, width, tiles_per_row, input_dtype, device, tta, generator)
        return ((available is None or h <= HEADROOM * available) and (free is None or g <= HEADROOM * free))

    smaller = tile // 2
    while smaller >= spec.multiple and smaller % spec.multiple == 0 and not fits(smaller):
        smaller //= 2
    if smaller >= spec.multiple and smaller % spec.multiple == 0:
        fix = f"Lower --tile-size (TILE_SIZE) to {smaller}"
    else:
        fix = "Translate a smaller --extent (EXTENT) at a time"
    if available is not None and host > HEADROOM * available:
        _refuse(f"Translating {width} px wide rows with {tile} px tiles", host, available, "memory", fix + ".")
    if free is not None and gpu > HEADROOM * free:
        most = int((HEADROOM * free - (gpu - batch * per_tile)) // per_tile)
        advice = f"Lower --batch-size (BATCH_SIZE) to {most}." if most >= 1 else fix + ", or use --device cpu."
        _refuse(f"A batch of {batch} tiles of {tile} px", gpu, free, f"{device} memory", advice)
    return {"host": host, "device": gpu, "per_tile": per_tile}


def check_training_memory(spec: AnyGeneratorSpec, judge: DiscriminatorSpec, tile: int, batch: int, chips: int,
                          device: torch.device) -> dict[str, int]:
    """Refuse a training whose chip size, batch size or network width cannot fit; returns the estimate."""
    generator = NetworkCost.generator(spec, tile)
    discriminator = NetworkCost.discriminator(judge, tile)
    batch = max(1, min(batch, chips))
    # Weights, gradients and Adam's two moments: 16 bytes per parameter.
    fixed = 16 * (generator.parameters + discriminator.parameters)
    per_sample = 4 * TRAINING_FACTOR * (generator.activations + 3 * discriminator.activations)
    estimate = int(fixed + batch * per_sample)
    memory = cuda_free_memory(device) if device.type == "cuda" else available_memory()
    where = f"{device} memory" if device.type == "cuda" else "memory"
    if memory is not None and estimate > HEADROOM * memory:
        fits = int((HEADROOM * memory - fixed) // per_sample)
        if fits >= 1:
            advice = f"Lower --batch-size (BATCH_SIZE) to {fits}."
        else:
            advice = "Lower --ngf/--ndf (NGF/NDF), or export smaller chips (TILE_SIZE)."
        _refuse(f"Training with batches of {batch} chips of {tile} px (NGF {spec.ngf}, NDF {judge.ndf})",
                estimate, memory, where, advice)
    return {"estimate": estimate, "fixed": int(fixed), "per_sample": int(per_sample)}


def _is_cuda_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "CUDA out of memory" in str(exc)


class BatchBackoff:
    """Runs a batched function; on CUDA out-of-memory halves the batch, retries and says so.

    The smaller batch is kept for the rest of the run. Tiles are independent in eval mode,
    so the output does not change, only the speed.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.limit: int | None = None

    def __call__(self, function: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> np.ndarray:
        """``function`` over ``batch`` (B, …) in chunks of the current limit; on CUDA OOM the limit halves."""
        size = len(batch) if self.limit is None else min(self.limit, len(batch))
        outputs, start = [], 0
        while start < len(batch):
            chunk = batch[start:start + size]
            try:
                outputs.append(function(chunk))
            except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
                if not _is_cuda_oom(exc):
                    raise
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                if size == 1:
                    raise Pix2PixError(
                        "CUDA ran out of memory with a single tile. Lower --tile-size (TILE_SIZE), close other "
                        "programs using the GPU, or use --device cpu."
                    ) from exc
                size = self.limit = max(1, size // 2)
                self.progress.warning(
                    f"CUDA ran out of memory with a batch of {len(chunk)} tiles; retrying with batches of {size} "
                    f"(same output, slower). Use --batch-size {size} (BATCH_SIZE) to start there."
                )
                continue
            start += len(chunk)
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
