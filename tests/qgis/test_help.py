"""Help that teaches: every algorithm and parameter explains itself; enums are stable strings; expert
options are advanced; every algorithm has the plugin's icon."""

from __future__ import annotations

from pathlib import Path

import pytest

EXPECTED = {"exportchips", "exportunpaired", "train", "traincyclegan", "translate", "evaluate", "evaluateunpaired",
            "setupengine", "checkengine"}
ADVANCED = {
    "exportchips": {"SEED", "ESRI_COMPATIBLE"},
    "exportunpaired": {"SEED"},
    "evaluateunpaired": {"SPLIT", "SAMPLE_PIXELS", "SEED"},
    "train": {"LR", "LAMBDA_L1", "NGF", "SEED", "UPSAMPLE", "D_SCALES", "GAN_MODE", "LAMBDA_FEAT", "SPECTRAL_NORM",
              "GENERATOR", "RESNET_BLOCKS", "PRECISION"},
    "traincyclegan": {"LR", "NGF", "SEED", "UPSAMPLE", "D_SCALES", "GAN_MODE", "SPECTRAL_NORM", "GENERATOR",
                      "RESNET_BLOCKS", "LAMBDA_CYCLE", "LAMBDA_IDENTITY", "PRECISION"},
    "translate": {"BLEND", "TTA", "OUTPUT_DTYPE", "COG", "CREATION_OPTIONS", "BACKEND", "PRECISION"},
    "setupengine": {"FOLDER", "TORCH_INDEX", "BASE_PYTHON"},
}


@pytest.fixture(scope="module")
def algorithms(qgis_app) -> dict:
    from qgis.core import QgsApplication

    provider = QgsApplication.processingRegistry().providerById("pix2pix")
    return {algorithm.name(): algorithm for algorithm in provider.algorithms()}


def test_every_algorithm_is_there_with_help_a_readme_link_and_an_icon(algorithms):
    assert set(algorithms) == EXPECTED
    for name, algorithm in algorithms.items():
        text = algorithm.shortHelpString()
        assert len(text) > 300 and "README" in text and "github.com" in text, name
        assert algorithm.shortDescription() and algorithm.tags() and algorithm.helpUrl().startswith("https://")
        assert not algorithm.icon().isNull() and Path(algorithm.svgIconPath()).is_file(), name


def test_every_parameter_has_help_and_enums_use_static_strings(algorithms):
    from qgis.core import QgsProcessingParameterEnum

    for name, algorithm in algorithms.items():
        for parameter in algorithm.parameterDefinitions():
            assert len(parameter.help()) > 20, f"{name}:{parameter.name()} has no help"
            if isinstance(parameter, QgsProcessingParameterEnum):
                assert parameter.usesStaticStrings(), f"{name}:{parameter.name()}"
                assert parameter.defaultValue() in parameter.options()


def test_expert_options_are_advanced_and_the_rest_are_not(algorithms):
    from pix2pix_toolbox.processing_provider.compat import FLAG_ADVANCED

    for name, algorithm in algorithms.items():
        advanced = {p.name() for p in algorithm.parameterDefinitions() if p.flags() & FLAG_ADVANCED}
        assert advanced == ADVANCED.get(name, set()), name


def test_shims_resolve_to_real_enum_values_on_this_qgis():
    from pix2pix_toolbox.processing_provider import compat

    for value in ("FLAG_ADVANCED", "FLAG_OPTIONAL", "NUMBER_INTEGER", "NUMBER_DOUBLE", "FILE_FOLDER", "FILE_FILE",
                  "SOURCE_POLYGON", "ALGORITHM_SUPPORTS_BATCH", "RASTER_SIZE_CAPABILITY", "STRETCH_TO_MIN_MAX",
                  "CUMULATIVE_CUT", "WKT_PREFERRED_GDAL", "DATA_TYPE_BYTE"):
        assert getattr(compat, value) is not None, value
    assert len(compat.ARGB_DATA_TYPES) == 2
