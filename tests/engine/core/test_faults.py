"""Faults with real processes: SIGKILL mid-run, a second run on the same output, stale partials.

Every engine command is started as a real subprocess and killed with SIGKILL (no cleanup
code runs) at a progress line part way. What must hold: nothing at the output path,
only hidden ``.partial-<pid>`` leftovers that do not look like outputs, a rerun that
succeeds and removes them, and a training that resumes from its last checkpoint.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.core.locking import lock_path, output_lock
from pix2pix_qgis.core.outputs import remove_stale_partials, staged_file
from pix2pix_qgis.model.checkpoint import checkpoint_path, load_checkpoint
from pix2pix_qgis.model.package import load_model

from ..builders import mapping_chips, write_raster
from ..cli_runs import ENV
from ..models import write_model

LEFTOVER = re.compile(r"^\.(.+)\.(partial|old)-(\d+)(\..*)?$|^\.(.+)\.lock$")


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pix2pix_qgis", *args, "--progress", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def run(*args: str) -> tuple[int, list[dict]]:
    proc = subprocess.run([sys.executable, "-m", "pix2pix_qgis", *args, "--progress", "json"],
                          capture_output=True, text=True, env=ENV, timeout=300)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()]


def kill_when(proc: subprocess.Popen, seen: Callable[[dict], bool]) -> list[dict]:
    """Read events until ``seen(event)``, then SIGKILL the process; returns the events read."""
    events = []
    for line in proc.stdout:
        event = json.loads(line)
        events.append(event)
        if seen(event):
            break
    else:
        pytest.fail(f"the run ended before the kill point: {events[-3:]} {proc.stderr.read()[-2000:]}")
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stdout.close()
    proc.stderr.close()
    return events


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    """Names in ``folder`` besides ``keep``; each must be a hidden partial or lock, never an output."""
    names = sorted(p.name for p in folder.iterdir() if p.name not in keep)
    assert all(LEFTOVER.match(name) for name in names), names
    return names


def progress_past(fraction: float) -> Callable[[dict], bool]:
    return lambda event: event["type"] == "progress" and event["fraction"] >= fraction


@pytest.fixture
def raster(tmp_path: Path, rng: np.random.Generator) -> Path:
    return write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 384, 384), dtype="uint8"),
                        photometric="RGB")


def test_export_killed_leaves_no_output_and_the_rerun_cleans_up(tmp_path, raster):
    out = tmp_path / "chips"
    proc = start("export", str(raster), str(raster), str(out), "--tile-size", "32", "--stride", "16")
    kill_when(proc, progress_past(0.05))  # early: a loaded machine may lag behind the pipe
    assert not out.exists()
    partial = tmp_path / f".chips.partial-{proc.pid}"
    assert partial.is_dir() and not (partial / "chips.json").exists()  # never looks like a finished export
    leftovers(tmp_path, {"in.tif"})

    code, events = run("export", str(raster), str(raster), str(out), "--tile-size", "32", "--stride", "16")
    assert code == 0, events[-1]
    assert (out / "chips.json").is_file() and events[-1]["result"]["chips"] == len(list((out / "images").iterdir()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chips", "in.tif"]  # stale partial and lock removed


def test_translate_killed_leaves_no_output_and_the_rerun_is_complete(tmp_path, raster):
    model = write_model(tmp_path / "m.p2p", chip=32, depth=3)
    out = tmp_path / "out.tif"
    args = ("translate", str(raster), str(model), str(out), "--overlap", "8", "--device", "cpu")
    proc = start(*args)
    kill_when(proc, progress_past(0.1))
    assert not out.exists()
    names = leftovers(tmp_path, {"in.tif", "m.p2p"})
    assert f".out.partial-{proc.pid}.tif" in names

    code, events = run(*args)
    assert code == 0, events[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "m.p2p", "out.tif"]
    with rasterio.open(out) as dst, rasterio.open(raster) as src:
        assert (dst.width, dst.height, dst.crs, dst.transform) == (src.width, src.height, src.crs, src.transform)
        assert dst.read().std() > 0  # every block was written and decodes


def test_training_killed_resumes_from_its_last_checkpoint(tmp_path):
    chips = mapping_chips(tmp_path, size=128, tile=32)
    model = tmp_path / "model.p2p"
    args = ("train", str(chips), str(model), "--epochs", "6", "--ngf", "4", "--ndf", "4", "--device", "cpu",
            "--checkpoint-minutes", "0")
    proc = start(*args)
    kill_when(proc, lambda e: e["type"] == "progress" and e.get("epoch", 0) >= 3)
    assert not model.exists()
    ckpt = checkpoint_path(model)
    document, _ = load_checkpoint(ckpt)  # complete and readable: written atomically
    saved_epoch = document["state"]["epoch"]
    assert saved_epoch >= 3 and [row["epoch"] for row in document["state"]["history"]] == list(range(1, saved_epoch))
    leftovers(tmp_path, {"a.tif", "b.tif", "chips", "model.p2p.ckpt"})

    code, events = run(*args, "--resume")
    assert code == 0, events[-1]
    assert any(e["type"] == "info" and e["message"].startswith(f"Resuming from epoch {saved_epoch},")
               for e in events)
    first_step = next(e for e in events if e["type"] == "progress" and "epoch" in e)
    assert first_step["epoch"] == saved_epoch  # continues, does not start over
    _, card = load_model(model)
    assert [row["epoch"] for row in card.metrics.history] == list(range(1, 7))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif", "chips", "model.p2p", "model.p2p.ckpt"]


def test_a_kill_during_a_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "model.p2p"
    target.write_bytes(b"previous complete model")
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from pix2pix_qgis.core.outputs import staged_file
        with staged_file(Path({str(target)!r})) as staging:
            staging.write_bytes(b"half of a new")
            print("writing", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True, env=ENV)
    assert child.stdout.readline().strip() == "writing"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    child.stdout.close()
    assert target.read_bytes() == b"previous complete model"
    with staged_file(target) as staging:  # the next write removes the dead writer's partial
        staging.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.p2p"]


def test_partials_of_live_processes_are_kept(tmp_path):
    target = tmp_path / "out.tif"
    live = tmp_path / f".out.partial-{os.getppid()}.tif"  # our parent is alive
    dead = tmp_path / ".out.partial-999999999.tif"  # beyond any pid_max
    other = tmp_path / ".other.partial-999999999.tif"
    for path in (live, dead, other):
        path.write_bytes(b"x")
    assert remove_stale_partials(target) == [dead]
    assert live.exists() and other.exists()


def hold_lock(target: Path) -> subprocess.Popen:
    """Another process that holds the output lock of ``target`` until killed."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pix2pix_qgis.core.locking import output_lock
        with output_lock({str(target)!r}):
            print("locked", flush=True)
            time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True, env=ENV)
    assert child.stdout.readline().strip() == "locked"
    return child


