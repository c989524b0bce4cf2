"""Training precision: PRECISION beside AMP, one set-up for both trainers, bfloat16 autocast on the CPU.

Real chips of the bundled Blue Marble pair and real torch training throughout. This VM's
CPU has no bfloat16 instructions (AVX2 only), so the command line must refuse bfloat16 with
exit 2; the training path itself is exercised by declaring support
(``model.device.cpu_supports_bfloat16``), under which PyTorch emulates bfloat16: correct,
and slow, hence tiny networks and a few steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from pix2pix_qgis import ChipSpec, Pix2PixError, Progress, export_chips
from pix2pix_qgis.api import Pix2Pix, prepare_data
from pix2pix_qgis.contract.params import to_argv
from pix2pix_qgis.contract.tables import TRAIN, TRANSLATE
from pix2pix_qgis.model import device as device_module
from pix2pix_qgis.model.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from pix2pix_qgis.model.networks import GeneratorSpec
from pix2pix_qgis.model.package import read_package
from pix2pix_qgis.sample import make_sample_pair
from pix2pix_qgis.train.config import TrainConfig
from pix2pix_qgis.train.cyclegan import CycleGanTrainer
from pix2pix_qgis.train.loop import train
from pix2pix_qgis.train.optimisation import Optimisation, training_dtype
from pix2pix_qgis.train.report import training_report
from pix2pix_qgis.train.trainer import Pix2PixTrainer

from ..cli_runs import REPO

TINY = {"ngf": 4, "ndf": 4, "batch_size": 4, "lr": 2e-3, "device": "cpu", "checkpoint_minutes": 0.0}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def chips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 chips of 32 px (12 training, 4 validation) of real relief → imagery over central Africa."""
    root = tmp_path_factory.mktemp("precision")
    relief, imagery = make_sample_pair(root, Window(2600, 700, 128, 128))
    export_chips(relief, imagery, root / "chips", ChipSpec(tile_size=32, stride=32, validation=0.25, seed=0))
    return root / "chips"


