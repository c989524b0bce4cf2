"""The QGIS parameters are the engine's table: same names, labels, help, defaults, ranges, choices and
advanced flags; their values become the engine's flags; bad values get the engine's message; an
algorithm that needs a missing interpreter says so before it starts."""

from __future__ import annotations

import math

import pytest

ENGINE_ALGORITHMS = ("exportchips", "exportunpaired", "train", "traincyclegan", "translate", "evaluate",
                     "evaluateunpaired")


@pytest.fixture(scope="module")
def algorithms(qgis_app) -> dict:
    from qgis.core import QgsApplication

    provider = QgsApplication.processingRegistry().providerById("pix2pix")
    return {algorithm.name(): algorithm for algorithm in provider.algorithms()}


def test_every_engine_algorithm_shows_exactly_its_table(algorithms):
    from pix2pix_toolbox.pix2pix_qgis.contract.tables import (
        EVALUATE,
        EVALUATE_UNPAIRED,
        EXPORT,
        EXPORT_UNPAIRED,
        TRAIN,
        TRANSLATE,
    )

    tables = {"exportchips": EXPORT, "exportunpaired": EXPORT_UNPAIRED, "train": TRAIN, "traincyclegan": TRAIN,
              "translate": TRANSLATE, "evaluate": EVALUATE, "evaluateunpaired": EVALUATE_UNPAIRED}
    # train serves both model types: each algorithm leaves out the other's options (and fixes MODEL_TYPE)
    left_out = {"train": {"LAMBDA_CYCLE", "LAMBDA_IDENTITY"}, "traincyclegan": {"LAMBDA_L1", "LAMBDA_FEAT"}}
    for name, command in tables.items():
        algorithm = algorithms[name]
        assert algorithm.COMMAND is command
        shown = [d.name() for d in algorithm.parameterDefinitions()]
        expected = [p.name for p in command if p.qgis and p.name not in left_out.get(name, ())]
        assert shown == expected, name  # nothing more, in table order
    assert "MODEL_TYPE" not in [p.name for p in TRAIN if p.qgis]


@pytest.mark.parametrize("name", ENGINE_ALGORITHMS)
def test_each_definition_matches_its_parameter(algorithms, name):
    from pix2pix_toolbox.pix2pix_qgis.contract.params import QGIS_BUILT, Kind
    from pix2pix_toolbox.processing_provider.compat import FLAG_ADVANCED, FLAG_OPTIONAL, NUMBER_INTEGER
    from qgis.core import (
        QgsProcessingParameterBand,
        QgsProcessingParameterBoolean,
        QgsProcessingParameterEnum,
        QgsProcessingParameterNumber,
        QgsProcessingParameterString,
    )

    algorithm = algorithms[name]
    classes = {Kind.INT: QgsProcessingParameterNumber, Kind.FLOAT: QgsProcessingParameterNumber,
               Kind.BOOL: QgsProcessingParameterBoolean, Kind.CHOICE: QgsProcessingParameterEnum,
               Kind.DEVICE: QgsProcessingParameterEnum, Kind.BANDS: QgsProcessingParameterBand,
               Kind.TEXT: QgsProcessingParameterString, Kind.OPTIONS: QgsProcessingParameterString}
    for param in algorithm.shown():
        definition = algorithm.parameterDefinition(param.name)
        where = f"{name}:{param.name}"
        assert definition.description() == param.label and definition.help() == param.help, where
        assert bool(definition.flags() & FLAG_ADVANCED) == param.advanced, where
        if param.kind not in QGIS_BUILT:
            continue  # a layer, file, extent or destination declared by the algorithm
        assert isinstance(definition, classes[param.kind]), where
        # "decided at run time" is an empty value, or for an enum its explicit entry (none_choice)
        assert bool(definition.flags() & FLAG_OPTIONAL) == (param.optional and not param.none_choice), where
        if isinstance(definition, QgsProcessingParameterNumber):
            assert (definition.dataType() == NUMBER_INTEGER) == (param.kind == Kind.INT), where
            assert definition.defaultValue() == param.default, where
            assert definition.minimum() == param.minimum, where  # every number QGIS shows has a lower bound
            high = definition.maximum()
            assert high == param.maximum if param.maximum is not None else high > 1e300, where
        elif isinstance(definition, QgsProcessingParameterEnum):
            assert definition.usesStaticStrings(), where
            assert definition.options() == ([param.none_choice] if param.none_choice else []) + list(param.choices)
            assert definition.defaultValue() == (param.default or param.none_choice), where
        elif isinstance(definition, QgsProcessingParameterBoolean):
            assert definition.defaultValue() == param.default, where
        elif isinstance(definition, QgsProcessingParameterBand):
            assert definition.allowMultiple() and definition.parentLayerParameterName() == param.parent, where


