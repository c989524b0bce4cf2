"""The engine's single error type.

Every problem caused by the user's input (a missing file, rasters that do not overlap, a
tile larger than the raster) is raised as :class:`Pix2PixError` with a message that names
the problem and the fix. The CLI turns it into exit code 2 and a JSON ``error`` line; the
QGIS provider turns that into a ``QgsProcessingException``. Anything else is a bug.
"""

from __future__ import annotations


class Pix2PixError(Exception):
    """Bad input or an unmet precondition, explained for a GIS analyst."""


class Cancelled(Exception):
    """The run was cancelled (SIGTERM from the provider, Ctrl+C, or a callback).

    Deliberately not a :class:`Pix2PixError`: cancelling is not bad input, and callers
    must not report it as one.
    """
