"""The engine's output-path guard reached through QGIS: an algorithm never writes over one of its inputs.

The QGIS side passes destinations to the engine as they are; the engine refuses an output that
is an input of the same run before any work, and the provider shows its message. The input
must be byte for byte what it was.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from .processing_runs import run
from .tiny_models import train_tiny_model


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return train_tiny_model(tmp_path_factory.mktemp("tiny model"))


def test_translate_refuses_to_write_over_its_input_or_model(qgis_app, make_raster, model):
    from qgis.core import QgsProcessingException

    raster = make_raster("in.tif", np.random.default_rng(1).integers(0, 255, (3, 64, 64)).astype("uint8"))
    before = digest(raster), digest(model)
    for target, role in ((raster, "input raster"), (model, "model")):
        with pytest.raises(QgsProcessingException, match=f"is the {role} of this run"):
            run("pix2pix:translate", {"INPUT": str(raster), "MODEL": str(model), "DEVICE": "cpu",
                                      "OUTPUT": str(target)})
    assert (digest(raster), digest(model)) == before


def test_evaluate_refuses_a_report_at_the_prediction(qgis_app, make_raster):
    from qgis.core import QgsProcessingException

    data = np.random.default_rng(2).integers(0, 255, (3, 64, 64)).astype("uint8")
    prediction, reference = make_raster("p.tif", data), make_raster("r.tif", 255 - data)
    before = digest(prediction)
    with pytest.raises(QgsProcessingException, match="is the prediction of this run"):
        run("pix2pix:evaluate", {"PREDICTION": str(prediction), "REFERENCE": str(reference),
                                 "ERROR_RASTER": str(prediction)})
    assert digest(prediction) == before
