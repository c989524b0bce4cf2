"""Run one engine command in a subprocess and map its JSON-lines protocol onto QGIS feedback.

No shell is involved (arguments go to the OS as a list, so names with spaces, quotes, ``;``
or ``$()`` are just names). Cancel sends SIGTERM, which the engine turns into a clean stop
that removes its staging output; after a grace period (1.5 s by default) it is killed and its staging outputs are
removed here (``.<name>.partial-<pid>``, the engine's naming rule in ``outputs.py``).
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingException, QgsProcessingFeedback

from .interpreter import engine_environment, fix_hint, resolve_python

TERMINATE_GRACE_S = 1.5
_EOF = object()


def _pump(stream: Any, sink: queue.Queue[Any]) -> None:
    for line in iter(stream.readline, ""):
        sink.put(line)
    sink.put(_EOF)


def _collect(stream: Any, tail: deque[str]) -> None:
    for line in iter(stream.readline, ""):
        tail.append(line.rstrip("\n"))


def _remove_partials(outputs: list[str], pid: int) -> None:
    for output in outputs:
        target = Path(output)
        for partial in (target.parent / f".{target.name}.partial-{pid}",
                        target.parent / f".{target.stem}.partial-{pid}{target.suffix}"):
            if partial.is_dir():
                shutil.rmtree(partial, ignore_errors=True)
            elif partial.exists():
                partial.unlink()


class EngineRun:
    """One engine invocation; ``run()`` returns the engine's result dict or raises."""

    def __init__(self, command: list[str], feedback: QgsProcessingFeedback, outputs: list[str] | None = None,
                 grace_seconds: float = TERMINATE_GRACE_S):
        self.command = command
        self.feedback = feedback or QgsProcessingFeedback()
        self.outputs = outputs or []
        self.grace_seconds = grace_seconds
        self.python, self.python_source = resolve_python()

    def _start(self) -> subprocess.Popen:
        argv = [self.python, "-u", "-m", "pix2pix_qgis", *self.command, "--progress", "json"]
        self.feedback.pushCommandInfo(" ".join(argv))
        options: dict[str, Any] = {}
        if sys.platform == "win32":
            options["creationflags"] = subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined]
        try:
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=engine_environment(), text=True, encoding="utf-8", errors="replace", bufsize=1, **options,
            )
        except OSError as exc:
            raise QgsProcessingException(
                f"The Python interpreter '{self.python}' (from {self.python_source}) cannot be started: "
                f"{exc.strerror or exc}. Set the environment variable PIX2PIX_PYTHON or Processing › Options › "
                "Providers › Pix2Pix › Python interpreter to a Python 3.9+ that has the engine's dependencies "
                f"({fix_hint('<python>')})."
            ) from exc

    def run(self) -> dict[str, Any]:
        process = self._start()
        try:
            return self._follow(process)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()

    def _follow(self, process: subprocess.Popen) -> dict[str, Any]:
        lines: queue.Queue[Any] = queue.Queue()
        stderr_tail: deque[str] = deque(maxlen=60)
        readers = [
            threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True),
            threading.Thread(target=_collect, args=(process.stderr, stderr_tail), daemon=True),
        ]
        for reader in readers:
            reader.start()
        result: dict[str, Any] | None = None
        error: dict[str, Any] | None = None
        finished = False
        while not finished:
            if self.feedback.isCanceled():
                self._cancel(process)
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is _EOF:
                finished = True
                continue
            event = self._parse(line)
            if event is None:
                continue
            kind = event.get("type")
            if kind == "result":
                result = event.get("result", {})
            elif kind == "error":
                error = event
            else:
                self._show(event)
        code = process.wait()
        for reader in readers:
            reader.join(timeout=2)
        if error is not None:
            raise QgsProcessingException(self._error_message(error))
        if code != 0 or result is None:
            tail = "\n".join(stderr_tail) or "(no output)"
            raise QgsProcessingException(
                f"The Pix2Pix engine ({self.python}) stopped with exit code {code} without reporting a result. "
                f"Its last messages:\n{tail}"
            )
        return result

    def _parse(self, line: str) -> dict[str, Any] | None:
        text = line.strip()
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
        message = str(event.get("message", ""))
        if kind == "progress":
            self.feedback.setProgress(100.0 * float(event.get("fraction", 0.0)))
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
                process.kill()
                process.wait()
                _remove_partials(self.outputs, process.pid)
        raise QgsProcessingException("Cancelled by the user; no output was written.")


def run_engine(command: list[str], feedback: QgsProcessingFeedback, outputs: list[str] | None = None,
               grace_seconds: float = TERMINATE_GRACE_S) -> dict:
    """Run ``python -m pix2pix_qgis <command> --progress json``; return its result dict.

    ``grace_seconds``: how long a cancelled engine may take to stop cleanly before it is
    killed (training uses more, to finish its step and save the checkpoint).
    """
    return EngineRun(command, feedback, outputs, grace_seconds).run()
