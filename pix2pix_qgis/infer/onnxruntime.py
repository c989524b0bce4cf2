"""ONNX Runtime as translate's inference backend on the CPU (``--backend onnxruntime``).

Same call as ``backends.TorchBackend``: a normalised (B, C, T, T) float32 batch in, the
prediction in the target's units out. The generator is exported to ONNX in memory at the
translation's tile size the first time a model is used at that size (about 9 s for NGF 64)
and kept in a per-user cache (``interop.onnx_cache``), so the ``.p2p`` stays the only model
file and later runs start at once. ONNX Runtime's CPU kernels are batch-invariant (a tile's
output does not depend on its batch-mates, checked bit for bit in the tests), like PyTorch's
native kernels. Measured speed and accuracy against
the torch backend: BENCHMARKS.md, "ONNX Runtime".
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..core.progress import Progress
from ..data.augment import dihedral
from ..interop import onnx_cache
from ..interop.onnx import INPUT_NAME, generator_to_onnx, session
from ..model.card import ModelCard


def _cached_session(generator: torch.nn.Module, channels: int, tile: int, threads: int | None) -> tuple[Any, bool]:
    """A session on the cached graph of this generator and tile, exporting (and caching) it when absent or damaged."""
    key = onnx_cache.cache_key(generator, channels, tile)
    cached = onnx_cache.read_entry(key)
    if cached is not None:
        try:
            return session(cached, threads), True
        except Exception:  # noqa: BLE001 - any failure to load a cache entry means: export it again
            pass
    exported = generator_to_onnx(generator, channels, tile).SerializeToString()
    onnx_cache.write_entry(key, exported)
    return session(exported, threads), False


class OnnxRuntimeBackend:
    """The generator in an ONNX Runtime CPU session: normalised (B, C, T, T) float32 → target units."""

    def __init__(self, generator: torch.nn.Module, card: ModelCard, tile: int, tta: bool,
                 progress: Progress | None = None, threads: int | None = None, batch: int = 4) -> None:
        started = time.perf_counter()
        self.session, self.from_cache = _cached_session(generator, card.generator.in_channels, tile, threads)
        self.output_norm = card.output.normalization
        self.tta = tta
        self.batch = batch  # tiles a caller gathers per call (its kernels are batch-invariant)
        self.setup_seconds = time.perf_counter() - started
        if progress is not None:
            how = "graph from the cache" if self.from_cache else f"exported at {tile} px"
            progress.info(f"ONNX Runtime backend ready in {self.setup_seconds:.1f} s ({how}).")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Normalised (B, C_in, T, T) float32 → (B, C_out, T, T) float32 in target units (TTA: mean of 8 views)."""
        views = range(8) if self.tta else range(1)
        total = self._view(batch, 0)
        for k in views[1:]:
            total = total + self._view(batch, k)
        return np.asarray(self.output_norm.invert(total / len(views)), dtype=np.float32)

    def _view(self, batch: np.ndarray, k: int) -> np.ndarray:
        """The prediction for dihedral view ``k`` of ``batch``, turned back to ``batch``'s orientation."""
        x = np.ascontiguousarray(dihedral(batch, k), dtype=np.float32)
        return dihedral(self.session.run(None, {INPUT_NAME: x})[0], k, inverse=True)
