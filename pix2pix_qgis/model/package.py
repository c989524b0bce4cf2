"""The model package ``.p2p``: the contract between training and translation.

A ``.p2p`` is one zip holding exactly ``model.json`` (everything translation needs: bands,
normalisation, architecture, chip size, training grid, plus the training record),
``weights.safetensors`` (the generator of the best epoch), ``preview.png``, ``losses.png``
and ``metrics.csv``, read and written through ``model.archive``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as save_safetensors

from .. import __version__
from ..contract.errors import Pix2PixError
from ..core.schema import MODEL_SCHEMA, validate
from ..data.normalization import Normalization
from .archive import cpu_tensors, parse_json, parse_safetensors, read_entries, to_json, write_zip
from .networks import GeneratorSpec, UnetGenerator

MODEL_FORMAT, MODEL_VERSION = "pix2pix-model", 1


MODEL_ENTRIES = ("model.json", "weights.safetensors", "preview.png", "losses.png", "metrics.csv")


def software_versions() -> dict[str, str]:
    import rasterio
    import safetensors

    return {"pix2pix_qgis": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "rasterio": rasterio.__version__, "gdal": rasterio.__gdal_version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def model_metadata(
    chips: dict[str, Any],
    generator: GeneratorSpec,
    discriminator: dict[str, Any],
    training: dict[str, Any],
    history: list[dict[str, Any]],
    best_epoch: int | None,
    best_metric: str,
) -> dict[str, Any]:
    """The ``model.json`` document; ``chips`` is :meth:`ChipsFolder.describe`."""
    best = next((row for row in history if row.get("epoch") == best_epoch), None)
    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "architecture": {"generator": generator.to_dict(), "discriminator": discriminator},
        "chip_size": chips["chip_size"],
        "input": chips["input"],
        "output": chips["output"],
        "grid": chips["grid"],
        "inference": {
            "mode": "eval",
            "note": "BatchNorm uses its running statistics and dropout is off, so each tile's output does not "
                    "depend on the other tiles in its batch and runs are repeatable.",
        },
        "training": {**training, "chips": chips["chips"]},
        "metrics": {"best_epoch": best_epoch, "best_metric": best_metric, "best": best, "history": history},
        "software": software_versions(),
    }


def write_package(
    path: str | Path,
    metadata: dict[str, Any],
    generator_state: dict[str, torch.Tensor],
    preview_png: bytes | None = None,
    losses_png: bytes | None = None,
) -> Path:
    """Write the ``.p2p`` at ``path`` atomically; returns its absolute path.

    A package without figures (an imported model has no training to show) carries figures
    that say so in their place, so every package has the same entries.
    """
    from ..core import plots  # matplotlib only where figures are drawn, not for translation

    weights = save_safetensors(cpu_tensors(generator_state), metadata={"format": "pix2pix-generator"})
    return write_zip(Path(path), {
        "model.json": to_json(metadata),
        "weights.safetensors": weights,
        "preview.png": preview_png or plots.png(plots.chips_figure([])),
        "losses.png": losses_png or plots.png(plots.losses_figure([])),
        "metrics.csv": metrics_csv(metadata["metrics"]["history"]).encode("utf-8"),
    })


def read_package(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``model.json`` and the generator's tensors of a ``.p2p``, checked but not yet built."""
    path = Path(path)
    entries = read_entries(path, MODEL_ENTRIES, "model package (.p2p)")
    metadata = parse_json(entries["model.json"], "model.json", path)
    if metadata.get("format") != MODEL_FORMAT or not isinstance(metadata.get("format_version"), int):
        raise Pix2PixError(f"{path} is not a Pix2Pix model package (model.json format {metadata.get('format')!r}).")
    if metadata["format_version"] > MODEL_VERSION:
        raise Pix2PixError(
            f"{path} is model format version {metadata['format_version']}; this engine reads up to "
            f"{MODEL_VERSION}. Update the plugin."
        )
    validate(metadata, MODEL_SCHEMA, path, "model.json", "The package is damaged or was not written by 'train'.")
    return metadata, parse_safetensors(entries["weights.safetensors"], "weights.safetensors", path)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[UnetGenerator, dict[str, Any]]:
    """The generator of a ``.p2p`` in eval mode on ``device``, and its ``model.json``."""
    metadata, state = read_package(path)
    spec = GeneratorSpec.from_dict(metadata["architecture"]["generator"])
    with torch.device("meta"):  # no random initialisation (0.4 s for NGF 64) that the weights replace
        generator = UnetGenerator(spec)
    try:
        generator.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise Pix2PixError(f"{path}: the weights do not match the architecture in model.json ({exc}).") from exc
    return generator.to(device).eval(), metadata


def output_normalization(metadata: dict[str, Any]) -> Normalization:
    return Normalization.from_dict(metadata["output"]["normalization"])


def input_normalization(metadata: dict[str, Any]) -> Normalization:
    return Normalization.from_dict(metadata["input"]["normalization"])


@torch.no_grad()
def predict(generator: UnetGenerator, batch: torch.Tensor, output_norm: Normalization) -> torch.Tensor:
    """Normalised input (B, C_in, H, W) → prediction (B, C_out, H, W) in the target's units (float32).

    H and W must be multiples of 2**depth (pad first); the generator should be in eval mode.
    """
    parameter = next(generator.parameters())
    out = generator(batch.to(device=parameter.device, dtype=parameter.dtype)).float()
    return output_norm.invert(out)


def metrics_csv(history: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in history:
        columns += [key for key, value in row.items() if key not in columns and not isinstance(value, (list, dict))]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return out.getvalue()
