"""Training: it learns, reports, cancels into a checkpoint, resumes to the step, and masks nodata; the
pix2pixHD options train, are recorded and resume; checkpoints of earlier versions resume."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch

from pix2pix_qgis import Cancelled, Pix2PixError
from pix2pix_qgis.data.dataset import ChipDataset
from pix2pix_qgis.data.folder import open_chips
from pix2pix_qgis.data.sampling import make_loader
from pix2pix_qgis.infer.translate import translate_raster
from pix2pix_qgis.model.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from pix2pix_qgis.model.device import resolve_device
from pix2pix_qgis.model.generators import build_generator
from pix2pix_qgis.model.networks import GeneratorSpec
from pix2pix_qgis.model.package import load_model, read_package
from pix2pix_qgis.train.config import TrainConfig, choose_depth
from pix2pix_qgis.train.guide import budget_advice
from pix2pix_qgis.train.loop import train
from pix2pix_qgis.train.losses import masked_l1
from pix2pix_qgis.train.report import training_report
from pix2pix_qgis.train.trainer import Pix2PixTrainer, evaluate

from ..builders import Recorder, esri_folder, mapping_chips, weights

TINY = {"ngf": 4, "ndf": 4, "batch_size": 4, "lr": 2e-3}
REFERENCE = {"upsample": "transpose", "d_scales": 1, "spectral_norm": False, "lambda_feat": 0.0, "gan_mode": "vanilla"}
TOOLBOX = {"upsample": "resize", "d_scales": 2, "spectral_norm": True, "lambda_feat": 10.0, "gan_mode": "hinge"}


@pytest.fixture(scope="module")
def small_chips(tmp_path_factory) -> Path:
    """16 chips of 64 px (12 train, 4 validation) of the mapping B = 255 − A permuted.

    64 px gives a U-Net of depth 6, the smallest with a dropout level, so resuming must
    restore the RNG to repeat a run.
    """
    return mapping_chips(tmp_path_factory.mktemp("small"), size=256, tile=64)


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A real training run on 64 chips of the mapping, with its events and the untrained L1."""
    folder = tmp_path_factory.mktemp("learn")
    chips = mapping_chips(folder, size=256)
    config = TrainConfig(epochs=12, ngf=8, ndf=8, batch_size=4, lr=2e-3, seed=0)
    opened = open_chips(chips)
    untrained = build_generator(GeneratorSpec(3, 3, choose_depth(config, 32), 8), torch.Generator().manual_seed(0))
    loader = make_loader(ChipDataset(opened, "validation", with_units=True), 8)
    before = evaluate(untrained, loader, opened)
    progress = Recorder()
    result = train(chips, folder / "model.p2p", config, progress)
    return result, progress, before


def test_training_drives_validation_l1_well_below_the_untrained_value(learned):
    result, _, before = learned
    assert result["val_l1"] < 0.3 * before["l1"], (result["val_l1"], before["l1"])
    assert result["val_mae"] < 0.3 * before["mae"]
    assert result["val_psnr"] > before["psnr"] + 6 and result["val_ssim"] > before["ssim"]
    assert result["best_epoch"] >= 6 and result["epochs"] == 12 and result["stopped_early"] is False
    assert Path(result["output"]).is_file() and Path(result["checkpoint"]).is_file()


def test_progress_carries_losses_every_step_and_metrics_every_epoch(learned):
    result, progress, _ = learned
    steps = progress.steps()
    assert steps == list(range(1, len(steps) + 1)) and len(steps) == 12 * 12
    update = next(e for e in progress.events if e.get("step") == 7)
    for name in ("G_GAN", "G_L1", "D_real", "D_fake"):
        assert isinstance(update[name], float) and f"{name} " in update["message"]
    assert update["epoch"] == 1 and "epoch 1/12 step 7/12" in update["message"]
    epoch_lines = [m for m in progress.infos() if m.startswith("epoch ")]
    assert len(epoch_lines) == 12 and all("val L1" in m and "PSNR" in m and "SSIM" in m for m in epoch_lines)
    assert progress.events[-1]["type"] == "info" and "Model written" in progress.events[-1]["message"]
    assert any(e.get("fraction") == 1.0 for e in progress.events)


