"""The argparse side of the parameter tables: one builder for every command's arguments.

Each :class:`~pix2pix_qgis.contract.params.Param` becomes one argument whose conversion
runs :func:`~pix2pix_qgis.contract.params.check`, so a bad value is refused while parsing
with the same message the engine, the Python API and QGIS give (exit 2; a JSON ``error``
line with ``--progress json``). :func:`values` turns the parsed namespace back into engine
fields (``--no-dropout`` → ``dropout=False``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import fields
from typing import Any, NoReturn

from ..contract.errors import ErrorKind, ExitCode, Pix2PixError
from ..contract.params import Command, Kind, Param, allowed, check, parse, show


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors follow the protocol: a JSON ``error`` line in JSON mode, exit 2."""

    def __init__(self, *args: Any, json_errors: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.json_errors = json_errors

    def error(self, message: str) -> NoReturn:
        """Report a bad command line as argparse does, or as a JSON ``error`` line in JSON mode; exit 2."""
        if not self.json_errors:
            super().error(message)
        print(json.dumps({"type": "error", "kind": ErrorKind.BAD_INPUT, "message": f"{self.prog}: {message}"}),
              flush=True)
        sys.exit(ExitCode.BAD_INPUT)


class JsonErrorParser(Parser):
    """A :class:`Parser` in JSON mode: what the sub-command parsers are under ``--progress json``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, json_errors=True, **kwargs)


def _converter(param: Param) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(param, text)
        except Pix2PixError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = param.kind  # argparse names the type in some messages
    return convert


def _part(text: str) -> tuple[int, int]:
    from ..scale.parts import parse_part  # its messages explain SLURM array indices

    try:
        return parse_part(text)
    except Pix2PixError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Whole(argparse.Action):
    """Several words that make one value (an extent, a list of numbers), checked as a whole."""

    def __init__(self, *args: Any, param: Param, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.param = param

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, words: Any,
                 option: str | None = None) -> None:
        value = tuple(words) if self.param.kind == Kind.EXTENT else list(words)
        try:
            check(self.param, value)
        except Pix2PixError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        setattr(namespace, self.dest, value)


def help_text(param: Param) -> str:
    """The table's help plus its default and range (argparse formats ``%``, so it is escaped)."""
    notes = [f"default {show(param.default)}"] if param.default is not None and param.kind != Kind.BOOL else []
    if param.kind in (Kind.INT, Kind.FLOAT, Kind.NUMBERS) and (param.minimum, param.maximum) != (None, None):
        notes.append(allowed(param))
    text = param.help + (f" ({'; '.join(notes)})" if notes else "")
    return text.replace("%", "%%")


def add_params(parser: argparse.ArgumentParser, command: Command) -> None:
    """Declare every command-line parameter of ``command`` on ``parser``, in table order."""
    for param in command:
        if not param.cli:
            continue
        help = help_text(param)
        flag = param.cli_flag
        if flag is None:  # a positional (QGIS-only parameters are skipped above)
            parser.add_argument(param.dest, metavar=param.name, help=help,
                                nargs="+" if param.kind == Kind.PATHS else None)
            continue
        if param.kind == Kind.BOOL:
            parser.add_argument(flag, action="store_true", help=help)
        elif param.kind == Kind.OPTIONS:
            parser.add_argument(flag, action="append", type=_converter(param), metavar=param.metavar, help=help)
        elif param.kind in (Kind.EXTENT, Kind.NUMBERS):
            parser.add_argument(flag, nargs=4 if param.kind == Kind.EXTENT else "+", type=_converter(param),
                                action=_Whole, param=param, help=help,
                                metavar=tuple(param.metavar.split()) if param.metavar else None)
        else:
            metavar = "{" + ",".join(param.choices) + "}" if param.kind == Kind.CHOICE else param.metavar
            convert = _part if param.kind == Kind.PART else _converter(param)
            parser.add_argument(flag, type=convert, default=param.default, metavar=metavar, help=help)


def values(command: Command, args: argparse.Namespace) -> dict[str, Any]:
    """Engine field → value for every command-line parameter of ``command`` in ``args``."""
    result = {}
    for param in command:
        if param.cli:
            value = getattr(args, param.dest)
            result[param.field] = (not value) if param.negated else value
    return result


def options_of(cls: type, given: dict[str, Any], **extra: Any) -> Any:
    """An options dataclass (``ChipSpec``) from the fields in ``given`` that it has, plus ``extra``."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in given.items() if k in names}, **extra)


def add_command(commands: argparse._SubParsersAction[Parser], common: Parser, command: Command,
                handler: Callable[[argparse.Namespace, Any], dict[str, Any]], help: str,
                description: str) -> argparse.ArgumentParser:
    """A subcommand whose arguments are ``command``'s table and whose handler is ``handler``."""
    parser = commands.add_parser(command.name, parents=[common], help=help, description=description)
    add_params(parser, command)
    parser.set_defaults(handler=handler)
    return parser