def release(child: subprocess.Popen) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    child.stdout.close()


def test_a_second_run_on_the_same_output_refuses_at_once_naming_the_first(tmp_path, raster):
    model = write_model(tmp_path / "m.p2p", chip=32, depth=3)
    out = tmp_path / "out.tif"
    holder = hold_lock(out)
    try:
        code, events = run("translate", str(raster), str(model), str(out), "--device", "cpu")
        assert code == 2
        assert f"Another run (process {holder.pid}) is writing {out}" in events[-1]["message"]
        assert not out.exists() and not any(".partial-" in p.name for p in tmp_path.iterdir())
    finally:
        release(holder)  # SIGKILL: the kernel drops the lock; the next run is not blocked
    code, events = run("translate", str(raster), str(model), str(out), "--device", "cpu")
    assert code == 0, events[-1]
    assert not lock_path(out).exists()


def test_two_real_runs_on_one_output_never_interleave(tmp_path, raster):
    model = write_model(tmp_path / "m.p2p", chip=32, depth=3)
    out = tmp_path / "out.tif"
    args = ("translate", str(raster), str(model), str(out), "--overlap", "8", "--device", "cpu")
    first = start(*args)
    for line in first.stdout:
        if json.loads(line)["type"] == "progress":
            break
    os.kill(first.pid, signal.SIGSTOP)  # frozen mid-write, so the second run surely overlaps it
    try:
        code, events = run(*args)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    rest = first.stdout.read()
    assert first.wait(timeout=300) == 0, first.stderr.read()
    first.stdout.close()
    first.stderr.close()
    assert code == 2 and f"process {first.pid}" in events[-1]["message"]
    assert json.loads(rest.splitlines()[-1])["type"] == "result"
    with rasterio.open(out) as dst:
        assert dst.read().std() > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "m.p2p", "out.tif"]


