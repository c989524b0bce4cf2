"""The notebook CycleGAN: fit, fit again (continuing), save, read back, translate both ways; a Pix2Pix file refused."""

from __future__ import annotations

import pytest
import rasterio

from pix2pix_qgis import CycleGAN, Pix2PixError

from ..builders import CYCLEGAN_TINY
from ..models import write_model


def test_fit_twice_save_read_back_and_translate_both_ways(unpaired, tmp_path):
    a, b, chips = unpaired
    options = {k: v for k, v in CYCLEGAN_TINY.items() if k != "model_type"}
    model = CycleGAN(chips, seed=3, **options)
    first = model.fit(1)
    second = model.fit(1)
    assert (first["epochs"], second["epochs"]) == (1, 2)
    assert [row["epoch"] for row in model.card.metrics.history] == [1, 2]
    saved = model.save(tmp_path / "cycle.p2p")
    again = CycleGAN.from_model(saved)
    result = again.translate_raster(b, tmp_path / "b2a.tif", direction="b2a")
    with rasterio.open(b) as src, rasterio.open(result["output"]) as out:
        assert (out.crs, out.transform, out.width, out.height) == (src.crs, src.transform, src.width, src.height)
        assert (out.count, out.dtypes[0]) == (3, "uint8")
    assert again.plot_losses() is not None


def test_a_pix2pix_package_is_not_read_as_a_cyclegan(tmp_path):
    with pytest.raises(Pix2PixError, match="not a CycleGAN; read it with Pix2Pix.from_model"):
        CycleGAN.from_model(write_model(tmp_path / "p.p2p"))
    with pytest.raises(Pix2PixError, match="no chips to train on"):
        CycleGAN().fit(1)
