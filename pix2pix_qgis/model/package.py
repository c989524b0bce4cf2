"""The model package ``.p2p``: the contract between training and translation.

A ``.p2p`` is one zip holding exactly ``model.json`` (everything translation needs: bands,
normalisation, architecture, chip size, training grid, plus the training record; read into a ``model.card.ModelCard``),
``weights.safetensors`` (the generator of the best epoch), ``preview.png``, ``losses.png``
and ``metrics.csv``, read and written through ``model.archive``. A CycleGAN package also holds
``weights_b2a.safetensors``, its B→A generator; ``weights.safetensors`` is then A→B. Each
weights file is one generator's plain state dict, with the reference's key names.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_safetensors
from torch import nn

from ..contract.errors import Pix2PixError
from ..data.normalization import Normalization
from .archive import cpu_tensors, parse_json, parse_safetensors, read_entries, to_json, write_zip
from .card import ModelCard
from .generators import Generator, load_weights

MODEL_ENTRIES = ("model.json", "weights.safetensors", "preview.png", "losses.png", "metrics.csv")
B2A_WEIGHTS = "weights_b2a.safetensors"  # CycleGAN packages only


def write_package(
    path: str | Path,
    card: ModelCard,
    generator_state: dict[str, torch.Tensor],
    preview_png: bytes | None = None,
    losses_png: bytes | None = None,
    b2a_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write the ``.p2p`` at ``path`` atomically; returns its absolute path.

    ``b2a_state`` is a CycleGAN's B→A generator (``card.model_type`` cyclegan). A package
    without figures (an imported model has no training to show) carries figures that say so
    in their place, so every package of a type has the same entries.
    """
    from ..core import plots  # matplotlib only where figures are drawn, not for translation

    if (b2a_state is None) != (card.generator_b2a is None):
        raise ValueError("b2a_state is given exactly for a card with a B→A generator")

    def weights(state: dict[str, torch.Tensor]) -> bytes:
        return save_safetensors(cpu_tensors(state), metadata={"format": "pix2pix-generator"})

    return write_zip(Path(path), {
        "model.json": to_json(card.to_dict()),
        "weights.safetensors": weights(generator_state),
        **({B2A_WEIGHTS: weights(b2a_state)} if b2a_state is not None else {}),
        "preview.png": preview_png or plots.png(plots.chips_figure([])),
        "losses.png": losses_png or plots.png(plots.losses_figure([])),
        "metrics.csv": metrics_csv(card.metrics.history).encode("utf-8"),
    })


def read_package(path: str | Path, direction: str = "a2b") -> tuple[ModelCard, dict[str, torch.Tensor]]:
    """The card of ``direction`` (``ModelCard.direction``) and that generator's tensors, checked but not yet built.

    ``b2a`` needs a CycleGAN package; a Pix2Pix one is refused with the fix.
    """
    path = Path(path)
    entries = read_entries(path, MODEL_ENTRIES, "model package (.p2p)", optional=(B2A_WEIGHTS,))
    card = ModelCard.from_dict(parse_json(entries["model.json"], "model.json", path), path)
    if (B2A_WEIGHTS in entries) != (card.model_type == "cyclegan"):
        raise Pix2PixError(f"{path} is not a valid model package (.p2p): a {card.model_type} model "
                           f"{'without' if B2A_WEIGHTS not in entries else 'with'} {B2A_WEIGHTS}. It may be damaged "
                           "or come from another program; refused.")
    try:
        card = card.direction(direction)
    except Pix2PixError as exc:
        raise Pix2PixError(f"{path}: {exc}") from None
    name = B2A_WEIGHTS if direction == "b2a" else "weights.safetensors"
    return card, parse_safetensors(entries[name], name, path)


def load_model(path: str | Path, device: str | torch.device = "cpu", direction: str = "a2b"
               ) -> tuple[Generator, ModelCard]:
    """The generator of ``direction`` of a ``.p2p`` in eval mode on ``device``, and the card of that direction."""
    card, state = read_package(path, direction)
    generator = load_weights(card.generator, state, str(path))
    return generator.to(device).eval(), card


@torch.no_grad()
def predict(generator: nn.Module, batch: torch.Tensor, output_norm: Normalization) -> torch.Tensor:
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
