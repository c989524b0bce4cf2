"""Resource guards: sizes that cannot fit are refused up front; CUDA out-of-memory halves the batch."""

from __future__ import annotations

import re

import numpy as np
import pytest
import rasterio
import torch

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.core.progress import Progress
from pix2pix_qgis.infer import backends
from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.model.discriminators import DiscriminatorSpec
from pix2pix_qgis.model.guards import (
    BatchBackoff,
    NetworkCost,
    available_memory,
    check_training_memory,
    check_translation_memory,
)
from pix2pix_qgis.model.networks import GeneratorSpec, UnetGenerator
from pix2pix_qgis.train.config import TrainConfig
from pix2pix_qgis.train.loop import train

from ..builders import mapping_chips, write_raster
from ..cli_runs import run_cli
from ..models import write_model

CPU = torch.device("cpu")


def test_traced_costs_match_the_real_network():
    spec = GeneratorSpec(3, 2, 5, 8, "batch", True)
    cost = NetworkCost.generator(spec, 64)
    real = UnetGenerator(spec)
    assert cost.parameters == sum(p.numel() for p in real.parameters())
    outputs = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outputs.append(o.numel()))
             for m in real.modules() if not list(m.children())]
    with torch.no_grad():
        real.eval()(torch.zeros(1, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    assert cost.activations == sum(outputs)
    # Translation's trace: the loaded network at its smallest tile, scaled, counts the same.
    for tile in (64, 96, 256):
        assert NetworkCost.generator(spec, tile, real) == NetworkCost.generator(spec, tile)


def test_an_absurd_tile_is_refused_at_once_with_the_estimate_and_the_fix(tmp_path, rng):
    model = write_model(tmp_path / "m.p2p", chip=32, depth=3)
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 64, 64), dtype="uint8"))
    refused = run_cli("translate", str(source), str(model), str(tmp_path / "out.tif"),
                      "--tile-size", str(2**20), "--overlap", "0", "--device", "cpu", timeout=120)
    error = refused.events[-1]
    assert refused.code == 2 and error["kind"] == "bad_input"
    message = error["message"]
    assert "needs about" in message and "TiB of memory but only" in message
    suggested = int(re.search(r"Lower --tile-size \(TILE_SIZE\) to (\d+)\.$", message).group(1))
    spec = GeneratorSpec(3, 3, 3, 8, "batch", True)
    # Tiles this large run one per call on the CPU (infer.backends.cpu_batch).
    check_translation_memory(spec, suggested, 1, 64, 1, "uint8", CPU, tta=False)  # the advice fits...
    with pytest.raises(Pix2PixError):  # ...and is the largest power-of-two step that does
        check_translation_memory(spec, suggested * 2, 1, 64, 1, "uint8", CPU, tta=False)
    # Refused before any work: translate announces its tile plan only after the memory check passes.
    assert not any(" tiles of " in str(event.get("message", "")) for event in refused.events)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "m.p2p"]


def test_an_absurd_network_width_is_refused_before_any_allocation(tmp_path):
    chips = mapping_chips(tmp_path, size=64, tile=32, validation=0.0)
    with pytest.raises(Pix2PixError, match=r"needs about .* of memory but only .* Lower --ngf/--ndf"):
        train(chips, tmp_path / "m.p2p", TrainConfig(epochs=1, ngf=200_000, ndf=4))
    assert not (tmp_path / "m.p2p.ckpt").exists()


D64 = DiscriminatorSpec(6, 64)


def test_the_batch_size_advice_is_the_largest_that_fits(monkeypatch):
    spec = GeneratorSpec(3, 3, 8, 64, "batch", True)
    estimate = check_training_memory(spec, D64, 256, 4, 1000, CPU)
    budget = estimate["fixed"] + 10.5 * estimate["per_sample"]
    monkeypatch.setattr("pix2pix_qgis.model.guards.available_memory", lambda: int(budget / 0.9))
    with pytest.raises(Pix2PixError, match=r"Lower --batch-size \(BATCH_SIZE\) to 10\."):
        check_training_memory(spec, D64, 256, 64, 1000, CPU)
    check_training_memory(spec, D64, 256, 10, 1000, CPU)  # fits: no error
    check_training_memory(spec, D64, 256, 64, 8, CPU)  # only 8 chips: a batch is never larger


def test_usual_settings_pass_on_this_machine():
    assert available_memory() and available_memory() > 0
    spec = GeneratorSpec(3, 3, 8, 64, "batch", True)
    check_translation_memory(spec, 256, 8, 20_000, 100, "uint8", CPU, tta=False)
    check_training_memory(spec, D64, 256, 4, 1000, CPU)


class OutOfMemoryOnce:
    """Wraps the model's forward: batches larger than ``limit`` raise CUDA's out-of-memory error."""

    def __init__(self, forward, limit: int) -> None:
        self.forward, self.limit, self.refused = forward, limit, []

    def __call__(self, model, batch: np.ndarray) -> np.ndarray:
        if len(batch) > self.limit:
            self.refused.append(len(batch))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return self.forward(model, batch)


def test_cuda_out_of_memory_halves_the_batch_and_gives_the_same_output(tmp_path, rng, monkeypatch):
    model = write_model(tmp_path / "m.p2p", chip=32, depth=3)
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 90, 200), dtype="uint8"), photometric="RGB")
    # 32 px tiles: 4 × 8 tiles, gathered 16 per call on the CPU (two tile rows; backends.cpu_batch).
    spec = TranslateSpec(device="cpu", batch_size=8, tile_size=32, overlap=8)
    translate_raster(source, model, tmp_path / "plain.tif", spec)

    injected = OutOfMemoryOnce(backends.TorchBackend.__call__, limit=4)
    monkeypatch.setattr(backends.TorchBackend, "__call__", lambda self, batch: injected(self, batch))
    warnings = []
    progress = Progress(lambda e: warnings.append(e["message"]) if e["type"] == "warning" else None)
    translate_raster(source, model, tmp_path / "backoff.tif", spec, progress)

    assert injected.refused == [16, 8]  # 16 → 8 → 4, then 4 stays for the rest of the run
    assert warnings == [
        "CUDA ran out of memory with a batch of 16 tiles; retrying with batches of 8 (same output, slower). "
        "Use --batch-size 8 (BATCH_SIZE) to start there.",
        "CUDA ran out of memory with a batch of 8 tiles; retrying with batches of 4 (same output, slower). "
        "Use --batch-size 4 (BATCH_SIZE) to start there.",
    ]
    with rasterio.open(tmp_path / "plain.tif") as a, rasterio.open(tmp_path / "backoff.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_out_of_memory_with_a_single_tile_is_a_clear_error():
    def always(batch):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")

    with pytest.raises(Pix2PixError, match="single tile. Lower --tile-size"):
        BatchBackoff(Progress())(always, np.zeros((4, 1, 8, 8), np.float32))


def test_other_errors_are_not_mistaken_for_out_of_memory():
    def broken(batch):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        BatchBackoff(Progress())(broken, np.zeros((4, 1, 8, 8), np.float32))
