"""What a user-facing parameter is, how its values are checked, and how they travel on a command line.

A :class:`Param` describes one parameter once: its QGIS name (``TILE_SIZE``), the command-line
flag derived from it (``--tile-size``), the engine's field (``tile_size``), its kind, default,
inclusive range or choices, label and help. The tables of every command (``contract.tables``)
are made of them; the engine's option dataclasses, the argparse parsers, the QGIS parameter
definitions, the provider's argv and the README are built from or checked against them.

:func:`check` is the one place a value is judged, with one message format that names the
parameter by label, QGIS name and flag, the bad value, what is allowed and a typical value.
Standard library only: the QGIS side imports this.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .errors import Pix2PixError


class Kind:
    """What a parameter's value is, which decides how it is checked, parsed and shown."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"  # one of ``choices``
    DEVICE = "device"  # auto, cpu, cuda or cuda:N; QGIS offers ``choices``
    TEXT = "text"
    BANDS = "bands"  # 1-based band numbers, in order; ``--bands 3,2,1``
    EXTENT = "extent"  # (xmin, ymin, xmax, ymax); ``--extent XMIN YMIN XMAX YMAX``
    NUMBERS = "numbers"  # one or more numbers; ``--data-range 255 255 255``
    OPTIONS = "options"  # KEY=VALUE items; ``--co KEY=VALUE`` repeated, ``KEY=VALUE;…`` in QGIS
    PART = "part"  # (index, count); ``--part I/N``
    PATH = "path"  # a file or folder
    PATHS = "paths"  # one or more files or folders


# Kinds whose QGIS definition is built from the table; the others (layers, files, extents,
# destinations) are declared by the algorithm, with the table's label and help.
QGIS_BUILT = (Kind.INT, Kind.FLOAT, Kind.BOOL, Kind.CHOICE, Kind.DEVICE, Kind.TEXT, Kind.BANDS, Kind.OPTIONS)
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass(frozen=True)
class Param:
    """One parameter of one command, defined once.

    ``default`` None means "decided at run time" (or "none"); the help then says what happens.
    ``minimum`` and ``maximum`` are inclusive (``above`` makes the minimum exclusive, for
    command-line-only numbers), so QGIS shows exactly the range the engine accepts.
    ``flag`` is derived from the name unless given; ``negated`` booleans are turned off by
    their flag (``--no-dropout``). ``qgis`` says whether the QGIS algorithm exposes it and
    ``cli`` whether the command line does; ``positional`` ones are command-line arguments.
    ``typical`` is the value error messages suggest when there is no default.
    """

    name: str
    field: str
    kind: str
    label: str
    help: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False
    choices: tuple[str, ...] = ()
    typical: Any = None
    flag: str = ""
    negated: bool = False
    positional: bool = False
    cli: bool = True
    qgis: bool = False
    advanced: bool = False
    parent: str | None = None  # BANDS: the QGIS raster parameter whose bands they are
    none_choice: str | None = None  # the QGIS enum entry that stands for the default None
    metavar: str | None = None

    @property
    def cli_flag(self) -> str | None:
        """``--tile-size`` for ``TILE_SIZE``; None for positional and QGIS-only parameters."""
        if self.positional or not self.cli:
            return None
        return self.flag or "--" + self.name.lower().replace("_", "-")

    @property
    def dest(self) -> str:
        """The attribute argparse stores it under (``no_dropout`` for ``--no-dropout``)."""
        flag = self.cli_flag
        return flag[2:].replace("-", "_") if flag else self.name.lower()

    @property
    def optional(self) -> bool:
        """Whether the parameter may be left out (no default and not positional)."""
        return self.default is None and not self.positional

    @property
    def noun(self) -> str:
        """The label without its parenthesis: 'Tile size' for 'Tile size (pixels)'."""
        return self.label.split(" (")[0]

    @property
    def example(self) -> Any:
        """A good value: the default, else the typical one."""
        return self.default if self.default is not None else self.typical

    def but(self, **changes: Any) -> Param:
        """The same parameter with another label, help or QGIS exposure in one command, never another
        default or range: a shared name means the same thing everywhere."""
        others = set(changes) - {"label", "help", "qgis", "advanced"}
        if others:
            raise ValueError(f"{self.name}: {sorted(others)} cannot differ between commands")
        return replace(self, **changes)


