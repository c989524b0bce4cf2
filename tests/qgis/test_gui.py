"""GUI check: the QGIS desktop under Xvfb with the plugin installed from the zip into a fresh profile.

The analyst's journey (tests/qgis/gui_check_script.py): the Processing toolbox on the Pix2Pix group,
the Translate raster dialog filled in and run, and the map canvas with the input raster and the
translated output side by side, each saved as a screenshot. The README's come from this test on the
LTR, with the model of ``make demo`` (a small model trained here would show only noise)::

    make demo && PIX2PIX_GUI_DEMO=demo-output PIX2PIX_GUI_SCREENSHOTS=docs/images \\
        make test-qgis QGIS=3.40 PYTEST_ARGS="-k desktop"
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from .paths import ENGINE_PYTHON
from .plugin_install import install_from_zip
from .rasters import read_raster

SCRIPT = Path(__file__).with_name("gui_check_script.py")
SHOTS = ("toolbox.png", "translate-dialog.png", "translate-result.png")
EAST = 0.25  # the share of the input, on its eastern side, that the dialog translates


def _distinct_colours(path: Path) -> int:
    from qgis.PyQt.QtGui import QImage

    image = QImage(str(path))
    assert not image.isNull() and image.width() > 200 and image.height() > 200, path
    step_x, step_y = max(1, image.width() // 60), max(1, image.height() // 60)
    return len({image.pixel(x, y) for x in range(0, image.width(), step_x) for y in range(0, image.height(), step_y)})


def _engine(*argv: str) -> None:
    run = subprocess.run([ENGINE_PYTHON, *argv], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def _input_and_model(root: Path) -> tuple[Path, Path]:
    """The demo's relief and model when PIX2PIX_GUI_DEMO names a ``make demo`` output, else a small
    sample and a model trained on it in seconds."""
    demo = os.environ.get("PIX2PIX_GUI_DEMO")
    if demo:
        return Path(demo).resolve() / "sample" / "relief.tif", Path(demo).resolve() / "model.p2p"
    _engine("-c", "from pix2pix_qgis.sample import make_sample_pair; from rasterio.windows import Window; "
                  f"make_sample_pair({str(root)!r}, Window(2880, 460, 384, 256))")
    _engine("-m", "pix2pix_qgis", "export", str(root / "relief.tif"), str(root / "imagery.tif"), str(root / "chips"),
            "--tile-size", "64", "--stride", "64", "--validation", "0.2", "--progress", "none")
    _engine("-m", "pix2pix_qgis", "train", str(root / "chips"), str(root / "model.p2p"), "--epochs", "1",
            "--ngf", "8", "--batch-size", "8", "--device", "cpu", "--progress", "none")
    return root / "relief.tif", root / "model.p2p"


def test_translate_journey_in_the_qgis_desktop(qgis_app, tmp_path):
    assert shutil.which("xvfb-run") and shutil.which("qgis"), "make setup-qgis installs xvfb and QGIS"
    relief, model = _input_and_model(tmp_path / "data")
    data, transform, _ = read_raster(relief)
    rows, cols = data.shape[-2:]
    west_cols = round(cols * (1 - EAST))
    x0 = transform[0] + west_cols * transform[1]
    x1, y0, y1 = transform[0] + cols * transform[1], transform[3] + rows * transform[5], transform[3]
    output = tmp_path / "translated.tif"
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"input": str(relief), "model": str(model), "output": str(output),
                               "extent": f"{x0!r},{x1!r},{y0!r},{y1!r} [EPSG:4326]"}))

    plugins = install_from_zip(tmp_path)
    settings = tmp_path / "profiles" / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    settings.parent.mkdir(parents=True)
    settings.write_text("[PythonPlugins]\npix2pix_toolbox=true\n\n[qgis]\ncheckVersion=false\n"
                        "showTips=false\n\n[core]\nNewsFeed\\httpsfeedqgisorg\\disabled=true\n")
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "QGIS_PLUGINPATH": str(plugins), "PIX2PIX_GUI_OUT": str(out), "PIX2PIX_GUI_JOB": str(job)}
    env.pop("QT_QPA_PLATFORM", None)
    # -a takes the first free display from -n on; the version matrix gives each chroot its own range
    # (chroots share the host's network, hence its X sockets, but not its /tmp lock files).
    server = os.environ.get("PIX2PIX_XVFB_SERVERNUM", "99")
    run = subprocess.run(["xvfb-run", "-a", "-n", server, "-s", "-screen 0 1600x1000x24", "qgis", "--nologo",
                          "--noversioncheck", "--profiles-path", str(tmp_path / "profiles"), "--code", str(SCRIPT)],
                         env=env, capture_output=True, text=True, timeout=480)
    report = out / "gui.json"
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    found = json.loads(report.read_text())
    assert found["errors"] == [] and found["plugin_loaded"], found
    toolbox = [line.strip() for line in found["toolbox"]]
    assert "Pix2Pix" in toolbox
    for name in ("Export paired chips", "Export unpaired chips", "Train Pix2Pix", "Train CycleGAN (unpaired)",
                 "Translate raster", "Evaluate translation", "Evaluate without pairs", "Set up engine", "Check engine"):
        assert name in toolbox, toolbox
    assert "Translate raster" in found["dialog_title"]
    assert {"INPUT", "MODEL", "DIRECTION", "OUTPUT", "TILE_SIZE", "OVERLAP", "EXTENT", "RESOLUTION", "DEVICE"} <= set(
        found["dialog_parameters"])
    values = found["dialog_values"]  # what the filled-in dialog would run
    assert values["MODEL"] == str(model) and values["DEVICE"] == "cpu" and str(output) in values["OUTPUT"]

    translated, out_transform, _ = read_raster(output)  # the run wrote the eastern part, on the input's grid
    assert translated.shape == (3, rows, cols - west_cols)
    np.testing.assert_allclose(out_transform, (x0, transform[1], 0.0, y1, 0.0, transform[5]), rtol=0, atol=1e-9)
    assert found["output_renderer"] == "multibandcolor"  # loaded and styled by the plugin's post-processor
    assert "relief (input)" in found["canvas_layers"] and len(found["canvas_layers"]) == 2, found["canvas_layers"]
    for shot in SHOTS:
        assert _distinct_colours(out / shot) > 20, shot  # a real rendering, not a blank grab
    keep = os.environ.get("PIX2PIX_GUI_SCREENSHOTS")
    if keep:
        for shot in SHOTS:
            shutil.copy(out / shot, Path(keep) / shot)
