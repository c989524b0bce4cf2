"""GUI check: the QGIS desktop under Xvfb with the plugin installed from the zip into a fresh profile.

It opens the Processing toolbox on the Pix2Pix group and the Translate raster dialog and saves
screenshots (the README's are made this way: PIX2PIX_GUI_SCREENSHOTS=docs/images).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from .plugin_install import install_from_zip

SCRIPT = Path(__file__).with_name("gui_check_script.py")


def _distinct_colours(path: Path) -> int:
    from qgis.PyQt.QtGui import QImage

    image = QImage(str(path))
    assert not image.isNull() and image.width() > 200 and image.height() > 200, path
    step_x, step_y = max(1, image.width() // 60), max(1, image.height() // 60)
    return len({image.pixel(x, y) for x in range(0, image.width(), step_x) for y in range(0, image.height(), step_y)})


def test_toolbox_and_translate_dialog_in_the_qgis_desktop(qgis_app, tmp_path):
    assert shutil.which("xvfb-run") and shutil.which("qgis"), "make setup-qgis installs xvfb and QGIS"
    plugins = install_from_zip(tmp_path)
    settings = tmp_path / "profiles" / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    settings.parent.mkdir(parents=True)
    settings.write_text("[PythonPlugins]\npix2pix_toolbox=true\n\n[qgis]\ncheckVersion=false\n"
                        "showTips=false\n\n[core]\nNewsFeed\\httpsfeedqgisorg\\disabled=true\n")
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "QGIS_PLUGINPATH": str(plugins), "PIX2PIX_GUI_OUT": str(out)}
    env.pop("QT_QPA_PLATFORM", None)
    run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", "qgis", "--nologo", "--noversioncheck",
                          "--profiles-path", str(tmp_path / "profiles"), "--code", str(SCRIPT)],
                         env=env, capture_output=True, text=True, timeout=420)
    report = out / "gui.json"
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    found = json.loads(report.read_text())
    assert found["errors"] == [] and found["plugin_loaded"]
    toolbox = [line.strip() for line in found["toolbox"]]
    assert "Pix2Pix" in toolbox
    for name in ("Export paired chips", "Train Pix2Pix", "Translate raster", "Evaluate translation",
                 "Set up engine", "Check engine"):
        assert name in toolbox, toolbox
    assert "Translate raster" in found["dialog_title"]
    assert {"INPUT", "MODEL", "OUTPUT", "TILE_SIZE", "OVERLAP", "EXTENT", "RESOLUTION", "DEVICE"} <= set(
        found["dialog_parameters"])
    for shot in ("toolbox.png", "translate-dialog.png", "main-window.png"):
        assert _distinct_colours(out / shot) > 20, shot  # a real rendering, not a blank grab
    keep = os.environ.get("PIX2PIX_GUI_SCREENSHOTS")
    if keep:
        for shot in ("toolbox.png", "translate-dialog.png"):
            shutil.copy(out / shot, Path(keep) / shot)
