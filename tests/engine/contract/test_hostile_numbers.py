"""Hostile numbers from the issue, refused by the parameter table (``contract/params.py``).

Negative, NaN or out-of-range values and unknown device names used to end in a traceback;
they are validated once, for the CLI and QGIS alike, and refused with exit 2 before any work.
"""

from __future__ import annotations

import pytest

from ..builders import write_raster
from ..cli_runs import run_cli
from ..models import write_model


@pytest.mark.parametrize("options", [("--margin", "-3"), ("--extent", "nan", "nan", "nan", "nan"),
                                     ("--device", "gpu0")], ids=["negative margin", "nan extent", "unknown device"])
def test_hostile_translate_numbers_are_refused(tmp_path, rng, options):
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 64, 64), dtype="uint8"))
    model = write_model(tmp_path / "m.p2p", chip=32, depth=3)
    device = () if "--device" in options else ("--device", "cpu")
    assert run_cli("translate", str(source), str(model), str(tmp_path / "out.tif"), *device, *options).refused(
        f"argument {options[0]}", "use ")


def test_a_negative_export_seed_is_refused(tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 64, 64), dtype="uint8"))
    assert run_cli("export", str(source), str(source), str(tmp_path / "out"), "--tile-size", "32",
                   "--seed", "-1").refused("argument --seed", "at least 0")
