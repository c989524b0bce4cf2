"""The JSON-lines protocol between the engine and its callers, and the partial-file naming rule.

With ``--progress json`` every line on the engine's stdout is one JSON object whose
``type`` is one of :data:`EVENT_TYPES`:

- ``progress``: ``fraction`` in [0, 1], ``message``, and free numeric fields (epoch, losses…);
- ``info`` / ``warning``: ``message``;
- ``result``: ``result``, the command's result object (the last line of a successful run);
- ``error``: ``kind`` (``contract.errors.ErrorKind``) and ``message``; for a missing
  dependency also ``module``, ``python`` and ``fix``.

The other way, the caller asks a running engine to stop by writing :data:`CANCEL_LINE`
(``cancel``) and a newline on the engine's stdin. It works alike on every OS, which a signal
does not (on Windows ``terminate()`` is a hard kill): the engine stops at its next
cancellation point as on SIGTERM or Ctrl+C, saving training's checkpoint and removing its
partial outputs. Other lines are ignored; the end of stdin only ends the watching.

Outputs are written under a hidden partial name beside the target and renamed on success
(:func:`partial_paths`); the provider removes the partials of an engine it had to kill,
and its output lock (:func:`lock_path`) once nobody holds it.
Standard library only: the QGIS side imports this.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import TypeVar

EVENT_TYPES = ("progress", "info", "warning", "result", "error")
CANCEL_LINE = "cancel"  # a caller's request to stop, one line on the engine's stdin

P = TypeVar("P", bound=PurePath)  # the rule is pure name logic: Windows paths (drive, UNC) follow it anywhere


def wants_json(argv: list[str]) -> bool:
    """Whether a command line asks for the protocol (``--progress json``), read before argparse runs.

    Errors found before parsing finishes (a missing dependency, a bad value) must still reach a
    program that reads JSON lines as JSON lines.
    """
    if "--progress=json" in argv:
        return True
    return any(a == "--progress" and b == "json" for a, b in zip(argv, argv[1:]))


def partial_path(target: P, pid: int | None = None) -> P:
    """The staging path of ``target`` while process ``pid`` writes it: ``.<name>.partial-<pid>``.

    Folders and files whose driver ignores the suffix use this form.
    """
    return target.parent / f".{target.name}.partial-{os.getpid() if pid is None else pid}"


def suffixed_partial_path(target: P, pid: int | None = None) -> P:
    """The staging path of a file whose writer needs its suffix: ``.<stem>.partial-<pid><suffix>``.

    GDAL picks drivers and options by extension, so ``out.tif`` is staged as
    ``.out.partial-<pid>.tif``.
    """
    return target.parent / f".{target.stem}.partial-{os.getpid() if pid is None else pid}{target.suffix}"


def partial_paths(target: P, pid: int) -> tuple[P, P]:
    """Both staging names ``pid`` may have used for ``target``: what to remove after killing it."""
    return partial_path(target, pid), suffixed_partial_path(target, pid)


def lock_path(target: Path) -> Path:
    """The lock file of ``target``'s writer: ``.<name>.lock`` beside it (locked while a run writes).

    The engine removes it when its run ends; an engine killed with SIGKILL cannot, so the
    provider takes the (then free) lock and removes it.
    """
    target = Path(target).absolute()
    return target.parent / f".{target.name}.lock"