def test_the_package_keeps_the_best_epoch(learned):
    result, _, _ = learned
    card, _ = read_package(result["output"])
    history = card.metrics.history
    assert [row["epoch"] for row in history] == list(range(1, 13))
    best = min(history, key=lambda row: row["val_l1"])
    assert card.metrics.best_epoch == best["epoch"] == result["best_epoch"]
    assert result["val_l1"] == best["val_l1"]


def test_cancel_leaves_a_checkpoint_and_resume_finishes_exactly_like_an_uninterrupted_run(small_chips, tmp_path):
    config = TrainConfig(epochs=3, seed=1, **TINY)
    whole = train(small_chips, tmp_path / "whole.p2p", config, Recorder())
    model = tmp_path / "cut.p2p"
    cut = Recorder(cancel_at_step=5)
    with pytest.raises(Cancelled):
        train(small_chips, model, config, cut)
    assert cut.steps()[-1] == 5  # stopped within one step of the request
    assert not model.exists() and checkpoint_path(model).is_file()
    document, _ = load_checkpoint(checkpoint_path(model))
    assert (document["state"]["epoch"], document["state"]["step_in_epoch"]) == (2, 2)  # 3 steps per epoch
    resumed = Recorder()
    result = train(small_chips, model, config, resumed, resume=True)
    assert resumed.steps()[0] == 6 and resumed.steps()[-1] == 9
    assert any("Resuming from epoch 2, step 2" in m for m in resumed.infos())
    assert same_weights(weights(model), weights(Path(whole["output"])))
    assert result["val_l1"] == whole["val_l1"] and result["best_epoch"] == whole["best_epoch"]


def test_cancel_during_validation_resumes_with_that_validation(small_chips, tmp_path):
    config = TrainConfig(epochs=2, seed=1, **TINY)
    whole = train(small_chips, tmp_path / "whole.p2p", config, Recorder())

    class CancelInValidation(Recorder):
        def emit(self, event: dict[str, Any]) -> None:
            super().emit(event)
            if event.get("step") == 3:  # the last step of epoch 1: validation comes next
                self.cancel_event.set()

    with pytest.raises(Cancelled):
        train(small_chips, tmp_path / "cut.p2p", config, CancelInValidation())
    document, _ = load_checkpoint(checkpoint_path(tmp_path / "cut.p2p"))
    assert (document["state"]["epoch"], document["state"]["step_in_epoch"]) == (1, 3)
    assert document["state"]["history"] == []
    train(small_chips, tmp_path / "cut.p2p", config, Recorder(), resume=True)
    assert same_weights(weights(tmp_path / "cut.p2p"), weights(Path(whole["output"])))


def test_resume_extends_a_finished_run_from_its_saved_epoch(small_chips, tmp_path):
    two = train(small_chips, tmp_path / "two.p2p", TrainConfig(epochs=2, seed=2, **TINY), Recorder())
    model = tmp_path / "one.p2p"
    train(small_chips, model, TrainConfig(epochs=1, seed=2, **TINY), Recorder())
    more = Recorder()
    train(small_chips, model, TrainConfig(epochs=2, seed=2, **TINY), more, resume=True)
    assert more.steps() == [4, 5, 6]
    assert any("changed settings: epochs" in m for m in more.infos())
    assert same_weights(weights(model), weights(Path(two["output"])))


def test_resume_refuses_another_architecture_other_chips_or_no_checkpoint(small_chips, tmp_path):
    model = tmp_path / "m.p2p"
    with pytest.raises(Pix2PixError, match="no checkpoint"):
        train(small_chips, model, TrainConfig(epochs=1, **TINY), Recorder(), resume=True)
    train(small_chips, model, TrainConfig(epochs=1, **TINY), Recorder())
    with pytest.raises(Pix2PixError, match=r"ngf 4 \(now 8\);"):
        train(small_chips, model, TrainConfig(epochs=2, **{**TINY, "ngf": 8}), Recorder(), resume=True)
    other = mapping_chips(tmp_path / "other", size=256, tile=64, seed=9)
    with pytest.raises(Pix2PixError, match="other chips"):
        train(other, model, TrainConfig(epochs=2, **TINY), Recorder(), resume=True)


