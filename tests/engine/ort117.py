"""onnxruntime 1.17.0 in an environment of its own, for tests of the files Deepness users load.

1.17.0 is the newest onnxruntime the Deepness QGIS plugin (0.6.5) installs
(``src/deepness/python_requirements/requirements.txt``: ``onnxruntime-gpu>=1.12.1,<=1.17.0``,
read by its installer ``dialogs/packages_installer/packages_installer_dialog.py:47-89``), and
it loads ONNX IR ≤ 9 and opset ≤ 20 only. The engine's own environment has a newer one, so
``pip install --target`` puts onnxruntime 1.17.0 and numpy < 2 (its wheels need NumPy 1) into a
folder in the user's cache (``$XDG_CACHE_HOME`` or ``~/.cache``, never the repository), once per
Python version; later runs reuse it. Code runs there as ``python -S`` (no site-packages) with
that folder alone on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ORT_VERSION = "1.17.0"
ENGINE_TESTS = Path(__file__).resolve().parent


def site_folder() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    return cache / "pix2pix_toolbox-tests" / f"onnxruntime-{ORT_VERSION}-{tag}"


def ensure_site() -> Path:
    """The folder with onnxruntime 1.17.0 and numpy < 2, installed on first use (idempotent, race-safe)."""
    site = site_folder()
    if (site / "READY").is_file():
        return site
    site.parent.mkdir(parents=True, exist_ok=True)
    staging = site.with_name(f"{site.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-script-location",
         "--only-binary=:all:", "--target", str(staging), f"onnxruntime=={ORT_VERSION}", "numpy<2"],
        capture_output=True, text=True, timeout=1200,
    )
    if done.returncode:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"pip could not install onnxruntime=={ORT_VERSION} into {staging} (needs PyPI):\n"
                           f"{done.stderr[-3000:]}")
    (staging / "READY").write_text(f"onnxruntime=={ORT_VERSION} numpy<2 for {sys.version}\n")
    try:
        os.rename(staging, site)
    except OSError:  # another run finished first (or a broken leftover): keep that one
        shutil.rmtree(staging, ignore_errors=True)
        if not (site / "READY").is_file():
            raise
    return site


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``tests/engine/<script>`` with onnxruntime 1.17.0 and nothing of the engine's environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = str(ensure_site())
    return subprocess.run([sys.executable, "-S", str(ENGINE_TESTS / script), *args], capture_output=True, text=True,
                          env=env, timeout=600)
