"""The provider's engine runner against misbehaving engines: real subprocesses, real pipes.

Each test points PIX2PIX_PYTHON at a small executable script that plays a broken engine
(stray text, cut lines, a line of 64 MB, a crash without a final message, a child that keeps the
pipe open, an engine that never exits, engines that stop only on the cancel line or only on
SIGTERM). The runner must end every time with a clear message and must not hang; the tests
run it in a thread and fail if it has not returned in time.
"""

from __future__ import annotations

import os
import stat
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .processing_runs import recording_feedback

FAKE_ENGINE = textwrap.dedent('''\
    #!/usr/bin/python3
    """Plays a misbehaving engine; argv is: -u -m pix2pix_qgis SCENARIO --progress json."""
    import json, os, signal, subprocess, sys, time
    scenario = sys.argv[4]
    out = sys.stdout
    def emit(event):
        out.write(json.dumps(event) + "\\n"); out.flush()
    RESULT = {"type": "result", "result": {"OUTPUT": "done"}}
    if scenario == "stray_text":
        print("Warning: some library says hello"); print("{not json"); print("[1, 2]"); print("null")
        out.buffer.write(b"\\xff\\xfe invalid utf-8\\n"); out.flush()
        emit({"type": "progress", "fraction": 0.5, "message": "half"})
        emit(RESULT)
    elif scenario == "bad_fields":
        emit({"type": "progress", "fraction": "abc"}); emit({"type": "progress", "fraction": 1e400})
        emit({"type": "progress", "fraction": -3}); emit({"type": "progress", "fraction": None})
        emit({"type": "info", "message": {"nested": 1}}); emit({"type": "no-such-type"}); emit({"no": "type"})
        emit({"type": "progress", "fraction": 7, "message": "beyond"})
        emit(RESULT)
    elif scenario == "huge_line":
        chunk = "x" * (1 << 20)
        for _ in range(64):
            out.write(chunk)
        out.write("\\n"); out.flush()
        emit(RESULT)
    elif scenario == "partial_line_then_exit":
        emit({"type": "progress", "fraction": 0.2})
        out.write('{"type": "result", "result": {"OUTP'); out.flush()
        os._exit(0)
    elif scenario == "sigkill_without_message":
        emit({"type": "progress", "fraction": 0.3, "message": "working"})
        sys.stderr.write("allocating a large buffer\\n"); sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    elif scenario == "result_not_object":
        emit({"type": "result", "result": [1, 2, 3]})
    elif scenario == "child_keeps_pipe":
        child = subprocess.Popen(["sleep", "600"])  # inherits stdout and stderr
        with open(sys.argv[0] + ".child", "w") as marker:
            marker.write(str(child.pid))
        emit(RESULT)
        os._exit(0)
    elif scenario == "never_exits":
        emit(RESULT)
        time.sleep(600)
    elif scenario == "stderr_flood":
        for _ in range(20000):
            sys.stderr.write("noise " * 50 + "\\n")
        emit(RESULT)
    elif scenario == "ignores_sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit({"type": "progress", "fraction": 0.1, "message": "stubborn"})
        time.sleep(600)
    elif scenario == "stops_on_cancel_line":  # as the engine on Windows: no signal can be caught
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit({"type": "progress", "fraction": 0.1, "message": "listening"})
        for line in sys.stdin:
            if line.strip() == "cancel":
                with open(sys.argv[0] + ".stopped", "w") as marker:
                    marker.write("stdin")
                emit({"type": "error", "kind": "cancelled", "message": "Cancelled"})
                sys.exit(130)
        time.sleep(600)
    elif scenario == "stops_on_sigterm_only":  # an engine that does not read its stdin
        os.close(0)
        def stop(signum, frame):
            emit({"type": "error", "kind": "cancelled", "message": "Cancelled"})
            os._exit(130)
        signal.signal(signal.SIGTERM, stop)
        emit({"type": "progress", "fraction": 0.1, "message": "deaf"})
        time.sleep(600)
    elif scenario == "locks_and_ignores_sigterm":  # argv[5]: the output; staged and locked as the engine does
        import fcntl
        target = sys.argv[5]
        folder, name = os.path.split(target)
        open(os.path.join(folder, f".{name}.partial-{os.getpid()}"), "w").write("half a raster")
        lock = os.open(os.path.join(folder, f".{name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(lock, f"{os.getpid()}\\n".encode())
        except BlockingIOError:
            pass  # held by the test (another run): work on regardless, as a bug might
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit({"type": "progress", "fraction": 0.1, "message": "stubborn"})
        time.sleep(600)
    ''')


