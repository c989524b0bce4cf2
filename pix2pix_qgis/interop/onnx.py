"""A ``.p2p`` model's generator as an ONNX file that other tools can run and understand.

The graph is the generator alone: input ``input`` (N, bands, tile, tile) float32 already
normalised to [-1, 1], output ``output`` (N, out bands, tile, tile) in [-1, 1]; the batch
axis N is dynamic, the tile size fixed (U-Nets need multiples of 2^depth, and tools such
as the Deepness QGIS plugin take the tile size from the input shape). How to get there and
back — bands, normalisations, dtypes, nodata — is in the model's ``metadata_props``, each
value JSON text (:func:`onnx_metadata`), under the keys the Deepness plugin reads
(``tile_size``, ``tiles_overlap``, and for 8-bit inputs ``standardization_mean/std``,
which then express our normalisation exactly) plus our own.

Export uses ``torch.onnx.export(dynamo=True)`` (the torch.export-based exporter, default
since PyTorch 2.9; the TorchScript one is deprecated), which needs the optional packages
``onnx`` and ``onnxscript``; ``onnxruntime`` checks the result. None of them is required
by the rest of the engine: ``pip install 'pix2pix-qgis[onnx]'``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..contract.errors import Pix2PixError
from ..contract.tables import EXPORT_ONNX
from ..core.outputs import staged_file
from ..core.progress import Progress
from ..model.card import ModelCard, plain
from ..model.networks import check_chip_size
from ..model.package import load_model

ONNX_FORMAT, ONNX_FORMAT_VERSION = "pix2pix-qgis-onnx", 1
INPUT_NAME, OUTPUT_NAME = "input", "output"
ONNX_PACKAGES = "onnx onnxscript onnxruntime"


def require(module: str) -> Any:
    """Import an optional ONNX package, or fail with the command that installs it."""
    try:
        return __import__(module)
    except ImportError as exc:
        raise Pix2PixError(
            f"ONNX support needs the optional package '{module}', which {sys.executable} lacks. Install it with: "
            f'"{sys.executable}" -m pip install {ONNX_PACKAGES}'
        ) from exc


def generator_to_onnx(generator: torch.nn.Module, in_channels: int, tile: int) -> Any:
    """The generator (eval mode, CPU, float32) as an ``onnx.ModelProto`` with a dynamic batch axis."""
    require("onnx")
    require("onnxscript")
    generator = generator.float().cpu().eval()
    example = torch.zeros(1, in_channels, tile, tile)
    # The exporter prints progress lines on stdout, which carries only protocol lines in JSON mode,
    # and logs that torchvision's operators are skipped (this model has none).
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                generator, (example,), None, dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False,
            )
    finally:
        registration.setLevel(level)
    assert program is not None, "torch.onnx.export returns the program when dynamo=True"
    return program.model_proto


def onnx_metadata(card: ModelCard, tile: int) -> dict[str, str]:
    """``metadata_props`` of the exported model: every value is JSON text."""
    norm_in, norm_out = card.input.normalization, card.output.normalization
    overlap_percent = 25  # translate's default overlap: a quarter tile
    props: dict[str, Any] = {
        "model_format": ONNX_FORMAT,
        "model_version": ONNX_FORMAT_VERSION,
        "engine_version": __version__,
        "tile_size": tile,
        "tiles_overlap": overlap_percent,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_bands": plain(card.input.bands),
        "output_bands": plain(card.output.bands),
        "input_dtype": card.input.dtype,
        "output_dtype": card.output.dtype,
        "output_nodata": card.output.nodata,
        "input_normalization": norm_in.to_dict(),
        "output_normalization": norm_out.to_dict(),
        "normalization_formula": "input: x_norm = clip((x - low) / (high - low) * 2 - 1, -1, 1) per band; "
                                 "output: y = (y_norm + 1) / 2 * (high - low) + low per band",
        "architecture": card.generator.to_dict(),
        "chip_size": card.chip_size,
        "grid": None if card.grid is None else card.grid.to_dict(),
        "inference": plain(card.inference),
    }
    if card.input.dtype == "uint8":
        # Deepness feeds x / 255 and standardises (x - mean) / std: our map exactly, minus the clip.
        low, high = np.asarray(norm_in.low), np.asarray(norm_in.high)
        props["standardization_mean"] = ((low + high) / 2 / 255).tolist()
        props["standardization_std"] = ((high - low) / 2 / 255).tolist()
    return {key: json.dumps(value, allow_nan=False) for key, value in props.items()}


def session(model_bytes: bytes, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session on a serialised model; ``threads`` defaults to torch's intra-op count."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def compare_with_torch(generator: torch.nn.Module, run: Any, batch: np.ndarray) -> dict[str, float]:
    """Errors of ONNX Runtime (``run``: ndarray → ndarray) and of PyTorch, both against a float64 forward.

    float32 convolutions differ in their last bits between libraries and a deep U-Net
    amplifies that, so "equal" means: ONNX Runtime is no further from the exact result than
    PyTorch's own float32 output is.
    """
    x = torch.from_numpy(batch)
    with torch.inference_mode():
        exact = torch.cat([generator.double()(t[None].double()) for t in x]).numpy()
        generator.float()
        ours = torch.cat([generator(t[None]) for t in x]).numpy()
    onnx_out = run(batch)
    return {"max_abs_diff_vs_torch": float(np.abs(onnx_out - ours).max()),
            "onnx_error": float(np.abs(onnx_out - exact).max()),
            "torch_error": float(np.abs(ours - exact).max())}


def within_tolerance(errors: dict[str, float]) -> bool:
    """Whether ONNX Runtime is no further from the float64 result than PyTorch's float32 (× 2, + 1e-5)."""
    return errors["onnx_error"] <= 2 * errors["torch_error"] + 1e-5


