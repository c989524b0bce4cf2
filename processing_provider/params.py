"""QGIS parameters from the engine's parameter tables, and their values back into engine arguments.

The engine's ``contract.tables`` defines every parameter once (name, kind, default, range or
choices, label, help, advanced flag). Here a :class:`Param` becomes a
``QgsProcessingParameter*`` (numbers with the same inclusive range, enums of static strings,
optional when the engine decides the default at run time) and a parameter value becomes the
engine's command-line words, through the contract's own :func:`to_argv`, so QGIS names,
ranges and flags cannot drift from the engine's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..pix2pix_qgis.contract.params import QGIS_BUILT, Kind, Param, split_options, to_argv
from .compat import NUMBER_DOUBLE, NUMBER_INTEGER, make_advanced

Tr = Callable[[str], str]  # the algorithm's tr(): translate a display string


def enum_options(param: Param) -> list[str]:
    """The enum's static strings: the choices, after the entry standing for "decided at run time"."""
    return ([param.none_choice] if param.none_choice else []) + list(param.choices)


def build(param: Param, tr: Tr) -> QgsProcessingParameterDefinition:
    """The QGIS definition of a parameter whose kind is in ``QGIS_BUILT``."""
    label, kind = tr(param.label), param.kind
    if kind in (Kind.INT, Kind.FLOAT):
        bounds = {key: value for key, value in (("minValue", param.minimum), ("maxValue", param.maximum))
                  if value is not None}
        return QgsProcessingParameterNumber(param.name, label, NUMBER_INTEGER if kind == Kind.INT else NUMBER_DOUBLE,
                                            param.default, param.optional, **bounds)
    if kind == Kind.BOOL:
        return QgsProcessingParameterBoolean(param.name, label, param.default)
    if kind in (Kind.CHOICE, Kind.DEVICE):
        default = param.default if param.default is not None else param.none_choice
        return QgsProcessingParameterEnum(param.name, label, enum_options(param), defaultValue=default,
                                          usesStaticStrings=True)
    if kind == Kind.BANDS:
        return QgsProcessingParameterBand(param.name, label, None, param.parent, optional=True, allowMultiple=True)
    if kind in (Kind.TEXT, Kind.OPTIONS):
        return QgsProcessingParameterString(param.name, label, param.default, optional=param.optional)
    raise ValueError(f"{param.name}: the algorithm declares {kind} parameters itself")


def finish(definition: QgsProcessingParameterDefinition, param: Param,
           tr: Tr) -> QgsProcessingParameterDefinition:
    """Help and advanced flag from the table, for built and hand-written definitions alike."""
    definition.setHelp(tr(param.help))
    return make_advanced(definition) if param.advanced else definition


def read(algorithm: QgsProcessingAlgorithm, param: Param, parameters: dict[str, Any], context: Any) -> Any:
    """The engine value of a built parameter (None: let the engine decide)."""
    kind, name = param.kind, param.name
    if param.optional and kind in (Kind.INT, Kind.FLOAT) and parameters.get(name) in (None, ""):
        return None
    if kind == Kind.INT:
        return algorithm.parameterAsInt(parameters, name, context)
    if kind == Kind.FLOAT:
        return algorithm.parameterAsDouble(parameters, name, context)
    if kind == Kind.BOOL:
        return algorithm.parameterAsBoolean(parameters, name, context)
    if kind in (Kind.CHOICE, Kind.DEVICE):
        given = parameters.get(name)  # a static string as given, so a bad one is named in the message
        value = given if isinstance(given, str) and given else (
            algorithm.parameterAsEnumString(parameters, name, context) or param.default)
        return None if value == param.none_choice else value
    if kind == Kind.BANDS:
        return tuple(algorithm.parameterAsInts(parameters, name, context)) or None
    text = algorithm.parameterAsString(parameters, name, context) or ""
    if kind == Kind.OPTIONS:
        return split_options(text) or None
    return text.strip() or None


def built(params: Any) -> list[Param]:
    """The QGIS-exposed parameters among ``params`` whose definitions this module builds."""
    return [p for p in params if p.qgis and p.kind in QGIS_BUILT]


def arguments(algorithm: QgsProcessingAlgorithm, params: Any, parameters: dict[str, Any],
              context: Any) -> list[str]:
    """Engine words (``--tile-size 256 …``) for every built parameter that the engine's command line takes."""
    words: list[str] = []
    for param in built(params):
        if param.cli:
            words += to_argv(param, read(algorithm, param, parameters, context))
    return words
