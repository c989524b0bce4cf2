"""One definition per parameter: the tables in ``contract.tables`` against everything built from or
checked by them (argparse, the engine's option objects and functions, README), and the one message
for a bad value, through the real command line."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import math
import re
import sys

import pytest

from pix2pix_qgis.chips.spec import ChipSpec
from pix2pix_qgis.cli.main import build_parser
from pix2pix_qgis.cli.options import values
from pix2pix_qgis.contract.errors import Pix2PixError
from pix2pix_qgis.contract.params import Kind, Param, check, show, split_options, to_argv
from pix2pix_qgis.contract.tables import (
    COMMANDS,
    EVALUATE,
    EXPORT,
    EXPORT_ONNX,
    IMPORT_REFERENCE,
    TRAIN,
    TRANSLATE,
)
from pix2pix_qgis.infer.translate import TranslateSpec
from pix2pix_qgis.train.config import TrainConfig

from ..cli_runs import REPO, cli_process

EVERY = [(command, param) for command in COMMANDS for param in command]
IDS = [f"{command.name}:{param.name}" for command, param in EVERY]
OPTIONS_OBJECTS = {EXPORT: ChipSpec, TRAIN: TrainConfig, TRANSLATE: TranslateSpec}
INTERNAL_FIELDS = {"channels_last", "preview_chips"}  # TrainConfig fields no user sets


def subparser(name: str):
    actions = [a for a in build_parser()._actions if a.dest == "command"]
    return actions[0].choices[name]


def positionals(command) -> list[str]:
    return [f"{p.name.lower()}.x" for p in command if p.positional and p.cli]


# ---------------------------------------------------------------- the tables themselves


@pytest.mark.parametrize(("command", "param"), EVERY, ids=IDS)
def test_every_parameter_is_complete_and_its_default_passes_its_own_check(command, param):
    assert re.fullmatch(r"[A-Z][A-Z0-9_]*", param.name)
    assert param.label and len(param.help) > 20 and param.help.endswith(".")
    check(param, param.default)
    if param.typical is not None:
        check(param, param.typical)
    if param.kind == Kind.BOOL:  # a flag can only switch away from the default
        assert param.negated == param.default and param.cli_flag.startswith("--no-") == param.negated
    if param.kind == Kind.CHOICE:
        assert param.default is None or param.default in param.choices
        assert (param.none_choice is not None) == (param.default is None and param.qgis)
    if param.qgis:
        assert not param.above  # QGIS ranges are inclusive: it shows exactly what the engine accepts
    if param.positional:
        assert param.cli and param.default is None and param.kind in (Kind.PATH, Kind.PATHS)


def test_names_and_flags_are_unique_per_command_and_mean_the_same_thing_everywhere():
    seen: dict[str, Param] = {}
    for command in COMMANDS:
        flags = [p.cli_flag for p in command if p.cli_flag]
        assert len(flags) == len(set(flags)), command.name
        for param in command:
            first = seen.setdefault(param.name, param)
            assert (param.kind, param.minimum, param.maximum, param.choices) == (
                first.kind, first.minimum, first.maximum, first.choices), param.name


def test_shared_parameters_keep_their_default_and_range():
    from pix2pix_qgis.contract.tables import SEED

    with pytest.raises(ValueError, match="cannot differ"):
        SEED.but(default=1)
    assert TRAIN["SEED"].default == EXPORT["SEED"].default and TRAIN["DEVICE"] == TRANSLATE["DEVICE"]
    assert TRAIN["BATCH_SIZE"].default == TRANSLATE["BATCH_SIZE"].default == 4


def test_the_choices_are_the_ones_the_engine_implements():
    from pix2pix_qgis.core.grid import RESAMPLING
    from pix2pix_qgis.model.discriminators import MAX_SCALES
    from pix2pix_qgis.model.networks import NORMS, UPSAMPLES
    from pix2pix_qgis.train.losses import GAN_MODES

    assert TRAIN["NORM"].choices == NORMS
    assert TRAIN["UPSAMPLE"].choices == UPSAMPLES and TRAIN["GAN_MODE"].choices == GAN_MODES
    assert (TRAIN["D_SCALES"].minimum, TRAIN["D_SCALES"].maximum) == (1, MAX_SCALES)
    assert tuple(RESAMPLING) == EXPORT["RESAMPLING"].choices
    import numpy as np

    for dtype in TRANSLATE["OUTPUT_DTYPE"].choices:
        np.dtype(dtype)


def test_qgis_enum_entries_have_no_comma():
    """QGIS reads a static-string enum value with a comma as several values and refuses it
    ("Incorrect parameter value"), so an entry with one would break its algorithm's default run."""
    for command in COMMANDS:
        for param in command:
            if param.qgis and param.kind in (Kind.CHOICE, Kind.DEVICE):
                for entry in (*param.choices, param.none_choice or ""):
                    assert "," not in entry, f"{command.name}:{param.name} {entry!r}"


