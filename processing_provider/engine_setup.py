"""Create the engine's virtual environment: venv, pinned PyTorch (CUDA or CPU build), requirements, check.

Plain standard-library Python on purpose: it runs in a *base* interpreter (``python3`` on
PATH; inside QGIS ``sys.executable`` may be the qgis binary) before any dependency exists,
from the plugin's *Set up engine* algorithm and from ``scripts/setup-engine.sh``, so there
is one place that decides where torch comes from. It speaks the engine's JSON-lines
protocol (``--progress json``), so the provider streams it like any engine run.

    python3 engine_setup.py VENV [--wheels DIR] [--device auto|cpu|cuda] [--torch-index URL]

Exit codes: 0 done, 2 bad input, 4 pip or the check failed (its real output is in the error).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any, Callable

PLUGIN_DIR = Path(__file__).resolve().parent.parent
REQUIREMENTS = PLUGIN_DIR / "requirements.txt"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_INDEX = "https://download.pytorch.org/whl/cu128"  # Windows only: PyPI's Linux wheels are CUDA builds
PYPI = "https://pypi.org/simple"
EXIT_BAD_INPUT, EXIT_FAILED = 2, 4
CHECK_IMPORTS = ("torch", "numpy", "rasterio", "shapely", "safetensors", "PIL")
BUILDS = ("auto", "cpu", "cuda")  # which PyTorch build to install; the Set up engine algorithm offers the same


class SetupFailed(Exception):
    """A step failed; ``output`` is the tail of the failing tool's own output (pip's real error)."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class Reporter:
    """JSON lines on stdout (the engine's protocol) or plain lines for a terminal."""

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode

    def emit(self, event: dict[str, Any]) -> None:
        """Print one event: a JSON line for the provider, or readable text on stderr in a terminal."""
        if self.json_mode:
            print(json.dumps(event), flush=True)
        elif event["type"] == "progress":
            print(f"[{100 * event['fraction']:3.0f}%] {event.get('message', '')}", file=sys.stderr, flush=True)
        elif event["type"] in ("info", "warning", "error"):
            prefix = "" if event["type"] == "info" else f"{event['type']}: "
            print(prefix + event["message"], file=sys.stderr, flush=True)
            if event.get("output"):
                print(event["output"], file=sys.stderr, flush=True)

    def progress(self, fraction: float, message: str) -> None:
        """Report completion in [0, 1] with what is being done."""
        self.emit({"type": "progress", "fraction": round(fraction, 4), "message": message})

    def info(self, message: str) -> None:
        """Report a log line (the commands run, what was reused)."""
        self.emit({"type": "info", "message": message})


def venv_python(venv: Path) -> Path:
    """The interpreter inside the virtual environment ``venv`` (``Scripts/python.exe`` on Windows)."""
    return venv / "Scripts" / "python.exe" if sys.platform == "win32" else venv / "bin" / "python"


def pinned_torch(requirements: Path) -> str:
    """The ``torch==X`` line of requirements.txt: the single source of the pin."""
    for line in requirements.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text.replace(" ", "").startswith("torch=="):
            return text.replace(" ", "")
    raise SetupFailed(f"{requirements} has no 'torch==VERSION' line; the engine needs a pinned torch.")


def nvidia_gpus() -> list[str]:
    """GPU names from ``nvidia-smi -L``; empty without a driver or a GPU."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in listing.stdout.splitlines() if line.startswith("GPU")]


_running: list[subprocess.Popen] = []


def _stop_children(signum: int, _frame: Any) -> None:
    """Cancel (SIGTERM from the provider, Ctrl+C) stops pip too, not only this script."""
    for process in _running:
        if process.poll() is None:
            process.terminate()
    sys.exit(130)


def run_streaming(argv: list[str], report: Reporter, env: dict[str, str] | None = None,
                  on_line: Callable[[str], None] | None = None) -> tuple[int, str]:
    """Run a tool, forwarding each output line as info; return (exit code, last 40 lines)."""
    tail: deque[str] = deque(maxlen=40)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               text=True, encoding="utf-8", errors="replace", env=env)
    assert process.stdout is not None
    _running.append(process)
    for raw in process.stdout:
        line = raw.rstrip()
        if not line:
            continue
        tail.append(line)
        report.info(line)
        if on_line is not None:
            on_line(line)
    code = process.wait()
    _running.remove(process)
    return code, "\n".join(tail)


def pip(python: Path, arguments: list[str], report: Reporter, what: str) -> None:
    """``pip install arguments`` with ``python``, streamed to ``report``.

    Failure names ``what`` and shows pip's output.
    """
    argv = [str(python), "-m", "pip", "install", "--progress-bar", "off", "--disable-pip-version-check",
            *arguments]
    report.info("$ " + " ".join(argv))
    code, tail = run_streaming(argv, report, env=_clean_env())
    if code != 0:
        raise SetupFailed(f"pip could not install {what} (exit code {code}). pip's own message is below; "
                          "check the network or proxy, or give a folder of wheels for an offline install.", tail)


def _clean_env() -> dict[str, str]:
    """No QGIS Python paths leak into the venv's tools."""
    env = dict(os.environ)
    for name in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONUSERBASE"):
        env.pop(name, None)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def torch_source(python: Path, torch: str, wheels: Path | None, device: str, index: str | None,
                 report: Reporter) -> list[str]:
    """pip arguments that install ``torch`` from the right place, and why, in the log."""
    if wheels is not None:
        report.info(f"{torch}: from the local wheel folder {wheels} (offline)")
        return [torch, "--no-index", "--find-links", str(wheels)]
    if index:
        report.info(f"{torch}: from {index}")
        return [torch, "--index-url", index, "--extra-index-url", PYPI]
    gpus = nvidia_gpus() if device != "cpu" else []
    if device == "cuda" or gpus:
        report.info(f"NVIDIA GPU found ({'; '.join(gpus) or 'asked for'}): installing the CUDA build of {torch}")
        if sys.platform == "win32":
            return [torch, "--index-url", CUDA_INDEX, "--extra-index-url", PYPI]
        return [torch]  # PyPI's Linux wheels carry CUDA; macOS wheels use Metal (MPS)
    if sys.platform == "darwin":
        return [torch]
    local = subprocess.run([str(python), "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index", torch],
                           capture_output=True, text=True, env=_clean_env())
    if local.returncode == 0:
        report.info(f"{torch}: from pip's configured local wheels (find-links)")
        return [torch]
    report.info(f"No NVIDIA GPU found: installing the CPU build of {torch} from {CPU_INDEX}")
    return [torch, "--index-url", CPU_INDEX, "--extra-index-url", PYPI]