@pytest.fixture
def fake_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake engine.py"
    script.write_text(FAKE_ENGINE)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PIX2PIX_PYTHON", str(script))
    return script


def run_with_deadline(scenario: str, feedback: Any, deadline_s: float = 60.0, command_tail: tuple[str, ...] = (),
                      **options: Any) -> Any:
    """Run the fake engine through the provider's runner; fail the test if it hangs."""
    from pix2pix_toolbox.processing_provider.engine import EngineRun

    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = EngineRun([scenario, *command_tail], feedback, **options).run()
        except Exception as exc:  # noqa: BLE001 - the test inspects whatever the runner raised
            outcome["error"] = exc

    started = time.monotonic()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(deadline_s)
    assert not worker.is_alive(), f"the engine runner hung on {scenario!r}"
    outcome["seconds"] = time.monotonic() - started
    return outcome


def test_stray_text_and_invalid_bytes_are_shown_not_fatal(qgis_app, fake_engine):
    feedback = recording_feedback()
    outcome = run_with_deadline("stray_text", feedback)
    assert outcome.get("result") == {"OUTPUT": "done"}, outcome
    console = "\n".join(feedback.console)
    assert "some library says hello" in console and "{not json" in console and "[1, 2]" in console
    assert "invalid utf-8" in console and "\ufffd" in console
    assert 50.0 in feedback.progress_values


def test_events_with_wrong_field_types_do_not_break_the_run(qgis_app, fake_engine):
    feedback = recording_feedback()
    outcome = run_with_deadline("bad_fields", feedback)
    assert outcome.get("result") == {"OUTPUT": "done"}, outcome
    assert feedback.progress_values and all(0.0 <= value <= 100.0 for value in feedback.progress_values)
    assert feedback.progress_values[-1] == 100.0  # fraction 7 is clamped
    assert "{'nested': 1}" in feedback.infos


def test_a_64_mb_line_is_cut_not_buffered(qgis_app, fake_engine):
    feedback = recording_feedback()
    outcome = run_with_deadline("huge_line", feedback)
    assert outcome.get("result") == {"OUTPUT": "done"}, outcome
    cut = [line for line in feedback.console if "was cut" in line]
    assert len(cut) == 1 and f"{64 << 20}" in cut[0].replace(",", "") and len(cut[0]) < 3000


def test_a_cut_final_line_gives_a_clear_error(qgis_app, fake_engine):
    from qgis.core import QgsProcessingException

    outcome = run_with_deadline("partial_line_then_exit", recording_feedback())
    error = outcome.get("error")
    assert isinstance(error, QgsProcessingException), outcome
    assert "without reporting a result" in str(error) and "exit code 0" in str(error)


def test_an_engine_killed_without_a_message_is_reported_with_its_signal_and_stderr(qgis_app, fake_engine):
    from qgis.core import QgsProcessingException

    outcome = run_with_deadline("sigkill_without_message", recording_feedback())
    error = outcome.get("error")
    assert isinstance(error, QgsProcessingException), outcome
    message = str(error)
    assert "SIGKILL" in message and "ran out of memory" in message and "allocating a large buffer" in message


def test_a_result_that_is_not_an_object_is_a_version_mismatch_error(qgis_app, fake_engine):
    from qgis.core import QgsProcessingException

    outcome = run_with_deadline("result_not_object", recording_feedback())
    assert isinstance(outcome.get("error"), QgsProcessingException), outcome
    assert "not a JSON object" in str(outcome["error"]) and "Check engine" in str(outcome["error"])


def test_a_child_holding_the_pipe_neither_hangs_the_run_nor_outlives_it(qgis_app, fake_engine):
    outcome = run_with_deadline("child_keeps_pipe", recording_feedback(), deadline_s=30)
    assert outcome.get("result") == {"OUTPUT": "done"}, outcome
    child = int(Path(str(fake_engine) + ".child").read_text())
    time.sleep(0.2)
    alive = Path(f"/proc/{child}").exists() and "Z" not in Path(f"/proc/{child}/stat").read_text().split()[2]
    assert not alive, "the engine's child process outlived the run"