def test_values_become_the_engines_flags(algorithms):
    from qgis.core import QgsProcessingContext

    context = QgsProcessingContext()
    translate = algorithms["translate"]
    words = translate.table_arguments({
        "BANDS": [2, 1], "TILE_SIZE": 64, "DEVICE": "cpu", "BLEND": "crop", "TTA": True,
        "OUTPUT_DTYPE": "same as the training target", "CREATION_OPTIONS": "COMPRESS=ZSTD; PREDICTOR=2|TILED=YES",
    }, context)
    assert words == ["--direction", "a2b", "--bands", "2,1", "--tile-size", "64", "--batch-size", "4",
                     "--device", "cpu", "--blend", "crop", "--tta", "--backend", "torch", "--precision", "float32",
                     "--co", "COMPRESS=ZSTD", "--co", "PREDICTOR=2", "--co", "TILED=YES"]
    words = translate.table_arguments({"OVERLAP": 0, "OUTPUT_DTYPE": "uint16", "COG": True}, context)
    assert words[2:4] == ["--overlap", "0"] and "--dtype" in words and words[words.index("--dtype") + 1] == "uint16"
    train = algorithms["train"].table_arguments({"RESUME": True, "LR": 0.001}, context)
    assert train == ["--epochs", "50", "--batch-size", "4", "--device", "auto", "--resume", "--lr", "0.001",
                     "--lambda-l1", "100.0", "--lambda-feat", "0.0", "--resnet-blocks", "9", "--upsample", "resize",
                     "--d-scales", "1", "--ngf", "64", "--seed", "0"]  # GAN_MODE, GENERATOR: the model's reference
    assert algorithms["train"].table_arguments({"PRECISION": "bfloat16"}, context)[-2:] == ["--precision", "bfloat16"]
    cyclegan = algorithms["traincyclegan"].table_arguments({"GAN_MODE": "hinge", "LAMBDA_CYCLE": 5.0}, context)
    assert cyclegan[:2] == ["--model", "cyclegan"] and "--lambda-l1" not in cyclegan
    assert cyclegan[cyclegan.index("--gan-mode") + 1] == "hinge"
    assert cyclegan[cyclegan.index("--lambda-cycle") + 1] == "5.0" and "--lambda-identity" in cyclegan
    assert translate.table_arguments({"DIRECTION": "b2a"}, context)[:2] == ["--direction", "b2a"]
    unpaired = algorithms["exportunpaired"].table_arguments({"CELL_SIZE2": 30.0}, context)
    assert unpaired[unpaired.index("--cell-size2") + 1] == "30.0"
    assert "--cell-size2" not in algorithms["exportunpaired"].table_arguments({}, context)
    export = algorithms["exportchips"].table_arguments({"RESOLUTION": 2.5, "RESAMPLING": "nearest"}, context)
    assert "2.5" not in export  # RESOLUTION is read by QGIS, not passed to the engine
    assert export[export.index("--resampling") + 1] == "nearest"


@pytest.mark.parametrize(("algorithm", "change", "message"), [
    ("pix2pix:train", {"LR": math.nan}, "Learning rate nan is invalid (LR, --lr)"),
    ("pix2pix:train", {"LR": 1.0}, "Learning rate 1.0 is invalid (LR, --lr): use a finite number from 1e-12 to 0.1"),
    ("pix2pix:train", {"DEVICE": "gpu"}, "Device 'gpu' is unknown (DEVICE, --device)"),
    ("pix2pix:exportchips", {"VALIDATION": 0.95}, "(VALIDATION, --validation): use a finite number from 0 to 0.9"),
    ("pix2pix:exportchips", {"SEED": -1}, "(SEED, --seed): use a whole number of at least 0"),
    ("pix2pix:traincyclegan", {"LAMBDA_IDENTITY": -0.5}, "(LAMBDA_IDENTITY, --lambda-identity): use a finite number"),
    ("pix2pix:traincyclegan", {"RESNET_BLOCKS": 0}, "(RESNET_BLOCKS, --resnet-blocks): use a whole number from 1"),
    ("pix2pix:exportunpaired", {"CELL_SIZE2": -1.0}, "(CELL_SIZE2, --cell-size2): use a finite number of at least 0"),
    ("pix2pix:translate", {"DIRECTION": "sideways"}, "Direction 'sideways' is unknown (DIRECTION, --direction)"),
])
def test_bad_values_are_refused_with_the_engines_message(qgis_app, tmp_path, algorithm, change, message):
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    base = {"pix2pix:train": {"CHIPS": str(tmp_path), "OUTPUT_MODEL": str(tmp_path / "m.p2p")},
            "pix2pix:traincyclegan": {"CHIPS": str(tmp_path), "OUTPUT_MODEL": str(tmp_path / "m.p2p")},
            "pix2pix:exportchips": {"INPUT": "a.tif", "INPUT2": "b.tif", "OUTPUT": str(tmp_path / "chips")},
            "pix2pix:exportunpaired": {"INPUT": "a.tif", "INPUT2": "b.tif", "OUTPUT": str(tmp_path / "chips")},
            "pix2pix:translate": {"INPUT": "a.tif", "MODEL": "m.p2p", "OUTPUT": str(tmp_path / "out.tif")}}
    with pytest.raises(QgsProcessingException) as caught:
        processing.run(algorithm, {**base[algorithm], **change}, feedback=QgsProcessingFeedback())
    assert message in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_a_missing_engine_interpreter_is_reported_before_running(algorithms, monkeypatch, tmp_path):
    for name in ENGINE_ALGORITHMS:
        assert algorithms[name].canExecute() == (True, "")
    missing = str(tmp_path / "no-venv" / "bin" / "python")
    monkeypatch.setenv("PIX2PIX_PYTHON", missing)
    for name in ENGINE_ALGORITHMS:
        ok, message = algorithms[name].canExecute()
        assert not ok and missing in message and "Set up engine" in message and "Python interpreter" in message
    for name in ("setupengine", "checkengine"):  # these must run precisely when the engine is missing
        assert algorithms[name].canExecute() == (True, "")
