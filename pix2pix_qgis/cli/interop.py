"""``import-reference`` and ``export-onnx``: models in from the reference pix2pix, out to ONNX.

Registered by ``cli.build_parser`` through :func:`add_interop_parsers`; handlers take
``(args, progress)`` and return the result dict, like every command.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..contract.tables import EXPORT_ONNX, IMPORT_REFERENCE
from ..core.progress import Progress
from .options import Parser, add_command, values


def add_interop_parsers(commands: argparse._SubParsersAction[Parser], common: Parser) -> None:
    """Register the ``import-reference`` and ``export-onnx`` subcommands."""
    add_command(commands, common, IMPORT_REFERENCE, _run_import_reference,
                help="turn a reference pix2pix generator (.pth) into a .p2p model",
                description="Import CHECKPOINT, a generator saved by the reference PyTorch pix2pix "
                            "(junyanz/pytorch-CycleGAN-and-pix2pix, e.g. latest_net_G.pth of a unet_256 model), as "
                            "the model package OUTPUT. Only tensors are loaded (torch.load weights_only); bands, NGF, "
                            "depth and norm are read from the weights; 8-bit input and output with the reference's "
                            "[0, 255] ↔ [-1, 1] scaling.")
    add_command(commands, common, EXPORT_ONNX, _run_export_onnx, help="export a .p2p model's generator to ONNX",
                description="Write MODEL's generator as the ONNX file OUTPUT: input 'input' (N, bands, tile, tile) "
                            "normalised to [-1, 1], output 'output' in [-1, 1], dynamic batch N; tile size, bands and "
                            "both normalisations in the model's metadata_props. Needs the optional packages onnx, "
                            "onnxscript (and onnxruntime to check the file): pip install 'pix2pix-qgis[onnx]'.")


def _run_import_reference(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..interop.reference import import_reference

    return import_reference(**values(IMPORT_REFERENCE, args), progress=progress)


def _run_export_onnx(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..interop.onnx import export_onnx

    given = values(EXPORT_ONNX, args)
    return export_onnx(given.pop("model"), **given, progress=progress)
