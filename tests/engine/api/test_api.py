"""The notebook API: prepare_data → Pix2Pix → fit → save → load → predict."""

from __future__ import annotations

import numpy as np
import pytest

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.api import Pix2Pix, prepare_data

from ..data.test_dataset import mapping_chips


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    data = prepare_data(mapping_chips(folder, size=128), batch_size=4)
    model = Pix2Pix(data, ngf=4, ndf=4, lr=2e-3)
    first = model.fit(1)
    second = model.fit(1)
    return model, data, first, second, folder


def test_prepare_data_describes_the_chips(fitted):
    _, data, _, _, _ = fitted
    assert data.chip_size == 32 and len(data.chips.train) == 12 and len(data.chips.validation) == 4
    batch = next(iter(data.loader("validation")))
    assert batch["a"].shape == (4, 3, 32, 32) and "12 train / 4 validation" in repr(data)


def test_each_fit_continues_the_previous_one(fitted):
    model, _, first, second, _ = fitted
    assert first["epochs"] == 1 and second["epochs"] == 2
    assert [row["epoch"] for row in model.card.metrics.history] == [1, 2]


def test_save_load_and_predict_agree(fitted, tmp_path):
    model, data, _, _, folder = fitted
    path = model.save(tmp_path / "model.p2p")
    loaded = Pix2Pix.load(path)
    rng = np.random.default_rng(0)
    array = rng.uniform(0, 250, (3, 40, 50)).astype("float32")  # not a multiple of 32: padded and cropped
    prediction = loaded.predict(array)
    assert prediction.shape == (3, 40, 50) and prediction.dtype == np.float32
    np.testing.assert_array_equal(prediction, model.predict(array))
    low, high = loaded.card.output.normalization.low, loaded.card.output.normalization.high
    assert all(low[b] <= prediction[b].min() and prediction[b].max() <= high[b] for b in range(3))
    batch = loaded.predict(np.stack([array, array]))
    assert batch.shape == (2, 3, 40, 50)


def test_invalid_input_pixels_come_out_nan(fitted):
    model, _, _, _, _ = fitted
    array = np.full((3, 32, 32), 100.0, "float32")
    array[1, 3, 4] = np.nan
    valid = np.ones((32, 32), bool)
    valid[10, 10] = False
    out = model.predict(array, valid)
    assert np.isnan(out[:, 3, 4]).all() and np.isnan(out[:, 10, 10]).all()
    assert np.isfinite(out).sum() == 3 * (32 * 32 - 2)


def test_misuse_is_explained(fitted, tmp_path):
    model, _, _, _, _ = fitted
    with pytest.raises(Pix2PixError, match="no data to train on"):
        Pix2Pix.load(model.save(tmp_path / "m.p2p")).fit(1)
    with pytest.raises(Pix2PixError, match="not trained"):
        Pix2Pix().predict(np.zeros((3, 32, 32)))
    with pytest.raises(Pix2PixError, match=r"\(3, H, W\)"):
        model.predict(np.zeros((2, 32, 32)))
    with pytest.raises(Pix2PixError, match="NGF"):
        Pix2Pix(ngf=0)
    with pytest.raises(Pix2PixError, match="nothing to save"):
        Pix2Pix().save(tmp_path / "x.p2p")
