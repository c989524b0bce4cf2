"""The engine's error types, exit codes and error kinds: how every run ends, in one place.

Every problem caused by the user's input (a missing file, rasters that do not overlap, a
tile larger than the raster) is raised as :class:`Pix2PixError` with a message that names
the problem and the fix. The CLI turns it into exit code 2 and a JSON ``error`` line of
kind ``bad_input``; the QGIS provider turns that into a ``QgsProcessingException``.
Anything else is a bug (exit code 1). Standard library only: the QGIS side imports this.
"""

from __future__ import annotations

from enum import IntEnum


class Pix2PixError(Exception):
    """Bad input or an unmet precondition, explained for a GIS analyst."""


class Cancelled(Exception):
    """The run was cancelled (SIGTERM from the provider, Ctrl+C, or a callback).

    Deliberately not a :class:`Pix2PixError`: cancelling is not bad input, and callers
    must not report it as one.
    """


class ExitCode(IntEnum):
    """The engine process's exit status, as the provider and scripts read it."""

    OK = 0
    INTERNAL = 1  # a bug: the traceback is on stderr
    BAD_INPUT = 2  # Pix2PixError: the message names the problem and the fix
    MISSING_DEPENDENCY = 3  # the interpreter lacks a module (also `doctor` when a check fails)
    CANCELLED = 130  # SIGTERM, SIGINT or SIGHUP: stopped cooperatively, nothing half-written left


class ErrorKind:
    """The ``kind`` of a JSON ``error`` line (``contract.protocol``)."""

    BAD_INPUT = "bad_input"
    INTERNAL = "internal"
    CANCELLED = "cancelled"
    MISSING_DEPENDENCY = "missing_dependency"


EXIT_OF_KIND = {
    ErrorKind.BAD_INPUT: ExitCode.BAD_INPUT,
    ErrorKind.INTERNAL: ExitCode.INTERNAL,
    ErrorKind.CANCELLED: ExitCode.CANCELLED,
    ErrorKind.MISSING_DEPENDENCY: ExitCode.MISSING_DEPENDENCY,
}
