"""Data-parallel CycleGAN training with real torchrun processes (gloo on the CPU): shards, weights, package,
report, one process as a plain run, and cancel into a checkpoint that resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio
import torch

from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.model.checkpoint import checkpoint_path, load_checkpoint
from pix2pix_qgis.model.package import read_package

from ..cli_runs import engine_env, json_lines, torchrun, torchrun_stopped_at_step

TINY = ["--model", "cyclegan", "--ngf", "4", "--ndf", "4", "--resnet-blocks", "1", "--batch-size", "2",
        "--device", "cpu"]


def both_directions(model: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {direction: read_package(model, direction)[1] for direction in ("a2b", "b2a")}


@pytest.fixture(scope="module")
def two_ranks(unpaired, tmp_path_factory):
    """A 2-rank run of 2 epochs with each rank's trace (draws of each step, weights digest) and an HTML report."""
    _, _, chips = unpaired
    folder = tmp_path_factory.mktemp("two")
    proc = subprocess.run(
        torchrun("--nproc-per-node", "2", "-m", "pix2pix_qgis", "train", str(chips), str(folder / "m.p2p"),
                 "--epochs", "2", *TINY, "--report", str(folder / "report.html"), "--progress", "json"),
        capture_output=True, text=True, timeout=600, env=engine_env(PIX2PIX_RANK_TRACE=str(folder / "trace")),
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    traces = [json.loads((folder / "trace" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    return folder, json_lines(proc.stdout), traces


def test_two_ranks_draw_disjoint_shards_into_identical_weights(two_ranks):
    folder, lines, traces = two_ranks
    results = [e["result"] for e in lines if e["type"] == "result"]
    assert len(results) == 1  # rank 0 reports, rank 1 is quiet
    result = results[0]
    assert any("2 processes (gloo" in e.get("message", "") for e in lines)
    assert traces[0]["weights"] == traces[1]["weights"]  # the averaged gradients kept all four networks equal
    draws = max(result["train_chips_a"], result["train_chips_b"])
    steps_per_epoch = -(-draws // 4)  # 2 ranks × batch 2
    steps = [trace["steps"] for trace in traces]
    assert len(steps[0]) == len(steps[1]) == 2 * steps_per_epoch == result["epochs"] * steps_per_epoch
    for epoch in range(2):
        shards = [{i for batch in rank[epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch] for i in batch}
                  for rank in steps]
        assert not shards[0] & shards[1] and shards[0] | shards[1] == set(range(draws))
    document = load_checkpoint(checkpoint_path(folder / "m.p2p"))[0]
    assert document["world_size"] == 2 and document["state"]["global_step"] == 2 * steps_per_epoch
    assert "CycleGAN" in (folder / "report.html").read_text(encoding="utf-8")


def test_the_two_rank_package_translates_both_ways_on_the_exact_grids(two_ranks, unpaired, tmp_path):
    folder, _, _ = two_ranks
    a, b, _ = unpaired
    translate_raster(a, folder / "m.p2p", tmp_path / "a2b.tif")
    translate_raster(b, folder / "m.p2p", tmp_path / "b2a.tif", TranslateSpec(direction="b2a"))
    for source, out, dtype in ((a, "a2b.tif", "uint16"), (b, "b2a.tif", "uint8")):
        with rasterio.open(source) as src, rasterio.open(tmp_path / out) as dst:
            assert (dst.crs, dst.transform, dst.width, dst.height) == (src.crs, src.transform, src.width,
                                                                       src.height)
            assert dst.dtypes[0] == dtype and dst.read().any()


def test_torchrun_with_one_process_trains_the_weights_of_a_plain_run(unpaired, tmp_path):
    _, _, chips = unpaired
    common = ["--epochs", "2", *TINY, "--progress", "none"]
    plain = subprocess.run([sys.executable, "-m", "pix2pix_qgis", "train", str(chips), str(tmp_path / "plain.p2p"),
                            *common], capture_output=True, text=True, timeout=300, env=engine_env())
    one = subprocess.run(torchrun("--nproc-per-node", "1", "-m", "pix2pix_qgis", "train", str(chips),
                                  str(tmp_path / "one.p2p"), *common),
                         capture_output=True, text=True, timeout=300, env=engine_env())
    assert plain.returncode == 0 and one.returncode == 0, plain.stderr[-2000:] + one.stderr[-2000:]
    expected, got = both_directions(tmp_path / "plain.p2p"), both_directions(tmp_path / "one.p2p")
    for direction in ("a2b", "b2a"):
        assert expected[direction].keys() == got[direction].keys()
        assert all(torch.equal(expected[direction][k], got[direction][k]) for k in expected[direction])


def test_a_stopped_two_rank_run_keeps_its_checkpoint_and_resumes_to_the_end(unpaired, tmp_path):
    """SIGTERM to torchrun: both ranks stop at one step, rank 0 saves; --resume on 2 ranks finishes the run."""
    _, _, chips = unpaired
    model, epochs = tmp_path / "m.p2p", 30
    args = ["--nproc-per-node", "2", "-m", "pix2pix_qgis", "train", str(chips), str(model), "--epochs", str(epochs),
            *TINY, "--progress", "json"]
    code, stopped = torchrun_stopped_at_step(*args)
    assert code != 0
    cancelled = [e for e in stopped if e["type"] == "error"]
    assert {e.get("rank", 0) for e in cancelled} == {0, 1} and {e["kind"] for e in cancelled} == {"cancelled"}
    state = load_checkpoint(checkpoint_path(model))[0]["state"]
    assert not model.exists()

    resumed = subprocess.run(torchrun(*args, "--resume"), capture_output=True, text=True, timeout=600,
                             env=engine_env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    events = json_lines(resumed.stdout)
    messages = [e.get("message", "") for e in events]
    assert (f"Resuming from epoch {state['epoch']}, step {state['step_in_epoch']} "
            f"({state['global_step']} steps done).") in messages
    result = next(e["result"] for e in events if e["type"] == "result")
    steps_per_epoch = -(-max(result["train_chips_a"], result["train_chips_b"]) // 4)
    assert 2 <= state["global_step"] < epochs * steps_per_epoch, "the run ended before the stop reached it"
    assert result["epochs"] == epochs
    assert load_checkpoint(checkpoint_path(model))[0]["state"]["global_step"] == epochs * steps_per_epoch
    assert set(both_directions(model)) == {"a2b", "b2a"}
