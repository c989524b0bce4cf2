"""Which torch device a run uses, and which reduced precision that device can run.

``resolve_device`` is the one place the device name a user typed becomes a
``torch.device`` (``auto`` → the first CUDA device when this PyTorch can use one);
``autocast_dtype`` the one place a precision name is checked against the device, each
with an error that says what this interpreter can use instead.
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


def cpu_supports_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX) that oneDNN uses.

    Without them PyTorch emulates bfloat16 on the CPU, slower than float32 and no more exact.
    """
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (float32: None, no autocast), or an error saying why not."""
    if precision == "float32":
        return None
    if precision == "float16":
        if device.type != "cuda":
            raise Pix2PixError(
                f"PRECISION float16 runs only on a CUDA GPU, not on {device}. On the CPU use float32 (exact), or "
                "bfloat16 on a CPU with AVX512-BF16 or AMX instructions."
            )
        return torch.float16
    if precision == "bfloat16":
        supported = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_supports_bfloat16()
        if not supported:
            where = f"GPU {device}" if device.type == "cuda" else "CPU"
            raise Pix2PixError(
                f"PRECISION bfloat16 needs bfloat16 instructions, which this {where} lacks (CPU: AVX512-BF16 or "
                "AMX; GPU: compute capability 8.0 or newer); emulated it would be slower than float32. Use "
                "PRECISION float32" + (", or float16 on this GPU." if device.type == "cuda" else ".")
            )
        return torch.bfloat16
    raise Pix2PixError(f"Unknown PRECISION '{precision}': use float32, bfloat16 or float16.")
