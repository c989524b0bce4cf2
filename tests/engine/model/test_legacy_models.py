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


def test_a_legacy_package_translates_bit_for_bit_as_before(tmp_path):
    out = tmp_path / "out.tif"
    translate_raster(FIXTURES / "legacy-v1-input.tif", LEGACY, out, TranslateSpec(device="cpu", dtype="float32"))
    with rasterio.open(out) as now, rasterio.open(FIXTURES / "legacy-v1-translated.tif") as before:
        assert now.profile == before.profile
        assert np.array_equal(now.read(), before.read())
        assert np.array_equal(now.read_masks(), before.read_masks())
