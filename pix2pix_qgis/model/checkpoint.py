"""The resumable training checkpoint ``<model>.ckpt``: exactly ``checkpoint.json`` and ``tensors.safetensors``.

Optimizer states are flattened into named tensors plus a JSON structure, so a checkpoint
holds no pickle either (``model.archive`` reads and writes it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_safetensors

from ..contract.errors import Pix2PixError
from ..core.schema import CHECKPOINT_SCHEMA, validate
from .archive import parse_json, parse_safetensors, read_entries, to_json, write_zip

CHECKPOINT_FORMAT, CHECKPOINT_VERSION = "pix2pix-checkpoint", 1


CHECKPOINT_ENTRIES = ("checkpoint.json", "tensors.safetensors")


def checkpoint_path(model_path: str | Path) -> Path:
    """Where the resumable checkpoint of ``model_path`` lives: beside it, ``<name>.ckpt``."""
    model_path = Path(model_path).absolute()
    return model_path.with_name(model_path.name + ".ckpt")


def flatten_optimizer(state: dict[str, Any], prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's ``state_dict`` as tensors (named ``prefix/<param>/<key>``) plus a JSON structure.

    The tensors are the optimizer's own (not copies) when it lives on the CPU: serialise
    them, don't hand them to another optimizer.
    """
    tensors: dict[str, torch.Tensor] = {}
    per_param: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        entry: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                name = f"{prefix}/{index}/{key}"
                tensors[name] = value.detach().cpu().contiguous()
                entry[key] = {"tensor": name}
            else:
                entry[key] = {"value": value}
        per_param[str(index)] = entry
    return tensors, {"state": per_param, "param_groups": state["param_groups"]}


def unflatten_optimizer(structure: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Rebuild an optimizer ``state_dict`` from :func:`flatten_optimizer`'s JSON structure and tensors."""
    state: dict[int, dict[str, Any]] = {}
    for index, entry in structure["state"].items():
        state[int(index)] = {
            key: tensors[spec["tensor"]] if "tensor" in spec else spec["value"] for key, spec in entry.items()
        }
    groups = [{**group, **({"betas": tuple(group["betas"])} if "betas" in group else {})}
              for group in structure["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(path: Path, document: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Path:
    """Write ``checkpoint.json`` (``document`` plus the format) and the tensors, atomically."""
    document = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, **document}
    blob = save_safetensors({name: t.detach().cpu().contiguous() for name, t in tensors.items()})
    return write_zip(path, {"checkpoint.json": to_json(document), "tensors.safetensors": blob})


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``checkpoint.json`` and the tensors of a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    entries = read_entries(path, CHECKPOINT_ENTRIES, "training checkpoint")
    document = parse_json(entries["checkpoint.json"], "checkpoint.json", path)
    if document.get("format") != CHECKPOINT_FORMAT or document.get("format_version", 99) > CHECKPOINT_VERSION:
        raise Pix2PixError(f"{path} is not a training checkpoint this engine can resume; train without resume.")
    validate(document, CHECKPOINT_SCHEMA, path, "checkpoint.json", "Train afresh without resume.")
    return document, parse_safetensors(entries["tensors.safetensors"], "tensors.safetensors", path)


def tensor_group(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors named ``prefix/<key>``, keyed by ``<key>``."""
    start = len(prefix) + 1
    return {name[start:]: value for name, value in tensors.items() if name.startswith(prefix + "/")}
