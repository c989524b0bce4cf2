"""The model package ``.p2p``: the contract between training and translation.

A ``.p2p`` is one zip holding exactly ``model.json`` (everything translation needs: bands,
normalisation, architecture, chip size, training grid, plus the training record; read into a ``model.card.ModelCard``),
``weights.safetensors`` (the generator of the best epoch), ``preview.png``, ``losses.png``
and ``metrics.csv``, read and written through ``model.archive``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_safetensors

from ..contract.errors import Pix2PixError
from ..data.normalization import Normalization
from .archive import cpu_tensors, parse_json, parse_safetensors, read_entries, to_json, write_zip
from .card import ModelCard
from .networks import UnetGenerator

MODEL_ENTRIES = ("model.json", "weights.safetensors", "preview.png", "losses.png", "metrics.csv")


def write_package(
    path: str | Path,
    card: ModelCard,
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
        "model.json": to_json(card.to_dict()),
        "weights.safetensors": weights,
        "preview.png": preview_png or plots.png(plots.chips_figure([])),
        "losses.png": losses_png or plots.png(plots.losses_figure([])),
        "metrics.csv": metrics_csv(card.metrics.history).encode("utf-8"),
    })


def read_package(path: str | Path) -> tuple[ModelCard, dict[str, torch.Tensor]]:
    """The model card and the generator's tensors of a ``.p2p``, checked but not yet built."""
    path = Path(path)
    entries = read_entries(path, MODEL_ENTRIES, "model package (.p2p)")
    card = ModelCard.from_dict(parse_json(entries["model.json"], "model.json", path), path)
    return card, parse_safetensors(entries["weights.safetensors"], "weights.safetensors", path)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[UnetGenerator, ModelCard]:
    """The generator of a ``.p2p`` in eval mode on ``device``, and its model card."""
    card, state = read_package(path)
    with torch.device("meta"):  # no random initialisation (0.4 s for NGF 64) that the weights replace
        generator = UnetGenerator(card.generator)
    expected = generator.state_dict()
    wrong = [f"{key} ({tensor.dtype})" for key, tensor in state.items()
             if key in expected and tensor.is_floating_point() != expected[key].is_floating_point()]
    if wrong:
        raise Pix2PixError(f"{path}: the weights have the wrong type for the network: {', '.join(wrong[:5])}. The "
                           "package is damaged or was not written by this engine.")
    try:
        generator.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise Pix2PixError(f"{path}: the weights do not match the architecture in model.json ({exc}).") from exc
    return generator.to(device).eval(), card


@torch.no_grad()
def predict(generator: UnetGenerator, batch: torch.Tensor, output_norm: Normalization) -> torch.Tensor:
    """Normalised input (B, C_in, H, W) → prediction (B, C_out, H, W) in the target's units (float32).

    H and W must be multiples of 2**depth (pad first); the generator should be in eval mode.
    """
    parameter = next(generator.parameters())
    out = generator(batch.to(device=parameter.device, dtype=parameter.dtype)).float()
    return output_norm.invert(out)


def metrics_csv(history: Sequence[Mapping[str, Any]]) -> str:
    """The epoch history as CSV: one row per epoch, one column per scalar (per-band lists stay in model.json)."""
    columns: list[str] = []
    for row in history:
        columns += [key for key, value in row.items()
                    if key not in columns and not isinstance(value, (list, tuple, Mapping))]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return out.getvalue()
