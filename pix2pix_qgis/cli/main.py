"""Command line: ``pix2pix-qgis <command> ...`` / ``python -m pix2pix_qgis <command> ...``.

Exit codes: 0 success, 1 internal error (a bug: please report), 2 bad input
(:class:`Pix2PixError`, and the failures of the OS, GDAL, PROJ or memory that ``core.failures``
explains), 3 missing dependency (see ``bootstrap``; also ``doctor`` when a check fails),
130 cancelled (the ``cancel`` line on stdin, SIGTERM, SIGINT, SIGHUP, or a closed stdout).
With ``--progress json`` stdout carries only protocol lines (``progress.py``), and a ``cancel``
line on stdin stops the run as SIGTERM does (``core.cancel``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from .. import __version__
from ..contract.errors import Cancelled, ErrorKind, ExitCode, Pix2PixError
from ..contract.protocol import wants_json
from ..contract.tables import EVALUATE, EVALUATE_UNPAIRED, EXPORT, EXPORT_UNPAIRED, TRANSLATE
from ..core.cancel import install_signal_handlers, watch_stdin
from ..core.failures import explain
from ..core.launch import rank_zero_reports
from ..core.progress import JsonLinesProgress, Progress, TerminalProgress
from .interop import add_interop_parsers
from .options import JsonErrorParser, Parser, add_command, options_of, values
from .scale import add_assemble_parser, part_of, translate_part_from_args
from .train import add_train_parser


def _add_export(commands: argparse._SubParsersAction[Parser], common: Parser) -> None:
    add_command(commands, common, EXPORT, _run_export, help="export paired chips from two co-located rasters",
                description="Export pixel-exact paired chips of INPUT (A, model input) and INPUT2 (B, target, "
                            "resampled onto A's grid when needed) into OUTPUT, in Esri's Export Tiles layout plus "
                            "chips.json.")


def _run_export(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..chips.export import export_chips
    from ..chips.spec import ChipSpec

    return export_chips(args.input, args.input2, args.output, options_of(ChipSpec, values(EXPORT, args)), progress)


def _add_export_unpaired(commands: argparse._SubParsersAction[Parser], common: Parser) -> None:
    add_command(commands, common, EXPORT_UNPAIRED, _run_export_unpaired,
                help="export unpaired chips of two rasters that need not overlap (for CycleGAN)",
                description="Export the chips of INPUT (domain A) and of INPUT2 (domain B, resampled in its own CRS "
                            "to A's cell size on the ground, or --cell-size2) into OUTPUT/A/images and "
                            "OUTPUT/B/images, Esri's CycleGAN layout, plus chips.json; each domain with its own "
                            "statistics, nodata, mask and spatial validation split.")


def _run_export_unpaired(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..chips.unpaired import UnpairedSpec, export_unpaired

    return export_unpaired(args.input, args.input2, args.output, options_of(UnpairedSpec,
                                                                            values(EXPORT_UNPAIRED, args)), progress)


def _add_translate(commands: argparse._SubParsersAction[Parser], common: Parser) -> None:
    add_command(commands, common, TRANSLATE, _run_translate, help="translate a whole raster with a .p2p model",
                description="Translate INPUT with MODEL into OUTPUT, a GeoTIFF on INPUT's grid (or the --extent "
                            "window) in the target's units, blending overlapping tiles so no seams show.")


def _run_translate(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..infer.translate import TranslateSpec, parse_creation_options, translate_raster

    given = values(TRANSLATE, args)
    given["creation_options"] = parse_creation_options(given["creation_options"])
    spec = options_of(TranslateSpec, {**given, "part": None})
    part = part_of(args)  # --part I/N, or this rank under torchrun; None: the whole raster
    if part is not None:
        return translate_part_from_args(args, spec, part, progress)
    return translate_raster(args.input, args.model, args.output, spec, progress)


def _add_evaluate(commands: argparse._SubParsersAction[Parser], common: Parser) -> None:
    add_command(commands, common, EVALUATE, _run_evaluate, help="compare a translated raster with a reference",
                description="Per-band and overall MAE, RMSE, bias, PSNR, SSIM and R² of PREDICTION against "
                            "REFERENCE (same CRS and cell size, aligned), over pixels valid in both.")


def _run_evaluate(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..core.paths import check_run_paths
    from ..evaluate.rasters import evaluate_rasters

    given = values(EVALUATE, args)
    html = given.pop("html")
    # The HTML report is written here, not by evaluate_rasters: the run's paths are checked together.
    check_run_paths(rasters={"prediction": given["prediction"], "reference": given["reference"]},
                    inputs={"mask": given["mask"]},
                    files={"error raster": given["error_raster"], "report": given["report"], "HTML report": html})
    result = evaluate_rasters(**given, progress=progress)
    if html:
        from ..core.html import write_html
        from ..evaluate.report import evaluation_report

        result["html"] = write_html(html, evaluation_report(result))
    return result


def _add_evaluate_unpaired(commands: argparse._SubParsersAction[Parser], common: Parser) -> None:
    add_command(commands, common, EVALUATE_UNPAIRED, _run_evaluate_unpaired,
                help="compare a translated raster with target chips, without an aligned reference",
                description="Per band: the Wasserstein distance and the means and standard deviations of PREDICTION's "
                            "pixels against those of the held-out chips of the target domain in CHIPS (an unpaired "
                            "export); with --reference the usual metrics against it; with --original and "
                            "--reconstruction the cycle-reconstruction error.")


def _run_evaluate_unpaired(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..core.paths import check_run_paths
    from ..evaluate.unpaired import evaluate_unpaired

    given = values(EVALUATE_UNPAIRED, args)
    html = given.pop("html")
    # The HTML report is written here, not by evaluate_unpaired: the run's paths are checked together.
    check_run_paths(rasters={"prediction": given["prediction"], "reference": given["reference"],
                             "original": given["original"], "reconstruction": given["reconstruction"]},
                    inputs={"chips folder": given["chips"]}, files={"report": given["report"], "HTML report": html})
    result = evaluate_unpaired(**given, progress=progress)
    if html:
        from ..core.html import write_html
        from ..evaluate.report import unpaired_report

        result["html"] = write_html(html, unpaired_report(result))
    return result


def _add_doctor(commands: argparse._SubParsersAction[Parser], common: Parser) -> None:
    p = commands.add_parser("doctor", parents=[common], help="report versions, CUDA and devices of this interpreter")
    p.set_defaults(handler=_run_doctor)


def _run_doctor(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from .doctor import diagnose

    report = diagnose()
    for problem in report["problems"]:
        progress.warning(problem)
    return report


def build_parser(json_errors: bool = False) -> argparse.ArgumentParser:
    """The whole command line; ``json_errors``: report bad arguments as a JSON ``error`` line (``--progress json``)."""
    parser = Parser(prog="pix2pix-qgis", description="Pix2Pix for georeferenced rasters.", json_errors=json_errors)
    parser.add_argument("--version", action="version", version=f"pix2pix-qgis {__version__}")
    common = Parser(add_help=False)
    common.add_argument("--progress", choices=["auto", "json", "bar", "none"], default="auto",
                        help="json: one JSON object per line on stdout (for programs); bar: progress bar on "
                             "stderr; auto (default): bar in a terminal, plain lines otherwise")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=JsonErrorParser if json_errors else Parser)
    _add_export(commands, common)
    _add_export_unpaired(commands, common)
    add_train_parser(commands, common)
    _add_translate(commands, common)
    _add_evaluate(commands, common)
    _add_evaluate_unpaired(commands, common)
    add_assemble_parser(commands, common)
    _add_doctor(commands, common)
    add_interop_parsers(commands, common)
    return parser


def _silence_stdout() -> None:
    """Whoever read stdout is gone: send the rest (and Python's final flush) nowhere instead of raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _print_result(result: dict[str, Any]) -> None:
    width = max(len(k) for k in result) if result else 0
    for key, value in result.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        print(f"{key:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command and return the process's exit code."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(json_errors=wants_json(argv)).parse_args(argv)
    cancel = threading.Event()
    install_signal_handlers(cancel)
    json_mode = args.progress == "json"
    if json_mode and not os.isatty(0):  # a program's pipe; a terminal's reader in the background would be stopped
        watch_stdin(cancel)
    if json_mode:
        progress: Progress = JsonLinesProgress(sys.stdout, cancel)
    elif args.progress == "none":
        progress = Progress(None, cancel)
    else:
        progress = TerminalProgress(sys.stderr, cancel)
    progress = rank_zero_reports(progress)  # under torchrun, other ranks report errors only

    def fail(kind: str, message: str, code: int) -> int:
        try:
            if json_mode:
                progress.emit({"type": "error", "kind": kind, "message": message})
            else:
                print(f"error: {message}", file=sys.stderr)
        except OSError:  # the reader is gone (SIGHUP of a closed terminal): the exit code still tells
            _silence_stdout()
        return code

    handler: Callable[[argparse.Namespace, Progress], dict[str, Any]] = args.handler
    try:
        result = handler(args, progress)
        if json_mode:
            progress.emit({"type": "result", "result": result})
        else:
            _print_result(result)
    except Pix2PixError as exc:
        return fail(ErrorKind.BAD_INPUT, str(exc), ExitCode.BAD_INPUT)
    except ModuleNotFoundError:
        raise  # bootstrap.run reports it with the fix
    except (Cancelled, KeyboardInterrupt):
        return fail(ErrorKind.CANCELLED, "Cancelled; nothing was written at the output path.", ExitCode.CANCELLED)
    except BrokenPipeError:  # whoever read our output closed it: stop as if cancelled (outputs are staged)
        _silence_stdout()
        return ExitCode.CANCELLED
    except Exception as exc:
        explained = explain(exc)  # the OS, GDAL, PROJ or memory, caused by the data or the machine
        if explained is not None:
            return fail(ErrorKind.BAD_INPUT, explained, ExitCode.BAD_INPUT)
        traceback.print_exc(file=sys.stderr)  # a bug: keep the traceback for the report
        return fail(ErrorKind.INTERNAL, f"Internal error ({type(exc).__name__}: {exc}). Please report it with the log.",
                    ExitCode.INTERNAL)
    return ExitCode.MISSING_DEPENDENCY if result.get("ok") is False else ExitCode.OK
