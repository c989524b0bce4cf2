"""File and folder names with spaces, quotes, ``;``, ``$()`` and non-ASCII characters, end to end in QGIS.

export → train → translate → evaluate through ``processing.run``, every path under a hostile
folder name. The provider builds argument lists (no shell), so the names must arrive intact and
the ``$(touch …)`` in them must never run.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .paths import ENGINE_PYTHON
from .processing_runs import run
from .rasters import read_raster

HOSTILE = "in 'single' \"double\"; $(touch PWNED) `touch PWNED` ümlaut 地图"


def test_hostile_names_travel_intact_through_every_algorithm(qgis_app, tmp_path):
    folder = tmp_path / HOSTILE
    folder.mkdir()
    subprocess.run([ENGINE_PYTHON, "-c", "import sys; from pix2pix_qgis.sample import make_sample_pair; "
                    "from rasterio.windows import Window; make_sample_pair(sys.argv[1], Window(2800, 650, 256, 256))",
                    str(folder)], check=True)
    relief, imagery = folder / f"relief {HOSTILE}.tif", folder / f"imagery {HOSTILE}.tif"
    (folder / "relief.tif").rename(relief)
    (folder / "imagery.tif").rename(imagery)

    chips = run("pix2pix:exportchips", {"INPUT": str(relief), "INPUT2": str(imagery), "TILE_SIZE": 64,
                                        "STRIDE": 64, "VALIDATION": 0.25, "OUTPUT": str(folder / f"chips {HOSTILE}")})
    trained = run("pix2pix:train", {"CHIPS": chips["OUTPUT"], "EPOCHS": 1, "BATCH_SIZE": 4, "NGF": 8,
                                    "DEVICE": "cpu", "OUTPUT_MODEL": str(folder / f"model {HOSTILE}.p2p"),
                                    "OUTPUT_HTML": str(folder / f"report {HOSTILE}.html")})
    translated = run("pix2pix:translate", {"INPUT": str(relief), "MODEL": trained["OUTPUT_MODEL"],
                                           "OUTPUT": str(folder / f"out {HOSTILE}.tif")})
    evaluated = run("pix2pix:evaluate", {"PREDICTION": translated["OUTPUT"], "REFERENCE": str(imagery),
                                         "OUTPUT_REPORT": str(folder / f"metrics {HOSTILE}.json")})

    assert chips["OUTPUT"] == str(folder / f"chips {HOSTILE}") and chips["CHIP_COUNT"] > 0
    assert Path(trained["OUTPUT_MODEL"]).name == f"model {HOSTILE}.p2p"
    assert Path(trained["OUTPUT_HTML"]).is_file()
    data, transform, projection = read_raster(Path(translated["OUTPUT"]))
    _, relief_transform, relief_projection = read_raster(relief)
    assert data.shape == (3, 256, 256) and transform == relief_transform and projection == relief_projection
    metrics = json.loads(Path(evaluated["OUTPUT_REPORT"]).read_text())
    assert metrics["pixels"] == 256 * 256
    assert not list(tmp_path.rglob("PWNED")) and not Path("PWNED").exists(), "a name was run by a shell"
    assert not [path for path in tmp_path.rglob("*") if ".partial-" in path.name]