@pytest.fixture
def bfloat16_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Declare this CPU bfloat16-capable: PyTorch then emulates what AVX512-BF16 would compute."""
    monkeypatch.setattr(device_module, "cpu_supports_bfloat16", lambda: True)


def engine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pix2pix_qgis", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def tiny_argv(chips: Path, model: Path) -> list[str]:
    return ["train", str(chips), str(model), "--epochs", "1", "--ngf", "4", "--ndf", "4", "--device", "cpu"]


# ---------------------------------------------------------------- the command line


@pytest.mark.skipif(device_module.cpu_supports_bfloat16(), reason="this CPU has bfloat16 instructions")
def test_the_command_line_refuses_bfloat16_on_a_cpu_without_it_with_exit_2_and_the_fix(chips, tmp_path):
    model = tmp_path / "m.p2p"
    plain = engine(*tiny_argv(chips, model), "--precision", "bfloat16")
    assert plain.returncode == 2 and "Traceback" not in plain.stderr, plain.stderr
    message = plain.stderr.strip().splitlines()[-1]
    assert "PRECISION bfloat16 needs bfloat16 instructions, which this CPU lacks" in message
    assert "Use PRECISION float32" in message
    as_json = engine(*tiny_argv(chips, model), "--precision", "bfloat16", "--progress", "json")
    error = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert as_json.returncode == 2 and error["type"] == "error" and error["kind"] == "bad_input"
    assert not model.exists() and not checkpoint_path(model).exists()  # refused before any work


def test_the_command_line_refuses_float16_on_the_cpu_and_no_amp_with_a_reduced_precision(chips, tmp_path):
    model = tmp_path / "m.p2p"
    float16 = engine(*tiny_argv(chips, model), "--precision", "float16")
    assert float16.returncode == 2 and "Traceback" not in float16.stderr
    assert "PRECISION float16 runs only on a CUDA GPU" in float16.stderr and "use float32" in float16.stderr
    both = engine(*tiny_argv(chips, model), "--no-amp", "--precision", "bfloat16")
    assert both.returncode == 2 and "Traceback" not in both.stderr
    assert "AMP off (--no-amp, amp=False) asks for float32, but PRECISION is bfloat16" in both.stderr
    assert not model.exists()


def test_no_amp_still_trains_in_float32_and_says_so(chips, tmp_path):
    model = tmp_path / "m.p2p"
    run = engine(*tiny_argv(chips, model), "--no-amp", "--progress", "json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])["result"]
    assert result["precision"] == "float32"
    training = read_package(model)[0].training
    assert training["config"]["amp"] is False and training["config"]["precision"] is None
    assert (training["precision"], training["amp"]) == ("float32", None)
    assert "in float32" in training_report(model)


# ---------------------------------------------------------------- the Python API, training for real


def test_the_api_trains_in_bfloat16_where_the_cpu_supports_it(chips, bfloat16_cpu, tmp_path):
    data = prepare_data(chips, batch_size=4)
    model = Pix2Pix(data, precision="bfloat16", **TINY)
    first = model.fit(1)
    assert first["precision"] == "bfloat16"
    second = model.fit(1)  # resumes its own bfloat16 checkpoint
    assert second["epochs"] == 2 and second["precision"] == "bfloat16"
    card = model.card
    assert card is not None
    assert card.training["precision"] == "bfloat16" and card.training["config"]["precision"] == "bfloat16"
    assert all(np.isfinite(row["val_l1"]) and np.isfinite(row["G_L1"]) for row in card.metrics.history)
    weights = [t for t in read_package(model.save(tmp_path / "bf16.p2p"))[1].values() if t.is_floating_point()]
    assert weights and all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in weights)
    with rasterio.open(chips / "images" / sorted(os.listdir(chips / "images"))[0]) as src:
        predicted = model.predict(src.read())
    assert predicted.shape == (3, 32, 32) and np.isfinite(predicted).all()
    float32 = Pix2Pix(prepare_data(chips, batch_size=4), precision="float32", **TINY)
    assert float32.fit(1)["val_l1"] != first["val_l1"]  # the same seed: only the precision differs


@pytest.mark.parametrize("model_type", ["pix2pix", "cyclegan"])
def test_both_trainers_run_their_forward_passes_in_bfloat16_and_keep_float32_weights(model_type, bfloat16_cpu):
    config = TrainConfig(model_type=model_type, precision="bfloat16", generator="unet", **TINY)
    spec = GeneratorSpec(3, 3, 3, 4)
    trainer: Pix2PixTrainer | CycleGanTrainer
    if model_type == "pix2pix":
        trainer = Pix2PixTrainer(spec, config, CPU)
        generator = trainer.generator
    else:
        trainer = CycleGanTrainer(spec, spec, config, CPU)
        generator = trainer.g_a
    assert isinstance(trainer.optimisation, Optimisation) and trainer.optimisation.precision == "bfloat16"
    seen: list[torch.dtype] = []
    generator.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    images = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (4, 3, 32, 32)).astype(np.float32))
    mask = torch.ones(4, 1, 32, 32)
    batch = ({"a": images, "b": images.flip(1), "mask": mask} if model_type == "pix2pix"
             else {"a": images, "b": images.flip(1), "mask_a": mask, "mask_b": mask})
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    losses = trainer.step(batch)
    assert seen and set(seen) == {torch.bfloat16}
    assert all(np.isfinite(value) for value in losses.values())
    after = generator.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in after.items())
    assert any(not torch.equal(v, before[k]) for k, v in after.items() if v.is_floating_point())  # it stepped
    assert not trainer.optimisation.scaler_g.is_enabled()  # bfloat16 needs no loss scaling


# ---------------------------------------------------------------- what PRECISION means, old settings included


def test_auto_keeps_what_amp_did_and_explicit_precisions_are_checked(bfloat16_cpu):
    assert training_dtype(TrainConfig(), CPU) is None  # auto on the CPU: float32, as before
    assert training_dtype(TrainConfig(amp=False), CPU) is None
    assert training_dtype(TrainConfig(precision="float32"), CPU) is None
    assert training_dtype(TrainConfig(amp=False, precision="float32"), CPU) is None
    assert training_dtype(TrainConfig(precision="bfloat16"), CPU) == torch.bfloat16
    with pytest.raises(Pix2PixError, match="float16 runs only on a CUDA GPU"):
        training_dtype(TrainConfig(precision="float16"), CPU)
    with pytest.raises(Pix2PixError, match=r"AMP off \(--no-amp, amp=False\) asks for float32"):
        TrainConfig(amp=False, precision="float16")
    with pytest.raises(Pix2PixError, match=r"Precision 'bf16' is unknown \(PRECISION, --precision\)"):
        TrainConfig(precision="bf16")


def test_bfloat16_is_refused_where_the_cpu_lacks_it(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_supports_bfloat16", lambda: False)
    with pytest.raises(Pix2PixError, match="which this CPU lacks"):
        training_dtype(TrainConfig(precision="bfloat16"), CPU)


def test_a_config_written_before_precision_existed_reads_as_auto():
    old = {**TrainConfig().to_dict(), "amp": False}
    del old["precision"]
    config = TrainConfig.from_dict(old)
    assert config.precision is None and config.amp is False and training_dtype(config, CPU) is None


def test_a_checkpoint_written_before_precision_existed_resumes(chips, tmp_path):
    model = tmp_path / "m.p2p"
    config = TrainConfig(epochs=1, amp=False, seed=3, **TINY)
    train(chips, model, config, Progress())
    ckpt = checkpoint_path(model)
    document, tensors = load_checkpoint(ckpt)
    del document["config"]["precision"]  # as written before this field existed
    save_checkpoint(ckpt, document, tensors)
    result = train(chips, model, TrainConfig(epochs=2, amp=False, seed=3, **TINY), Progress(), resume=True)
    assert result["epochs"] == 2 and result["precision"] == "float32"
    assert [row["epoch"] for row in read_package(model)[0].metrics.history] == [1, 2]


def test_qgis_offers_precision_as_an_advanced_choice_whose_default_passes_no_flag():
    param = TRAIN["PRECISION"]
    assert param.qgis and param.advanced and param.cli_flag == "--precision"
    assert param.choices == TRANSLATE["PRECISION"].choices == ("float32", "bfloat16", "float16")
    assert param.default is None and param.none_choice and param.none_choice.startswith("auto")
    assert to_argv(param, None) == []  # auto, and a graphical model saved without PRECISION: no flag
    assert to_argv(param, "bfloat16") == ["--precision", "bfloat16"]
    assert not TRAIN["AMP"].qgis and TRAIN["AMP"].cli_flag == "--no-amp"  # still there for scripts
