"""Foreseeable failures raised from below the engine, explained for the user (the CLI exits 2 on them).

The engine checks what it can up front and raises :class:`Pix2PixError` itself. What is
left comes from the layers under it, caused by the data or the machine rather than by a
bug: the operating system (a name too long, no permission, a read-only or full disk), GDAL
(a damaged block, a source file gone mid-run, an option it refuses), PROJ (a CRS it does
not know) and memory. :func:`explain` turns each into a sentence naming the problem and
the fix; anything else is a bug and keeps its traceback (exit 1).
"""

from __future__ import annotations

import errno
import os
from typing import Any

_OS_FIXES = {
    errno.ENAMETOOLONG: "A file or folder name is longer than the filesystem allows (usually 255 bytes per name). "
                        "Shorten it.",
    errno.ENOENT: "Check the path.",
    errno.ENOTDIR: "A folder on that path is a file. Check the path.",
    errno.EISDIR: "It is a folder where a file is expected. Check the path.",
    errno.EACCES: "Choose files you may read and an output location you may write to, or change the permissions.",
    errno.EPERM: "Choose files you may read and an output location you may write to, or change the permissions.",
    errno.EROFS: "The disk is read-only. Choose an output location on a writable disk.",
    errno.ENOSPC: "The disk is full. Free some space or choose an output on another disk.",
    errno.EDQUOT: "Your disk quota is used up. Free some space or choose an output on another disk.",
    errno.ELOOP: "Symbolic links on that path form a loop. Check the path.",
    errno.EMFILE: "Too many files are open at once. Raise the limit (ulimit -n) or use fewer workers.",
    errno.ENFILE: "The system has too many files open. Close other programs and try again.",
    errno.EIO: "The disk or network share failed while reading or writing. Check it and try again.",
}


def explain(exc: BaseException) -> str | None:
    """A message naming the problem and the fix for a foreseeable failure; None for a bug."""
    message = _rasterio_message(exc)
    if message is not None:
        return message
    if isinstance(exc, MemoryError):
        return ("The system ran out of memory. Lower the tile size or the batch size, process a smaller extent, "
                "or close other programs.")
    if isinstance(exc, UnicodeEncodeError) and "surrogates" in str(exc):  # a name os.fsdecode could not decode
        shown = os.fsencode(exc.object).decode("utf-8", "backslashreplace") if isinstance(exc.object, str) else ""
        return (f"A file or folder name is not valid UTF-8 ({shown}); GDAL and the engine's files use UTF-8 "
                "names. Rename it with UTF-8 characters (e.g. convmv -f latin1 -t utf8).")
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        what = exc.strerror or str(exc) or type(exc).__name__
        fix = _OS_FIXES.get(exc.errno or 0, "Check the path, its permissions and the disk.")  # errno may be None
        return f"{what}{where}. {fix}"
    return None


def _rasterio_message(exc: BaseException) -> str | None:
    try:
        from rasterio._err import CPLE_BaseError
        from rasterio.errors import CRSError, RasterBlockError, RasterioIOError
    except ImportError:  # doctor may run without rasterio
        return None
    detail = _chain(exc)
    if isinstance(exc, CRSError):
        return (f"A coordinate reference system is not understood ({detail}). Give an authority code such as "
                "EPSG:4326, or a WKT or PROJ definition.")
    if isinstance(exc, RasterBlockError):
        return f"GDAL cannot write the raster with this block layout ({detail}). Check the creation options (--co)."
    if isinstance(exc, (RasterioIOError, CPLE_BaseError)):
        return (f"GDAL could not read or write a raster ({detail}). Check that each input file (and every file a "
                "VRT refers to) exists, is complete and readable, and that the output's disk is writable; "
                "re-create a damaged file.")
    return None


def _chain(exc: BaseException) -> str:
    """The messages of ``exc`` and its causes, without repeats (rasterio's own says 'see previous exception')."""
    seen: list[str] = []
    current: Any = exc
    while current is not None and len(seen) < 5:
        text = str(current).strip()
        if text and text not in seen:
            seen.append(text)
        current = current.__cause__ or current.__context__
    return "; ".join(seen) or type(exc).__name__
