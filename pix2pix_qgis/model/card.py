"""The model card: ``model.json`` of a ``.p2p`` read once into frozen, validated objects.

``model.json`` is the contract between training and translation. :meth:`ModelCard.from_dict`
checks its format and version, then its JSON Schema (types, ranges, required fields), and
builds the card, whose constructor checks what a schema cannot say: each normalisation holds
one finite ``low < high`` pair per channel of the generator, the recorded bands match those
channels, and the chip size fits the U-Net (a multiple of 2^depth). Code after that reads the
card's fields, never key paths into the JSON.

What translation needs is typed (:class:`BandsCard` per side, :class:`GridCard`,
``GeneratorSpec``, :class:`MetricsCard`), and so is the architecture's other half, the
``DiscriminatorSpec`` (its scales and spectral normalisation; a record written before those
fields existed reads as the reference's single plain PatchGAN). Records translation does not
need (the training run, the inference note, software versions, history rows) stay JSON
objects, made read-only. :meth:`ModelCard.to_dict` writes the typed fields over the document the card was
read from, so fields a newer engine added survive a read and a rewrite, and a ``model.json``
this engine wrote comes back unchanged.
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..contract.errors import Pix2PixError
from ..core.schema import MODEL_SCHEMA, validate
from ..data.normalization import Normalization
from .discriminators import DiscriminatorSpec
from .generators import AnyGeneratorSpec, spec_from_dict
from .networks import GeneratorSpec

if TYPE_CHECKING:
    from ..data.folder import ChipsFolder

MODEL_FORMAT, MODEL_VERSION = "pix2pix-model", 2
# The version a card is written with: a Pix2Pix model stays version 1, which every engine reads; a
# CycleGAN model is version 2, so an engine that predates it refuses it with "Update the plugin".
FORMAT_VERSIONS = {"pix2pix": 1, "cyclegan": 2}
MODEL_TYPES = tuple(FORMAT_VERSIONS)
DIRECTIONS = ("a2b", "b2a")


DAMAGED = "The package is damaged or was not written by 'train' or 'import-reference'; train or import it again."


EVAL_INFERENCE = {
    "mode": "eval",
    "note": "BatchNorm uses its running statistics and dropout is off, so each tile's output does not "
            "depend on the other tiles in its batch and runs are repeatable.",
}


def frozen(value: Any) -> Any:
    """A JSON value with its objects made read-only mappings and its arrays tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: frozen(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(frozen(item) for item in value)
    return value


def plain(value: Any) -> Any:
    """A :func:`frozen` value as plain JSON types again (dicts and lists), as ``json.dumps`` takes them."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def _overlay(base: Any, top: Any) -> Any:
    """``top`` written over ``base``: objects merged key by key (``base``'s keys and order kept), else ``top``."""
    if isinstance(base, dict) and isinstance(top, dict):
        merged = dict(base)
        for key, value in top.items():
            merged[key] = _overlay(base.get(key), value)
        return merged
    return top


def _numbers(value: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if value is None else tuple(float(v) for v in value)


def _invalid(where: str, problem: str, fix: str) -> Pix2PixError:
    return Pix2PixError(f"model.json is invalid at {where}: {problem}. {fix}")


def _discriminator(record: Mapping[str, Any] | None, generator: Mapping[str, Any]) -> DiscriminatorSpec | None:
    """The discriminator a ``model.json`` records (None: an imported generator has none).

    A record without ``in_channels`` judged the generator's pair (its input and output bands):
    only pix2pix models predate the field.
    """
    if record is None:
        return None
    pair = generator["in_channels"] + generator["out_channels"]
    return DiscriminatorSpec.from_dict({"in_channels": pair, **record})


def _optional_spec(record: Mapping[str, Any] | None) -> AnyGeneratorSpec | None:
    return None if record is None else spec_from_dict(record)


# Architecture fields a model.json may predate, with the value every model had before they existed.
LEGACY_ARCHITECTURE: dict[str, dict[str, Any]] = {
    "generator": {"upsample": "transpose"},
    "discriminator": {"scales": 1, "spectral_norm": False},
}


def _as_recorded(typed: dict[str, Any] | None, part: str, document: Mapping[str, Any]) -> dict[str, Any] | None:
    """``typed`` (a spec's record) less the fields the document read did not have and that hold their legacy value.

    So a ``model.json`` written before those fields existed is written back byte for byte;
    a new card (no document) records every field.
    """
    read = document.get("architecture", {}).get(part) if document else None
    if typed is None or not isinstance(read, Mapping):
        return typed
    legacy = LEGACY_ARCHITECTURE[part]
    return {key: value for key, value in typed.items()
            if key in read or key not in legacy or value != legacy[key]}


def software_versions() -> dict[str, str]:
    """The versions that wrote a model, recorded in its card for whoever has to reproduce it."""
    import numpy as np
    import rasterio
    import safetensors
    import torch

    return {"pix2pix_qgis": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "rasterio": rasterio.__version__, "gdal": rasterio.__gdal_version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class BandsCard:
    """One side of the model: the raster it reads (``input``, A) or the one it predicts (``output``, B).

    ``bands`` are the 1-based bands of the training raster (None: not recorded), ``dtype``
    and ``nodata`` its data type and nodata value (in its units), and ``normalization`` the
    per-band map between its units and the network's [-1, 1].
    """

    bands: tuple[int, ...] | None
    dtype: str | None
    nodata: float | None
    normalization: Normalization

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BandsCard:
        """Read one side (``input`` or ``output``) of ``model.json``."""
        norm, bands, nodata = data["normalization"], data.get("bands"), data.get("nodata")
        # Built field by field: the card, not Normalization.from_dict, says what is wrong and where.
        return cls(
            None if bands is None else tuple(int(band) for band in bands), data.get("dtype"),
            None if nodata is None else float(nodata),
            Normalization(tuple(float(v) for v in norm["low"]), tuple(float(v) for v in norm["high"]),
                          norm["method"], norm.get("source")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The side as written in ``model.json``."""
        return {"bands": None if self.bands is None else list(self.bands), "dtype": self.dtype,
                "nodata": self.nodata, "normalization": self.normalization.to_dict()}

    def check(self, side: str, channels: int, channels_field: str) -> None:
        """Raise unless the normalisation (and the bands, when recorded) fit ``channels`` generator channels."""
        norm, where = self.normalization, f"{side}.normalization"
        if len(norm.low) != len(norm.high):
            raise _invalid(where, f"it has {len(norm.low)} low but {len(norm.high)} high value(s)",
                           f"A normalisation needs one low and one high value per band. {DAMAGED}")
        if len(norm.low) != channels:
            raise _invalid(where, f"it covers {len(norm.low)} band(s) but the generator has {channels} "
                                  f"(architecture.{channels_field})",
                           f"A normalisation needs one low/high pair per generator channel. {DAMAGED}")
        for band, (low, high) in enumerate(zip(norm.low, norm.high), start=1):
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise _invalid(where, f"band {band} maps [{low}, {high}]",
                               f"Each band needs finite values with low below high. {DAMAGED}")
        if self.bands is not None and len(self.bands) != channels:
            raise _invalid(f"{side}.bands", f"it lists {len(self.bands)} band(s) but the generator has {channels} "
                                            f"(architecture.{channels_field})",
                           f"The bands must match the generator's channels. {DAMAGED}")


@dataclass(frozen=True)
class GridCard:
    """The training raster's grid: where the model learned, for people and other tools (ONNX metadata).

    ``cell_size`` is (x, y) in CRS units. ``transform`` (the affine's 6 numbers), ``width`` and
    ``height`` (pixels) and ``bounds`` (CRS units) describe the exported area; a bare Esri
    chips folder records only CRS and cell size, so they are None for its models.
    """

    crs: str | None = None
    crs_wkt: str | None = None
    transform: tuple[float, ...] | None = None
    cell_size: tuple[float, ...] | None = None
    width: int | None = None
    height: int | None = None
    bounds: tuple[float, ...] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GridCard:
        """Read the training grid of ``model.json`` (every field may be missing in imported models)."""
        return cls(data.get("crs"), data.get("crs_wkt"), _numbers(data.get("transform")),
                   _numbers(data.get("cell_size")), data.get("width"), data.get("height"), _numbers(data.get("bounds")))

    def to_dict(self) -> dict[str, Any]:
        """The grid as written in ``model.json``; crs, crs_wkt and cell_size always, the rest when known."""
        values = {"crs": self.crs, "crs_wkt": self.crs_wkt, "transform": self.transform, "cell_size": self.cell_size,
                  "width": self.width, "height": self.height, "bounds": self.bounds}
        always = ("crs", "crs_wkt", "cell_size")
        return {key: plain(value) for key, value in values.items() if value is not None or key in always}


@dataclass(frozen=True)
class MetricsCard:
    """How training went: one history row per epoch (losses; validation metrics in target units).

    ``best_epoch`` is the epoch whose generator the package holds, chosen by the validation
    metric ``best_metric`` (or "last epoch" without validation chips); ``best`` is its row.
    An imported model has no history.
    """

    best_epoch: int | None = None
    best_metric: str | None = None
    best: Mapping[str, Any] | None = None
    history: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "best", frozen(self.best))
        object.__setattr__(self, "history", frozen(self.history))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricsCard:
        """Read the training metrics of ``model.json``."""
        return cls(data.get("best_epoch"), data.get("best_metric"), data.get("best"), data.get("history", ()))

    def to_dict(self) -> dict[str, Any]:
        """The metrics as written in ``model.json``."""
        return {"best_epoch": self.best_epoch, "best_metric": self.best_metric, "best": plain(self.best),
                "history": plain(self.history)}


@dataclass(frozen=True)
class ModelCard:
    """Everything a ``.p2p`` says about its generator: how to feed it, what it predicts, how it was made.

    ``chip_size`` is the side of the training chips in pixels (translation's default tile).

    A CycleGAN model (``model_type`` cyclegan) holds a second generator, ``generator_b2a``
    (B→A, fed with the ``output`` side and predicting the ``input`` side), the discriminator
    that judged A (``discriminator_b2a``) and B's training grid (``grid_b``): ``input`` is
    domain A and ``output`` domain B. :meth:`direction` gives the card of one direction, which
    translation reads as it reads a Pix2Pix card.
    """

    generator: AnyGeneratorSpec
    chip_size: int
    input: BandsCard
    output: BandsCard
    grid: GridCard | None = None
    metrics: MetricsCard = field(default_factory=MetricsCard)
    discriminator: DiscriminatorSpec | None = None
    inference: Mapping[str, Any] = field(default_factory=lambda: EVAL_INFERENCE)
    training: Mapping[str, Any] = field(default_factory=dict)
    software: Mapping[str, Any] = field(default_factory=software_versions)
    created: str | None = field(default_factory=_now)
    format_version: int | None = None  # None: the model type's (FORMAT_VERSIONS)
    model_type: str = "pix2pix"
    generator_b2a: AnyGeneratorSpec | None = None
    discriminator_b2a: DiscriminatorSpec | None = None
    grid_b: GridCard | None = None
    # The model.json this card was read from (empty for a new card): to_dict keeps its unknown fields.
    document: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("inference", "training", "software", "document"):
            object.__setattr__(self, name, frozen(getattr(self, name)))
        if self.model_type not in MODEL_TYPES:
            raise _invalid("model_type", f"{self.model_type!r} is unknown", f"Use one of {', '.join(MODEL_TYPES)}.")
        if self.format_version is None:
            object.__setattr__(self, "format_version", FORMAT_VERSIONS[self.model_type])
        if (self.model_type == "cyclegan") != (self.generator_b2a is not None):
            raise _invalid("architecture.generator_b2a", "a CycleGAN model needs its B→A generator and only a CycleGAN "
                                                         "model has one", DAMAGED)
        self._check_generator(self.generator, "generator", self.input, self.output)
        if self.generator_b2a is not None:
            self._check_generator(self.generator_b2a, "generator_b2a", self.output, self.input)

    def _check_generator(self, spec: AnyGeneratorSpec, name: str, source: BandsCard, target: BandsCard) -> None:
        """The sides fit the generator's channels, and the chip size its multiple."""
        source.check("input" if source is self.input else "output", spec.in_channels, f"{name}.in_channels")
        target.check("output" if target is self.output else "input", spec.out_channels, f"{name}.out_channels")
        if self.chip_size % spec.multiple:
            what = f"2^depth = {spec.multiple}" if isinstance(spec, GeneratorSpec) else str(spec.multiple)
            raise _invalid("chip_size", f"{self.chip_size} px is not a multiple of {what} px "
                                        f"(architecture.{name}: {spec.name})",
                           f"A {spec.name} takes chips of a multiple of {spec.multiple} px. {DAMAGED}")

    def direction(self, direction: str) -> ModelCard:
        """The card of one translation direction: itself for ``a2b``; for ``b2a`` (CycleGAN only) the
        card with generators, sides, discriminators and grids swapped, so B→A reads as A→B does."""
        if direction == "a2b":
            return self
        if direction != "b2a":
            raise Pix2PixError(f"Direction {direction!r} is unknown; use a2b or b2a.")
        if self.generator_b2a is None:
            raise Pix2PixError(
                "This is a Pix2Pix model: it holds one generator, A→B, and cannot translate B→A (DIRECTION b2a, "
                "--direction b2a). Use DIRECTION a2b, train a Pix2Pix model the other way round (B as input), or "
                "train a CycleGAN model (--model cyclegan), which translates both ways."
            )
        return replace(self, generator=self.generator_b2a, generator_b2a=self.generator, input=self.output,
                       output=self.input, discriminator=self.discriminator_b2a, discriminator_b2a=self.discriminator,
                       grid=self.grid_b, grid_b=self.grid)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], path: str | Path) -> ModelCard:
        """The card of ``document``, the ``model.json`` of the package at ``path`` (named in every error)."""
        path = Path(path)
        if document.get("format") != MODEL_FORMAT or not isinstance(document.get("format_version"), int):
            raise Pix2PixError(f"{path} is not a Pix2Pix model package (model.json format {document.get('format')!r}).")
        if document["format_version"] > MODEL_VERSION:
            raise Pix2PixError(
                f"{path} is model format version {document['format_version']}; this engine reads up to "
                f"{MODEL_VERSION}. Update the plugin."
            )
        validate(document, MODEL_SCHEMA, path, "model.json", DAMAGED)
        architecture, grid, grid_b = document["architecture"], document.get("grid"), document.get("grid_b")
        try:
            return cls(
                generator=spec_from_dict(architecture["generator"]),
                chip_size=document["chip_size"],
                input=BandsCard.from_dict(document["input"]),
                output=BandsCard.from_dict(document["output"]),
                grid=None if grid is None else GridCard.from_dict(grid),
                metrics=MetricsCard.from_dict(document.get("metrics", {})),
                discriminator=_discriminator(architecture.get("discriminator"), architecture["generator"]),
                inference=document.get("inference", {}),
                training=document.get("training", {}),
                software=document.get("software", {}),
                created=document.get("created"),
                format_version=document["format_version"],
                model_type=document.get("model_type", "pix2pix"),
                generator_b2a=_optional_spec(architecture.get("generator_b2a")),
                discriminator_b2a=_discriminator(architecture.get("discriminator_b2a"), architecture["generator"]),
                grid_b=None if grid_b is None else GridCard.from_dict(grid_b),
                document=document,
            )
        except Pix2PixError as exc:
            raise Pix2PixError(f"{path}: {exc}") from None

    @classmethod
    def from_training(
        cls,
        chips: ChipsFolder,
        generator: AnyGeneratorSpec,
        discriminator: DiscriminatorSpec,
        training: Mapping[str, Any],
        history: Sequence[Mapping[str, Any]],
        best_epoch: int | None,
        best_metric: str,
    ) -> ModelCard:
        """The card of a generator trained on ``chips``: their bands, normalisation and grid, plus the run."""
        described = chips.describe()
        best = next((row for row in history if row.get("epoch") == best_epoch), None)
        return cls(
            generator=generator,
            chip_size=chips.tile_size,
            input=BandsCard.from_dict(described["input"]),
            output=BandsCard.from_dict(described["output"]),
            grid=None if described["grid"] is None else GridCard.from_dict(described["grid"]),
            metrics=MetricsCard(best_epoch, best_metric, best, tuple(history)),
            discriminator=discriminator,
            training={**training, "chips": described["chips"]},
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``model.json`` document: the typed fields over the document read, whose other fields are kept."""
        typed = {
            "format": MODEL_FORMAT,
            "format_version": self.format_version,
            "created": self.created,
            "architecture": {
                "generator": _as_recorded(self.generator.to_dict(), "generator", self.document),
                "discriminator": _as_recorded(None if self.discriminator is None else self.discriminator.to_dict(),
                                              "discriminator", self.document),
            },
            "chip_size": self.chip_size,
            "input": self.input.to_dict(),
            "output": self.output.to_dict(),
            "grid": None if self.grid is None else self.grid.to_dict(),
            "inference": plain(self.inference),
            "training": plain(self.training),
            "metrics": self.metrics.to_dict(),
            "software": plain(self.software),
        }
        if self.model_type != "pix2pix":  # a Pix2Pix model.json is written as before these fields existed
            typed["model_type"] = self.model_type
            architecture = typed["architecture"]
            architecture["generator_b2a"] = None if self.generator_b2a is None else self.generator_b2a.to_dict()
            judge = self.discriminator_b2a
            architecture["discriminator_b2a"] = None if judge is None else judge.to_dict()
            typed["grid_b"] = None if self.grid_b is None else self.grid_b.to_dict()
        return _overlay(plain(self.document), typed)
