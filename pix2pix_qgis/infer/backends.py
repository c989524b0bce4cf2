"""Inference backends: a normalised (B, C, T, T) float32 batch in, the prediction in target units out.

``TorchBackend`` runs the generator with PyTorch in channels-last memory layout, on the CPU
through oneDNN (the fastest float32 kernels PyTorch has there) and on CUDA through cuDNN with
a pinned staging buffer. oneDNN picks its kernels by the input's shape, so a tile's output
would change in the last bits with the number of tiles per call; on the CPU every call
therefore has one fixed shape, ``cpu_batch`` tiles (the last call of a run is padded), chosen
from the tile size and never from BATCH_SIZE: the same input, model and settings give the
same output bit for bit, whatever the batch size. ``PRECISION`` bfloat16 (CPUs with
AVX512-BF16/AMX, recent GPUs) or float16 (CUDA) autocasts the forward pass; float32, the
default, is exact. ``OnnxRuntimeBackend`` (``--backend onnxruntime``, CPU only, float32)
exports the generator to ONNX once per model and tile size into a per-user cache
(``interop.onnx_cache``). Measured speed and accuracy: BENCHMARKS.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from ..contract.errors import Pix2PixError
from ..core.progress import Progress
from ..data.augment import dihedral
from ..model.card import ModelCard
from ..model.device import autocast_dtype

# Pixels per CPU forward call: four 256 px tiles. oneDNN's per-pixel cost is flat from here
# on, and smaller calls pay a fixed overhead per layer (BENCHMARKS.md, "CPU kernels").
CPU_BATCH_PIXELS = 4 * 256 * 256
CPU_BATCH_MAX = 16  # beyond this, tiny tiles gain nothing more and padding costs more


def cpu_batch(tile: int, tiles: int) -> int:
    """Tiles per CPU forward call for ``tile`` px tiles in a plan of ``tiles`` tiles: a function of the plan only."""
    return max(1, min(CPU_BATCH_MAX, CPU_BATCH_PIXELS // (tile * tile), tiles))


@contextmanager
def _onednn(enabled: bool) -> Iterator[None]:
    """Switch oneDNN (mkldnn) kernels on or off for the block, restoring the previous state."""
    previous = torch.backends.mkldnn.enabled
    # torch types this module attribute as its ContextProp descriptor, yet assigning a bool is
    # how torch documents switching oneDNN (the descriptor's setter takes it).
    torch.backends.mkldnn.enabled = enabled  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


class TorchBackend:
    """The generator on its device: normalised (B, C, T, T) float32 → target units (B, C, T, T).

    ``batch`` is how many tiles a caller should gather per call: ``cpu_batch`` on the CPU
    (the fixed shape of every forward; other counts are split or padded to it), BATCH_SIZE on CUDA.
    """

    def __init__(self, generator: torch.nn.Module, card: ModelCard, device: torch.device, tta: bool,
                 batch: int, tile: int, precision: str = "float32", tiles: int | None = None) -> None:
        self.device, self.tta = device, tta
        self.autocast = autocast_dtype(precision, device)
        # torch's Module.to overloads omit memory_format, which Module.to accepts (see its docstring).
        self.generator = generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # The output map [-1, 1] → target units as one fused multiply-add, y·scale + offset, written
        # straight into the contiguous layout numpy callers expect (one pass over the output).
        norm = card.output.normalization
        low, high = (np.asarray(values, dtype=np.float64)[:, None, None] for values in (norm.low, norm.high))
        self.scale, self.offset = (torch.as_tensor(v, dtype=torch.float32, device=device)
                                   for v in (0.5 * (high - low), 0.5 * (high + low)))
        self.cuda = device.type == "cuda"
        self.batch = batch if self.cuda else cpu_batch(tile, tiles if tiles is not None else batch)
        self.pinned = (torch.empty((batch, card.generator.in_channels, tile, tile), dtype=torch.float32).pin_memory()
                       if self.cuda else None)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        if self.autocast is None:
            return self.generator(x)
        with torch.autocast(self.device.type, dtype=self.autocast):
            return self.generator(x).float()

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """Target units, in the contiguous (B, C, T, T) layout numpy callers expect."""
        y = self._forward(x)
        if self.tta:
            for k in range(1, 8):
                y = y + dihedral(self._forward(dihedral(x, k)), k, inverse=True)
            y = y / 8
        return torch.addcmul(self.offset, y, self.scale, out=torch.empty(y.shape, dtype=y.dtype, device=y.device))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Normalised (B, C_in, T, T) float32 → (B, C_out, T, T) float32 in target units (TTA: mean of 8 views)."""
        with torch.inference_mode(), _onednn(enabled=True):
            if self.cuda:
                assert self.pinned is not None
                staging = self.pinned[: len(batch)]
                staging.copy_(torch.from_numpy(batch))
                return self._predict(staging.to(self.device, non_blocking=True)).cpu().numpy()
            x = torch.from_numpy(batch)
            outputs = []
            for start in range(0, len(x), self.batch):
                chunk = x[start:start + self.batch]
                if len(chunk) < self.batch:  # the fixed shape: pad with zero (mid-range) tiles, drop their output
                    chunk = torch.cat([chunk, chunk.new_zeros((self.batch - len(chunk), *chunk.shape[1:]))])
                outputs.append(self._predict(chunk))
            return torch.cat(outputs)[: len(x)].numpy()


def make_backend(name: str, generator: torch.nn.Module, card: ModelCard, device: torch.device, tta: bool,
                 batch_size: int, tile: int, progress: Progress, precision: str = "float32",
                 tiles: int | None = None) -> Any:
    """The backend ``name`` (``TorchBackend``, or ``OnnxRuntimeBackend`` on the CPU): a batch → target units."""
    if name == "torch":
        return TorchBackend(generator, card, device, tta, batch_size, tile, precision, tiles)
    if device.type != "cpu":
        raise Pix2PixError(f"The onnxruntime backend runs on the CPU, not {device}; use --device cpu, or "
                           "--backend torch on the GPU.")
    if precision != "float32":
        raise Pix2PixError(f"The onnxruntime backend runs in float32 only; use --precision float32, or --backend "
                           f"torch for {precision}.")
    from .onnxruntime import OnnxRuntimeBackend  # optional packages: imported only when asked for

    return OnnxRuntimeBackend(generator, card, tile, tta, progress, batch=batch_size)
