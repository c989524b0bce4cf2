"""The QGIS under test is the one the version matrix asked for, and one the plugin declares it supports."""

from __future__ import annotations

import os

from .paths import REPO


def _declared(key: str) -> tuple[int, ...]:
    for line in (REPO / "metadata.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{key}="):
            return tuple(int(part) for part in line.split("=", 1)[1].strip().split("."))
    raise AssertionError(f"metadata.txt has no {key}")


def test_qgis_is_the_requested_and_a_declared_version(qgis_app):
    from qgis.core import Qgis

    version = tuple(int(part) for part in Qgis.QGIS_VERSION.split("-")[0].split("."))
    assert _declared("qgisMinimumVersion") <= version[:2] <= _declared("qgisMaximumVersion"), Qgis.QGIS_VERSION
    expected = os.environ.get("PIX2PIX_EXPECT_QGIS")  # set by scripts/test-qgis.sh for each matrix entry
    if expected:
        assert version[:2] == tuple(int(part) for part in expected.split(".")), (Qgis.QGIS_VERSION, expected)