def test_seeded_runs_are_reproducible_and_the_seed_matters(small_chips, tmp_path):
    first = train(small_chips, tmp_path / "a.p2p", TrainConfig(epochs=1, seed=4, **TINY), Recorder())
    again = train(small_chips, tmp_path / "b.p2p", TrainConfig(epochs=1, seed=4, **TINY), Recorder())
    other = train(small_chips, tmp_path / "c.p2p", TrainConfig(epochs=1, seed=5, **TINY), Recorder())
    assert same_weights(weights(Path(first["output"])), weights(Path(again["output"])))
    assert not same_weights(weights(Path(first["output"])), weights(Path(other["output"])))


def test_worker_processes_train_the_same_model(small_chips, tmp_path):
    inline = train(small_chips, tmp_path / "a.p2p", TrainConfig(epochs=2, seed=4, num_workers=0, **TINY))
    workers = train(small_chips, tmp_path / "b.p2p", TrainConfig(epochs=2, seed=4, num_workers=2, **TINY))
    assert same_weights(weights(Path(inline["output"])), weights(Path(workers["output"])))


def test_masked_l1_ignores_whatever_the_target_holds_at_nodata():
    rng = torch.Generator().manual_seed(0)
    prediction = torch.rand(2, 3, 8, 8, generator=rng)
    target = torch.rand(2, 3, 8, 8, generator=rng)
    mask = (torch.rand(2, 1, 8, 8, generator=rng) > 0.3).float()
    loss = masked_l1(prediction, target, mask)
    changed = torch.where(mask.bool(), target, torch.full_like(target, 1e6))
    assert torch.equal(masked_l1(prediction, changed, mask), loss)
    valid = mask.bool().expand_as(target)
    assert loss == pytest.approx(float((prediction - target).abs()[valid].mean()), rel=1e-6)
    target[0, 0][mask[0, 0].bool()] += 1  # a valid pixel does change it
    assert masked_l1(prediction, target, mask) > loss


def _scramble_nodata_pixels(chips: Path) -> int:
    """Give B's nodata pixels random values and mark them with an internal mask instead of −9999."""
    rng = np.random.default_rng(3)
    changed = 0
    for path in sorted((chips / "images2").glob("*.tif")):
        with rasterio.open(path) as src:
            data, profile = src.read(), src.profile
        valid = (data != -9999).all(axis=0)
        if valid.all():
            continue
        data[:, ~valid] = rng.uniform(-50, 500, (data.shape[0], int((~valid).sum())))
        changed += int((~valid).sum())
        profile.update(nodata=None)
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            dst.write_mask(valid.astype("uint8") * 255)
    return changed


def test_nodata_pixels_change_neither_the_training_loss_nor_the_validation_metrics(tmp_path):
    chips = mapping_chips(tmp_path, size=128, b_nodata_block=True)
    config = TrainConfig(epochs=1, seed=0, **TINY)
    spec = GeneratorSpec(3, 3, 5, 4)

    def measure() -> tuple[dict[str, float], dict[str, Any]]:
        opened = open_chips(chips)
        torch.manual_seed(0)
        trainer = Pix2PixTrainer(spec, config, torch.device("cpu"))
        dataset = ChipDataset(opened, "train")
        batch = next(iter(make_loader(dataset, 16)))  # every training chip, nodata block included
        assert batch["mask"].min() == 0
        losses = trainer.step(batch)
        validation = ChipDataset(opened, "validation", with_units=True)
        metrics = evaluate(trainer.generator, make_loader(validation, 4), opened)
        whole = next(iter(make_loader(validation, 64)))
        with torch.no_grad():
            error = (trainer.generator.eval()(whole["a"]) - whole["b"]).abs()
        valid = whole["mask"].bool().expand_as(error)
        assert metrics["l1"] == pytest.approx(float(error[valid].mean()), rel=1e-5)
        assert metrics["l1"] != pytest.approx(float(error.mean()), rel=1e-3)  # nodata would change it
        return losses, metrics

    losses, metrics = measure()
    assert _scramble_nodata_pixels(chips) > 0
    losses_after, metrics_after = measure()
    assert losses_after == losses
    assert metrics_after == metrics