def test_the_contract_imports_only_the_standard_library():
    for source in sorted((REPO / "pix2pix_qgis" / "contract").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1, source  # only siblings inside contract/
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                for name in names:
                    assert name.split(".")[0] in sys.stdlib_module_names | {"__future__"}, (source, name)


# ---------------------------------------------------------------- argparse, built from the tables


@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_the_parser_declares_exactly_the_table_with_its_defaults(command):
    parser = subparser(command.name)
    declared = {a.dest: a for a in parser._actions if a.dest not in ("help", "progress")}
    expected = {p.dest: p for p in command if p.cli}
    assert set(declared) == set(expected)
    for dest, param in expected.items():
        action = declared[dest]
        if param.positional:
            assert action.option_strings == [] and action.metavar == param.name
        else:
            assert action.option_strings == [param.cli_flag]
            assert action.default == (False if param.kind == Kind.BOOL else param.default)
    args = parser.parse_args(positionals(command))
    given = values(command, args)
    assert {f: v for f, v in given.items() if not command.by_field(f).positional} == {
        p.field: p.default for p in command if p.cli and not p.positional}


SAMPLES = {Kind.BANDS: (3, 1), Kind.EXTENT: (500000.0, 4990000.5, 510000.0, 5000000.0), Kind.NUMBERS: [255.0, 1.5],
           Kind.OPTIONS: ["COMPRESS=ZSTD", "PREDICTOR=2"], Kind.PART: (1, 4), Kind.PATH: "some dir/file;$(x).tif",
           Kind.TEXT: "EPSG:4326"}


def sample(param: Param):
    """A valid value other than the default, to see it survive the trip."""
    if param.kind == Kind.BOOL:
        return not param.default
    if param.kind == Kind.CHOICE:
        return param.choices[-1]
    if param.kind == Kind.DEVICE:
        return "cuda:1"
    if param.kind in (Kind.INT, Kind.FLOAT):  # the top of the range, or one above the usual value
        return param.maximum if param.maximum is not None else param.example + 1
    return SAMPLES[param.kind]


@pytest.mark.parametrize(("command", "param"), [(c, p) for c, p in EVERY if p.cli_flag],
                         ids=[i for i, (_, p) in zip(IDS, EVERY) if p.cli_flag])
def test_a_value_survives_to_argv_and_back(command, param):
    """What the QGIS provider writes (``to_argv``) is what the engine's parser reads."""
    value = sample(param)
    check(param, value)
    args = subparser(command.name).parse_args([*positionals(command), *to_argv(param, value)])
    assert values(command, args)[param.field] == value


# ---------------------------------------------------------------- the engine's options objects and functions


@pytest.mark.parametrize("command", list(OPTIONS_OBJECTS), ids=[c.name for c in OPTIONS_OBJECTS])
def test_options_objects_take_their_defaults_from_the_table(command):
    for field in dataclasses.fields(OPTIONS_OBJECTS[command]):
        if field.name in INTERNAL_FIELDS:
            continue
        param = command.by_field(field.name)  # every user-facing field is in the table
        default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        assert default == (({} if param.kind == Kind.OPTIONS else None) if param.default is None
                           else param.default), field.name


@pytest.mark.parametrize(("function", "command"), [
    ("pix2pix_qgis.evaluate.rasters:evaluate_rasters", EVALUATE),
    ("pix2pix_qgis.interop.reference:import_reference", IMPORT_REFERENCE),
    ("pix2pix_qgis.interop.onnx:export_onnx", EXPORT_ONNX),
    ("pix2pix_qgis.api:prepare_data", TRAIN),
])
def test_engine_functions_take_their_defaults_from_the_table(function, command):
    import importlib

    module, name = function.split(":")
    signature = inspect.signature(getattr(importlib.import_module(module), name))
    aliases = {"val_split_pct": "validation"}
    checked = 0
    for parameter in signature.parameters.values():
        field = aliases.get(parameter.name, parameter.name)
        if parameter.default is inspect.Parameter.empty or field not in {p.field for p in command}:
            continue
        assert parameter.default == command.by_field(field).default, parameter.name
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda: TrainConfig(lr=math.nan), "Learning rate nan is invalid (LR, --lr)"),
    (lambda: TrainConfig(checkpoint_minutes=math.inf), "(CHECKPOINT_MINUTES, --checkpoint-minutes)"),
    (lambda: TrainConfig(beta1=1.0), "Adam β1 1.0 is invalid (BETA1, --beta1): use a finite number from 0 to 0.999"),
    (lambda: TrainConfig(seed=-1), "Random seed -1 is invalid (SEED, --seed)"),
    (lambda: TrainConfig(epochs=2.5), "Epochs 2.5 is invalid"),
    (lambda: TrainConfig(dropout=0), "Dropout 0 is invalid (DROPOUT, --no-dropout): use True or False"),
    (lambda: ChipSpec(extent=(0, 0, math.nan, 1)), "(EXTENT, --extent): use 4 finite numbers"),
    (lambda: ChipSpec(extent=(10, 0, 0, 1)), "Extent 10 0 0 1 is invalid (EXTENT, --extent)"),
    (lambda: ChipSpec(bands_a=(0,)), "Bands of A 0 is invalid (BANDS, --bands)"),
    (lambda: ChipSpec(max_nodata=1.0, validation=0.9, seed=0, tile_size=8, stride=1), None),
    (lambda: ChipSpec(validation=0.90000001), "Validation fraction 0.90000001 is invalid"),
    (lambda: TranslateSpec(margin=-1), "Margin -1 is invalid (MARGIN, --margin)"),
    (lambda: TranslateSpec(device="cuda:x"), "Device 'cuda:x' is unknown"),
    (lambda: TranslateSpec(dtype="complex64"), "(OUTPUT_DTYPE, --dtype): use uint8, uint16"),
    (lambda: TranslateSpec(creation_options={"": "x"}), "(CREATION_OPTIONS, --co)"),
])
def test_the_python_api_refuses_bad_values_with_the_one_message(make, fragment):
    if fragment is None:
        make()  # bounds are inclusive: the ends of every range are allowed
        return
    with pytest.raises(Pix2PixError) as caught:
        make()
    assert fragment in str(caught.value)


