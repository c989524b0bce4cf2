"""Run one engine command in a subprocess and map its JSON-lines protocol onto QGIS feedback.

No shell is involved (arguments go to the OS as a list, so names with spaces, quotes, ``;``
or ``$()`` are just names). Cancel writes the protocol's cancel line on the engine's stdin
(``contract.protocol.CANCEL_LINE``), the same on every OS; the engine turns it into a clean
stop that saves training's checkpoint and removes its staging output. Where signals can be
caught (POSIX) SIGTERM follows after :data:`SIGNAL_AFTER_S`, for an engine that does not read
its stdin. After a grace period (1.5 s by default) the engine's whole process tree is killed
(``process_tree``) and its staging outputs are removed here (``.<name>.partial-<pid>``, the
engine's naming rule in ``pix2pix_qgis/contract/protocol.py``, imported from there), and so
is its output lock ``.<name>.lock`` once no other run holds it.

The engine is trusted code but its output is not: a library may print stray text, a crash
may cut a line, a bug may print a line of gigabytes, and a child process may keep the pipe
open after the engine died. None of these may hang QGIS or take its memory, so lines are read
in bounded pieces and the loop ends on the engine's exit, not on the pipe's end of file.
"""

from __future__ import annotations

import json
import math
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingException, QgsProcessingFeedback

from ..pix2pix_qgis.contract.protocol import CANCEL_LINE, lock_path, partial_paths
from .interpreter import engine_environment, fix_hint, resolve_python
from .process_tree import ask_to_stop, kill_tree, start_options

TERMINATE_GRACE_S = 1.5
SIGNAL_AFTER_S = 1.0  # the cancel line's head start over SIGTERM (capped at half the grace period)
MAX_LINE_CHARS = 1 << 20  # protocol lines are a few hundred bytes; longer ones are cut, never buffered whole
DRAIN_AFTER_EXIT_S = 5.0  # a grandchild may hold stdout open after the engine exited
EXIT_AFTER_RESULT_S = 30.0  # an engine that reported its result but does not exit is stopped
_EOF = object()


def _read_lines(stream: Any, limit: int = MAX_LINE_CHARS) -> Any:
    """Yield ``(text, dropped_chars)`` per line; a line longer than ``limit`` keeps its head only."""
    while True:
        piece = stream.readline(limit)
        if not piece:
            return
        if piece.endswith("\n") or len(piece) < limit:
            yield piece, 0
            continue
        dropped = 0
        while True:  # skip the rest of an oversized line without keeping it
            rest = stream.readline(limit)
            dropped += len(rest.rstrip("\n"))
            if not rest or rest.endswith("\n"):
                break
        yield piece, dropped


def _pump(stream: Any, sink: queue.Queue[Any]) -> None:
    try:
        for line in _read_lines(stream):
            sink.put(line)
    except (OSError, ValueError):  # the pipe was closed under us while the run is being torn down
        pass
    sink.put(_EOF)


def _collect(stream: Any, tail: deque[str]) -> None:
    try:
        for text, dropped in _read_lines(stream, 4000):
            tail.append(text.rstrip("\n") + (f" … [{dropped} more characters]" if dropped else ""))
    except (OSError, ValueError):
        pass


def _send_cancel_line(process: subprocess.Popen) -> None:
    """Write the protocol's cancel line on the engine's stdin (``contract.protocol``), if it has one."""
    if process.stdin is None:  # a run that does not speak the cancel line (set-up)
        return
    try:
        process.stdin.write(CANCEL_LINE + "\n")
        process.stdin.flush()
    except (OSError, ValueError):  # the engine exited or closed its stdin: the signal and the kill remain
        pass


def _close(stream: Any) -> None:
    try:
        if stream is not None:
            stream.close()
    except OSError:  # flushing into a pipe the engine no longer reads
        pass


