"""Which torch device a run uses: ``auto`` → the first CUDA device when this PyTorch can use one.

The one place the device name a user typed becomes a ``torch.device``, with an error
that says what this interpreter can use instead.
"""

from __future__ import annotations

import torch

from ..contract.errors import Pix2PixError


def resolve_device(name: str) -> torch.device:
    """``auto`` → the first CUDA device if this PyTorch can use one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise Pix2PixError(
                f"Device '{name}' was asked for, but this PyTorch ({torch.__version__}) cannot use CUDA "
                f"(CUDA build: {torch.version.cuda or 'none'}). Use device cpu or auto, or install a CUDA build "
                "of PyTorch ('pix2pix-qgis doctor' shows what this interpreter can use)."
            )
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise Pix2PixError(f"Device '{name}' does not exist: this machine has {torch.cuda.device_count()} GPU(s).")
    return torch.device(name)