def test_split_options_reads_the_qgis_form():
    assert split_options("COMPRESS=ZSTD; PREDICTOR=2|TILED=YES;;") == ["COMPRESS=ZSTD", "PREDICTOR=2", "TILED=YES"]
    assert split_options(None) == []


# ---------------------------------------------------------------- through the real command line

HOSTILE = [
    (["train", "c", "m.p2p", "--lr", "nan"], TRAIN["LR"]),
    (["train", "c", "m.p2p", "--lambda-l1", "inf"], TRAIN["LAMBDA_L1"]),
    (["train", "c", "m.p2p", "--checkpoint-minutes=-inf"], TRAIN["CHECKPOINT_MINUTES"]),
    (["train", "c", "m.p2p", "--epochs", "-3"], TRAIN["EPOCHS"]),
    (["train", "c", "m.p2p", "--validation", "0.95"], TRAIN["VALIDATION"]),
    (["train", "c", "m.p2p", "--gan-mode", "wgan"], TRAIN["GAN_MODE"]),
    (["train", "c", "m.p2p", "--device", "gpu"], TRAIN["DEVICE"]),
    (["export", "a", "b", "o", "--seed", "-1"], EXPORT["SEED"]),
    (["export", "a", "b", "o", "--stride", "0"], EXPORT["STRIDE"]),
    (["export", "a", "b", "o", "--extent", "0", "0", "nan", "1"], EXPORT["EXTENT"]),
    (["export", "a", "b", "o", "--extent", "5", "0", "1", "1"], EXPORT["EXTENT"]),
    (["export", "a", "b", "o", "--bands", "0,1"], EXPORT["BANDS"]),
    (["export", "a", "b", "o", "--resampling", "lanczos"], EXPORT["RESAMPLING"]),
    (["translate", "a", "m", "o", "--margin", "-4"], TRANSLATE["MARGIN"]),
    (["translate", "a", "m", "o", "--tile-size", "1e9"], TRANSLATE["TILE_SIZE"]),
    (["translate", "a", "m", "o", "--co", "COMPRESS"], TRANSLATE["CREATION_OPTIONS"]),
    (["evaluate", "p", "r", "--data-range", "0"], EVALUATE["DATA_RANGE"]),
    (["import-reference", "c.pth", "m.p2p", "--norm-stats", "eval"], IMPORT_REFERENCE["NORM_STATS"]),
]