def test_chip_sizes_choose_the_depth_or_fail_clearly():
    config = TrainConfig()
    assert choose_depth(config, 256) == 8 and choose_depth(config, 512) == 8
    assert choose_depth(config, 32) == 5 and choose_depth(config, 48) == 4
    with pytest.raises(Pix2PixError, match=r"multiples of 2\^5 = 32 px"):
        choose_depth(TrainConfig(depth=5), 48)
    with pytest.raises(Pix2PixError, match="too small for the 70×70 PatchGAN"):
        choose_depth(config, 16)
    with pytest.raises(Pix2PixError, match="divisible by at least 4"):
        choose_depth(config, 30)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"epochs": 0}, r"Epochs 0 is invalid \(EPOCHS, --epochs\)"), ({"epochs": 5, "epochs_decay": 6}, "EPOCHS_DECAY 6"),
    ({"batch_size": 0}, "BATCH_SIZE"), ({"lr": 0}, "Learning rate"), ({"gan_mode": "wgan"}, "GAN loss 'wgan'"),
    ({"norm": "group"}, "Normalisation 'group'"), ({"best_metric": "fid"}, "Best metric 'fid'"),
    ({"patience": 0}, "PATIENCE"), ({"device": "gpu"}, "Device 'gpu'"), ({"validation": 1.0}, "VALIDATION"),
    ({"ngf": 0}, "NGF"), ({"lambda_l1": -1}, "LAMBDA_L1"), ({"lambda_feat": -1}, "LAMBDA_FEAT"),
    ({"upsample": "nearest"}, "Upsampling 'nearest'"), ({"d_scales": 0}, r"scales 0 is invalid \(D_SCALES"),
    ({"d_scales": 4}, r"scales 4 is invalid \(D_SCALES"),
])
def test_bad_settings_are_refused_with_the_setting_named(kwargs, match):
    with pytest.raises(Pix2PixError, match=match):
        TrainConfig(**kwargs)


def test_the_learning_rate_is_constant_then_decays_linearly():
    config = TrainConfig(epochs=6, epochs_decay=3)
    assert [config.lr_factor(e) for e in range(1, 7)] == [1, 1, 1, 0.75, 0.5, 0.25]
    assert TrainConfig(epochs=200).decay_epochs == 100
    assert TrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_says_what_to_do():
    with pytest.raises(Pix2PixError, match="cannot use CUDA"):
        resolve_device("cuda:0")
    assert resolve_device("auto").type == "cpu"


def test_lsgan_instance_norm_without_dropout_or_augmentation_trains(small_chips, tmp_path):
    config = TrainConfig(epochs=1, gan_mode="lsgan", norm="instance", dropout=False, augment=False, **TINY)
    result = train(small_chips, tmp_path / "m.p2p", config, Recorder())
    assert np.isfinite(result["val_l1"])
    card, tensors = read_package(result["output"])
    assert card.generator.norm == "instance"
    assert not any("running_mean" in key for key in tensors)


def test_without_validation_chips_the_last_epoch_is_kept_with_a_warning(tmp_path):
    chips = mapping_chips(tmp_path, size=64, validation=0.0)
    progress = Recorder()
    result = train(chips, tmp_path / "m.p2p", TrainConfig(epochs=2, **TINY), progress)
    assert result["best_epoch"] == 2 and result["val_l1"] is None and result["best_metric"] == "last epoch"
    assert any(e["type"] == "warning" and "no validation chips" in e["message"] for e in progress.events)