def test_a_training_on_a_locked_model_path_refuses(tmp_path):
    from pix2pix_qgis.train.config import TrainConfig
    from pix2pix_qgis.train.loop import train

    chips = mapping_chips(tmp_path, size=64, tile=32, validation=0.0)
    model = tmp_path / "model.p2p"
    holder = hold_lock(model)
    try:
        with pytest.raises(Pix2PixError, match=f"process {holder.pid}"):
            train(chips, model, TrainConfig(epochs=1, ngf=4, ndf=4))
        assert not checkpoint_path(model).exists()
    finally:
        release(holder)


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    target = tmp_path / "model.p2p"
    with output_lock(target), output_lock(target), staged_file(target) as staging:
        staging.write_bytes(b"ok")
        assert lock_path(target).exists()
    assert target.read_bytes() == b"ok" and not lock_path(target).exists()


def test_another_thread_of_the_same_process_is_refused(tmp_path):
    import threading

    target = tmp_path / "out.tif"
    errors = []

    def second() -> None:
        try:
            with staged_file(target):
                pass
        except Pix2PixError as exc:
            errors.append(str(exc))

    with output_lock(target):
        thread = threading.Thread(target=second)
        thread.start()
        thread.join()
    assert errors and errors[0].startswith(f"Another run in this process is writing {target} right now.")
    assert not target.exists()



def test_sighup_cancels_like_sigterm_and_leaves_nothing(tmp_path, raster):
    """A closed terminal or SSH session sends SIGHUP: it used to kill the run silently, leaving a hidden partial."""
    model = write_model(tmp_path / "m.p2p", chip=32, depth=3)
    out = tmp_path / "out.tif"
    proc = start("translate", str(raster), str(model), str(out), "--overlap", "8", "--device", "cpu")
    for line in proc.stdout:
        if json.loads(line)["type"] == "progress":
            break
    os.kill(proc.pid, signal.SIGHUP)
    rest, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    last = json.loads(rest.splitlines()[-1])
    assert last["type"] == "error" and last["kind"] == "cancelled" and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "m.p2p"]  # no output, partial or lock


def test_a_raster_damaged_past_its_header_fails_clearly_mid_run(tmp_path, rng):
    """GDAL opens it (the header is whole) and fails on a later block: exit 2 with GDAL's reason, no traceback."""
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 256, 256), dtype="uint8"), photometric="RGB")
    data = source.read_bytes()
    source.write_bytes(data[: len(data) * 2 // 3])
    model = write_model(tmp_path / "m.p2p", chip=32, depth=3)
    code, events = run("translate", str(source), str(model), str(tmp_path / "out.tif"), "--device", "cpu")
    assert code == 2 and events[-1]["kind"] == "bad_input", events[-1]
    assert events[-1]["message"].startswith("GDAL could not read or write a raster (") and "re-create" in \
        events[-1]["message"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "m.p2p"]


@pytest.mark.parametrize(("error", "expected"), [
    (OSError(errno.ENAMETOOLONG, "File name too long", "/x/" + "n" * 300), "File name too long: /x/nnn"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/out.tif"), "read-only. Choose an output location"),
    (PermissionError(errno.EACCES, "Permission denied", "/root/a.tif"), "Permission denied: /root/a.tif. Choose"),
    (MemoryError(), "ran out of memory. Lower the tile size"),
    (UnicodeEncodeError("utf-8", "/x/caf\udce9.tif", 6, 7, "surrogates not allowed"), "(/x/caf\\xe9.tif); GDAL"),
])
def test_failures_from_the_os_and_memory_are_explained_with_the_fix(error, expected):
    from pix2pix_qgis.core.failures import explain

    assert expected in explain(error)
    assert explain(ValueError("a bug")) is None and explain(KeyError("x")) is None  # bugs keep their traceback