@pytest.mark.parametrize(("argv", "param"), HOSTILE, ids=[" ".join(a[:1] + a[3:]) for a, _ in HOSTILE])
def test_bad_values_exit_2_naming_the_parameter_and_the_fix(argv, param):
    plain = cli_process(*argv)
    assert plain.returncode == 2 and plain.stdout == "" and "Traceback" not in plain.stderr
    message = plain.stderr.strip().splitlines()[-1]
    assert f"({param.name}, {param.cli_flag})" in message and ": use " in message, message
    as_json = cli_process(*argv, "--progress", "json")
    assert as_json.returncode == 2 and "Traceback" not in as_json.stderr
    error = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert error["type"] == "error" and error["kind"] == "bad_input"
    assert error["message"].endswith(message.split(": error: ", 1)[1])  # the same words in both modes


def test_the_command_line_and_the_python_api_say_the_same_words():
    words = cli_process("train", "c", "m.p2p", "--lr", "0.5").stderr.strip().splitlines()[-1]
    with pytest.raises(Pix2PixError) as caught:
        TrainConfig(lr=0.5)
    assert words.endswith(str(caught.value))


def test_help_shows_defaults_and_ranges():
    text = cli_process("train", "--help").stdout
    assert "(default 0.0002; a finite number from 1e-12 to 0.1)" in " ".join(text.split())


# ---------------------------------------------------------------- README


def readme_tables() -> dict[str, list[list[str]]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    tables = {}
    for match in re.finditer(r"<!-- parameters: ([\w-]+) -->\n((?:\|.*\n)+)", text):
        rows = [re.split(r"(?<!\\)\|", line.strip())[1:-1] for line in match[2].splitlines()]
        assert [c.strip() for c in rows[0]] == ["parameter", "command line", "QGIS", "default", "meaning"]
        assert match[1] not in tables, f"two tables for {match[1]}"
        tables[match[1]] = [[c.strip() for c in row] for row in rows[2:]]
    return tables


def test_the_readme_lists_every_parameter_once_with_its_flag_and_default():
    tables = readme_tables()
    assert set(tables) == {c.name for c in COMMANDS}
    for command in COMMANDS:
        rows = tables[command.name]
        names = [row[0].strip("`") for row in rows]
        assert names == [p.name for p in command], command.name  # each once, in table order
        for (_, cli, qgis, default, meaning), param in zip(rows, command):
            where = f"{command.name}:{param.name}"
            flag = "argument" if param.positional else param.cli_flag or "—"
            assert cli.strip("`").split()[0] == flag, where
            assert qgis == (("advanced" if param.advanced else "yes") if param.qgis else "—"), where
            if param.positional:
                assert default == "required", where
            elif param.default is not None:
                assert default == f"`{show(param.default)}`", where
            else:
                assert default and not default.startswith("`"), where  # says what happens at run time
            assert len(meaning) > 10, where
