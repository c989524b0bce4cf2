"""Pix2Pix › Evaluate translation (``pix2pix:evaluate``)."""

from __future__ import annotations

import json
from typing import Any

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ...pix2pix_qgis.contract.tables import EVALUATE
from ..compat import SOURCE_POLYGON
from ..engine import run_engine
from ..layers import mask_to_geojson
from ..styling import style_on_load
from .base import EngineAlgorithm

METRICS = ("MAE", "RMSE", "BIAS", "PSNR", "SSIM", "R2")


class EvaluateAlgorithm(EngineAlgorithm):
    """Evaluate translation: metrics of a translated raster against a reference (``evaluate``)."""
    COMMAND = EVALUATE
    PREDICTION, REFERENCE, MASK, EXTENT = "PREDICTION", "REFERENCE", "MASK", "EXTENT"
    OUTPUT_REPORT, ERROR_RASTER, OUTPUT_HTML = "OUTPUT_REPORT", "ERROR_RASTER", "OUTPUT_HTML"

    def name(self) -> str:
        """Stable id ``pix2pix:evaluate`` (scripts and models use it; never translated)."""
        return "evaluate"

    def displayName(self) -> str:
        """The tool's translated name in the Processing toolbox."""
        return self.tr("Evaluate translation")

    def shortDescription(self) -> str:
        """One translated line: the toolbox tooltip and the modeler's description."""
        return self.tr("Compare a translated raster with a reference: MAE, RMSE, bias, PSNR, SSIM, R².")

    def tags(self) -> list[str]:
        """Translated words the toolbox search matches besides the name."""
        return self.tr("pix2pix,evaluate,accuracy,metrics,psnr,ssim,rmse,validation").split(",")

    def help_text(self) -> str:
        """What the tool does, what each option trades and typical values (translated HTML)."""
        return self.tr(
            "<p>Compares a translated raster with a reference raster of the same grid (same CRS and cell size, "
            "aligned pixels) over the pixels valid in both, optionally inside <b>mask</b> polygons or an "
            "<b>extent</b>. Reports per band and overall: MAE, RMSE and bias in the reference's units, PSNR and "
            "SSIM on a stated data range (255 for 8-bit data, else the reference's value range) and R².</p>"
            "<p>The numbers are outputs a graphical model can use; the JSON report has them per band, and the "
            "optional error raster maps |prediction − reference|.</p>"
            "<p>Typical 8-bit imagery: MAE 5–15 and PSNR 20–30 dB for a useful model; SSIM above 0.7 means the "
            "structure is right. Compare models on the same held-out area, never on the training area.</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        """Declare the parameters and outputs.

        The two rasters, mask and extent, the report/HTML/error-raster destinations, the ``evaluate`` table's
        options and one output per metric.
        """
        self.declare({
            self.PREDICTION: QgsProcessingParameterRasterLayer,
            self.REFERENCE: QgsProcessingParameterRasterLayer,
            self.MASK: lambda name, label: QgsProcessingParameterFeatureSource(name, label, [SOURCE_POLYGON],
                                                                               optional=True),
            self.EXTENT: lambda name, label: QgsProcessingParameterExtent(name, label, optional=True),
            self.OUTPUT_REPORT: lambda name, label: QgsProcessingParameterFileDestination(
                name, label, self.tr("JSON files (*.json)"), optional=True),
            self.OUTPUT_HTML: lambda name, label: QgsProcessingParameterFileDestination(
                name, label, self.tr("HTML files (*.html)"), optional=True),
            self.ERROR_RASTER: lambda name, label: QgsProcessingParameterRasterDestination(
                name, label, optional=True, createByDefault=False),
        })
        for metric in METRICS:
            self.addOutput(QgsProcessingOutputNumber(metric, self.tr("{0} (mean over bands)").format(metric)))
        self.addOutput(QgsProcessingOutputString("BANDS_JSON", self.tr("Per-band metrics (JSON)")))

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict[str, Any]:
        """Run ``evaluate`` on the two rasters (written to files first if they are not local GeoTIFFs).

        Returns the mean metrics, per-band JSON and the files written.
        """
        prediction_path, grid, _ = self.raster_file(self.PREDICTION, context, feedback)
        reference_path, _, _ = self.raster_file(self.REFERENCE, context, feedback, grid=grid)
        reference_crs = self.raster(self.REFERENCE).crs if not self.raster(self.REFERENCE).provider else grid.crs
        command = ["evaluate", prediction_path, reference_path]
        outputs: dict[str, Any] = {}
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context)
        html = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        errors = self.parameterAsOutputLayer(parameters, self.ERROR_RASTER, context)
        for name, path in ((self.OUTPUT_REPORT, report), (self.OUTPUT_HTML, html), (self.ERROR_RASTER, errors)):
            if path:
                command += self.argv(name, path)
                outputs[name] = path
        mask = self.parameterAsSource(parameters, self.MASK, context)
        if mask is not None:
            command += self.argv(self.MASK, mask_to_geojson(mask, reference_crs, context))
        command += self.extent_arguments(parameters, self.EXTENT, context, reference_crs)
        result = run_engine(command, feedback, [p for p in (report, html, errors) if p])
        style_on_load(context, errors)
        for band in result["bands"]:
            feedback.pushInfo(self.tr(
                "Band {band}: MAE {mae:.4g}, RMSE {rmse:.4g}, bias {bias:.4g}, PSNR {psnr:.2f} dB, SSIM {ssim:.4f}, "
                "R² {r2:.4f}").format(**{k: (v if v is not None else float("nan")) for k, v in band.items()}))
        outputs.update({metric: result.get(metric.lower()) for metric in METRICS})
        outputs["BANDS_JSON"] = json.dumps(result["bands"])
        return outputs