def test_patience_stops_when_the_metric_stops_improving(small_chips, tmp_path):
    # A learning rate far below float32 resolution leaves every weight as it was.
    config = TrainConfig(epochs=6, patience=1, lr=1e-12, norm="instance", dropout=False, ngf=4, ndf=4)
    progress = Recorder()
    result = train(small_chips, tmp_path / "m.p2p", config, progress)
    assert result["stopped_early"] is True and result["epochs"] == 2 and result["best_epoch"] == 1
    assert any("Stopped early" in m for m in progress.infos())


def test_an_esri_folder_trains_with_a_seeded_hold_out(tmp_path):
    rng = np.random.default_rng(0)
    a = {f"{i:03d}.tif": rng.integers(0, 255, (1, 32, 32)).astype("uint8") for i in range(10)}
    b = {name: (255 - chip).astype("uint8") for name, chip in a.items()}
    folder = esri_folder(tmp_path / "esri", a, b)
    result = train(folder, tmp_path / "m.p2p", TrainConfig(epochs=1, validation=0.2, **TINY), Recorder())
    assert (result["train_chips"], result["validation_chips"]) == (8, 2)
    card, _ = read_package(result["output"])
    assert card.training["chips"]["layout"] == "esri" and card.grid.crs == "EPSG:32633"


def test_the_model_path_must_be_a_p2p_file(small_chips, tmp_path):
    with pytest.raises(Pix2PixError, match="must end in .p2p"):
        train(small_chips, tmp_path / "model.pth", TrainConfig(epochs=1, **TINY))
    (tmp_path / "dir.p2p").mkdir()
    with pytest.raises(Pix2PixError, match="is a folder"):
        train(small_chips, tmp_path / "dir.p2p", TrainConfig(epochs=1, **TINY))


def test_the_pix2pixhd_options_train_are_recorded_and_resume_exactly(small_chips, tmp_path):
    config = TrainConfig(epochs=2, seed=1, **TINY, **TOOLBOX)
    whole = Recorder()
    result = train(small_chips, tmp_path / "whole.p2p", config, whole)
    assert np.isfinite(result["val_l1"])
    feature_losses = [e["G_feat"] for e in whole.events if e["type"] == "progress" and "G_feat" in e]
    assert len(feature_losses) == 6 and all(value > 0 for value in feature_losses)
    card, tensors = read_package(result["output"])
    assert card.generator.upsample == "resize"
    assert not any(key.endswith(".weight") and value.dim() == 4 and value.shape[-1] == 4
                   for key, value in tensors.items() if ".5." in key)  # no 4×4 transposed up conv left
    assert card.discriminator is not None
    assert (card.discriminator.scales, card.discriminator.spectral_norm) == (2, True)
    assert dict(card.training["losses"]) == {"gan": "hinge", "lambda_l1": 100.0, "lambda_feat": 10.0,
                                             "l1": "masked mean over valid pixels"}
    assert all("G_feat" in row for row in card.metrics.history)
    document, saved = load_checkpoint(checkpoint_path(tmp_path / "whole.p2p"))
    assert any(".parametrizations.weight.original" in key for key in saved)
    cut = tmp_path / "cut.p2p"
    with pytest.raises(Cancelled):
        train(small_chips, cut, config, Recorder(cancel_at_step=4))
    train(small_chips, cut, config, Recorder(), resume=True)
    assert same_weights(weights(cut), weights(Path(result["output"])))
    with pytest.raises(Pix2PixError, match=r"d_scales 2 \(now 1\)"):
        train(small_chips, cut, TrainConfig(epochs=3, seed=1, **TINY, **{**TOOLBOX, "d_scales": 1}), Recorder(),
              resume=True)


def _as_written_before_the_options(ckpt: Path) -> None:
    """Rewrite a checkpoint as the engine wrote it before issue 15: no option fields, a bare PatchGAN's keys."""
    document, tensors = load_checkpoint(ckpt)
    for name in ("upsample", "d_scales", "spectral_norm", "lambda_feat"):
        del document["config"][name]
    del document["generator"]["upsample"]
    tensors = {(key.replace("D/scales.0.", "D/", 1)): value for key, value in tensors.items()
               if key != "preview/first"}
    document = {k: v for k, v in document.items() if k not in ("format", "format_version")}
    save_checkpoint(ckpt, document, tensors)


