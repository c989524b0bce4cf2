"""Inference backends: a normalised (B, C, T, T) float32 batch in, the prediction in target units out.

``TorchBackend`` runs the generator with PyTorch (CUDA: batched fp16 autocast,
channels-last, a pinned staging buffer; CPU: one tile per call through the native kernels,
which are batch-invariant). ``OnnxRuntimeBackend`` (``--backend onnxruntime``, CPU only)
exports the generator to ONNX once per model and tile size into a per-user cache
(``interop.onnx_cache``) and runs it with ONNX Runtime, whose CPU kernels are batch-invariant
too. Measured speed and accuracy: BENCHMARKS.md, "ONNX Runtime".
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
    """The generator on its device: normalised (B, C, T, T) float32 → target units (B, C, T, T)."""

    def __init__(self, generator: torch.nn.Module, card: ModelCard, device: torch.device, tta: bool,
                 batch: int, tile: int) -> None:
        self.generator, self.device, self.tta = generator, device, tta
        self.output_norm = card.output.normalization
        self.cuda = device.type == "cuda"
        if self.cuda:
            # torch's Module.to overloads omit memory_format, which Module.to accepts (see its docstring).
            self.generator = self.generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            channels = card.generator.in_channels
            self.pinned = torch.empty((batch, channels, tile, tile), dtype=torch.float32).pin_memory()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cuda:
            return self.generator(x)
        # The native CPU kernels gain nothing from batching (BENCHMARKS.md, "CPU kernels"):
        # one tile at a time is as fast or faster, and the output is the same bit for bit.
        return torch.cat([self.generator(tile[None]) for tile in x])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Normalised (B, C_in, T, T) float32 → (B, C_out, T, T) float32 in target units (TTA: mean of 8 views)."""
        # On the CPU, oneDNN picks kernels by batch size, so a tile's output would change in the
        # last bits with BATCH_SIZE. PyTorch's native kernels compute each sample alone: the same
        # input gives the same output, bit for bit, whatever the batch (measured cost in BENCHMARKS.md).
        with torch.inference_mode(), _onednn(enabled=self.cuda):
            if self.cuda:
                staging = self.pinned[: len(batch)]
                staging.copy_(torch.from_numpy(batch))
                x = staging.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            else:
                x = torch.from_numpy(batch)
            views = range(8) if self.tta else range(1)
            total = self._view(x, 0)
            for k in views[1:]:
                total = total + self._view(x, k)
            out = self.output_norm.invert(total / len(views))
            return out.cpu().numpy()

    def _view(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """The prediction for dihedral view ``k`` of ``x``, turned back to ``x``'s orientation (float32)."""
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.cuda):
            y = self._forward(dihedral(x, k)).float()
        return dihedral(y, k, inverse=True)


def make_backend(name: str, generator: torch.nn.Module, card: ModelCard, device: torch.device, tta: bool,
                 batch_size: int, tile: int, progress: Progress) -> Any:
    """The backend ``name`` (``TorchBackend``, or ``OnnxRuntimeBackend`` on the CPU): a batch → target units."""
    if name == "torch":
        return TorchBackend(generator, card, device, tta, batch_size, tile)
    if device.type != "cpu":
        raise Pix2PixError(f"The onnxruntime backend runs on the CPU, not {device}; use --device cpu, or "
                           "--backend torch on the GPU.")
    from .onnxruntime import OnnxRuntimeBackend  # optional packages: imported only when asked for

    return OnnxRuntimeBackend(generator, card, tile, tta, progress)
