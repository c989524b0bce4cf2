"""JSON documents read within bounds: nesting depth and finite numbers, with errors naming file and field.

Every JSON file the engine reads (``chips.json``, ``model.json``, ``checkpoint.json``, a
part's sidecar, a GeoJSON mask, ArcGIS Pro's side files) goes through
:func:`parse_document`. Python's parser recurses once per nesting level, so a document
nested 100 000 deep would end in a ``RecursionError``, and one nested a few hundred deep
would end in one later, when the engine copies a part of it into another file; it also
reads ``NaN``, ``Infinity`` and ``1e999`` as floats, which would flow silently into
normalisation and give a raster of zeros. Both are refused here, once, naming the field.
The engine never writes such documents (its writers use ``allow_nan=False``).
Files are read with :func:`read_document`: regular files only (``/dev/zero`` would fill
memory, a FIFO would block for ever) and at most :data:`MAX_DOCUMENT_BYTES`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional, Tuple

from ..contract.errors import Pix2PixError
from .paths import check_input_file

MAX_DEPTH = 64  # nesting levels; the engine's own documents use at most 6
MAX_DOCUMENT_BYTES = 1 << 30  # a chips.json of 5 million chips is about 1 GiB; parsing takes ~10× in memory

_Trail = Optional[Tuple[Any, Any]]  # (parent trail, key): the path to a node, built only for containers


def parse_document(data: bytes | str, source: str, fix: str, finite: bool = True) -> Any:
    """The JSON value of ``data``, refused unless nested at most :data:`MAX_DEPTH` deep and, with
    ``finite``, holding only finite numbers.

    ``source`` names the document in errors (``"<file>"`` or ``"<file>: model.json"``) and
    ``fix`` is the sentence that tells the user what to do. Accepts a UTF-8 byte-order mark.
    """
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        value = json.loads(text)
    except RecursionError:
        raise Pix2PixError(f"{source} nests JSON deeper than the {MAX_DEPTH} levels the engine reads; it is damaged "
                           f"or not what it claims to be. {fix}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise Pix2PixError(f"{source} is not valid JSON ({exc}). {fix}") from exc
    problem = _first_problem(value, finite)
    if problem is not None:
        kind, trail, found = problem
        if kind == "depth":
            raise Pix2PixError(f"{source} nests JSON deeper than the {MAX_DEPTH} levels the engine reads (at "
                               f"{_where(trail)}); it is damaged or not what it claims to be. {fix}")
        raise Pix2PixError(f"{source} has {found!r} at {_where(trail)}, which is not a finite number (NaN or "
                           f"infinite values would spoil every pixel computed from it). {fix}")
    return value


def read_document(path: Path, role: str, source: str, fix: str, finite: bool = True,
                  limit: int = MAX_DOCUMENT_BYTES) -> Any:
    """The JSON value of the file at ``path`` (see :func:`parse_document` for ``source``, ``fix`` and ``finite``).

    ``role`` names the file in the errors about what it is ("mask", "part sidecar"). Refused
    before parsing: anything but a regular file, and files over ``limit`` bytes.
    """
    path = check_input_file(path, role, fix)
    try:
        with open(path, "rb") as stream:
            data = stream.read(limit + 1)  # a file that grows while read stops here too
    except OSError as exc:
        raise Pix2PixError(f"The {role} {path} cannot be read ({exc.strerror}). {fix}") from exc
    if len(data) > limit:
        raise Pix2PixError(f"The {role} {path} is larger than the {limit >> 20} MiB the engine reads for a JSON "
                           f"document; it is not what it claims to be. {fix}")
    return parse_document(data, source, fix, finite)


def _first_problem(root: Any, finite: bool) -> tuple[str, _Trail, Any] | None:
    """The first node nested too deep, or the first non-finite float: (kind, trail, value); None if neither.

    Iterative (the point is not to recurse), and it builds a trail only per container, so a
    chips.json of a million chips costs about a second.
    """
    if not isinstance(root, (dict, list)):
        return ("finite", None, root) if finite and isinstance(root, float) and not math.isfinite(root) else None
    stack: list[tuple[Any, int, _Trail]] = [(root, 1, None)]
    while stack:
        node, depth, trail = stack.pop()
        if depth > MAX_DEPTH:
            return "depth", trail, None
        for key, child in node.items() if isinstance(node, dict) else enumerate(node):
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1, (trail, key)))
            elif finite and type(child) is float and not math.isfinite(child):
                return "finite", (trail, key), child
    return None


def _where(trail: _Trail) -> str:
    keys = []
    while trail is not None:
        trail, key = trail
        keys.append(key)
    shown = [f"[{key}]" if isinstance(key, int) else f".{key}" for key in reversed(keys)]
    if len(shown) > 8:  # a path 64 levels deep says nothing more than its start
        shown = [*shown[:6], "…"]
    return "".join(shown).lstrip(".") or "the top level"
