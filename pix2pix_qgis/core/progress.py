"""Progress reporting: one interface, three renderings (JSON lines, terminal bar, callback).

The engine never prints directly. Long-running functions take a :class:`Progress` and call
``update``/``info``/``warning``; ``check_cancelled`` is the cooperative cancellation point.
The JSON-lines rendering is the protocol the QGIS provider reads (see ``docs/architecture.md``):

    {"type": "progress", "fraction": 0.42, "message": "chip 420 of 1000"}
    {"type": "info", "message": "..."}
    {"type": "warning", "message": "..."}
    {"type": "result", "result": {...}}
    {"type": "error", "kind": "bad_input" | "cancelled" | "internal" | "missing_dependency",
     "message": "..."}
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from typing import Any, Callable, TextIO

from ..contract.errors import Cancelled

ProgressCallback = Callable[[dict[str, Any]], None]


class Progress:
    """Receives progress events; the base class forwards them to an optional callback.

    ``cancel_event`` is shared with whoever may cancel (a signal handler, a GUI thread).
    """

    def __init__(
        self,
        callback: ProgressCallback | None = None,
        cancel_event: threading.Event | None = None,
    ) -> None:
        self._callback = callback
        self.cancel_event = cancel_event or threading.Event()
        self._last_fraction = -1.0
        self._last_time = 0.0

    def emit(self, event: dict[str, Any]) -> None:
        """Deliver one event (``progress``, ``info``, ``warning``, ``result``, ``error``); subclasses render it."""
        if self._callback is not None:
            self._callback(event)

    def update(self, fraction: float, message: str = "", **extra: Any) -> None:
        """Report overall completion in [0, 1] (clamped) with a short message.

        Updates closer than 0.2 s and 0.5 % apart are dropped, so a loop over 100 000 chips
        can report every chip without flooding the provider's log.
        """
        fraction = min(1.0, max(0.0, float(fraction)))
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_time < 0.2 and fraction - self._last_fraction < 0.005:
            return
        self._last_fraction, self._last_time = fraction, now
        self.emit({"type": "progress", "fraction": round(fraction, 6), "message": message, **extra})

    def info(self, message: str) -> None:
        """Report a message the user may want to read in the log."""
        self.emit({"type": "info", "message": message})

    def warning(self, message: str) -> None:
        """Report something the user should act on or know; the run goes on."""
        self.emit({"type": "warning", "message": message})

    def check_cancelled(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self.cancel_event.is_set():
            raise Cancelled("cancelled")

    def stage(self, start: float, end: float) -> Progress:
        """A view that maps this stage's [0, 1] onto [start, end] of the whole run."""
        return _StageProgress(self, start, end)


class _StageProgress(Progress):
    def __init__(self, parent: Progress, start: float, end: float) -> None:
        super().__init__(None, parent.cancel_event)
        self._parent, self._start, self._end = parent, start, end

    def emit(self, event: dict[str, Any]) -> None:
        if event.get("type") == "progress":
            event = {**event, "fraction": self._start + (self._end - self._start) * event["fraction"]}
        self._parent.emit(event)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


class JsonLinesProgress(Progress):
    """Writes each event as one JSON object per line and flushes, so a reader sees it at once."""

    def __init__(self, stream: TextIO | None = None, cancel_event: threading.Event | None = None):
        super().__init__(None, cancel_event)
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        """Write the event as one JSON line and flush, so the reading process sees it at once."""
        line = json.dumps(event, default=_json_default, allow_nan=False)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


class TerminalProgress(Progress):
    """A one-line progress bar on stderr for people; messages and warnings on their own lines."""

    def __init__(self, stream: TextIO | None = None, cancel_event: threading.Event | None = None):
        super().__init__(None, cancel_event)
        self._stream = stream or sys.stderr
        self._interactive = self._stream.isatty()
        self._last_draw = 0.0
        self._last_plain = -1.0

    def emit(self, event: dict[str, Any]) -> None:
        """Redraw the bar in a terminal (a plain line per 10 % otherwise); info and warnings on their own lines."""
        kind = event.get("type")
        if kind == "progress":
            self._draw(event["fraction"], event.get("message", ""))
        elif kind in ("info", "warning"):
            prefix = "warning: " if kind == "warning" else ""
            self._clear()
            self._stream.write(f"{prefix}{event['message']}\n")
            self._stream.flush()

    def _draw(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if not self._interactive:
            # Logs (CI, redirected output): one line per 10 % step, not a redraw per chip.
            step = math.floor(fraction * 10) / 10
            if step > self._last_plain:
                self._last_plain = step
                self._stream.write(f"{fraction:6.1%} {message}\n")
                self._stream.flush()
            return
        if fraction < 1.0 and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        width = 30
        filled = int(round(fraction * width))
        bar = "#" * filled + "-" * (width - filled)
        self._stream.write(f"\r[{bar}] {fraction:6.1%} {message[:60]:<60}")
        if fraction >= 1.0:
            self._stream.write("\n")
        self._stream.flush()

    def _clear(self) -> None:
        if self._interactive:
            self._stream.write("\r" + " " * 100 + "\r")
