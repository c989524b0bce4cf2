"""Set up engine and Check engine, for real: a new venv installed from the package registry, then used.

The README's install section, followed in a brand-new QGIS profile: install the plugin from its
zip, run *Set up engine* with its defaults (the per-user folder, here under a temporary data
home), check it, and run an algorithm that picks the new interpreter up by itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .paths import QGIS_PROCESS
from .plugin_install import fresh_profile_env
from .processing_runs import recording_feedback
from .rasters import write_raster


def qgis_process(env: dict[str, str], *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Set up engine, run from a fresh profile through qgis_process with no interpreter configured."""
    root = tmp_path_factory.mktemp("readme_install")
    env = fresh_profile_env(root, engine_python=None)
    # Where QGIS's own Python has no PyTorch wheel (Debian forky's, for QGIS 3.44), the version
    # matrix names a base Python that has one, as an analyst would with the "Base Python" option.
    base = os.environ.get("PIX2PIX_TEST_BASE_PYTHON")
    run = qgis_process(env, "--json", "run", "pix2pix:setupengine", "--", "DEVICE=cpu",
                       *([f"BASE_PYTHON={base}"] if base else []))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return {"env": env, "root": root, "results": json.loads(run.stdout)["results"], "stdout": run.stdout}


def test_setup_installs_a_venv_outside_the_plugin_and_makes_it_the_interpreter(installed):
    venv = installed["root"] / "data" / "pix2pix_toolbox" / "venv"
    python = venv / "bin" / "python"
    assert installed["results"]["PYTHON"] == str(python) and python.exists()
    assert installed["results"]["TORCH"].startswith("2.13.0") and installed["results"]["CUDA"] is False
    assert not str(venv).startswith(installed["env"]["QGIS_PLUGINPATH"])  # a plugin upgrade cannot wipe it
    log = json.dumps(json.loads(installed["stdout"])["log"])  # no GPU here: the CPU build, local or from the index
    assert "torch==2.13.0: from pip's configured local wheels" in log or "the CPU build of torch==2.13.0" in log
    assert "Successfully installed" in log  # pip's own output streamed into the log
    settings = (installed["root"] / "profile" / "profiles" / "default" / "QGIS" / "QGIS3.ini").read_text()
    assert f"PIX2PIX_PYTHON={python}" in settings  # the provider setting, saved in the profile


def test_check_engine_reports_the_new_interpreter_as_html(installed, tmp_path):
    report = tmp_path / "engine.html"
    run = qgis_process(installed["env"], "--json", "run", "pix2pix:checkengine", "--", f"OUTPUT_HTML={report}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(run.stdout)["results"]
    assert results["OK"] is True and results["PYTHON"] == installed["results"]["PYTHON"]
    html = report.read_text()
    assert "The engine is ready." in html and "2.13.0" in html and "Processing › Options" in html
    assert "<b>cpu</b>" in html and "CUDA available</th><td>no" in html


def test_an_algorithm_runs_with_the_new_interpreter_in_the_fresh_profile(installed, tmp_path):
    a = np.random.default_rng(1).integers(0, 255, (3, 128, 128)).astype("uint8")
    path = write_raster(tmp_path / "a.tif", a)
    run = qgis_process(installed["env"], "run", "pix2pix:exportchips", "--", f"INPUT={path}", f"INPUT2={path}",
                       "TILE_SIZE=64", "STRIDE=64", "VALIDATION=0", f"OUTPUT={tmp_path / 'chips'}", timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"{installed['results']['PYTHON']} -u -m pix2pix_qgis export" in run.stdout
    assert len(list((tmp_path / "chips" / "images").glob("*.tif"))) == 4


def test_a_failing_pip_shows_its_own_error(qgis_app, tmp_path):
    """Offline install from a folder without the wheels: pip's real message reaches the log."""
    import processing
    from qgis.core import QgsProcessingException

    feedback = recording_feedback()
    (tmp_path / "wheels").mkdir()
    with pytest.raises(QgsProcessingException, match="pip could not install torch==2.13.0"):
        processing.run("pix2pix:setupengine", {"FOLDER": str(tmp_path / "venv"), "DEVICE": "cpu",
                                               "WHEELS": str(tmp_path / "wheels")}, feedback=feedback)
    # pip's own error line (its wording depends on pip's version and the site's constraints)
    assert any(line.startswith("ERROR: ") for e in feedback.errors for line in e.splitlines()), feedback.errors


def test_check_engine_reports_a_broken_interpreter_with_the_fix(qgis_app, tmp_path, monkeypatch):
    import processing

    broken = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(broken)], check=True)
    monkeypatch.setenv("PIX2PIX_PYTHON", str(broken / "bin" / "python"))
    result = processing.run("pix2pix:checkengine", {"OUTPUT_HTML": str(tmp_path / "check.html")},
                            feedback=recording_feedback())
    assert result["OK"] is False and result["PYTHON"] == str(broken / "bin" / "python")
    html = Path(result["OUTPUT_HTML"]).read_text()
    assert "The engine is not ready." in html and "Set up engine" in html and "pip install" in html


def test_the_interpreter_setting_accepts_a_python_it_cannot_write(qgis_app, tmp_path):
    """The provider checks its setting itself: Processing's FILE check (QGIS 3.44) wants a writable file,
    and interpreters are read-only to their users; a missing or non-executable path is still refused."""
    from processing.core.ProcessingConfig import ProcessingConfig

    check = ProcessingConfig.settings["PIX2PIX_PYTHON"].validator
    check("")
    check(str(Path(sys.executable).resolve()))
    (tmp_path / "notes.txt").write_text("not a program")
    for bad in (tmp_path / "missing" / "python", tmp_path / "notes.txt"):
        with pytest.raises(ValueError, match="does not exist or cannot be run"):
            check(str(bad))
