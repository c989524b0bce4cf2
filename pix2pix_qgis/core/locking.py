"""One writer per output path: an advisory lock file beside the output.

Two runs that write the same output (two QGIS dialogs, a script and the toolbox) would
otherwise both stage a partial and the later rename would silently win. The lock is
``.<name>.lock`` in the output's folder, taken with ``flock`` (released by the kernel when
the process dies, even on SIGKILL, so a crashed run never blocks the next one). The second
run **refuses at once**, naming the process that holds the lock: waiting would hang a
QGIS dialog with no explanation, and the user can simply run again.

The lock is re-entrant within a thread (training holds the model's lock for the whole
run, and the final write of the same path takes it again); another thread of the same
process is refused like another process. Where locking is impossible
(a filesystem without ``flock``) the run goes on unlocked rather than failing.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..contract.errors import Pix2PixError
from .launch import Launch

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

_held: dict[str, list[int]] = {}  # lock path → [fd, depth, owning thread]
_guard = threading.Lock()

F = TypeVar("F", bound=Callable[..., Any])


def lock_path(target: Path) -> Path:
    """The hidden lock file beside ``target`` that guards it against a second writer."""
    target = Path(target).absolute()
    return target.parent / f".{target.name}.lock"


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    return f"process {text}" if text.isdigit() else "another process"


def _acquire(path: Path, target: Path) -> int | None:
    """An open, exclusively locked fd of ``path`` (None when the filesystem cannot lock)."""
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # unwritable or full: the write itself will fail with the clear error
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Pix2PixError(
                f"Another run ({_holder(path)}) is writing {target} right now. Wait until it has finished, or "
                f"choose another output path; this run wrote nothing."
            ) from None
        except OSError:  # no flock here (some network filesystems): go on without the lock
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            except OSError:  # a full disk: the lock holds all the same, only the pid is not shown
                pass
            return fd
        os.close(fd)  # the holder removed the file between our open and lock: lock the new one


@contextmanager
def output_lock(target: str | Path) -> Iterator[None]:
    """Hold the lock of ``target`` for the block; refuse at once if another process holds it."""
    if fcntl is None:
        yield
        return
    path = lock_path(Path(target))
    key = str(path)
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            if entry[2] != threading.get_ident():
                raise Pix2PixError(
                    f"Another run in this process is writing {Path(target).absolute()} right now. Wait until it has "
                    "finished, or choose another output path; this run wrote nothing."
                )
            entry[1] += 1
    if entry is None:
        fd = _acquire(path, Path(target).absolute())
        if fd is None:
            yield
            return
        with _guard:
            _held[key] = entry = [fd, 1, threading.get_ident()]
    try:
        yield
    finally:
        with _guard:
            entry[1] -= 1
            last = entry[1] == 0
            if last:
                del _held[key]
        if last:
            try:
                path.unlink()  # before unlocking, so a waiting opener retries on a fresh file
            except OSError:
                pass
            os.close(entry[0])


def holds_output_lock(argument: str) -> Callable[[F], F]:
    """Decorator: hold the output lock of the path passed as ``argument`` during the call."""

    def decorate(function: F) -> F:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            launch = Launch.from_env()
            if launch is not None and launch.rank != 0:  # distributed training: only rank 0 writes, and locks
                return function(*args, **kwargs)
            target = signature.bind(*args, **kwargs).arguments[argument]
            with output_lock(Path(target)):
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
