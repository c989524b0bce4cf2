"""Hostile numbers from the issue whose refusal belongs to the parameter table (``contract/params.py``).

Negative, NaN or out-of-range values and unknown device names are validated once, for the
CLI and QGIS alike, by the parameter table built in parallel with the output-path guard.
Until it is merged these examples still end in a traceback: they are strict expected
failures, so the merge that fixes them turns them into failures to remove the marker from.
"""

from __future__ import annotations

import pytest

from .cli_runs import run_cli
from .conftest import write_raster
from .models import write_model

TABLE = pytest.mark.xfail(strict=True, reason="refused by the parameter table (contract/params.py), not merged yet")


@TABLE
@pytest.mark.parametrize("options", [("--margin", "-3"), ("--extent", "nan", "nan", "nan", "nan"),
                                     ("--device", "gpu0")], ids=["negative margin", "nan extent", "unknown device"])
def test_hostile_translate_numbers_are_refused(tmp_path, rng, options):
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 64, 64), dtype="uint8"))
    model = write_model(tmp_path / "m.p2p", chip=32, depth=3)
    device = () if "--device" in options else ("--device", "cpu")
    assert run_cli("translate", str(source), str(model), str(tmp_path / "out.tif"), *device, *options).refused()


@TABLE
def test_a_negative_export_seed_is_refused(tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 64, 64), dtype="uint8"))
    assert run_cli("export", str(source), str(source), str(tmp_path / "out"), "--tile-size", "32",
                   "--seed", "-1").refused("seed")
