"""Graphical models (.model3) built with the QGIS API, as the Model Designer would save them.

``qgis_process`` takes a model's outputs by parameter name, and that name depends on the QGIS that
saved the model: 3.22 calls an output "child:output" (``export:chips``); later releases save models
with a newer internal version whose outputs are named after their description (``chips``), and keep
the old names for models saved before. :func:`output_parameters` asks QGIS instead of guessing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _source(kind: str, value: Any) -> Any:
    from qgis.core import QgsProcessingModelChildParameterSource as Source

    return Source.fromModelParameter(value) if kind == "param" else Source.fromStaticValue(value)


def child_algorithm(algorithm_id: str, child_id: str, sources: dict[str, tuple[str, Any]],
                    outputs: dict[str, str]) -> Any:
    """A model step: parameter sources ("param", name) or ("static", value); outputs child → model name."""
    from qgis.core import QgsProcessingModelChildAlgorithm, QgsProcessingModelOutput

    child = QgsProcessingModelChildAlgorithm(algorithm_id)
    child.setChildId(child_id)
    for name, (kind, value) in sources.items():
        child.addParameterSources(name, [_source(kind, value)])
    model_outputs = {}
    for child_output, model_name in outputs.items():
        output = QgsProcessingModelOutput(model_name, model_name)
        output.setChildId(child_id)
        output.setChildOutputName(child_output)
        model_outputs[model_name] = output
    child.setModelOutputs(model_outputs)
    return child


def _export_step(name: str, validation: float, outputs: dict[str, str]) -> Any:
    """A model with raster inputs 'relief' and 'imagery' and their pix2pix:exportchips step (id 'export')."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelParameter,
        QgsProcessingParameterRasterLayer,
    )

    model = QgsProcessingModelAlgorithm(name, "pix2pix tests")
    for parameter in ("relief", "imagery"):
        model.addModelParameter(QgsProcessingParameterRasterLayer(parameter, parameter),
                                QgsProcessingModelParameter(parameter))
    model.addChildAlgorithm(child_algorithm(
        "pix2pix:exportchips", "export",
        {"INPUT": ("param", "relief"), "INPUT2": ("param", "imagery"), "TILE_SIZE": ("static", 64),
         "STRIDE": ("static", 64), "VALIDATION": ("static", validation)},
        outputs,
    ))
    return model


def _save(model: Any, path: Path) -> Path:
    model.updateDestinationParameters()
    if not model.toFile(str(path)):
        raise RuntimeError(f"could not save {path}")
    return path


def export_model(path: Path) -> Path:
    """relief + imagery → pix2pix:exportchips → chips folder (model output 'chips')."""
    model = _export_step("export_chips_model", validation=0.2, outputs={"OUTPUT": "chips"})
    return _save(model, path)


def _child_output(child_id: str, output: str) -> Any:
    from qgis.core import QgsProcessingModelChildParameterSource as Source

    return Source.fromChildOutput(child_id, output)


def pipeline_model(path: Path) -> Path:
    """relief + imagery → export → train → translate (relief) → evaluate against imagery."""
    model = _export_step("pix2pix_pipeline", validation=0.25, outputs={})
    train = child_algorithm(
        "pix2pix:train", "train",
        {"EPOCHS": ("static", 1), "BATCH_SIZE": ("static", 8), "NGF": ("static", 8), "DEVICE": ("static", "cpu")},
        {"OUTPUT_MODEL": "model"},
    )
    train.addParameterSources("CHIPS", [_child_output("export", "OUTPUT")])
    model.addChildAlgorithm(train)
    translate = child_algorithm("pix2pix:translate", "translate", {"INPUT": ("param", "relief")},
                                {"OUTPUT": "translated"})
    translate.addParameterSources("MODEL", [_child_output("train", "OUTPUT_MODEL")])
    model.addChildAlgorithm(translate)
    evaluate = child_algorithm("pix2pix:evaluate", "evaluate", {"REFERENCE": ("param", "imagery")},
                               {"OUTPUT_REPORT": "metrics"})
    evaluate.addParameterSources("PREDICTION", [_child_output("translate", "OUTPUT")])
    model.addChildAlgorithm(evaluate)
    return _save(model, path)


def cyclegan_model(path: Path) -> Path:
    """relief + imagery (unaligned) → exportunpaired → traincyclegan → translate relief A→B and imagery B→A."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelParameter,
        QgsProcessingParameterRasterLayer,
    )

    model = QgsProcessingModelAlgorithm("pix2pix_cyclegan", "pix2pix tests")
    for parameter in ("relief", "imagery"):
        model.addModelParameter(QgsProcessingParameterRasterLayer(parameter, parameter),
                                QgsProcessingModelParameter(parameter))
    model.addChildAlgorithm(child_algorithm(
        "pix2pix:exportunpaired", "export",
        {"INPUT": ("param", "relief"), "INPUT2": ("param", "imagery"), "TILE_SIZE": ("static", 64),
         "STRIDE": ("static", 32), "VALIDATION": ("static", 0.1)}, {}))
    train = child_algorithm(
        "pix2pix:traincyclegan", "train",
        {"EPOCHS": ("static", 1), "BATCH_SIZE": ("static", 4), "NGF": ("static", 4), "RESNET_BLOCKS": ("static", 2),
         "DEVICE": ("static", "cpu")},
        {"OUTPUT_MODEL": "model"},
    )
    train.addParameterSources("CHIPS", [_child_output("export", "OUTPUT")])
    model.addChildAlgorithm(train)
    for child, source, direction, output in (("a2b", "relief", "a2b", "imagery_like"),
                                             ("b2a", "imagery", "b2a", "relief_like")):
        translate = child_algorithm("pix2pix:translate", child, {"INPUT": ("param", source),
                                                                 "DIRECTION": ("static", direction)},
                                    {"OUTPUT": output})
        translate.addParameterSources("MODEL", [_child_output("train", "OUTPUT_MODEL")])
        model.addChildAlgorithm(translate)
    return _save(model, path)


def output_parameters(path: Path) -> dict[str, str]:
    """{model output (its description) → the parameter name to give ``qgis_process``} of a saved model."""
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    if not model.fromFile(str(path)):
        raise RuntimeError(f"could not read {path}")
    return {definition.description(): definition.name() for definition in model.destinationParameterDefinitions()}