def test_a_checkpoint_written_before_the_options_existed_resumes_exactly(small_chips, tmp_path):
    config = TrainConfig(epochs=3, seed=1, **TINY, **REFERENCE)
    whole = train(small_chips, tmp_path / "whole.p2p", config, Recorder())
    model = tmp_path / "old.p2p"
    with pytest.raises(Cancelled):
        train(small_chips, model, config, Recorder(cancel_at_step=5))
    _as_written_before_the_options(checkpoint_path(model))
    resumed = Recorder()
    train(small_chips, model, config, resumed, resume=True)
    assert not any("changed settings" in m for m in resumed.infos())
    assert same_weights(weights(model), weights(Path(whole["output"])))


def test_the_preview_shows_the_first_best_and_last_epoch_and_the_report_says_so(learned, tmp_path):
    from PIL import Image

    from pix2pix_qgis.core.plots import PANEL_INCHES

    result, _, _ = learned
    card, _ = read_package(result["output"])
    best, last = card.metrics.best_epoch, card.metrics.history[-1]["epoch"]
    with zipfile.ZipFile(result["output"]) as archive:
        preview = Image.open(io.BytesIO(archive.read("preview.png")))
    columns = 2 + (best != 1) + 1 + (best != last)
    # core.plots.predictions_figure at 100 dpi: each column is PANEL_INCHES plus 0.6 in for its colour bar.
    assert preview.size[0] == round(columns * (PANEL_INCHES + 0.6) * 100)
    page = training_report(result["output"])
    assert "after the first, the best and the last epoch" in page and "upsampling" in page


def test_advice_reaches_the_progress_stream_the_result_and_the_report(tmp_path):
    """Four epochs at a constant learning rate: validation L1 is still falling at the end."""
    chips = mapping_chips(tmp_path, size=256)
    config = TrainConfig(epochs=4, epochs_decay=0, ngf=8, ndf=8, batch_size=4, lr=2e-3, seed=0)
    progress = Recorder()
    result = train(chips, tmp_path / "m.p2p", config, progress)
    card, _ = read_package(result["output"])
    assert result["advice"] and result["advice"] == budget_advice([dict(row) for row in card.metrics.history],
                                                                  config.lr)
    assert "still falling" in result["advice"][0] and "more EPOCHS (e.g. 8)" in result["advice"][0]
    assert list(card.training["advice"]) == result["advice"]
    assert [e["message"] for e in progress.events if e["type"] == "warning"] == result["advice"]
    assert "still falling" in training_report(result["output"])


def test_a_pix2pix_with_the_reference_resnet_generator_trains_and_translates(tmp_path, make_raster):
    chips = mapping_chips(tmp_path / "chips", size=128, tile=32)
    config = TrainConfig(epochs=1, generator="resnet", resnet_blocks=1, ngf=4, ndf=4, seed=0)
    result = train(chips, tmp_path / "resnet.p2p", config, Recorder())
    generator, card = load_model(result["output"])
    assert (card.generator.to_dict()["type"], card.generator.blocks, card.generator.dropout) == ("resnet", 1, True)
    assert result["generator"] == "ResNet of 1 blocks" and result["depth"] is None
    assert "model.10.conv_block.6.weight" in generator.state_dict()  # dropout shifts the second conv, as the reference
    raster = make_raster("in.tif", np.random.default_rng(0).integers(0, 255, (3, 40, 52), dtype="uint8"))
    out = translate_raster(raster, result["output"], tmp_path / "out.tif")
    assert (out["width"], out["height"]) == (52, 40)
    with pytest.raises(Pix2PixError, match="generator ResNet of 1 blocks \\(now U-Net"):
        train(chips, tmp_path / "resnet.p2p", TrainConfig(epochs=2, ngf=4, ndf=4, seed=0, resnet_blocks=1),
              resume=True)
