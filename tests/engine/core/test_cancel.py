"""The portable cancel channel: the protocol's cancel line on a real engine subprocess's stdin.

This is how the QGIS provider cancels on every OS (Windows has no catchable SIGTERM). No
signal is sent here: the line alone must stop training with its checkpoint saved and
translation with its partial output removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import IO, Any

import numpy as np

from pix2pix_qgis.contract.errors import ExitCode
from pix2pix_qgis.contract.protocol import CANCEL_LINE
from pix2pix_qgis.model.checkpoint import checkpoint_path, load_checkpoint

from ..builders import mapping_chips, write_raster
from ..cli_runs import REPO
from ..models import write_model


def start_engine(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-u", "-m", "pix2pix_qgis", *args, "--progress", "json"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def read_until(stdout: IO[str], wanted: Any) -> list[dict[str, Any]]:
    """Protocol events up to and including the first one for which ``wanted(event)`` is true."""
    seen = []
    for line in stdout:
        seen.append(json.loads(line))
        if wanted(seen[-1]):
            return seen
    raise AssertionError(f"the engine ended before the awaited event; it said: {seen[-3:]}")


def send(process: subprocess.Popen, line: str) -> None:
    assert process.stdin is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()


def finish(process: subprocess.Popen) -> tuple[int, list[dict[str, Any]]]:
    """Exit code and the remaining events; stdin stays open, so its end cannot be what stopped the engine."""
    rest, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr, stderr
    return process.returncode, [json.loads(line) for line in rest.splitlines()]


def test_cancel_line_stops_training_with_its_checkpoint_and_no_partial(tmp_path):
    chips = mapping_chips(tmp_path / "data", size=256, tile=64)  # 12 training chips: 3 steps of 4 per epoch
    model = tmp_path / "out" / "model.p2p"
    process = start_engine("train", str(chips), str(model), "--epochs", "200", "--batch-size", "4", "--ngf", "4",
                           "--ndf", "4", "--device", "cpu", "--seed", "1")
    seen = read_until(process.stdout, lambda event: event.get("step", 0) >= 4)  # into the second epoch
    send(process, CANCEL_LINE)
    code, rest = finish(process)
    assert code == ExitCode.CANCELLED
    assert rest[-1]["type"] == "error" and rest[-1]["kind"] == "cancelled"
    assert any("Run again with resume" in event["message"] for event in rest if event["type"] == "warning")
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.p2p.ckpt"]  # no model, no partial, no lock
    document, _ = load_checkpoint(checkpoint_path(model))
    reported = max(event.get("step", 0) for event in seen + rest)
    state = document["state"]
    assert reported <= state["global_step"] < 200 * 3  # the last step done, not an epoch boundary long past
    assert state["global_step"] == (state["epoch"] - 1) * 3 + state["step_in_epoch"]


def test_cancel_line_stops_translation_and_removes_its_partial(tmp_path):
    rng = np.random.default_rng(0)
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 1536, 1536), dtype="uint8"))
    model = write_model(tmp_path / "m.p2p", chip=64, depth=4)
    out = tmp_path / "out"
    out.mkdir()
    process = start_engine("translate", str(source), str(model), str(out / "translated.tif"), "--overlap", "16",
                           "--device", "cpu")
    read_until(process.stdout, lambda event: event["type"] == "progress" and event["fraction"] > 0)
    assert [p.name for p in out.iterdir() if ".partial-" in p.name], "the run should be writing its partial now"
    send(process, "status")  # not the cancel word: ignored
    send(process, CANCEL_LINE)
    code, rest = finish(process)
    assert code == ExitCode.CANCELLED and rest[-1]["kind"] == "cancelled"
    assert list(out.iterdir()) == []


def test_the_end_of_stdin_is_no_request_to_stop(make_raster, tmp_path, rng):
    """``… --progress json < /dev/null`` (a scheduler, nohup) must run to its end."""
    path = make_raster("a.tif", rng.integers(0, 255, (1, 128, 128), dtype="uint8"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "pix2pix_qgis", "export", str(path), str(path), str(tmp_path / "c"),
                           "--tile-size", "32", "--stride", "16", "--progress", "json"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["type"] == "result"
