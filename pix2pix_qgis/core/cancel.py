"""How a running engine is asked to stop: a signal, or the protocol's cancel line on stdin.

Both set the same :class:`threading.Event`, which ``Progress.check_cancelled`` reads at every
chip, tile and training step, so the stop is cooperative either way: training saves its
checkpoint, staged outputs are removed. Signals (SIGTERM from a scheduler or ``kill``,
SIGINT from Ctrl+C, SIGHUP from a closed terminal) are POSIX's way; the stdin line
(``contract.protocol.CANCEL_LINE``) is the QGIS provider's way on every OS, because on
Windows a signal cannot be caught (``terminate()`` ends the process at once).
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from ..contract.protocol import CANCEL_LINE

_READ_BYTES = 4096


def install_signal_handlers(event: threading.Event) -> None:
    """SIGTERM, SIGINT and SIGHUP (a closed terminal or SSH session) set ``event`` instead of ending
    the process."""

    def handler(signum: int, _frame: Any) -> None:
        event.set()

    for name in ("SIGTERM", "SIGINT", "SIGHUP"):
        if hasattr(signal, name):  # no SIGHUP on Windows
            signal.signal(getattr(signal, name), handler)


def _watch(fd: int, event: threading.Event) -> None:
    """Read ``fd`` line by line until its end; a line that is exactly the cancel word sets ``event``."""
    pending = b""
    while True:
        try:
            chunk = os.read(fd, _READ_BYTES)
        except OSError:  # stdin closed or invalid (a detached process): nothing more to watch
            return
        if not chunk:
            return  # the end of stdin is no request to stop: `… < /dev/null` must run to the end
        *lines, pending = (pending + chunk).split(b"\n")
        pending = pending[-_READ_BYTES:]  # a caller's garbage without newlines must not grow without bound
        if any(line.strip() == CANCEL_LINE.encode("ascii") for line in lines):
            event.set()
            return


def watch_stdin(event: threading.Event, fd: int = 0) -> threading.Thread:
    """Start a daemon thread that sets ``event`` when the cancel line arrives on ``fd`` (stdin).

    The thread reads the raw descriptor with ``os.read``, not ``sys.stdin``: a daemon thread
    blocked inside a buffered reader holds its lock, which can abort the interpreter's shutdown.
    """
    thread = threading.Thread(target=_watch, args=(fd, event), name="pix2pix-cancel-watch", daemon=True)
    thread.start()
    return thread
