"""Pix2Pix › Evaluate without pairs (``pix2pix:evaluateunpaired``)."""

from __future__ import annotations

import json
from typing import Any

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from ...pix2pix_qgis.contract.tables import EVALUATE_UNPAIRED
from ..compat import FILE_FOLDER
from ..engine import run_engine
from .base import EngineAlgorithm

OPTIONAL_RASTERS = ("REFERENCE", "ORIGINAL", "RECONSTRUCTION")


def _optional_raster(name: str, label: str) -> QgsProcessingParameterRasterLayer:
    """An optional raster layer parameter."""
    return QgsProcessingParameterRasterLayer(name, label, optional=True)


class EvaluateUnpairedAlgorithm(EngineAlgorithm):
    """Evaluate without pairs: distribution measures against the target domain's chips (``evaluate-unpaired``)."""

    COMMAND = EVALUATE_UNPAIRED
    PREDICTION, CHIPS, OUTPUT_REPORT, OUTPUT_HTML = "PREDICTION", "CHIPS", "OUTPUT_REPORT", "OUTPUT_HTML"

    def name(self) -> str:
        """Stable id ``pix2pix:evaluateunpaired`` (scripts and models use it; never translated)."""
        return "evaluateunpaired"

    def displayName(self) -> str:
        """The tool's translated name in the Processing toolbox."""
        return self.tr("Evaluate without pairs")

    def shortDescription(self) -> str:
        """One translated line: the toolbox tooltip and the modeler's description."""
        return self.tr("Score a CycleGAN translation where no aligned reference exists: distributions and cycle error.")

    def tags(self) -> list[str]:
        """Translated words the toolbox search matches besides the name."""
        return self.tr("cyclegan,unpaired,evaluate,wasserstein,histogram,cycle,metrics,quality").split(",")

    def help_text(self) -> str:
        """What the tool does, what each measure means and how to read it (translated HTML)."""
        return self.tr(
            "<p>Scores a translated raster when there is no aligned reference to compare it with, the usual case "
            "for CycleGAN. The prediction's values are compared with the target domain's chips (by default the "
            "validation chips held out from training) in the <b>chips folder</b> of <i>Export unpaired "
            "chips</i>:</p>"
            "<ul><li><b>Wasserstein distance</b> per band, in the target's units: how far, on average, values must "
            "move to turn the prediction's histogram into the target's. 0: the same distribution; compare it with "
            "the target's standard deviation (the relative value).</li>"
            "<li><b>Mean and standard deviation</b> per band of both, to see a colour shift or washed-out "
            "contrast.</li>"
            "<li>With the <b>original</b> raster and the prediction translated back (<b>reconstruction</b>, "
            "Translate raster with the other DIRECTION): the <b>cycle error</b>, MAE, RMSE, PSNR and SSIM of the "
            "round trip. A low cycle error says the model keeps the input's content, not that the colours are "
            "right.</li></ul>"
            "<p>A matching distribution does not prove that each pixel is right: a model can paint plausible "
            "colours in the wrong places. Where an aligned <b>reference</b> exists for some area, give it too: "
            "MAE, RMSE, PSNR and SSIM against it are the only pixel-by-pixel check.</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        """Declare the parameters and outputs.

        Prediction, chips folder, the optional reference, original and reconstruction, report destinations,
        the ``evaluate-unpaired`` table's options, and one output per headline measure.
        """
        self.declare({
            self.PREDICTION: QgsProcessingParameterRasterLayer,
            self.CHIPS: lambda name, label: QgsProcessingParameterFile(name, label, behavior=FILE_FOLDER),
            **{name: _optional_raster for name in OPTIONAL_RASTERS},
            self.OUTPUT_REPORT: lambda name, label: QgsProcessingParameterFileDestination(
                name, label, self.tr("JSON files (*.json)"), optional=True),
            self.OUTPUT_HTML: lambda name, label: QgsProcessingParameterFileDestination(
                name, label, self.tr("HTML files (*.html)"), optional=True),
        })
        for name, label in (("WASSERSTEIN", "Wasserstein distance (target units, mean over bands)"),
                            ("WASSERSTEIN_RELATIVE", "Wasserstein distance / target std (mean over bands)"),
                            ("REFERENCE_MAE", "MAE against the reference"),
                            ("REFERENCE_PSNR", "PSNR against the reference (dB)"),
                            ("CYCLE_MAE", "Cycle error: MAE of the round trip"),
                            ("CYCLE_PSNR", "Cycle error: PSNR of the round trip (dB)")):
            self.addOutput(QgsProcessingOutputNumber(name, self.tr(label)))
        self.addOutput(QgsProcessingOutputString("BANDS_JSON", self.tr("Per-band measures (JSON)")))

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict[str, Any]:
        """Run ``evaluate-unpaired`` (rasters that are not local files are written to GeoTIFFs first).

        Returns the headline measures, per-band JSON and the files written.
        """
        prediction, grid, _ = self.raster_file(self.PREDICTION, context, feedback)
        chips = self.parameterAsFile(parameters, self.CHIPS, context)
        command = ["evaluate-unpaired", prediction, chips, *self.table_arguments(parameters, context)]
        for name in OPTIONAL_RASTERS:
            if name in self._rasters:  # the reference lies on the prediction's grid, the others on their own
                path, _, _ = self.raster_file(name, context, feedback, grid=grid if name == "REFERENCE" else None)
                command += self.argv(name, path)
        outputs: dict[str, Any] = {}
        for name in (self.OUTPUT_REPORT, self.OUTPUT_HTML):
            path = self.parameterAsFileOutput(parameters, name, context)
            if path:
                command += self.argv(name, path)
                outputs[name] = path
        result = run_engine(command, feedback, list(outputs.values()))
        for band in result["bands"]:
            feedback.pushInfo(self.tr(
                "Band {band}: Wasserstein {wasserstein:.4g}; mean {prediction_mean:.4g} (target {target_mean:.4g}), "
                "std {prediction_std:.4g} (target {target_std:.4g})").format(**band))
        reference, cycle = result.get("reference") or {}, result.get("cycle") or {}
        outputs.update({
            "WASSERSTEIN": result["wasserstein"], "WASSERSTEIN_RELATIVE": result.get("wasserstein_relative"),
            "REFERENCE_MAE": reference.get("mae"), "REFERENCE_PSNR": reference.get("psnr"),
            "CYCLE_MAE": cycle.get("mae"), "CYCLE_PSNR": cycle.get("psnr"),
            "BANDS_JSON": json.dumps(result["bands"]),
        })
        return outputs
