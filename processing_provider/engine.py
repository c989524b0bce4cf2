"""Run one engine command in a subprocess and map its JSON-lines protocol onto QGIS feedback.

No shell is involved (arguments go to the OS as a list, so names with spaces, quotes, ``;``
or ``$()`` are just names). Cancel sends SIGTERM, which the engine turns into a clean stop
that removes its staging output; after a grace period (1.5 s by default) the engine's whole
process group is killed and its staging outputs are removed here (``.<name>.partial-<pid>``,
the engine's naming rule in ``pix2pix_qgis/contract/protocol.py``, imported from there).

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
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingException, QgsProcessingFeedback

from ..pix2pix_qgis.contract.protocol import partial_paths
from .interpreter import engine_environment, fix_hint, resolve_python

TERMINATE_GRACE_S = 1.5
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


def _remove_partials(outputs: list[str], pid: int) -> None:
    for output in outputs:
        for partial in partial_paths(Path(output), pid):
            if partial.is_dir():
                shutil.rmtree(partial, ignore_errors=True)
            elif partial.exists():
                partial.unlink()


def _kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the engine, if still running, and everything it started (data-loader workers, a stuck child)."""
    if os.name == "posix":
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if process.poll() is None:
        process.kill()
    process.wait()


def exit_description(code: int) -> str:
    """Say how the engine ended in words an analyst can act on."""
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    if -code == signal.SIGKILL:
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
        options: dict[str, Any] = {}
        if sys.platform == "win32":
            options["creationflags"] = subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined]
        else:
            options["start_new_session"] = True  # one process group, so a kill reaches its children too
        try:
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=engine_environment(), text=True, encoding="utf-8", errors="replace", **options,
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
            _kill_tree(process)  # also when the engine exited: a child it left behind must not outlive the run
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
                _kill_tree(process)
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
        if process.poll() is None:
            process.terminate()
            deadline = time.monotonic() + self.grace_seconds
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if process.poll() is None:
                _kill_tree(process)
                _remove_partials(self.outputs, process.pid)
        raise QgsProcessingException("Cancelled by the user; no output was written.")


def run_engine(command: list[str], feedback: QgsProcessingFeedback, outputs: list[str] | None = None,
               grace_seconds: float = TERMINATE_GRACE_S) -> dict:
    """Run ``python -m pix2pix_qgis <command> --progress json``; return its result dict.

    ``grace_seconds``: how long a cancelled engine may take to stop cleanly before it is
    killed (training uses more, to finish its step and save the checkpoint).
    """
    return EngineRun(command, feedback, outputs, grace_seconds).run()
