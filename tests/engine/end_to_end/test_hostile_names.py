"""File names with spaces, quotes, ';', '$()', backticks and non-ASCII, end to end through the CLI.

export → train → translate → evaluate as real subprocesses with argv lists. A shell
anywhere would split or evaluate these names; the ``$(touch …)`` parts would create
marker files. They must be treated as plain names, and the outputs land at exactly them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import rasterio

from pix2pix_qgis.model.package import load_model

from ..builders import smooth_field, write_raster
from ..cli_runs import REPO

HOSTILE = "we ird 'single' \"double\" ; semi $(touch pwned) `touch tick` & | > ünï 東京 –"


def cli(cwd: Path, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "pix2pix_qgis", *args, "--progress", "json"], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0, (lines[-1:], proc.stderr[-3000:])
    assert lines[-1]["type"] == "result"
    return lines[-1]["result"]


def test_hostile_names_work_end_to_end_and_nothing_is_evaluated(tmp_path, rng):
    folder = tmp_path / HOSTILE
    a = smooth_field(rng, 3, 160)
    path_a = write_raster(folder / f"A {HOSTILE}.tif", a)
    path_b = write_raster(folder / f"B {HOSTILE}.tif", (255 - a[[2, 0, 1]]).astype("uint8"))
    chips = folder / f"chips {HOSTILE}"
    model = folder / f"model {HOSTILE}.p2p"
    out = folder / f"out {HOSTILE}.tif"
    report = folder / f"metrics {HOSTILE}.json"
    html = folder / f"report {HOSTILE}.html"
    error_raster = folder / f"error {HOSTILE}.tif"

    exported = cli(tmp_path, "export", str(path_a), str(path_b), str(chips), "--tile-size", "32", "--stride", "32",
                   "--validation", "0.2")
    assert exported["output"] == str(chips) and (chips / "chips.json").is_file()
    trained = cli(tmp_path, "train", str(chips), str(model), "--epochs", "1", "--ngf", "4", "--ndf", "4",
                  "--device", "cpu", "--report", str(html))
    assert trained["output"] == str(model) and Path(trained["report"]) == html and html.is_file()
    assert load_model(model)[1].training["chips"]["path"] == str(chips)
    translated = cli(tmp_path, "translate", str(path_a), str(model), str(out), "--device", "cpu")
    assert translated["output"] == str(out)
    evaluated = cli(tmp_path, "evaluate", str(out), str(path_b), "--report", str(report), "--error-raster",
                    str(error_raster))
    assert evaluated["pixels"] == 160 * 160 and json.loads(report.read_text())["pixels"] == 160 * 160
    with rasterio.open(out) as dst, rasterio.open(error_raster) as err:
        assert dst.shape == err.shape == (160, 160)

    expected = {path_a.name, path_b.name, chips.name, model.name, model.name + ".ckpt", out.name, report.name,
                html.name, error_raster.name}
    assert {p.name for p in folder.iterdir()} == expected  # exactly these names, no partial or lock left
    assert sorted(p.name for p in tmp_path.iterdir()) == [HOSTILE]  # no 'pwned', no 'tick', nothing split off
    assert not list(tmp_path.rglob("pwned")) and not list(tmp_path.rglob("tick"))
