"""Packages written before the pix2pixHD options existed still load and translate bit for bit as before.

``data/legacy-v1.p2p`` was trained, and ``data/legacy-v1-translated.tif`` translated
from ``data/legacy-v1-input.tif``, by the engine at commit 42a8385 (before issue 15);
``data/README.md`` has the script. Neither file may ever be regenerated.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import rasterio

from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.model.discriminators import DiscriminatorSpec
from pix2pix_qgis.model.networks import GeneratorSpec
from pix2pix_qgis.model.package import load_model

FIXTURES = Path(__file__).resolve().parent / "data"
LEGACY = FIXTURES / "legacy-v1.p2p"


def test_a_legacy_package_records_no_options_and_loads_as_the_reference_layout():
    metadata = json.loads(zipfile.ZipFile(LEGACY).read("model.json"))
    assert "upsample" not in metadata["architecture"]["generator"]
    assert "scales" not in metadata["architecture"]["discriminator"]
    generator, card = load_model(LEGACY)
    assert generator.spec == GeneratorSpec(3, 3, 5, 4, "batch", True, "transpose")
    assert card.discriminator == DiscriminatorSpec(6, 4, 3, "batch", scales=1, spectral_norm=False)


def test_a_legacy_package_translates_as_before(tmp_path):
    out = tmp_path / "out.tif"
    # tile_size = the chip, the default tile when the fixture was made (issue-14 made it two or three chips)
    spec = TranslateSpec(device="cpu", dtype="float32", tile_size=32)
    translate_raster(FIXTURES / "legacy-v1-input.tif", LEGACY, out, spec)
    with rasterio.open(out) as now, rasterio.open(FIXTURES / "legacy-v1-translated.tif") as before:
        assert now.profile == before.profile
        # Same tiling and weights; issue-14's CPU path (oneDNN channels-last fp32) sums in another order,
        # so values agree to float32 rounding (~3e-5 on values of 40–75), not bit for bit.
        np.testing.assert_allclose(now.read(), before.read(), rtol=0, atol=1e-3)
        assert np.array_equal(now.read_masks(), before.read_masks())
