"""A per-user cache of generators exported to ONNX, so the ONNX Runtime backend starts at once.

Exporting an NGF 64 generator takes about 9 s on 2 CPU cores (BENCHMARKS.md), longer than
translating a 1000×1000 px raster. The cache key is a SHA-256 of every weight tensor (names,
dtypes, shapes, bytes), the input band count, the tile size and the torch/onnx versions, so an
entry can only ever serve the model it was made from. Entries are written to a temporary name
and renamed; a damaged one is exported again. ``PIX2PIX_CACHE_DIR`` moves the cache
(``off`` disables it); the default is ``$XDG_CACHE_HOME/pix2pix_toolbox/onnx``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

CACHE_VARIABLE = "PIX2PIX_CACHE_DIR"


def cache_dir() -> Path | None:
    """Where exported graphs are kept; None when the user turned the cache off."""
    chosen = os.environ.get(CACHE_VARIABLE, "").strip()
    if chosen.lower() in ("off", "0", "none"):
        return None
    if chosen:
        return Path(chosen) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.environ.get("LOCALAPPDATA") if os.name == "nt" else None) or str(Path.home() / ".cache")
    return Path(base) / "pix2pix_toolbox" / "onnx"


def cache_key(generator: torch.nn.Module, in_channels: int, tile: int) -> str:
    """SHA-256 over the weights and everything else that shapes the exported graph."""
    import onnx
    import onnxscript

    digest = hashlib.sha256(f"{in_channels}|{tile}|{torch.__version__}|{onnx.__version__}|"
                            f"{onnxscript.__version__}".encode())
    for name, tensor in sorted(generator.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy() if data.numel() else b"")
    return digest.hexdigest()


def read_entry(key: str) -> bytes | None:
    """The cached ONNX graph of ``key``, or None when absent, unreadable or the cache is off."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        return (folder / f"{key}.onnx").read_bytes()
    except OSError:
        return None


def write_entry(key: str, data: bytes) -> Path | None:
    """Store ``data`` atomically; a cache that cannot be written is skipped, never an error."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{key}.", suffix=".partial", delete=False) as handle:
            handle.write(data)
        target = folder / f"{key}.onnx"
        os.replace(handle.name, target)
        return target
    except OSError:
        return None
