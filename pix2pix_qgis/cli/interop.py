"""``import-reference`` and ``export-onnx``: models in from the reference pix2pix, out to ONNX.

Registered by ``cli.build_parser`` through :func:`add_interop_parsers`; handlers take
``(args, progress)`` and return the result dict, like every command.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core.progress import Progress


def add_interop_parsers(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the ``import-reference`` and ``export-onnx`` subcommands."""
    p = commands.add_parser(
        "import-reference", parents=[common], help="turn a reference pix2pix generator (.pth) into a .p2p model",
        description="Import CHECKPOINT, a generator saved by the reference PyTorch pix2pix "
                    "(junyanz/pytorch-CycleGAN-and-pix2pix, e.g. latest_net_G.pth of a unet_256 model), as the "
                    "model package OUTPUT. Only tensors are loaded (torch.load weights_only); bands, NGF, depth and "
                    "norm are read from the weights; 8-bit input and output with the reference's [0, 255] ↔ "
                    "[-1, 1] scaling.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="the reference's <epoch>_net_G.pth")
    p.add_argument("output", metavar="OUTPUT", help="model package (.p2p) to write")
    p.add_argument("--chip-size", type=int,
                   help="tile size the model was trained on (default 2^depth: 256 for unet_256, 128 for unet_128)")
    p.add_argument("--norm-stats", choices=["running", "per-image"], default="running",
                   help="BatchNorm at test time: running = the reference with --eval (default); per-image = the "
                        "reference's default test mode (each tile's own statistics), without dropout noise")
    p.set_defaults(handler=_run_import_reference)

    p = commands.add_parser(
        "export-onnx", parents=[common], help="export a .p2p model's generator to ONNX",
        description="Write MODEL's generator as the ONNX file OUTPUT: input 'input' (N, bands, tile, tile) "
                    "normalised to [-1, 1], output 'output' in [-1, 1], dynamic batch N; tile size, bands and both "
                    "normalisations in the model's metadata_props. Needs the optional packages onnx, onnxscript "
                    "(and onnxruntime to check the file): pip install 'pix2pix-qgis[onnx]'.",
    )
    p.add_argument("model", metavar="MODEL", help="model package (.p2p)")
    p.add_argument("output", metavar="OUTPUT", help="ONNX file to write (replaced only on success)")
    p.add_argument("--tile-size", type=int, help="tile size of the exported graph (default: the model's chip size)")
    p.add_argument("--no-check", action="store_true",
                   help="do not compare ONNX Runtime's output with PyTorch's after writing")
    p.add_argument("--deepness", choices=["regressor", "superresolution"],
                   help="a graph for the Deepness QGIS plugin: its input convention in, target units (rounded, "
                        "0..255) out. regressor: one output per band, runs in Deepness' dock; superresolution: "
                        "one output, needs scale factor 1 (Deepness' Python API only)")
    p.set_defaults(handler=_run_export_onnx)


def _run_import_reference(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..interop.reference import import_reference

    return import_reference(args.checkpoint, args.output, args.chip_size, args.norm_stats, progress)


def _run_export_onnx(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..interop.onnx import export_onnx

    return export_onnx(args.model, args.output, args.tile_size, check=not args.no_check, progress=progress,
                       deepness=args.deepness)
