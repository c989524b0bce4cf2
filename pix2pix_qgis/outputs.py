"""Atomic outputs: write under a temporary name beside the target, rename only on success.

A cancelled, failed or killed run therefore never leaves anything at the requested path
that looks complete. The temporary name is ``.<name>.partial-<pid>`` in the target's
folder (same filesystem, so the final rename is atomic); the QGIS provider relies on that
rule to remove the leftovers of an engine it had to SIGKILL.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import Pix2PixError


def partial_path(target: Path, pid: int | None = None) -> Path:
    """The temporary path used while ``target`` is being written by process ``pid``."""
    return target.parent / f".{target.name}.partial-{os.getpid() if pid is None else pid}"


def _ensure_parent_writable(target: Path) -> None:
    parent = target.parent
    if parent.exists() and not parent.is_dir():
        raise Pix2PixError(f"The output's parent {parent} is a file, not a folder. Choose another output path.")
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Pix2PixError(
                f"Cannot create the output's folder {parent}: {exc.strerror}. "
                "Choose an output location you can write to."
            ) from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise Pix2PixError(
            f"The output folder {parent} is not writable. Choose an output location you can write to."
        )


@contextmanager
def staged_directory(
    target: Path, may_replace: Callable[[Path], bool] = lambda _path: False
) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes ``target`` when the block succeeds.

    An existing empty ``target`` is replaced. A non-empty one is replaced only if
    ``may_replace(target)`` says it is a previous output of the same kind; otherwise the
    run is refused before any work, so nothing of the user's is ever deleted.
    """
    target = Path(target).absolute()
    if target.exists():
        if not target.is_dir():
            raise Pix2PixError(f"The output {target} exists and is a file; choose a folder path.")
        if any(target.iterdir()) and not may_replace(target):
            raise Pix2PixError(
                f"The output folder {target} is not empty and does not hold a previous export. "
                "Choose a new or empty folder; nothing was written."
            )
    _ensure_parent_writable(target)
    staging = partial_path(target)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextmanager
def staged_file(target: Path) -> Iterator[Path]:
    """Yield a temporary file path that is renamed to ``target`` when the block succeeds."""
    target = Path(target).absolute()
    if target.is_dir():
        raise Pix2PixError(f"The output {target} is a folder; give a file path.")
    _ensure_parent_writable(target)
    staging = target.parent / f".{target.stem}.partial-{os.getpid()}{target.suffix}"
    staging.unlink(missing_ok=True)
    try:
        yield staging
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
