"""The notebook API: prepare_data → show_batch → lr_find → fit → plot_losses → show_results →
compute_metrics → save → from_model → translate_raster / predict. Figures are read through
matplotlib's object model and their values checked against the chips and the model."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from matplotlib.image import AxesImage

from pix2pix_qgis import Pix2PixError, translate_raster
from pix2pix_qgis.api import Pix2Pix, prepare_data
from pix2pix_qgis.data.dataset import ChipDataset
from pix2pix_qgis.data.sampling import epoch_order, training_loader
from pix2pix_qgis.infer.translate import TranslateSpec
from pix2pix_qgis.model.checkpoint import checkpoint_path, load_checkpoint
from pix2pix_qgis.train.config import TrainConfig, generator_spec
from pix2pix_qgis.train.lr_find import suggest_lr
from pix2pix_qgis.train.trainer import Pix2PixTrainer

from ..builders import mapping_chips, smooth_field, write_raster


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    data = prepare_data(mapping_chips(folder, size=128), batch_size=4)
    model = Pix2Pix(data, ngf=4, ndf=4, lr=2e-3)
    first = model.fit(1)
    second = model.fit(1)
    return model, data, first, second, folder


def panels(figure):
    """The image panels of a figure, row by row (colour bars are axes without an image)."""
    return [axes for axes in figure.axes if any(isinstance(a, AxesImage) for a in axes.get_children())]


def read_chip(data, folder: str, name: str) -> np.ndarray:
    with rasterio.open(data.path / folder / name) as src:
        return src.read().astype("float64")


def test_prepare_data_describes_the_chips(fitted):
    _, data, _, _, _ = fitted
    assert data.chip_size == 32 and len(data.chips.train) == 12 and len(data.chips.validation) == 4
    batch = next(iter(data.loader("validation")))
    assert batch["a"].shape == (4, 3, 32, 32) and "12 train / 4 validation" in repr(data)


def test_show_batch_draws_the_first_training_batch_in_raster_units(fitted):
    _, data, _, _, _ = fitted
    figure = data.show_batch(rows=3)
    drawn = panels(figure)
    assert len(drawn) == 6
    assert [axes.get_title() for axes in drawn[:2]] == ["Input (A)\nbands 1-2-3 as RGB",
                                                        "Target (B)\nbands 1-2-3 as RGB"]
    names = [data.chips.train[i] for i in epoch_order(12, data.seed, 1)[:3]]
    assert [drawn[2 * row].get_ylabel() for row in range(3)] == names
    low, high = np.array(data.chips.norm_a.low), np.array(data.chips.norm_a.high)
    for row, name in enumerate(names):
        a, b = read_chip(data, "images", name), read_chip(data, "images2", name)
        shown_a, shown_b = (drawn[2 * row + col].get_images()[0].get_array() for col in (0, 1))
        np.testing.assert_allclose(shown_b, b.transpose(1, 2, 0) / 255)  # 8-bit: as it is, on 0–255
        clipped = np.clip(a, low[:, None, None], high[:, None, None])  # the input as the generator sees it
        np.testing.assert_allclose(shown_a, clipped.transpose(1, 2, 0) / 255, atol=1e-5)


def test_show_batch_shows_a_chosen_band_or_composite(fitted):
    _, data, _, _, _ = fitted
    first, second = panels(data.show_batch(rows=1, split="validation", bands_a=2, bands_b=(3, 2, 1)))
    name = data.chips.validation[0]
    assert first.get_ylabel() == name and first.get_title() == "Input (A)\nband 2"
    grey = first.get_images()[0]
    assert grey.get_clim() == (0.0, 255.0)  # 8-bit data is not stretched
    np.testing.assert_allclose(grey.get_array(), np.clip(read_chip(data, "images", name)[1],
                                                         data.chips.norm_a.low[1], data.chips.norm_a.high[1]),
                               atol=1e-4)
    np.testing.assert_allclose(second.get_images()[0].get_array(),
                               read_chip(data, "images2", name)[[2, 1, 0]].transpose(1, 2, 0) / 255)
    with pytest.raises(Pix2PixError, match=r"input \(A\) has 3 band\(s\); band\(s\) \[4\]"):
        data.show_batch(bands_a=4)
    with pytest.raises(Pix2PixError, match="split 'test' is unknown"):
        data.show_batch(split="test")


def test_each_fit_continues_the_previous_one(fitted):
    model, _, first, second, _ = fitted
    assert first["epochs"] == 1 and second["epochs"] == 2
    assert [row["epoch"] for row in model.card.metrics.history] == [1, 2]


def test_plot_losses_draws_the_history_of_all_fits(fitted):
    model, _, _, _, _ = fitted
    history = model.card.metrics.history
    adversarial, l1 = model.plot_losses().axes
    lines = {line.get_label(): line for line in adversarial.lines + l1.lines}
    assert list(lines["training L1"].get_xdata()) == [1, 2]
    assert list(lines["training L1"].get_ydata()) == [row["G_L1"] for row in history]
    assert list(lines["validation L1"].get_ydata()) == [row["val_l1"] for row in history]
    assert list(lines["generator GAN"].get_ydata()) == [row["G_GAN"] for row in history]
    best = model.card.metrics.best_epoch
    assert list(lines[f"best epoch ({best})"].get_xdata()) == [best, best]


def test_show_results_draws_the_models_predictions_on_validation_chips(fitted):
    model, data, _, _, _ = fitted
    figure = model.show_results(rows=2)
    drawn = panels(figure)
    assert len(drawn) == 6 and drawn[2].get_title() == "Prediction\nbands 1-2-3 as RGB"
    assert figure.get_suptitle() == "validation chips"
    for row, name in enumerate(data.chips.validation[:2]):
        assert drawn[3 * row].get_ylabel() == name
        prediction = model.predict(read_chip(data, "images", name))
        shown = drawn[3 * row + 2].get_images()[0].get_array()
        np.testing.assert_allclose(shown, np.clip(prediction / 255, 0, 1).transpose(1, 2, 0), atol=1e-4)
        assert drawn[3 * row + 1].get_xlabel() == drawn[3 * row + 2].get_xlabel() == "0–255 (8-bit)"


def test_compute_metrics_are_the_best_epochs_validation_metrics(fitted):
    model, data, _, _, _ = fitted
    metrics = model.compute_metrics()
    best = model.card.metrics.best
    for name in ("l1", "mae", "rmse", "psnr", "ssim", "bias", "r2"):
        assert metrics[name] == pytest.approx(best[f"val_{name}"], rel=1e-6), name
    # the standard definitions, recomputed here from the model's predictions of each validation chip
    names = data.chips.validation
    prediction = np.stack([model.predict(read_chip(data, "images", n)) for n in names]).astype("float64")
    target = np.stack([read_chip(data, "images2", n) for n in names])
    error = prediction - target
    span = np.array(data.chips.norm_b.high) - np.array(data.chips.norm_b.low)
    mse = (error**2).mean(axis=(0, 2, 3))
    for band, values in enumerate(metrics["bands"]):
        assert values["mae"] == pytest.approx(np.abs(error[:, band]).mean(), rel=1e-5)
        assert values["rmse"] == pytest.approx(np.sqrt(mse[band]), rel=1e-5)
        assert values["data_range"] == pytest.approx(span[band])
        assert values["psnr"] == pytest.approx(10 * np.log10(span[band] ** 2 / mse[band]), rel=1e-5)
        assert -1 <= values["ssim"] <= 1
    assert metrics["mae"] == pytest.approx(np.mean([b["mae"] for b in metrics["bands"]]))
    assert metrics["pixels"] == len(names) * 32 * 32


def test_lr_find_runs_the_trainers_step_on_a_copy_and_suggests_by_its_rule(fitted):
    _, data, _, _, _ = fitted
    model = Pix2Pix(data, ngf=4, ndf=4)
    rng_before = torch.get_rng_state()
    suggestion = model.lr_find(start_lr=1e-5, end_lr=1e-2, steps=20)
    assert torch.equal(torch.get_rng_state(), rng_before)
    found = model.lr_finding
    assert found.suggestion == suggestion == suggest_lr(found.lrs, found.losses)
    assert found.lrs[0] == pytest.approx(1e-5) and 1e-6 <= suggestion <= 1e-3
    assert np.allclose(np.diff(np.log10(found.lrs)), 3 / 19)  # geometric steps
    # the first smoothed loss is the first step's generator objective: the trainer's own step, from the seed
    config = TrainConfig(ngf=4, ndf=4, batch_size=4, seed=0)
    torch.manual_seed(0)
    trainer = Pix2PixTrainer(generator_spec(config, data.chips), config, torch.device("cpu"))
    loader, sampler = training_loader(ChipDataset(data.chips, "train", augment=True), 4, 0)
    sampler.set_epoch(1)
    trainer.set_lr(1e-5)
    losses = trainer.step(next(iter(loader)))
    assert found.losses[0] == pytest.approx(losses["G_GAN"] + 100 * losses["G_L1"], rel=1e-6)
    (axes,) = model.plot_lr_find().axes
    assert list(axes.lines[0].get_xdata()) == list(found.lrs) and list(axes.lines[0].get_ydata()) == list(found.losses)
    assert list(axes.lines[1].get_xdata()) == [suggestion, suggestion]


def test_lr_find_after_a_fit_starts_from_its_state_and_changes_nothing(fitted):
    model, _, _, _, _ = fitted
    package, ckpt = model._package.read_bytes(), checkpoint_path(model._package).read_bytes()
    weights = {k: v.clone() for k, v in model._generator.state_dict().items()}
    model.lr_find(start_lr=1e-4, end_lr=1e-2, steps=5)
    assert model._package.read_bytes() == package and checkpoint_path(model._package).read_bytes() == ckpt
    assert all(torch.equal(v, model._generator.state_dict()[k]) for k, v in weights.items())
    document, tensors = load_checkpoint(checkpoint_path(model._package))
    config = model._config(3)
    torch.manual_seed(0)
    trainer = Pix2PixTrainer(generator_spec(config, model.data.chips), config, torch.device("cpu"))
    trainer.load_state(tensors, document)
    loader, sampler = training_loader(ChipDataset(model.data.chips, "train", augment=True), 4, 0)
    sampler.set_epoch(1)
    trainer.set_lr(1e-4)
    losses = trainer.step(next(iter(loader)))
    assert model.lr_finding.losses[0] == pytest.approx(losses["G_GAN"] + 100 * losses["G_L1"], rel=1e-6)


def test_the_suggestion_is_a_tenth_of_the_rate_at_the_lowest_loss():
    lrs = np.geomspace(1e-6, 1e-1, 21)
    losses = [10, 10, 9.9, 9.5, 9, 8, 6, 3, 2, 1.5, 1.2, 1.1, 1.0, 1.2, 2, 5, 9, 20, 40, 80, 100]
    assert suggest_lr(lrs, losses) == pytest.approx(lrs[12] / 10)  # lowest at 1e-6 · 10^(12/4) = 1e-3
    assert suggest_lr(lrs[:1], [3.0]) == pytest.approx(1e-7)
    with pytest.raises(Pix2PixError, match="lower start_lr"):
        suggest_lr([], [])


def test_fit_without_a_learning_rate_uses_lr_finds_suggestion(fitted):
    _, data, _, _, _ = fitted
    model = Pix2Pix(data, ngf=4, ndf=4)
    model.fit(1)
    assert model.lr_finding is not None
    assert model.card.training["config"]["lr"] == model.lr_finding.suggestion


def test_save_from_model_and_predict_agree(fitted, tmp_path):
    model, data, _, _, folder = fitted
    path = model.save(tmp_path / "model.p2p")
    loaded = Pix2Pix.from_model(path, data=data)
    rng = np.random.default_rng(0)
    array = rng.uniform(0, 250, (3, 40, 50)).astype("float32")  # not a multiple of 32: padded and cropped
    prediction = loaded.predict(array)
    assert prediction.shape == (3, 40, 50) and prediction.dtype == np.float32
    np.testing.assert_array_equal(prediction, model.predict(array))
    low, high = loaded.card.output.normalization.low, loaded.card.output.normalization.high
    assert all(low[b] <= prediction[b].min() and prediction[b].max() <= high[b] for b in range(3))
    batch = loaded.predict(np.stack([array, array]))
    assert batch.shape == (2, 3, 40, 50)
    assert loaded.compute_metrics()["mae"] == pytest.approx(model.compute_metrics()["mae"], rel=1e-6)
    assert Pix2Pix.load(path).plot_losses().axes[1].lines[0].get_ydata()[-1] == model.card.metrics.history[-1][
        "G_L1"]


def test_translate_raster_writes_the_models_prediction_on_the_inputs_grid(fitted, tmp_path):
    model, _, _, _, _ = fitted
    array = smooth_field(np.random.default_rng(5), 3, 32)
    source = write_raster(tmp_path / "in.tif", array)
    summary = model.translate_raster(source, tmp_path / "out.tif", dtype="float32", device="cpu")
    assert summary["tiles"] == 1 and summary["dtype"] == "float32"
    with rasterio.open(source) as src, rasterio.open(tmp_path / "out.tif") as out:
        assert (out.crs, out.transform, out.width, out.height, out.count) == (
            src.crs, src.transform, src.width, src.height, 3)
        written = out.read()
    np.testing.assert_allclose(written, model.predict(array.astype("float32")), atol=1e-3)  # one tile, weight 1
    big = write_raster(tmp_path / "big.tif", smooth_field(np.random.default_rng(6), 3, 80))
    model.translate_raster(big, tmp_path / "api.tif", overlap=8)
    translate_raster(big, model._package, tmp_path / "cli.tif", TranslateSpec(overlap=8))
    with rasterio.open(tmp_path / "api.tif") as a, rasterio.open(tmp_path / "cli.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())  # the same translation as the command line's
    with pytest.raises(Pix2PixError, match="no option.* tilesize; use tile_size"):
        model.translate_raster(source, tmp_path / "x.tif", tilesize=64)


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
    model, data, _, _, _ = fitted
    saved = model.save(tmp_path / "m.p2p")
    with pytest.raises(Pix2PixError, match="no data to train on"):
        Pix2Pix.load(saved).fit(1)
    with pytest.raises(Pix2PixError, match="does not train further"):
        Pix2Pix.from_model(saved, data=data).fit(1)
    with pytest.raises(Pix2PixError, match="no data to show results on"):
        Pix2Pix.load(saved).show_results()
    with pytest.raises(Pix2PixError, match="not trained"):
        Pix2Pix().predict(np.zeros((3, 32, 32)))
    with pytest.raises(Pix2PixError, match="not trained"):
        Pix2Pix(data).compute_metrics()
    with pytest.raises(Pix2PixError, match="not trained"):
        Pix2Pix().translate_raster(tmp_path / "in.tif", tmp_path / "out.tif")
    with pytest.raises(Pix2PixError, match="lr_find"):
        Pix2Pix().plot_lr_find()
    with pytest.raises(Pix2PixError, match=r"\(3, H, W\)"):
        model.predict(np.zeros((2, 32, 32)))
    with pytest.raises(Pix2PixError, match="NGF"):
        Pix2Pix(ngf=0)
    with pytest.raises(Pix2PixError, match="nothing to save"):
        Pix2Pix().save(tmp_path / "x.p2p")
