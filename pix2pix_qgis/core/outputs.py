"""Atomic outputs: write under a temporary name beside the target, rename only on success.

A cancelled, failed or killed run therefore never leaves anything at the requested path
that looks complete. The temporary name is ``.<name>.partial-<pid>`` in the target's
folder (same filesystem, so the final rename is atomic); the QGIS provider relies on that
rule to remove the leftovers of an engine it had to SIGKILL. Besides:

- one run at a time per output path (``locking.output_lock``: the second refuses at once);
- partials left by runs that died (SIGKILL, power loss) are removed by the next run;
- a staged file is fsynced before the rename and the folder after it, so a model or a
  checkpoint that exists after a crash is complete;
- a full disk becomes a :class:`Pix2PixError` naming the path and the free space.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..contract.errors import Cancelled, Pix2PixError
from ..contract.protocol import partial_path, suffixed_partial_path
from .locking import output_lock

_DISK_FULL_TEXT = ("no space left on device", "disk full", "free disk space", "not enough space")


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there: never guess, keep the file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(target: Path) -> list[Path]:
    """Remove partials of ``target`` (and ``.old-`` folders) whose writing process is gone."""
    target = Path(target).absolute()
    stems = {re.escape(target.name), re.escape(target.stem)}
    pattern = re.compile(rf"^\.(?:{'|'.join(stems)})\.(?:partial|old)-(\d+)(?:\..*)?$")
    removed: list[Path] = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if not match or int(match.group(1)) == os.getpid() or _pid_alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


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


def _fsync(path: Path, directory: bool = False) -> None:
    """Flush ``path`` to the disk. For a folder (the rename) this is best effort: POSIX only, and
    some filesystems refuse it; the rename itself is already atomic."""
    if directory:
        if os.name == "nt":
            return
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
        return
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)  # Windows flushes writable handles only
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def is_disk_full(exc: BaseException, folder: Path) -> bool:
    """Whether ``exc`` (or what caused it) is the disk running out of space."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(seen).lower() for text in _DISK_FULL_TEXT):
            return True
        seen = seen.__cause__ or seen.__context__
    # GDAL reports a failed block write without the reason: look at the disk itself.
    try:
        return shutil.disk_usage(folder).free < 1024 * 1024
    except OSError:
        return False


def check_written(path: Path, minimum_bytes: int) -> None:
    """Raise ``OSError`` if ``path`` is shorter than ``minimum_bytes`` (an uncompressed file's data).

    GDAL reports a failed flush at close (a full disk) only in its log, never as an exception.
    """
    size = path.stat().st_size if path.exists() else 0
    if size < minimum_bytes:
        full = is_disk_full(OSError(), path.parent)
        raise OSError(errno.ENOSPC if full else errno.EIO,
                      f"{path} was not written completely ({size} of at least {minimum_bytes} bytes)")


def _verify_on_a_full_disk(target: Path) -> None:
    """On a (nearly) full disk, re-read the rasters just written: GDAL may have lost blocks silently.

    libtiff reports a failed write at close only on stderr, so neither rasterio nor GDAL's
    error log tells; reading every block back does. Cheap: it only happens when the disk
    is within a few MiB of full, which is when it matters.
    """
    try:
        if shutil.disk_usage(target.parent).free >= 4 * 1024 * 1024:
            return
    except OSError:
        return
    prefix = f".{target.stem}.partial-{os.getpid()}"
    staged = [p for p in target.parent.iterdir()
              if p.name.startswith(prefix) and p.suffix.lower() in (".tif", ".tiff")]
    for path in staged:
        import rasterio

        try:
            with rasterio.open(path) as dataset:
                for _, window in dataset.block_windows(1):
                    dataset.read(window=window)
        except rasterio.errors.RasterioError as exc:
            raise OSError(errno.ENOSPC, f"{path} is incomplete ({exc})") from exc


class _GdalLog(logging.Handler):
    """Collects the messages GDAL logs through rasterio while an output is written."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _explain_disk_full(target: Path, needed: int | None) -> Iterator[None]:
    """Turn a full disk into a clear error, including the failures GDAL only logs (block flushes at close)."""
    log, logger = _GdalLog(), logging.getLogger("rasterio")
    try:
        logger.addHandler(log)
        try:
            yield
        finally:
            logger.removeHandler(log)
        logged = [m for m in log.messages if any(text in m.lower() for text in _DISK_FULL_TEXT)]
        if logged:
            raise OSError(errno.ENOSPC, logged[0])
        _verify_on_a_full_disk(target)
    except (Pix2PixError, Cancelled, KeyboardInterrupt):
        raise
    except Exception as exc:
        if not is_disk_full(exc, target.parent):
            raise
        try:
            free = _size(shutil.disk_usage(target.parent).free) + " free"
        except OSError:
            free = "free space unknown"
        estimate = f"; this output needs up to about {_size(needed)}" if needed else ""
        raise Pix2PixError(
            f"The disk holding {target.parent} is full ({free}{estimate}) while writing {target}. Free some space or "
            "choose an output on another disk; nothing was written at the output path."
        ) from exc


@contextmanager
def staged_directory(
    target: Path, may_replace: Callable[[Path], bool] = lambda _path: False, needed_bytes: int | None = None
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
    with output_lock(target):
        remove_stale_partials(target)
        staging = partial_path(target)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            with _explain_disk_full(target, needed_bytes):
                yield staging
            old = None
            if target.exists():
                old = target.parent / f".{target.name}.old-{os.getpid()}"
                os.replace(target, old)
            os.replace(staging, target)
            _fsync(target.parent, directory=True)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


@contextmanager
def staged_file(target: Path, needed_bytes: int | None = None) -> Iterator[Path]:
    """Yield a temporary file path that is renamed to ``target`` when the block succeeds.

    The file is fsynced before the rename: after a crash ``target`` is either the old file
    or the complete new one. ``needed_bytes`` (an upper estimate) goes into a disk-full error.
    """
    target = Path(target).absolute()
    if target.is_dir():
        raise Pix2PixError(f"The output {target} is a folder; give a file path.")
    _ensure_parent_writable(target)
    with output_lock(target):
        remove_stale_partials(target)
        staging = suffixed_partial_path(target)
        staging.unlink(missing_ok=True)
        try:
            with _explain_disk_full(target, needed_bytes):
                yield staging
                _fsync(staging)
            os.replace(staging, target)
            _fsync(target.parent, directory=True)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