def _remove_partials(outputs: list[str], pid: int) -> None:
    for output in outputs:
        for partial in partial_paths(Path(output), pid):
            if partial.is_dir():
                shutil.rmtree(partial, ignore_errors=True)
            elif partial.exists():
                partial.unlink()


def _remove_abandoned_locks(outputs: list[str]) -> None:
    """Remove the lock files a killed engine left, unless another run holds one now.

    The kernel released the dead engine's ``flock``; taking it (without waiting) proves
    nobody else writes the output, and unlinking before unlocking makes a run that opened
    the old file retry on a fresh one, as the engine itself does.
    """
    try:
        import fcntl
    except ImportError:  # Windows: a file another run has open cannot be removed, so removing is the test
        for output in outputs:
            try:
                lock_path(Path(output)).unlink()
            except OSError:
                pass
        return
    for output in outputs:
        path = lock_path(Path(output))
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:  # absent, or not ours to open: nothing to remove
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                path.unlink()
        except OSError:  # another run holds it (or replaced it): it is that run's lock
            pass
        finally:
            os.close(fd)


def exit_description(code: int) -> str:
    """Say how the engine ended in words an analyst can act on."""
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    if -code == getattr(signal, "SIGKILL", None):  # POSIX only; Windows exit codes are never negative
        return (f"{name} (killed from outside; when nobody stopped it, the system usually ran out of memory: "
                "lower the tile or batch size)")
    return name


