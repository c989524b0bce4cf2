"""The engine and every process it starts, ended together, on each OS.

The engine starts processes of its own (data-loader workers; on Windows a virtual
environment's ``python.exe`` is itself a launcher that starts the real interpreter), and
killing only the engine would leave them running, holding files and memory.

- POSIX: the engine leads a new session, so its process group is the tree; it is ended with
  ``killpg(SIGKILL)``, which also reaches children whose parent already exited.
- Windows (``os.name == "nt"``): ``taskkill /T /F`` ends the engine and its descendants by
  parent id. It needs the engine alive to find them, which it is whenever the provider gives
  up on a cancel; the data-loader workers of an engine that already exited end themselves
  (PyTorch's workers watch their parent). Untested here: no machine of the project runs Windows.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

WINDOWS = os.name == "nt"


def start_options() -> dict[str, Any]:
    """``Popen`` keyword arguments that make the engine the root of a tree that can be ended whole."""
    if WINDOWS:
        return {"creationflags": subprocess.CREATE_NO_WINDOW}  # type: ignore[attr-defined]
    return {"start_new_session": True}


def ask_to_stop(process: subprocess.Popen) -> None:
    """SIGTERM, the engine's cooperative stop, where a signal can be caught (POSIX); nothing on Windows,
    where ``terminate()`` would end the engine before it saved anything."""
    if not WINDOWS and process.poll() is None:
        try:
            process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass


def kill_tree(process: subprocess.Popen) -> None:
    """End the engine, if still running, and everything it started; wait for the engine to be gone."""
    if WINDOWS:
        if process.poll() is None:
            taskkill = os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "taskkill.exe")
            try:
                subprocess.run([taskkill, "/T", "/F", "/PID", str(process.pid)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=False, timeout=30,
                               creationflags=subprocess.CREATE_NO_WINDOW)  # type: ignore[attr-defined]
            except (OSError, subprocess.TimeoutExpired):  # no taskkill: at least the engine itself ends below
                pass
    else:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if process.poll() is None:
        process.kill()
    process.wait()