def export_onnx(
    model_path: str | Path,
    output: str | Path,
    tile_size: int | None = None,
    check: bool = EXPORT_ONNX["CHECK"].default,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the generator of ``model_path`` as ONNX at ``output`` (atomically); optionally check it."""
    EXPORT_ONNX.check(tile_size=tile_size, check=check)
    progress = progress or Progress()
    onnx = require("onnx")
    generator, card = load_model(model_path, "cpu")
    spec = card.generator
    tile = tile_size or card.chip_size
    check_chip_size(tile, tile, spec.depth)
    progress.info(f"Exporting a U-Net of depth {spec.depth} ({spec.in_channels}→{spec.out_channels} bands) "
                  f"for tiles of {tile} px with a dynamic batch.")
    proto = generator_to_onnx(generator, spec.in_channels, tile)
    for key, value in onnx_metadata(card, tile).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = (f"Pix2Pix generator exported by pix2pix-qgis {__version__}: '{INPUT_NAME}' (N, "
                        f"{spec.in_channels}, {tile}, {tile}) normalised to [-1, 1] → '{OUTPUT_NAME}' (N, "
                        f"{spec.out_channels}, {tile}, {tile}) in [-1, 1]; see metadata_props.")
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    output = Path(output)
    with staged_file(output) as staging:
        staging.write_bytes(data)
    result: dict[str, Any] = {"output": str(output.absolute()), "tile_size": tile, "bytes": len(data),
                              "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                                           default=None)}
    if check:
        try:
            require("onnxruntime")
        except Pix2PixError as exc:
            progress.warning(f"Not checked with ONNX Runtime: {exc}")
        else:
            runner = session(data)
            batch = np.random.default_rng(0).uniform(-1, 1, (3, spec.in_channels, tile, tile))
            errors = compare_with_torch(generator, lambda b: runner.run(None, {INPUT_NAME: b})[0],
                                        batch.astype(np.float32))
            result["check"] = {**errors, "batch": 3, "ok": within_tolerance(errors)}
            if not result["check"]["ok"]:
                progress.warning(f"ONNX Runtime's output differs from PyTorch's more than float32 rounding "
                                 f"explains: {errors}.")
    progress.update(1.0, "done")
    return result
