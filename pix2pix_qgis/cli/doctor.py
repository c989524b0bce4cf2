"""What this interpreter can do: versions, CUDA and devices (``pix2pix-qgis doctor``)."""

from __future__ import annotations

import importlib
import platform
import sys
import warnings
from typing import Any

from .. import __version__

REQUIRED = ("numpy", "rasterio", "shapely", "torch", "safetensors", "PIL", "jsonschema")


def _version(module: str) -> str | None:
    try:
        imported = importlib.import_module(module)
    except ImportError:
        return None
    with warnings.catch_warnings():  # jsonschema deprecates __version__ but still has it
        warnings.simplefilter("ignore", DeprecationWarning)
        return getattr(imported, "__version__", "unknown")


def _devices() -> tuple[bool, list[dict[str, Any]], str | None]:
    try:
        import torch
    except ImportError:
        return False, [], None
    devices: list[dict[str, Any]] = [{"name": "cpu", "threads": torch.get_num_threads()}]
    cuda = torch.cuda.is_available()
    if cuda:
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append({"name": f"cuda:{index}", "model": props.name,
                            "memory_gib": round(props.total_memory / 2**30, 2),
                            "capability": f"{props.major}.{props.minor}"})
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append({"name": "mps"})
    return cuda, devices, torch.version.cuda


def diagnose() -> dict[str, Any]:
    """Versions, interpreter, GDAL, CUDA and devices of this Python, with the problems found (``doctor``)."""
    versions = {name: _version(name) for name in REQUIRED}
    gdal = None
    if versions["rasterio"]:
        import rasterio

        gdal = rasterio.__gdal_version__
    cuda, devices, cuda_build = _devices()
    problems = [
        f"{name} is not installed in {sys.executable}" for name, version in versions.items() if version is None
    ]
    return {
        "pix2pix_qgis": __version__,
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "platform": platform.platform(),
        **versions,
        "gdal": gdal,
        "torch_cuda_build": cuda_build,
        "cuda_available": cuda,
        "devices": devices,
        "problems": problems,
        "ok": not problems,
    }
