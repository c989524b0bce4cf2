"""Pix2Pix for georeferenced rasters: paired-chip export, training and whole-raster translation.

The engine never imports QGIS. Public API: :func:`export_chips` (:class:`ChipSpec`),
:func:`export_unpaired` (:class:`UnpairedSpec`),
:func:`train` (:class:`TrainConfig`), :func:`translate_raster` (:class:`TranslateSpec`),
:func:`evaluate_rasters`, :func:`load_model` (:class:`ModelCard`), and the arcgis.learn-style
:func:`prepare_data` / :class:`Pix2Pix`, :class:`CycleGAN` (:func:`train_cyclegan`); errors are
:class:`Pix2PixError`. Names are imported lazily (PEP 562) so that
``python -m pix2pix_qgis`` can report a missing dependency as a protocol error instead of
dying in an import traceback, and so ``import pix2pix_qgis`` never pulls in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ChipSpec": "chips.spec",
    "export_chips": "chips.export",
    "UnpairedSpec": "chips.unpaired",
    "export_unpaired": "chips.unpaired",
    "TrainConfig": "train.config",
    "train": "train.loop",
    "load_model": "model.package",
    "ModelCard": "model.card",
    "TranslateSpec": "infer.translate",
    "translate_raster": "infer.translate",
    "evaluate_rasters": "evaluate.rasters",
    "translate_part": "scale.parts",
    "assemble_parts": "scale.assemble",
    "prepare_data": "api",
    "Pix2Pix": "api",
    "CycleGAN": "api",
    "train_cyclegan": "train.cyclegan",
    "Pix2PixError": "contract.errors",
    "Cancelled": "contract.errors",
    "Progress": "core.progress",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