@dataclass(frozen=True)
class Command:
    """The parameters of one engine command, in the order QGIS and ``--help`` show them."""

    name: str
    params: tuple[Param, ...]

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a parameter is listed twice in {names}")

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __getitem__(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(f"{self.name} has no parameter {name}")

    def by_field(self, field: str) -> Param:
        """The parameter stored in engine field ``field`` (KeyError if the command has none)."""
        for param in self.params:
            if param.field == field:
                return param
        raise KeyError(f"{self.name} has no parameter for {field}")

    def check(self, **values: Any) -> None:
        """Check the given engine fields (``tile_size=256``) against their parameters."""
        for field, value in values.items():
            check(self.by_field(field), value)

    def check_object(self, options: Any) -> None:
        """Check every field of an options object (``ChipSpec``) that is one of this command's parameters."""
        for param in self.params:
            if hasattr(options, param.field):
                check(param, getattr(options, param.field))


# ---------------------------------------------------------------- checking values


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def show(value: Any) -> str:
    """A value as messages, ``--help`` and the README show it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, numbers.Real):
        return _number(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, (tuple, list)):
        return " ".join(show(v) for v in value)
    return str(value)


def _range(param: Param) -> str:
    low, high = param.minimum, param.maximum
    if low is not None and high is not None:
        return f" from {_number(low)} to {_number(high)}"
    if low is not None:
        return f" above {_number(low)}" if param.above else f" of at least {_number(low)}"
    if high is not None:
        return f" of at most {_number(high)}"
    return ""


def _one_of(choices: Sequence[str]) -> str:
    return choices[0] if len(choices) == 1 else ", ".join(choices[:-1]) + " or " + choices[-1]


def allowed(param: Param) -> str:
    """What ``param`` accepts, in words."""
    kind = param.kind
    if kind == Kind.INT:
        return "a whole number" + _range(param)
    if kind == Kind.FLOAT:
        return "a finite number" + _range(param)
    if kind == Kind.NUMBERS:
        return "one or more finite numbers" + _range(param)
    if kind == Kind.BOOL:
        return "True or False"
    if kind == Kind.CHOICE:
        return _one_of(param.choices)
    if kind == Kind.DEVICE:
        return "auto, cpu, cuda or cuda:N (the N-th GPU, from 0)"
    if kind == Kind.BANDS:
        return "band numbers counted from 1, in order, e.g. 3,2,1"
    if kind == Kind.EXTENT:
        return "4 finite numbers XMIN YMIN XMAX YMAX with XMIN < XMAX and YMIN < YMAX"
    if kind == Kind.OPTIONS:
        return "KEY=VALUE items, e.g. COMPRESS=ZSTD"
    if kind == Kind.PART:
        return "I/N with I from 0 to N − 1, e.g. 0/4 for the first of four parts"
    return "a non-empty text" if kind == Kind.TEXT else "a file or folder path"


def problem(param: Param, value: Any) -> str:
    """The one message for a bad value: label, value, QGIS name and flag, what is allowed, a typical value."""
    if isinstance(value, str):
        shown = repr(value)
    elif isinstance(value, (tuple, list)):  # each number exactly: 0.90000001 must not read as 0.9
        shown = ("," if param.kind == Kind.BANDS else " ").join(repr(v) for v in value) or "(none)"
    else:
        shown = repr(value) if isinstance(value, numbers.Real) else show(value) if value is not None else "none"
    verdict = "unknown" if param.kind in (Kind.CHOICE, Kind.DEVICE) and isinstance(value, str) else "invalid"
    names = ", ".join(n for n in (param.name, param.cli_flag) if n)
    typical = f"; {show(param.example)} is typical" if param.example is not None else ""
    return f"{param.noun} {shown} is {verdict} ({names}): use {allowed(param)}{typical}."


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _within(param: Param, value: numbers.Real) -> bool:
    if param.minimum is not None and (value <= param.minimum if param.above else value < param.minimum):
        return False
    return param.maximum is None or value <= param.maximum


def _valid(param: Param, value: Any) -> bool:
    kind = param.kind
    if kind == Kind.INT:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) and _within(param, value)
    if kind == Kind.FLOAT:
        return _real(value) and _within(param, value)
    if kind == Kind.BOOL:
        return isinstance(value, bool)
    if kind == Kind.CHOICE:
        return isinstance(value, str) and value in param.choices
    if kind == Kind.DEVICE:
        return isinstance(value, str) and _DEVICE.fullmatch(value) is not None
    if kind == Kind.TEXT:
        return isinstance(value, str) and bool(value.strip())
    if kind == Kind.BANDS:
        return (isinstance(value, (tuple, list)) and len(value) > 0
                and all(isinstance(b, numbers.Integral) and not isinstance(b, bool) and int(b) >= 1 for b in value))
    if kind == Kind.EXTENT:
        return (isinstance(value, (tuple, list)) and len(value) == 4 and all(_real(v) for v in value)
                and value[0] < value[2] and value[1] < value[3])
    if kind == Kind.NUMBERS:
        return (isinstance(value, (tuple, list)) and len(value) > 0
                and all(_real(v) and _within(param, v) for v in value))
    if kind == Kind.OPTIONS:
        items = value.items() if isinstance(value, dict) else [split_option(v) for v in value]
        return all(isinstance(k, str) and k.strip() for k, _ in items)
    if kind == Kind.PART:
        return (isinstance(value, (tuple, list)) and len(value) == 2
                and all(isinstance(v, numbers.Integral) for v in value) and 0 <= value[0] < value[1])
    if kind == Kind.PATHS:
        return isinstance(value, (tuple, list)) and len(value) > 0 and all(_valid(replace(param, kind=Kind.PATH), v)
                                                                         for v in value)
    return isinstance(value, (str, os.PathLike)) and bool(str(value).strip())


def check(param: Param, value: Any) -> None:
    """Raise :class:`Pix2PixError` with :func:`problem`'s message unless ``value`` suits ``param``.

    None is accepted exactly when the default is None (decided at run time). NaN and ±inf
    never pass for a number.
    """
    if value is None and param.default is None:
        return
    if value is None or not _valid(param, value):
        raise Pix2PixError(problem(param, value))


# ---------------------------------------------------------------- text ↔ values


def split_option(item: str) -> tuple[str, str]:
    """``"COMPRESS=ZSTD"`` → ("COMPRESS", "ZSTD"); a missing ``=`` gives an empty key."""
    key, sep, value = str(item).partition("=")
    return (key.strip(), value.strip()) if sep else ("", str(item))


def split_options(text: str | None) -> list[str]:
    """QGIS's one-line form ``KEY=VALUE;KEY=VALUE`` (or ``|``-separated) → the items."""
    return [item.strip() for item in re.split(r"[;|]", text or "") if item.strip()]


def parse(param: Param, text: str) -> Any:
    """One command-line word → the checked value (for ``extent``/``numbers``: one of its numbers).

    ``--part`` is parsed by the engine (``scale.parts.parse_part``), whose messages know SLURM.
    """
    kind = param.kind
    try:
        if kind == Kind.INT:
            value: Any = int(text)
        elif kind in (Kind.FLOAT, Kind.EXTENT, Kind.NUMBERS):
            value = float(text)
        elif kind == Kind.BANDS:
            value = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
        else:
            value = text
    except ValueError:
        raise Pix2PixError(problem(param, text)) from None
    if kind in (Kind.EXTENT, Kind.NUMBERS):
        if not _real(value) or not (kind == Kind.EXTENT or _within(param, value)):
            raise Pix2PixError(problem(param, value))
    elif kind == Kind.OPTIONS:
        check(param, [value])
    else:
        check(param, value)
    return value


def to_argv(param: Param, value: Any) -> list[str]:
    """The command-line words that give ``param`` the engine value ``value`` (nothing for None)."""
    flag = param.cli_flag
    if flag is None:
        raise ValueError(f"{param.name} has no command-line flag")
    if value is None:
        return []
    kind = param.kind
    if kind == Kind.BOOL:
        return [flag] if value != param.negated else []
    if kind == Kind.INT:
        return [flag, str(int(value))]
    if kind == Kind.FLOAT:
        return [flag, repr(float(value))]
    if kind in (Kind.EXTENT, Kind.NUMBERS):
        return [flag, *(repr(float(v)) for v in value)]
    if kind == Kind.BANDS:
        return [flag, ",".join(str(int(b)) for b in value)] if value else []
    if kind == Kind.OPTIONS:
        items = [f"{k}={v}" for k, v in value.items()] if isinstance(value, dict) else list(value)
        return [word for item in items for word in (flag, item)]
    if kind == Kind.PART:
        return [flag, f"{value[0]}/{value[1]}"]
    return [flag, str(value)]