def make_venv(base_python: str, venv: Path, report: Reporter) -> Path:
    """Create (or reuse, or complete) the environment ``venv`` with ``base_python``; returns its interpreter."""
    python = venv_python(venv)
    if python.exists() and (venv / "pyvenv.cfg").exists():
        report.info(f"Reusing the environment {venv}")
        return python
    if venv.exists() and any(venv.iterdir()):
        if not (venv / "pyvenv.cfg").exists():
            raise SetupFailed(f"{venv} exists and is not a Python environment; choose an empty or new folder.")
        report.info(f"{venv} is incomplete (an interrupted set-up?): creating it again")
    report.info(f"Creating the environment {venv} with Python {platform.python_version()} ({base_python})")
    code, tail = run_streaming([base_python, "-m", "venv", "--clear", str(venv)], report, env=_clean_env())
    if code != 0 or not python.exists():
        raise SetupFailed(f"'{base_python} -m venv' could not create {venv} (on Debian/Ubuntu install "
                          "python3-venv).", tail)
    return python


def check(python: Path, report: Reporter) -> dict[str, Any]:
    """The interpreter runs, imports everything and the bundled engine's doctor is happy."""
    env = _clean_env()
    env["PYTHONPATH"] = str(PLUGIN_DIR)
    code, tail = run_streaming([str(python), "-c", "import " + ", ".join(CHECK_IMPORTS)], report, env=env)
    if code != 0:
        raise SetupFailed(f"The new environment {python} cannot import the engine's dependencies.", tail)
    doctor = subprocess.run([str(python), "-m", "pix2pix_qgis", "doctor", "--progress", "json"],
                            capture_output=True, text=True, env=env, timeout=300)
    for line in doctor.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("type") == "result":
            result = event["result"]
            if not result.get("ok"):
                raise SetupFailed("The engine's check failed: " + "; ".join(result.get("problems", [])))
            return result
    raise SetupFailed(f"The engine's check ({python} -m pix2pix_qgis doctor) did not run.",
                      (doctor.stdout + doctor.stderr)[-4000:])


def set_up(venv: Path, report: Reporter, wheels: Path | None = None, device: str = "auto",
           index: str | None = None, base_python: str | None = None,
           requirements: Path = REQUIREMENTS) -> dict[str, Any]:
    """Create or complete ``venv``; return the engine's doctor report plus the interpreter path."""
    if wheels is not None and not wheels.is_dir():
        raise SetupFailed(f"The wheel folder {wheels} does not exist.")
    torch = pinned_torch(requirements)
    report.progress(0.0, "Creating the environment")
    python = make_venv(base_python or sys.executable, venv, report)
    offline = ["--no-index", "--find-links", str(wheels)] if wheels is not None else []
    report.progress(0.1, f"Installing {torch} (the largest download)")
    pip(python, torch_source(python, torch, wheels, device, index, report), report, torch)
    report.progress(0.7, "Installing rasterio, shapely, safetensors, Pillow")
    pip(python, [*offline, "-r", str(requirements)], report, f"the requirements in {requirements}")
    report.progress(0.9, "Checking the environment")
    result = check(python, report)
    report.progress(1.0, "Done")
    return {**result, "interpreter": str(python), "venv": str(venv)}


def main(argv: list[str] | None = None) -> int:
    """Command line of the set-up (what *Set up engine* and ``make setup-engine`` run); returns the exit code."""
    parser = argparse.ArgumentParser(description="Create the Pix2Pix engine's Python environment.")
    parser.add_argument("venv", type=Path, help="folder of the virtual environment (created or completed)")
    parser.add_argument("--wheels", type=Path, help="install offline from this folder of wheels")
    parser.add_argument("--device", choices=BUILDS, default=BUILDS[0],
                        help="auto: the CUDA build when nvidia-smi finds a GPU, else the CPU build")
    parser.add_argument("--torch-index", help="install torch from this package index instead")
    parser.add_argument("--requirements", type=Path, default=REQUIREMENTS)
    parser.add_argument("--progress", choices=["json", "plain"], default="plain")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_children)
    signal.signal(signal.SIGINT, _stop_children)
    report = Reporter(args.progress == "json")
    try:
        result = set_up(args.venv.expanduser().absolute(), report, args.wheels, args.device,
                        args.torch_index or os.environ.get("TORCH_INDEX_URL") or None,
                        requirements=args.requirements)
    except SetupFailed as exc:
        report.emit({"type": "error", "kind": "setup_failed", "message": str(exc), "output": exc.output})
        return EXIT_FAILED
    except OSError as exc:
        report.emit({"type": "error", "kind": "bad_input", "message": f"Set-up failed: {exc}"})
        return EXIT_BAD_INPUT
    if report.json_mode:
        report.emit({"type": "result", "result": result})
    else:
        print(f"Engine environment ready: {result['interpreter']} (torch {result['torch']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