def test_an_engine_that_never_exits_after_its_result_is_stopped(qgis_app, fake_engine, monkeypatch):
    from pix2pix_toolbox.processing_provider import engine

    monkeypatch.setattr(engine, "EXIT_AFTER_RESULT_S", 1.0)
    feedback = recording_feedback()
    outcome = run_with_deadline("never_exits", feedback, deadline_s=30)
    assert outcome.get("result") == {"OUTPUT": "done"}, outcome
    assert any("did not exit" in line for line in feedback.console)


def test_a_stderr_flood_does_not_deadlock(qgis_app, fake_engine):
    outcome = run_with_deadline("stderr_flood", recording_feedback())
    assert outcome.get("result") == {"OUTPUT": "done"}, outcome


def test_cancel_kills_an_engine_that_ignores_sigterm(qgis_app, fake_engine):
    from qgis.core import QgsProcessingException

    outcome = run_with_deadline("ignores_sigterm", recording_feedback(cancel_after_progress=True),
                                deadline_s=30, grace_seconds=0.5)
    assert isinstance(outcome.get("error"), QgsProcessingException), outcome
    assert "Cancelled" in str(outcome["error"]) and outcome["seconds"] < 20


def test_cancel_is_a_line_on_the_engines_stdin(qgis_app, fake_engine):
    """The portable channel: an engine that cannot catch signals (Windows) stops long before the grace ends."""
    from qgis.core import QgsProcessingException

    outcome = run_with_deadline("stops_on_cancel_line", recording_feedback(cancel_after_progress=True),
                                deadline_s=60, grace_seconds=30)
    assert isinstance(outcome.get("error"), QgsProcessingException), outcome
    assert "Cancelled" in str(outcome["error"]) and outcome["seconds"] < 15
    assert Path(str(fake_engine) + ".stopped").read_text() == "stdin"


def test_sigterm_remains_the_fallback_for_an_engine_that_does_not_read_stdin(qgis_app, fake_engine):
    from qgis.core import QgsProcessingException

    outcome = run_with_deadline("stops_on_sigterm_only", recording_feedback(cancel_after_progress=True),
                                deadline_s=60, grace_seconds=30)
    assert isinstance(outcome.get("error"), QgsProcessingException), outcome
    assert "Cancelled" in str(outcome["error"]) and outcome["seconds"] < 15


def test_engine_output_lines_are_read_in_bounded_pieces(tmp_path):
    """The line reader itself: pieces never exceed the limit, the rest of a long line is skipped."""
    from pix2pix_toolbox.processing_provider.engine import _read_lines

    path = tmp_path / "stream.txt"
    path.write_text("short\n" + "y" * 25 + "\nlast without newline")
    with open(path, encoding="utf-8") as stream:
        lines = list(_read_lines(stream, limit=10))
    assert lines == [("short\n", 0), ("y" * 10, 15), ("last witho", 10)]
    assert os.path.getsize(path) == 6 + 26 + 20


def test_cancel_removes_the_partial_and_the_lock_of_an_engine_it_had_to_kill(qgis_app, fake_engine, tmp_path):
    """SIGKILL leaves the engine no chance to clean up: the provider removes its partial and its lock file."""
    from pix2pix_toolbox.pix2pix_qgis.contract.protocol import lock_path
    from qgis.core import QgsProcessingException

    out = tmp_path / "out" / "chips.tif"
    out.parent.mkdir()
    outcome = run_with_deadline("locks_and_ignores_sigterm", recording_feedback(cancel_after_progress=True),
                                deadline_s=30, command_tail=(str(out),), outputs=[str(out)], grace_seconds=0.5)
    assert isinstance(outcome.get("error"), QgsProcessingException), outcome
    assert "Cancelled" in str(outcome["error"]) and outcome["seconds"] < 20  # the engine ran and was killed
    assert lock_path(out).name == ".chips.tif.lock"
    assert sorted(p.name for p in out.parent.iterdir()) == []


def test_cancel_keeps_a_lock_that_another_run_holds(qgis_app, fake_engine, tmp_path):
    """The lock is removed only when taking it proves nobody writes the output; another run's lock stays."""
    import fcntl

    from pix2pix_toolbox.pix2pix_qgis.contract.protocol import lock_path

    out = tmp_path / "chips.tif"
    lock = lock_path(out)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        outcome = run_with_deadline("locks_and_ignores_sigterm", recording_feedback(cancel_after_progress=True),
                                    deadline_s=30, command_tail=(str(out),), outputs=[str(out)], grace_seconds=0.5)
        assert "Cancelled" in str(outcome.get("error")), outcome
        assert lock.exists() and [p.name for p in tmp_path.iterdir() if ".partial-" in p.name] == []
