"""CycleGAN: real training on an unpaired export of two far-apart rasters, one package that translates real
GeoTIFFs both ways on their exact grids, cancel into a checkpoint and exact resume, the command line, and
what a Pix2Pix model or a bad setting gets told."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from pix2pix_qgis import Cancelled, Pix2PixError, export_unpaired
from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.model.checkpoint import checkpoint_path, load_checkpoint
from pix2pix_qgis.model.package import B2A_WEIGHTS, MODEL_ENTRIES, load_model, read_package
from pix2pix_qgis.train.config import TrainConfig
from pix2pix_qgis.train.cyclegan import CYCLE_LOSSES, ImagePool, train_cyclegan
from pix2pix_qgis.train.report import training_report

from ..builders import CYCLEGAN_TINY as TINY
from ..builders import UNPAIRED_SPEC as SPEC
from ..builders import Recorder, checkpoint_like, mapping_chips
from ..cli_runs import run_cli
from ..models import write_model


@pytest.fixture(scope="module")
def trained(unpaired, tmp_path_factory):
    a, b, chips = unpaired
    model = tmp_path_factory.mktemp("model") / "cycle.p2p"
    recorder = Recorder()
    result = train_cyclegan(chips, model, TrainConfig(epochs=2, seed=2, **TINY), recorder)
    return model, result, recorder


def test_the_reference_defaults_are_the_cyclegan_defaults():
    config = TrainConfig(model_type="cyclegan")
    assert (config.gan_mode, config.norm, config.generator, config.resnet_blocks) == ("lsgan", "instance", "resnet", 9)
    assert (config.lambda_cycle, config.lambda_identity, config.pool_size, config.lr, config.beta1) == (
        10.0, 0.5, 50, 2e-4, 0.5)
    pix2pix = TrainConfig()
    assert (pix2pix.gan_mode, pix2pix.norm, pix2pix.generator) == ("vanilla", "batch", "unet")


def test_one_package_holds_both_generators_and_records_both_sides(trained, unpaired):
    model, result, recorder = trained
    with zipfile.ZipFile(model) as archive:
        assert sorted(archive.namelist()) == sorted([*MODEL_ENTRIES, B2A_WEIGHTS])
        document = json.loads(archive.read("model.json"))
    assert document["model_type"] == "cyclegan" and document["format_version"] == 2
    assert document["architecture"]["generator"]["type"] == "resnet"
    assert document["architecture"]["generator_b2a"]["blocks"] == 1
    assert (document["input"]["dtype"], document["input"]["nodata"]) == ("uint8", 0)
    assert (document["output"]["dtype"], document["output"]["nodata"]) == ("uint16", 65535)
    assert document["grid"]["crs"] != document["grid_b"]["crs"]
    assert [row["epoch"] for row in document["metrics"]["history"]] == [1, 2]
    assert set(CYCLE_LOSSES) <= set(document["metrics"]["history"][0])
    assert result["kept_epoch"] == 2 and result["val_cycle_A"] > 0 and result["val_cycle_B"] > 0
    _, card = load_model(model)
    _, card_b2a = load_model(model, direction="b2a")
    assert (card.input.dtype, card_b2a.input.dtype) == ("uint8", "uint16")
    assert not torch.equal(read_package(model)[1]["model.1.weight"], read_package(model, "b2a")[1]["model.1.weight"])
    steps = recorder.steps()
    assert steps == list(range(1, len(steps) + 1))  # a progress line per step
    losses = [e for e in recorder.events if e["type"] == "progress" and "step" in e][-1]
    assert all(np.isfinite(losses[name]) for name in CYCLE_LOSSES)
    html = training_report(model)
    assert "CycleGAN" in html and "val_cycle_A" in html


def _grid(path: Path) -> tuple:
    with rasterio.open(path) as src:
        return src.crs, src.transform, src.width, src.height, src.count, src.dtypes[0], src.nodata


def test_both_directions_translate_real_geotiffs_on_their_exact_grids(trained, unpaired, tmp_path):
    model, _, _ = trained
    a, b, _ = unpaired
    out_b = translate_raster(a, model, tmp_path / "a2b.tif")
    out_a = translate_raster(b, model, tmp_path / "b2a.tif", TranslateSpec(direction="b2a"))
    crs_a, transform_a, width_a, height_a, *_ = _grid(a)
    crs_b, transform_b, width_b, height_b, *_ = _grid(b)
    assert _grid(tmp_path / "a2b.tif") == (crs_a, transform_a, width_a, height_a, 3, "uint16", 65535)
    assert _grid(tmp_path / "b2a.tif") == (crs_b, transform_b, width_b, height_b, 3, "uint8", 0)
    assert (out_b["direction"], out_a["direction"]) == ("a2b", "b2a")
    with rasterio.open(tmp_path / "a2b.tif") as src:
        data = src.read()
        assert (data[:, :8, :8] == 65535).all()  # A's nodata corner is B's nodata in the output
        assert (data[:, 8:, 8:] != 65535).all()
    with rasterio.open(tmp_path / "b2a.tif") as src:
        data = src.read()
        assert (data[:, -5:, -7:] == 0).all() and (data[:, :-5, :] != 0).any()


def test_a_pix2pix_model_refuses_b2a_with_the_fix(tmp_path, make_raster):
    model = write_model(tmp_path / "p2p.p2p")
    raster = make_raster("in.tif", np.zeros((3, 64, 64), dtype="uint8"))
    with pytest.raises(Pix2PixError, match="Pix2Pix model: it holds one generator, A→B.*--model cyclegan"):
        translate_raster(raster, model, tmp_path / "out.tif", TranslateSpec(direction="b2a"))
    assert not (tmp_path / "out.tif").exists()
    _, card = load_model(model)  # a2b still reads it as before
    assert card.model_type == "pix2pix" and card.format_version == 1


def test_cancel_keeps_a_checkpoint_and_resume_finishes_exactly_like_an_uninterrupted_run(unpaired, tmp_path):
    _, _, chips = unpaired
    config = TrainConfig(epochs=2, seed=4, pool_size=3, **TINY)
    train_cyclegan(chips, tmp_path / "whole.p2p", config, Recorder())
    model = tmp_path / "cut.p2p"
    cut = Recorder(cancel_at_step=3)
    with pytest.raises(Cancelled):
        train_cyclegan(chips, model, config, cut)
    assert not model.exists() and checkpoint_path(model).is_file()
    document, tensors = load_checkpoint(checkpoint_path(model))
    assert document["state"]["global_step"] == 3 and "pool/A" in tensors and "rng/pool" in tensors
    resumed = Recorder()
    train_cyclegan(chips, model, config, resumed, resume=True)
    assert resumed.steps()[0] == 4
    for direction in ("a2b", "b2a"):
        ours, theirs = read_package(model, direction)[1], read_package(tmp_path / "whole.p2p", direction)[1]
        assert all(torch.equal(ours[key], theirs[key]) for key in ours)
    assert checkpoint_path(model).is_file()  # the finished run keeps its checkpoint, to extend it later


def test_resume_refuses_other_generators_and_other_chips(unpaired, trained, tmp_path):
    a, b, chips = unpaired
    model, _, _ = trained
    with pytest.raises(Pix2PixError, match="resnet_blocks 1 \\(now 2\\)"):
        train_cyclegan(chips, model, TrainConfig(epochs=3, seed=2, **{**TINY, "resnet_blocks": 2}), resume=True)
    other = tmp_path / "other"
    export_unpaired(a, b, other, replace(SPEC, max_nodata=0.0))  # without the chip of A's nodata corner
    with pytest.raises(Pix2PixError, match="other chips"):
        train_cyclegan(other, model, TrainConfig(epochs=3, seed=2, **TINY), resume=True)


def test_the_image_pool_stores_up_to_its_size_then_swaps_half_at_random():
    pool = ImagePool(3, torch.Generator().manual_seed(0))
    first = torch.arange(2.0).reshape(2, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool.images) == 2
    later = torch.full((40, 1, 1, 1), 9.0)
    out = pool.query(later)
    assert len(pool.images) == 3 and out.shape == later.shape
    assert 0 < int((out != 9.0).sum()) <= 3  # at most the older chips come back, each once
    assert torch.equal(ImagePool(0, torch.Generator()).query(later), later)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"lambda_feat": 1.0}, "LAMBDA_FEAT .* leave it at 0 for --model cyclegan"),
    ({"lambda_cycle": float("nan")}, "λ cycle consistency nan is invalid"),
    ({"pool_size": -1}, "Image pool size -1 is invalid"),
    ({"resnet_blocks": 0}, "ResNet blocks 0 is invalid"),
    ({"model_type": "unit"}, "Model type 'unit' is unknown"),
])
def test_bad_cyclegan_settings_are_refused_with_the_setting_named(kwargs, match):
    with pytest.raises(Pix2PixError, match=match):
        TrainConfig(**{**TINY, **kwargs})


def test_paired_chips_are_not_an_unpaired_folder(tmp_path):
    chips = mapping_chips(tmp_path / "paired", size=128, tile=32)
    with pytest.raises(Pix2PixError, match="not an unpaired chips folder|export-unpaired"):
        train_cyclegan(chips, tmp_path / "m.p2p", TrainConfig(epochs=1, **TINY))


def test_the_command_line_trains_a_cyclegan_and_translates_b2a(unpaired, tmp_path):
    a, b, chips = unpaired
    model, report = tmp_path / "cli.p2p", tmp_path / "report.html"
    done = run_cli("train", str(chips), str(model), "--model", "cyclegan", "--epochs", "1", "--ngf", "4", "--ndf",
                   "4", "--resnet-blocks", "1", "--batch-size", "2", "--pool-size", "5", "--lambda-identity", "0",
                   "--report", str(report), timeout=600)
    assert done.code == 0, (done.events, done.stderr)
    lines = done.events
    result = lines[-1]["result"]
    assert result["model_type"] == "cyclegan" and result["report"] == str(report.absolute())
    assert any(line["type"] == "progress" and "cycle_A" in line for line in lines)
    config = read_package(model)[0].training["config"]
    assert (config["gan_mode"], config["norm"], config["pool_size"], config["lambda_identity"]) == (
        "lsgan", "instance", 5, 0.0)
    done = run_cli("translate", str(b), str(model), str(tmp_path / "b2a.tif"), "--direction", "b2a")
    assert done.code == 0, (done.events, done.stderr)
    assert _grid(tmp_path / "b2a.tif")[:4] == _grid(b)[:4]


def test_the_command_line_exits_2_on_b2a_with_a_pix2pix_model_and_on_a_garbage_reference(tmp_path, make_raster):
    model = write_model(tmp_path / "p2p.p2p")
    raster = make_raster("in.tif", np.zeros((3, 64, 64), dtype="uint8"))
    done = run_cli("translate", str(raster), str(model), str(tmp_path / "out.tif"), "--direction", "b2a")
    assert done.code == 2 and "Traceback" not in done.stderr
    error = done.events[-1]
    assert error["type"] == "error" and "cannot translate B→A" in error["message"]
    good = tmp_path / "latest_net_G_A.pth"
    checkpoint_like("resnet9_instance", good)
    garbage = tmp_path / "latest_net_G_B.pth"
    garbage.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])  # truncated
    done = run_cli("import-reference", str(good), str(tmp_path / "m.p2p"), "--checkpoint-b", str(garbage))
    assert done.code == 2 and "Traceback" not in done.stderr
    assert "not a PyTorch checkpoint" in done.events[-1]["message"]
    assert not (tmp_path / "m.p2p").exists()
