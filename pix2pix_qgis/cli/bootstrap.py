"""The CLI's entry point, importing nothing beyond the standard library until it must.

If the interpreter lacks a dependency (the usual install failure), the user gets one
actionable message, as a JSON ``error`` line when ``--progress json`` was asked for,
naming this interpreter and the exact command that fixes it. Exit code 3.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..contract.errors import ErrorKind, ExitCode
from ..contract.protocol import wants_json


def fix_command() -> str:
    """The pip command that installs the engine's dependencies into this interpreter."""
    requirements = Path(__file__).resolve().parents[2] / "requirements.txt"
    packages = '"torch==2.13.0" rasterio shapely numpy safetensors pillow jsonschema'
    target = f'-r "{requirements}"' if requirements.is_file() else packages
    return f'"{sys.executable}" -m pip install {target}'


def report_missing(exc: ModuleNotFoundError, argv: list[str]) -> int:
    """Tell the user which module is missing from which interpreter, and the fix."""
    module = (exc.name or "?").split(".")[0]
    message = (
        f"The Python interpreter {sys.executable} lacks the module '{module}' that the Pix2Pix "
        f"engine needs. Install the engine's dependencies with: {fix_command()} "
        "(or point the provider at another interpreter: PIX2PIX_PYTHON or "
        "Processing › Options › Providers › Pix2Pix)."
    )
    if wants_json(argv):
        print(json.dumps({"type": "error", "kind": ErrorKind.MISSING_DEPENDENCY, "module": module,
                          "python": sys.executable, "fix": fix_command(), "message": message}), flush=True)
    else:
        print(f"error: {message}", file=sys.stderr)
    return ExitCode.MISSING_DEPENDENCY


def run(argv: list[str]) -> int:
    """Run the CLI with ``argv``; a missing dependency becomes one actionable message and exit code 3."""
    try:
        from .main import main

        return main(argv)
    except ModuleNotFoundError as exc:
        return report_missing(exc, argv)


def console_main() -> None:
    """Entry point of the ``pix2pix-qgis`` console script."""
    sys.exit(run(sys.argv[1:]))
