"""JSON Schemas of ``model.json``, ``checkpoint.json``, ``chips.json`` and part sidecars, checked on every read.

A model package or a chips folder may come from anyone; what later code takes as given
(bands, normalisation, architecture, grid, metrics, chip names) is validated here first, so a
damaged or hostile file gives one error naming the file and the field instead of a
``KeyError`` deep inside translation. Values a schema cannot relate to each other (a
normalisation per generator channel, low below high, chip size against depth) are checked by
``model.card.ModelCard``. Chip names and folders must be plain names: a ``chips.json``
cannot point readers outside its folder. Unknown extra fields are allowed (forward
compatibility); the format version is checked by the callers before the schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ..contract.errors import Pix2PixError

_INT_POS = {"type": "integer", "minimum": 1}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_PLAIN_NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^(?!\.\.?$)[^/\\:\x00]+$"}
_DTYPE = {"enum": ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
                   "float16", "float32", "float64"]}

_NORMALIZATION = {
    "type": "object",
    "required": ["method", "low", "high"],
    "properties": {
        "method": {"enum": ["percentile-clip", "fixed-range"]},  # dataset.NORMALIZATION_METHODS
        "low": {"type": "array", "minItems": 1, "items": {"type": "number"}},
        "high": {"type": "array", "minItems": 1, "items": {"type": "number"}},
    },
}

_NUMBERS = {"type": "array", "items": {"type": "number"}}

_GRID = {
    "type": ["object", "null"],
    "properties": {
        "crs": {"type": ["string", "null"]},
        "crs_wkt": {"type": ["string", "null"]},
        "transform": {**_NUMBERS, "minItems": 6, "maxItems": 6},
        "cell_size": {"anyOf": [{**_NUMBERS, "minItems": 2, "maxItems": 2}, {"type": "null"}]},
        "width": _INT_POS,
        "height": _INT_POS,
        "bounds": {**_NUMBERS, "minItems": 4, "maxItems": 4},
    },
}

_MODEL_SIDE = {
    "type": "object",
    "required": ["normalization"],
    "properties": {
        "bands": {"type": ["array", "null"], "items": _INT_POS},
        "dtype": {"anyOf": [_DTYPE, {"type": "null"}]},
        "nodata": _NUMBER_OR_NULL,
        "normalization": _NORMALIZATION,
    },
}

_DISCRIMINATOR = {
    "type": ["object", "null"],
    "properties": {  # model.discriminators.DiscriminatorSpec; absent fields take its defaults
        "in_channels": {"type": "integer", "minimum": 1, "maximum": 8192},
        "ndf": {"type": "integer", "minimum": 1, "maximum": 4096},
        "n_layers": {"type": "integer", "minimum": 1, "maximum": 5},
        "norm": {"enum": ["batch", "instance"]},  # networks.NORMS
        "scales": {"type": "integer", "minimum": 1, "maximum": 3},  # discriminators.MAX_SCALES
        "spectral_norm": {"type": "boolean"},
    },
}

# model.generators: a U-Net (no type: every package before the ResNet) needs its depth, a ResNet its blocks.
_GENERATOR = {
    "type": "object",
    "required": ["in_channels", "out_channels", "ngf"],
    "properties": {
        "type": {"enum": ["unet", "resnet"]},
        "in_channels": {"type": "integer", "minimum": 1, "maximum": 4096},
        "out_channels": {"type": "integer", "minimum": 1, "maximum": 4096},
        "depth": {"type": "integer", "minimum": 2, "maximum": 10},
        "blocks": {"type": "integer", "minimum": 1, "maximum": 64},
        "ngf": {"type": "integer", "minimum": 1, "maximum": 4096},
        "norm": {"enum": ["batch", "instance", "instance-affine", "none"]},  # networks.GENERATOR_NORMS
        "dropout": {"type": "boolean"},
        "upsample": {"enum": ["transpose", "resize"]},  # networks.UPSAMPLES
    },
    "if": {"required": ["type"], "properties": {"type": {"const": "resnet"}}},
    "then": {"required": ["blocks"]},
    "else": {"required": ["depth"]},
}

MODEL_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "model.json of a .p2p model package",
    "type": "object",
    "required": ["format", "format_version", "architecture", "chip_size", "input", "output"],
    "properties": {
        "format": {"const": "pix2pix-model"},
        "format_version": _INT_POS,
        "chip_size": {"type": "integer", "minimum": 8, "maximum": 65536},
        "architecture": {
            "type": "object",
            "required": ["generator"],
            "properties": {
                "discriminator": _DISCRIMINATOR,
                "generator": _GENERATOR,
                # CycleGAN (model_type cyclegan): the second generator, B→A, and the discriminator on A.
                "generator_b2a": _GENERATOR,
                "discriminator_b2a": _DISCRIMINATOR,
            },
        },
        "model_type": {"enum": ["pix2pix", "cyclegan"]},
        "input": _MODEL_SIDE,
        "output": _MODEL_SIDE,
        "grid": _GRID,
        "grid_b": _GRID,
        "created": {"type": ["string", "null"]},
        "inference": {"type": "object"},
        "training": {"type": "object"},
        "software": {"type": "object"},
        "metrics": {
            "type": "object",
            "properties": {
                "best_epoch": {"type": ["integer", "null"]},
                "best_metric": {"type": ["string", "null"]},
                "best": {"type": ["object", "null"]},
                "history": {"type": "array", "items": {"type": "object"}},
            },
        },
    },
}

CHECKPOINT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "checkpoint.json of a training checkpoint",
    "type": "object",
    "required": ["format", "format_version"],  # save_checkpoint is generic; training's fields are checked if present
    "properties": {
        "format": {"const": "pix2pix-checkpoint"},
        "format_version": _INT_POS,
        "config": {"type": "object"},
        "generator": MODEL_SCHEMA["properties"]["architecture"]["properties"]["generator"],
        "chips": {"type": "object", "required": ["fingerprint"], "properties": {"fingerprint": {"type": "string"}}},
        "state": {
            "type": "object",
            "required": ["epoch", "step_in_epoch", "global_step", "history"],
            "properties": {
                "epoch": _INT_POS,
                "step_in_epoch": {"type": "integer", "minimum": 0},
                "global_step": {"type": "integer", "minimum": 0},
                "history": {"type": "array", "items": {"type": "object"}},
            },
        },
        "optG": {"type": "object", "required": ["state", "param_groups"]},
        "optD": {"type": "object", "required": ["state", "param_groups"]},
    },
}

_STATISTICS = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "object", "required": ["band", "p01", "p99"],
              "properties": {"band": _INT_POS, "p01": _NUMBER_OR_NULL, "p99": _NUMBER_OR_NULL}},
}

_CHIPS_SIDE = {
    "type": "object",
    "required": ["bands", "dtype", "statistics"],
    "properties": {
        "folder": _PLAIN_NAME,
        "bands": {"type": "array", "minItems": 1, "items": _INT_POS},
        "dtype": _DTYPE,
        "nodata": _NUMBER_OR_NULL,
        "statistics": _STATISTICS,
    },
}

_CHIP = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": _PLAIN_NAME,
        "row_off": {"type": "integer", "minimum": 0},
        "col_off": {"type": "integer", "minimum": 0},
        "split": {"enum": ["train", "validation"]},
        "nodata_fraction": {"type": "number", "minimum": 0, "maximum": 1},
    },
}

CHIPS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "chips.json of a chips folder (pix2pix-chips)",
    "type": "object",
    "required": ["format", "format_version", "tile_size", "stride", "grid", "a", "b", "chips"],
    "properties": {
        "format": {"const": "pix2pix-chips"},
        "format_version": _INT_POS,
        "tile_size": {"type": "integer", "minimum": 1, "maximum": 65536},
        "stride": _INT_POS,
        "grid": _GRID,
        "a": _CHIPS_SIDE,
        "b": _CHIPS_SIDE,
        "chips": {"type": "array", "items": _CHIP},
    },
}


def _domain(folder: str) -> dict[str, Any]:
    """One domain of an unpaired chips folder: its own bands, grid, statistics and chips."""
    return {
        "type": "object",
        "required": ["folder", "bands", "dtype", "statistics", "grid", "chips"],
        "properties": {
            "folder": {"const": folder},
            "bands": {"type": "array", "minItems": 1, "items": _INT_POS},
            "dtype": _DTYPE,
            "nodata": _NUMBER_OR_NULL,
            "statistics": _STATISTICS,
            "grid": _GRID,
            "chips": {"type": "array", "minItems": 1, "items": _CHIP},
        },
    }


UNPAIRED_CHIPS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "chips.json of an unpaired chips folder (pix2pix-unpaired-chips)",
    "type": "object",
    "required": ["format", "format_version", "tile_size", "stride", "a", "b"],
    "properties": {
        "format": {"const": "pix2pix-unpaired-chips"},
        "format_version": _INT_POS,
        "tile_size": {"type": "integer", "minimum": 1, "maximum": 65536},
        "stride": _INT_POS,
        "a": _domain("A/images"),
        "b": _domain("B/images"),
    },
}

_RASTER_SIDE = 2**31 - 1  # GDAL's largest raster width or height

PART_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "sidecar of a translated part (part-IIII-of-NNNN.json)",
    "type": "object",
    "required": ["format", "format_version", "part", "parts", "rows", "file", "run", "raster", "tiles", "seconds"],
    "properties": {
        "format": {"const": "pix2pix-qgis-part"},
        "format_version": _INT_POS,
        "part": {"type": "integer", "minimum": 0},
        "parts": {"type": "integer", "minimum": 1, "maximum": _RASTER_SIDE},
        "rows": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer", "minimum": 0}},
        "file": _PLAIN_NAME,
        "run": {"type": "string"},
        "raster": {
            "type": "object",
            "required": ["width", "height", "count", "dtype", "crs", "transform", "nodata", "mask", "colorinterp"],
            "properties": {
                "width": {"type": "integer", "minimum": 1, "maximum": _RASTER_SIDE},
                "height": {"type": "integer", "minimum": 1, "maximum": _RASTER_SIDE},
                "count": {"type": "integer", "minimum": 1, "maximum": 4096},
                "dtype": {"enum": ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]},
                "crs": {"type": ["string", "null"]},
                "transform": {"type": "array", "minItems": 6, "maxItems": 6, "items": {"type": "number"}},
                "nodata": {"anyOf": [{"type": ["number", "null"]}, {"const": "nan"}]},
                "mask": {"type": "boolean"},
                "colorinterp": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z]+$"}},
            },
        },
        "tiles": {"type": "integer", "minimum": 0},
        "seconds": {"type": "number", "minimum": 0},
    },
}

_VALIDATORS = {id(schema): Draft202012Validator(schema)
               for schema in (MODEL_SCHEMA, CHECKPOINT_SCHEMA, CHIPS_SCHEMA, PART_SCHEMA)}


def _where(error: ValidationError) -> str:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    return path.lstrip(".") or "the top level"


def _what(error: ValidationError) -> str:
    instance = repr(error.instance)
    shown = instance if len(instance) <= 80 else instance[:77] + "..."
    if error.validator == "required":
        return error.message
    if error.validator == "type":
        return f"{shown} is not of type {error.validator_value}"
    if error.validator in ("enum", "const"):
        allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
        return f"{shown} is not one of {allowed}"
    if error.validator == "pattern":
        return f"{shown} is not a plain file or folder name (no '/', '\\', ':' or '..')"
    return f"{shown}: {error.message[-200:]}"


def validate(document: Any, schema: dict[str, Any], path: Path, name: str, fix: str) -> None:
    """Raise :class:`Pix2PixError` naming ``path``, ``name`` and the first bad field of ``document``."""
    validator = _VALIDATORS.get(id(schema)) or Draft202012Validator(schema)
    error = best_match(validator.iter_errors(document))
    if error is not None:
        raise Pix2PixError(f"{path}: {name} is invalid at {_where(error)}: {_what(error)}. {fix}")
