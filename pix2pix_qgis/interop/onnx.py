"""A ``.p2p`` model's generator as an ONNX file that other tools can run and understand.

The plain graph is the generator alone: input ``input`` (N, bands, tile, tile) float32 already
normalised to [-1, 1], output ``output`` (N, out bands, tile, tile) in [-1, 1]; the batch
axis N is dynamic, the tile size fixed (U-Nets need multiples of 2^depth, and tools such
as the Deepness QGIS plugin take the tile size from the input shape). How to get there and
back — bands, normalisations, dtypes, nodata — is in the model's ``metadata_props``, each
value JSON text (:func:`onnx_metadata`). Files are IR version 9 with ai.onnx opset 20, what
onnxruntime 1.17.0 loads: the newest version Deepness 0.6.5 installs
(``python_requirements/requirements.txt``: ``onnxruntime-gpu>=1.12.1,<=1.17.0``).

A Deepness profile (``deepness="regressor"`` or ``"superresolution"``, :func:`deepness_graph`)
wraps the generator for Deepness' own pre- and post-processing. Deepness feeds every raster,
whatever its dtype, as ``(x / 255 − mean) / std`` (``processing/models/preprocessing_utils.py``),
so ``standardization_mean/std`` are our input range divided by 255 and a Clip(−1, 1) restores
our clip. It then only multiplies the output and stores it in 8-bit arrays
(``map_processor.py:189``), so the graph ends in target units, rounded and clipped to 0–255.
A Regressor has one (N, 1, tile, tile) output per band (Deepness keeps channel 0 of each
output, ``map_processor_regression.py:170``) and runs in today's Deepness dock; a
Superresolution has the one (N, bands, tile, tile) output but needs scale factor 1, which
the dock does not offer (minimum 2), so it runs only through Deepness' Python classes.
File:line references are to PUTvision/qgis-plugin-deepness 0.6.5, ``src/deepness/``.

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
from ..core.paths import check_run_paths
from ..core.progress import Progress
from ..data.normalization import Normalization
from ..model.card import GridCard, ModelCard, plain
from ..model.package import load_model

ONNX_FORMAT, ONNX_FORMAT_VERSION = "pix2pix-qgis-onnx", 1
INPUT_NAME, OUTPUT_NAME = "input", "output"
ONNX_PACKAGES = "onnx onnxscript onnxruntime"
MAX_IR_VERSION, OPSET = 9, 20  # what onnxruntime 1.17.0 loads (IR 10 / opset 21 are refused)
TRANSLATE_OVERLAP_PERCENT = 25  # translate's default overlap: a quarter tile

DEEPNESS_MODEL_TYPES = {"regressor": "Regressor", "superresolution": "Superresolution"}
# tiles_overlap of both profiles. The superresolution processor writes whole tiles into stride-sized slots
# and fails on any overlap (map_processor_superresolution.py:51-53). The regressor could overlap, but
# Deepness then grows its tile grid above the raster and reads zeros there (processing/extent_utils.py:101);
# measured on the sample, 25 % gave a larger error against the real imagery than 0 % (docs/interop.md),
# and 0 % reproduces translate --overlap 0 --blend crop.
DEEPNESS_OVERLAP_PERCENT = 0
DEEPNESS_RANGE = (0.0, 255.0)  # results are assembled in uint8 arrays (map_processor.py:189)
# QGIS's metres per degree (QgsUnitTypes), which Deepness uses to turn its cm/px into degrees
# (processing/processing_utils.py:22-35).
METRES_PER_DEGREE = 111319.49079327357


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
                dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=OPSET, verbose=False,
            )
    finally:
        registration.setLevel(level)
    assert program is not None, "torch.onnx.export returns the program when dynamo=True"
    proto = program.model_proto
    # The exporter stamps the newest IR version its onnx knows; the graph uses nothing beyond IR 9.
    proto.ir_version = min(proto.ir_version, MAX_IR_VERSION)
    return proto


def resolution_cm_per_px(grid: GridCard | None) -> float | None:
    """The training grid's cell size in cm per pixel, as Deepness' ``resolution`` means it; None if unknown.

    Deepness converts its cm/px into the layer's CRS units with QGIS's factor (metres, or
    degrees at 111,319.49 m each), so a raster on the training grid is not resampled.
    """
    if grid is None or not grid.crs_wkt or not grid.cell_size:
        return None
    from rasterio.crs import CRS

    crs = CRS.from_wkt(grid.crs_wkt)
    if crs.is_geographic:
        metres = METRES_PER_DEGREE
    else:
        try:
            metres = crs.linear_units_factor[1]
        except Exception:  # noqa: BLE001 - a CRS without linear units (rasterio raises CRSError)
            return None
    return float(grid.cell_size[0]) * metres * 100.0


def onnx_metadata(card: ModelCard, tile: int, deepness: str | None = None, direction: str = "a2b") -> dict[str, str]:
    """``metadata_props`` of the exported model: every value is JSON text.

    Deepness' keys (``model_base.py:184-314``): ``tile_size``, ``tiles_overlap`` (percent),
    ``standardization_mean/std``, ``resolution`` (cm/px) always; ``model_type`` only for a
    Deepness profile, whose outputs are in target units (the plain graph's are not).
    """
    norm_in, norm_out = card.input.normalization, card.output.normalization
    props: dict[str, Any] = {
        "model_format": ONNX_FORMAT,
        "model_version": ONNX_FORMAT_VERSION,
        "engine_version": __version__,
        "tile_size": tile,
        "tiles_overlap": DEEPNESS_OVERLAP_PERCENT if deepness else TRANSLATE_OVERLAP_PERCENT,
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
    if card.model_type == "cyclegan":  # which of its two generators this graph is
        props["model_kind"] = card.model_type
        props["direction"] = direction
    # Deepness feeds x / 255 for every dtype, then (x - mean) / std: our map exactly, the clip aside.
    low, high = np.asarray(norm_in.low), np.asarray(norm_in.high)
    props["standardization_mean"] = ((low + high) / 2 / 255).tolist()
    props["standardization_std"] = ((high - low) / 2 / 255).tolist()
    resolution = resolution_cm_per_px(card.grid)
    if resolution is not None:
        props["resolution"] = resolution
    if deepness:
        props["model_type"] = DEEPNESS_MODEL_TYPES[deepness]
        props["deepness_profile"] = (
            f"{deepness}: input (x / 255 - standardization_mean) / standardization_std, clipped to [-1, 1] in "
            "the graph; output in target units, rounded, clipped to 0..255"
            + ("; one (N, 1, tile, tile) output per band" if deepness == "regressor" else ""))
        if deepness == "regressor":
            props["reg_output_scaling"] = 1.0
            props["class_names"] = [{"0": name} for name in band_output_names(norm_out.bands)]
    return {key: json.dumps(value, allow_nan=False) for key, value in props.items()}


def band_output_names(bands: int) -> list[str]:
    """Names of the Regressor profile's outputs, one per band: what Deepness names its layers."""
    return [f"band_{i}" for i in range(1, bands + 1)]


def deepness_graph(proto: Any, norm_out: Normalization, kind: str) -> None:
    """Wrap the generator graph in place for Deepness: Clip(−1, 1) in front; target units, Round, Clip(0, 255) after.

    ``kind`` "regressor" then splits the (N, C, H, W) result into C outputs ``band_1``… of
    shape (N, 1, H, W); "superresolution" keeps one output ``output``.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    clipped, normalised, units = "deepness_input_clipped", "generator_output", "deepness_output"
    for node in graph.node:
        node.input[:] = [clipped if name == INPUT_NAME else name for name in node.input]
        node.output[:] = [normalised if name == OUTPUT_NAME else name for name in node.output]
    bands = norm_out.bands
    low, high = np.asarray(norm_out.low, np.float32), np.asarray(norm_out.high, np.float32)
    constants: dict[str, np.ndarray] = {
        "deepness_minus_one": np.array(-1.0, np.float32), "deepness_one": np.array(1.0, np.float32),
        "deepness_scale": ((high - low) / 2).reshape(1, bands, 1, 1),
        "deepness_offset": ((high + low) / 2).reshape(1, bands, 1, 1),
        "deepness_low": np.array(DEEPNESS_RANGE[0], np.float32),
        "deepness_high": np.array(DEEPNESS_RANGE[1], np.float32),
    }
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
    graph.node.insert(0, helper.make_node("Clip", [INPUT_NAME, "deepness_minus_one", "deepness_one"], [clipped]))
    batch = graph.output[0].type.tensor_type.shape.dim[0].dim_param or "batch"
    tile = graph.output[0].type.tensor_type.shape.dim[-1].dim_value
    final = OUTPUT_NAME if kind == "superresolution" else units
    graph.node.extend([
        helper.make_node("Mul", [normalised, "deepness_scale"], ["deepness_scaled"]),
        helper.make_node("Add", ["deepness_scaled", "deepness_offset"], ["deepness_units"]),
        helper.make_node("Round", ["deepness_units"], ["deepness_rounded"]),  # half to even, as np.rint
        helper.make_node("Clip", ["deepness_rounded", "deepness_low", "deepness_high"], [final]),
    ])
    del graph.output[:]
    if kind == "superresolution":
        graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [batch, bands, tile, tile]))
        return
    names = band_output_names(bands)
    graph.initializer.append(numpy_helper.from_array(np.ones(bands, np.int64), "deepness_split"))
    graph.node.append(helper.make_node("Split", [units, "deepness_split"], names, axis=1))
    graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, 1, tile, tile])
                        for name in names)


def deepness_warnings(card: ModelCard, kind: str) -> list[str]:
    """What Deepness cannot do with this model, said before the user finds out in QGIS."""
    notes = []
    norm_out = card.output.normalization
    dtype = card.output.dtype
    if dtype != "uint8" or min(norm_out.low) < DEEPNESS_RANGE[0] or max(norm_out.high) > DEEPNESS_RANGE[1]:
        notes.append(
            f"The target is {dtype} in [{min(norm_out.low):g}, {max(norm_out.high):g}], but Deepness stores results "
            "as whole numbers 0-255 (map_processor.py:189): the graph rounds and clips to that, so other values are "
            "lost. For this model use translate instead of Deepness."
        )
    if resolution_cm_per_px(card.grid) is None:
        notes.append("The model records no training grid, so the file has no 'resolution': set Deepness' "
                     "Resolution to the raster's pixel size in cm, or it resamples to its default 3 cm/px.")
    if kind == "superresolution":
        notes.append("Deepness' dock cannot run this Superresolution profile: its scale factor starts at 2 "
                     "(deepness_dockwidget.ui:560-562) and this model keeps the size (scale 1). It runs through "
                     "Deepness' Python classes with scale_factor 1 and output_scaling 1; for the dock export with "
                     "--deepness regressor.")
    return notes


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


def check_deepness(generator: torch.nn.Module, run: Any, norm_out: Normalization, batch: np.ndarray) -> dict[str, Any]:
    """Largest difference, in target levels, between the Deepness graph and translate's arithmetic.

    ``batch`` is what Deepness feeds (standardised, may exceed [-1, 1]); translate's result is
    the generator on the clipped batch, in target units, rounded (``np.rint``) and clipped to 0-255.
    """
    with torch.inference_mode():
        normalised = generator.float()(torch.from_numpy(np.clip(batch, -1, 1))).numpy()
    expected = np.clip(np.rint(norm_out.invert(normalised)), *DEEPNESS_RANGE)
    difference = np.abs(run(batch) - expected)
    return {"max_level_diff": float(difference.max()), "share_differing": float((difference > 0).mean())}


def export_onnx(
    model_path: str | Path,
    output: str | Path,
    tile_size: int | None = None,
    check: bool = EXPORT_ONNX["CHECK"].default,
    progress: Progress | None = None,
    deepness: str | None = None,
    direction: str = EXPORT_ONNX["DIRECTION"].default,
) -> dict[str, Any]:
    """Write the generator of ``model_path`` as ONNX at ``output`` (atomically); optionally check it.

    ``deepness``: None for the plain graph, or "regressor" / "superresolution" for a Deepness profile.
    ``direction``: a2b, or b2a for a CycleGAN model's B→A generator (its metadata then describes
    B as the input and A as the output).
    """
    EXPORT_ONNX.check(tile_size=tile_size, check=check, deepness=deepness, direction=direction)
    progress = progress or Progress()
    check_run_paths(inputs={"model": model_path}, files={"ONNX file": output})
    onnx = require("onnx")
    generator, card = load_model(model_path, "cpu", direction)
    spec = card.generator
    tile = tile_size or card.chip_size
    spec.check_size(tile, tile)
    what = f"the {direction} generator of a CycleGAN, " if card.model_type == "cyclegan" else ""
    progress.info(f"Exporting {what}a {spec.name} ({spec.in_channels}→{spec.out_channels} bands) "
                  f"for tiles of {tile} px with a dynamic batch"
                  + (f", as a Deepness {DEEPNESS_MODEL_TYPES[deepness]}." if deepness else "."))
    proto = generator_to_onnx(generator, spec.in_channels, tile)
    norm_out = card.output.normalization
    if deepness:
        deepness_graph(proto, norm_out, deepness)
        for note in deepness_warnings(card, deepness):
            progress.warning(note)
    for key, value in onnx_metadata(card, tile, deepness, direction).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    outputs = (f"'{OUTPUT_NAME}'" if deepness != "regressor" else
               f"{spec.out_channels} outputs band_1… (N, 1, {tile}, {tile})")
    kind = f"CycleGAN {direction}" if card.model_type == "cyclegan" else "Pix2Pix"
    proto.doc_string = (f"{kind} generator exported by pix2pix-qgis {__version__}: '{INPUT_NAME}' (N, "
                        f"{spec.in_channels}, {tile}, {tile}) normalised to [-1, 1] → {outputs} "
                        + ("in target units, rounded, 0..255 (Deepness profile)" if deepness else "in [-1, 1]")
                        + "; see metadata_props.")
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    output = Path(output)
    with staged_file(output) as staging:
        staging.write_bytes(data)
    result: dict[str, Any] = {"output": str(output.absolute()), "tile_size": tile, "bytes": len(data),
                              "ir_version": proto.ir_version,
                              "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                                           default=None),
                              "deepness": DEEPNESS_MODEL_TYPES.get(deepness or ""), "direction": direction,
                              "resolution_cm_per_px": resolution_cm_per_px(card.grid)}
    if check:
        try:
            require("onnxruntime")
        except Pix2PixError as exc:
            progress.warning(f"Not checked with ONNX Runtime: {exc}")
        else:
            result["check"] = _check(generator, session(data), norm_out, spec.in_channels, tile, deepness,
                                     progress)
    progress.update(1.0, "done")
    return result


def _check(generator: torch.nn.Module, runner: Any, norm_out: Normalization, channels: int, tile: int,
           deepness: str | None, progress: Progress) -> dict[str, Any]:
    """ONNX Runtime against PyTorch on a random batch of 3: float32 agreement, or ≤ 1 level for a profile."""
    rng = np.random.default_rng(0)
    if deepness:
        # Deepness' standardised input can leave [-1, 1] (it does not clip): the graph's Clip must hold.
        batch = rng.uniform(-1.3, 1.3, (3, channels, tile, tile)).astype(np.float32)
        errors = check_deepness(generator, lambda b: np.concatenate(runner.run(None, {INPUT_NAME: b}), axis=1),
                                norm_out, batch)
        ok = errors["max_level_diff"] <= 1
    else:
        batch = rng.uniform(-1, 1, (3, channels, tile, tile)).astype(np.float32)
        errors = compare_with_torch(generator, lambda b: runner.run(None, {INPUT_NAME: b})[0], batch)
        ok = within_tolerance(errors)
    if not ok:
        progress.warning(f"ONNX Runtime's output differs from PyTorch's more than float32 rounding explains: "
                         f"{errors}.")
    return {**errors, "batch": 3, "ok": ok}