def _number(value: Any, default: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


class EngineRun:
    """One engine invocation; ``run()`` returns the engine's result dict or raises."""

    def __init__(self, command: list[str], feedback: QgsProcessingFeedback, outputs: list[str] | None = None,
                 grace_seconds: float = TERMINATE_GRACE_S):
        self.command = command
        self.feedback = feedback or QgsProcessingFeedback()
        self.outputs = outputs or []
        self.grace_seconds = grace_seconds
        self.python, self.python_source = resolve_python()
        self._readers: list[threading.Thread] = []

    def _start(self) -> subprocess.Popen:
        argv = [self.python, "-u", "-m", "pix2pix_qgis", *self.command, "--progress", "json"]
        self.feedback.pushCommandInfo(" ".join(argv))
        try:
            return subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=engine_environment(), text=True, encoding="utf-8", errors="replace", **start_options(),
            )
        except OSError as exc:
            raise QgsProcessingException(
                f"The Python interpreter '{self.python}' (from {self.python_source}) cannot be started: "
                f"{exc.strerror or exc}. Set the environment variable PIX2PIX_PYTHON or Processing › Options › "
                "Providers › Pix2Pix › Python interpreter to a Python 3.9+ that has the engine's dependencies "
                f"({fix_hint('<python>')})."
            ) from exc

    def run(self) -> dict[str, Any]:
        """Start the engine, relay its progress until it exits and return its ``result``.

        The process tree never outlives this.
        """
        process = self._start()
        try:
            return self._follow(process)
        finally:
            kill_tree(process)  # also when the engine exited: a child it left behind must not outlive the run
            _close(process.stdin)
            for reader, stream in zip(self._readers, (process.stdout, process.stderr)):
                reader.join(timeout=2)
                if not reader.is_alive():  # closing a pipe a thread still reads from could block on its lock
                    stream.close()

    def _follow(self, process: subprocess.Popen) -> dict[str, Any]:
        lines: queue.Queue[Any] = queue.Queue()
        stderr_tail: deque[str] = deque(maxlen=60)
        readers = self._readers = [
            threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True),
            threading.Thread(target=_collect, args=(process.stderr, stderr_tail), daemon=True),
        ]
        for reader in readers:
            reader.start()
        result: Any = None
        error: dict[str, Any] | None = None
        end_of_output = False
        exited_at: float | None = None
        result_at: float | None = None
        while True:
            if self.feedback.isCanceled():
                self._cancel(process)
            now = time.monotonic()
            if process.poll() is not None:
                exited_at = exited_at or now
                if end_of_output or now - exited_at > DRAIN_AFTER_EXIT_S:
                    break
            elif result_at is not None and now - result_at > EXIT_AFTER_RESULT_S:
                self.feedback.pushConsoleInfo("The engine reported its result but did not exit; stopping it.")
                kill_tree(process)
                break
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is _EOF:
                end_of_output = True
                continue
            event = self._parse(*line)
            if event is None:
                continue
            kind = event.get("type")
            if kind == "result":
                result, result_at = event.get("result", {}), time.monotonic()
            elif kind == "error":
                error = event
            else:
                self._show(event)
        code = process.wait()
        readers[1].join(timeout=2)
        if error is not None:
            raise QgsProcessingException(self._error_message(error))
        if result is not None and not isinstance(result, dict):
            raise QgsProcessingException(
                f"The Pix2Pix engine ({self.python}) reported a result that is not a JSON object ({result!r:.200}); "
                "the engine and the plugin may be different versions: reinstall the plugin, then run "
                "Pix2Pix › Check engine."
            )
        if (code != 0 and result_at is None) or result is None:
            tail = "\n".join(stderr_tail) or "(no output)"
            raise QgsProcessingException(
                f"The Pix2Pix engine ({self.python}) stopped with {exit_description(code)} without reporting a "
                f"result. Its last messages:\n{tail}"
            )
        return result

    def _parse(self, line: str, dropped: int = 0) -> dict[str, Any] | None:
        text = line.strip()
        if dropped:
            self.feedback.pushConsoleInfo(
                f"{text[:2000]} … [an engine output line of {len(line) + dropped} characters was cut]")
            return None
        if not text:
            return None
        try:
            event = json.loads(text)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            self.feedback.pushConsoleInfo(text[:2000])  # stray output from a library: show, don't fail
            return None
        return event

    def _show(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        message = str(event.get("message", ""))[:2000]
        if kind == "progress":
            self.feedback.setProgress(100.0 * min(1.0, max(0.0, _number(event.get("fraction")))))
            if message:
                self.feedback.setProgressText(message)
        elif kind == "warning":
            push_warning = getattr(self.feedback, "pushWarning", None)  # QGIS ≥ 3.26
            if push_warning is not None:
                push_warning(message)
            else:
                self.feedback.reportError(message, False)
        elif kind == "info":
            self.feedback.pushInfo(message)

    def _error_message(self, error: dict[str, Any]) -> str:
        message = str(error.get("message", "The engine failed."))
        if error.get("kind") == "missing_dependency":
            return (f"{message} The interpreter came from {self.python_source}. "
                    f"Fix: {error.get('fix') or fix_hint(self.python)}")
        return message

    def _cancel(self, process: subprocess.Popen) -> None:
        """Ask the engine to stop (cancel line, then SIGTERM where it can be caught); kill its tree
        and remove its partials if it has not stopped within the grace period."""
        if process.poll() is None:
            _send_cancel_line(process)
            started = time.monotonic()
            signal_at = started + min(SIGNAL_AFTER_S, self.grace_seconds / 2)
            signalled = False
            while process.poll() is None and time.monotonic() < started + self.grace_seconds:
                if not signalled and time.monotonic() >= signal_at:
                    ask_to_stop(process)
                    signalled = True
                time.sleep(0.05)
            if process.poll() is None:
                kill_tree(process)
                _remove_partials(self.outputs, process.pid)
                _remove_abandoned_locks(self.outputs)
        raise QgsProcessingException("Cancelled by the user; no output was written.")


def run_engine(command: list[str], feedback: QgsProcessingFeedback, outputs: list[str] | None = None,
               grace_seconds: float = TERMINATE_GRACE_S) -> dict:
    """Run ``python -m pix2pix_qgis <command> --progress json``; return its result dict.

    ``grace_seconds``: how long a cancelled engine may take to stop cleanly before it is
    killed (training uses more, to finish its step and save the checkpoint).
    """
    return EngineRun(command, feedback, outputs, grace_seconds).run()
