"""Command line: ``pix2pix-qgis <command> ...`` / ``python -m pix2pix_qgis <command> ...``.

Exit codes: 0 success, 1 internal error (a bug: please report), 2 bad input
(:class:`Pix2PixError`), 3 missing dependency (see ``bootstrap``; also ``doctor`` when a
check fails), 130 cancelled.
With ``--progress json`` stdout carries only protocol lines (``progress.py``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..contract.errors import Cancelled, ErrorKind, ExitCode, Pix2PixError
from ..core.launch import rank_zero_reports
from ..core.progress import JsonLinesProgress, Progress, TerminalProgress
from .interop import add_interop_parsers
from .scale import add_assemble_parser, add_part_argument, part_of, translate_part_from_args
from .train import add_train_parser


def _bands(text: str) -> tuple[int, ...]:
    try:
        bands = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bands must be comma-separated numbers like 1,2,3, not {text!r}") from None
    if not bands:
        raise argparse.ArgumentTypeError("give at least one band")
    return bands


def _fraction(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.1, not {text!r}") from None


def _add_extent(p: argparse.ArgumentParser, verb: str, default_crs: str) -> None:
    p.add_argument("--extent", type=float, nargs=4, metavar=("XMIN", "YMIN", "XMAX", "YMAX"),
                   help=f"{verb} only this area (in --extent-crs, default {default_crs})")
    p.add_argument("--extent-crs", help="CRS of --extent, e.g. EPSG:4326")


def _extent(args: argparse.Namespace) -> tuple[float, float, float, float] | None:
    return tuple(args.extent) if args.extent else None


def _add_export(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "export", parents=[common], help="export paired chips from two co-located rasters",
        description="Export pixel-exact paired chips of INPUT (A, model input) and INPUT2 (B, target, "
                    "resampled onto A's grid when needed) into OUTPUT, in Esri's Export Tiles layout plus chips.json.",
    )
    p.add_argument("input", metavar="INPUT", help="raster A, the model input")
    p.add_argument("input2", metavar="INPUT2", help="raster B, the target")
    p.add_argument("output", metavar="OUTPUT",
                   help="folder to create; a previous export there is replaced, but not what other tools saved in "
                        "it (arcgis.learn's models/)")
    p.add_argument("--tile-size", type=int, default=256, help="chip size in pixels (default 256)")
    p.add_argument("--stride", type=int, default=128, help="step between chips in pixels (default 128: 50%% overlap)")
    p.add_argument("--bands", type=_bands, help="bands of A to export, e.g. 1,2,3 (default all)")
    p.add_argument("--bands2", type=_bands, help="bands of B to export (default all)")
    _add_extent(p, "export", "A's CRS")
    p.add_argument("--mask", type=Path, help="GeoJSON polygons; only chips fully inside are exported")
    p.add_argument("--max-nodata", type=_fraction, default=0.0, help="largest nodata fraction per chip (default 0)")
    p.add_argument("--validation", type=_fraction, default=0.1,
                   help="held-out fraction, split spatially by blocks (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation split (default 0)")
    p.add_argument("--resampling", choices=["bilinear", "nearest", "cubic"], default="bilinear",
                   help="how B is resampled onto A's grid when they differ (default bilinear; "
                        "nearest for categorical data)")
    p.add_argument("--esri-compatible", action="store_true",
                   help="refuse an export that arcgis.learn's Pix2Pix would train differently (a tile size that "
                        "is not a multiple of 256, different band counts of A and B) instead of warning")
    p.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..chips.export import export_chips
    from ..chips.spec import ChipSpec

    spec = ChipSpec(
        tile_size=args.tile_size, stride=args.stride, bands_a=args.bands, bands_b=args.bands2,
        extent=_extent(args), extent_crs=args.extent_crs, mask=args.mask,
        max_nodata=args.max_nodata, validation=args.validation, seed=args.seed, resampling=args.resampling,
        esri_compatible=args.esri_compatible,
    )
    return export_chips(args.input, args.input2, args.output, spec, progress)


def _add_translate(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "translate", parents=[common], help="translate a whole raster with a .p2p model",
        description="Translate INPUT with MODEL into OUTPUT, a GeoTIFF on INPUT's grid (or the --extent window) "
                    "in the target's units, blending overlapping tiles so no seams show.",
    )
    p.add_argument("input", metavar="INPUT", help="raster to translate (like the training input A)")
    p.add_argument("model", metavar="MODEL", help="model package (.p2p) from 'train'")
    p.add_argument("output", metavar="OUTPUT", help="GeoTIFF to write (replaced only on success)")
    p.add_argument("--tile-size", type=int, help="tile size in pixels (default: the model's chip size)")
    p.add_argument("--overlap", type=int, help="overlap between tiles in pixels (default: a quarter tile)")
    p.add_argument("--margin", type=int, help="pixels discarded at each tile's inner edge (default: overlap/4)")
    p.add_argument("--batch-size", type=int, default=4,
                   help="tiles per forward pass on CUDA (default 4); the CPU runs one tile at a time")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    p.add_argument("--bands", type=_bands, help="bands of INPUT to feed the model (default: as in training)")
    _add_extent(p, "translate", "the raster's CRS")
    p.add_argument("--blend", choices=["hann", "crop"], default="hann",
                   help="hann: cross-fade overlaps (default); crop: hard cut mid-overlap")
    p.add_argument("--tta", action="store_true", help="average the 8 flips/rotations (8× slower, smoother)")
    p.add_argument("--dtype", help="output data type (default: the training target's)")
    p.add_argument("--cog", action="store_true", help="write a Cloud Optimized GeoTIFF")
    p.add_argument("--co", action="append", metavar="KEY=VALUE", help="GDAL creation option (repeatable)")
    add_part_argument(p)
    p.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch",
                   help="inference engine: torch (default) or onnxruntime (CPU only, optional package; see "
                        "BENCHMARKS.md)")
    p.set_defaults(handler=_run_translate)


def _run_translate(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..infer.translate import TranslateSpec, parse_creation_options, translate_raster

    spec = TranslateSpec(
        tile_size=args.tile_size, overlap=args.overlap, margin=args.margin, batch_size=args.batch_size,
        device=args.device, bands=args.bands, extent=_extent(args),
        extent_crs=args.extent_crs, blend=args.blend, tta=args.tta, dtype=args.dtype, cog=args.cog,
        creation_options=parse_creation_options(args.co), backend=args.backend,
    )
    part = part_of(args)  # --part I/N, or this rank under torchrun; None: the whole raster
    if part is not None:
        return translate_part_from_args(args, spec, part, progress)
    return translate_raster(args.input, args.model, args.output, spec, progress)


def _add_evaluate(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "evaluate", parents=[common], help="compare a translated raster with a reference",
        description="Per-band and overall MAE, RMSE, bias, PSNR, SSIM and R² of PREDICTION against REFERENCE "
                    "(same CRS and cell size, aligned), over pixels valid in both.",
    )
    p.add_argument("prediction", metavar="PREDICTION")
    p.add_argument("reference", metavar="REFERENCE")
    p.add_argument("--mask", type=Path, help="GeoJSON polygons: evaluate only inside them")
    _add_extent(p, "evaluate", "the reference's CRS")
    p.add_argument("--data-range", type=float, nargs="+",
                   help="PSNR/SSIM data range: one value, or one per band (default: 255 for 8-bit, "
                        "else the reference's valid max − min)")
    p.add_argument("--error-raster", help="write |prediction − reference| per band as a float32 GeoTIFF")
    p.add_argument("--report", help="write the metrics as JSON")
    p.add_argument("--html", help="write the metrics as an HTML report")
    p.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..evaluate.rasters import evaluate_rasters

    result = evaluate_rasters(
        args.prediction, args.reference, mask=args.mask, extent=_extent(args),
        extent_crs=args.extent_crs, data_range=args.data_range, error_raster=args.error_raster,
        report=args.report, progress=progress,
    )
    if args.html:
        from ..core.html import write_html
        from ..evaluate.report import evaluation_report

        result["html"] = write_html(args.html, evaluation_report(result))
    return result


def _add_doctor(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser("doctor", parents=[common], help="report versions, CUDA and devices of this interpreter")
    p.set_defaults(handler=_run_doctor)


def _run_doctor(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from .doctor import diagnose

    report = diagnose()
    for problem in report["problems"]:
        progress.warning(problem)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pix2pix-qgis", description="Pix2Pix for georeferenced rasters.")
    parser.add_argument("--version", action="version", version=f"pix2pix-qgis {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--progress", choices=["auto", "json", "bar", "none"], default="auto",
                        help="json: one JSON object per line on stdout (for programs); bar: progress bar on "
                             "stderr; auto (default): bar in a terminal, plain lines otherwise")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_export(commands, common)
    add_train_parser(commands, common)
    _add_translate(commands, common)
    _add_evaluate(commands, common)
    add_assemble_parser(commands, common)
    _add_doctor(commands, common)
    add_interop_parsers(commands, common)
    return parser


def _install_cancel_handlers(event: threading.Event) -> None:
    """SIGTERM (the provider's cancel) and SIGINT request a cooperative stop."""

    def handler(signum: int, _frame: Any) -> None:
        event.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _print_result(result: dict[str, Any]) -> None:
    width = max(len(k) for k in result) if result else 0
    for key, value in result.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        print(f"{key:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cancel = threading.Event()
    _install_cancel_handlers(cancel)
    json_mode = args.progress == "json"
    if json_mode:
        progress: Progress = JsonLinesProgress(sys.stdout, cancel)
    elif args.progress == "none":
        progress = Progress(None, cancel)
    else:
        progress = TerminalProgress(sys.stderr, cancel)
    progress = rank_zero_reports(progress)  # under torchrun, other ranks report errors only

    def fail(kind: str, message: str, code: int) -> int:
        if json_mode:
            progress.emit({"type": "error", "kind": kind, "message": message})
        else:
            print(f"error: {message}", file=sys.stderr)
        return code

    handler: Callable[[argparse.Namespace, Progress], dict[str, Any]] = args.handler
    try:
        result = handler(args, progress)
    except Pix2PixError as exc:
        return fail(ErrorKind.BAD_INPUT, str(exc), ExitCode.BAD_INPUT)
    except ModuleNotFoundError:
        raise  # bootstrap.run reports it with the fix
    except (Cancelled, KeyboardInterrupt):
        return fail(ErrorKind.CANCELLED, "Cancelled; nothing was written at the output path.", ExitCode.CANCELLED)
    except Exception as exc:  # a bug: keep the traceback for the report
        traceback.print_exc(file=sys.stderr)
        return fail(ErrorKind.INTERNAL, f"Internal error ({type(exc).__name__}: {exc}). Please report it with the log.",
                    ExitCode.INTERNAL)
    if json_mode:
        progress.emit({"type": "result", "result": result})
    else:
        _print_result(result)
    return ExitCode.MISSING_DEPENDENCY if result.get("ok") is False else ExitCode.OK
