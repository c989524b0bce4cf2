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

from ..compat import SOURCE_POLYGON
from ..engine import run_engine
from ..layers import mask_to_geojson
from ..styling import style_on_load
from .base import EngineAlgorithm

METRICS = ("MAE", "RMSE", "BIAS", "PSNR", "SSIM", "R2")


class EvaluateAlgorithm(EngineAlgorithm):
    PREDICTION, REFERENCE, MASK, EXTENT = "PREDICTION", "REFERENCE", "MASK", "EXTENT"
    OUTPUT_REPORT, ERROR_RASTER, OUTPUT_HTML = "OUTPUT_REPORT", "ERROR_RASTER", "OUTPUT_HTML"

    def name(self) -> str:
        return "evaluate"

    def displayName(self) -> str:
        return self.tr("Evaluate translation")

    def shortDescription(self) -> str:
        return self.tr("Compare a translated raster with a reference: MAE, RMSE, bias, PSNR, SSIM, R².")

    def tags(self) -> list[str]:
        return self.tr("pix2pix,evaluate,accuracy,metrics,psnr,ssim,rmse,validation").split(",")

    def help_text(self) -> str:
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
        add = self.addParameter
        add(QgsProcessingParameterRasterLayer(self.PREDICTION, self.tr("Translated raster")))
        add(QgsProcessingParameterRasterLayer(self.REFERENCE, self.tr("Reference raster")))
        add(QgsProcessingParameterFeatureSource(self.MASK, self.tr("Only inside these polygons"), [SOURCE_POLYGON],
                                                optional=True))
        add(QgsProcessingParameterExtent(self.EXTENT, self.tr("Extent"), optional=True))
        add(QgsProcessingParameterFileDestination(self.OUTPUT_REPORT, self.tr("Metrics report (JSON)"),
                                                  self.tr("JSON files (*.json)"), optional=True))
        add(QgsProcessingParameterFileDestination(self.OUTPUT_HTML, self.tr("Metrics report (HTML)"),
                                                  self.tr("HTML files (*.html)"), optional=True))
        add(QgsProcessingParameterRasterDestination(self.ERROR_RASTER, self.tr("Absolute error raster"),
                                                    optional=True, createByDefault=False))
        for metric in METRICS:
            self.addOutput(QgsProcessingOutputNumber(metric, self.tr(f"{metric} (mean over bands)")))
        self.addOutput(QgsProcessingOutputString("BANDS_JSON", self.tr("Per-band metrics (JSON)")))
        self.set_help({
            "PREDICTION": "The output of Translate raster (or any raster on the reference's grid).",
            "REFERENCE": "The real target raster over the same area, on the same grid. A layer that is not a local "
                         "file (WMS, XYZ, GeoPackage) is read onto the prediction's grid first.",
            "MASK": "Count only pixels inside these polygons (e.g. held-out areas).",
            "EXTENT": "Count only pixels inside this rectangle.",
            "OUTPUT_REPORT": "Metrics per band and overall as JSON, for scripts and comparisons between models.",
            "OUTPUT_HTML": "The same metrics as an HTML page that opens in the Results Viewer.",
            "ERROR_RASTER": "|prediction − reference| per band, to see where the model is wrong.",
        })

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict[str, Any]:
        prediction_path, grid, _ = self.raster_file(self.PREDICTION, context, feedback)
        reference_path, _, _ = self.raster_file(self.REFERENCE, context, feedback, grid=grid)
        reference_crs = self.raster(self.REFERENCE).crs if not self.raster(self.REFERENCE).provider else grid.crs
        command = ["evaluate", prediction_path, reference_path]
        outputs: dict[str, Any] = {}
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context)
        html = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        errors = self.parameterAsOutputLayer(parameters, self.ERROR_RASTER, context)
        for flag, path, key in (("--report", report, self.OUTPUT_REPORT), ("--html", html, self.OUTPUT_HTML),
                                ("--error-raster", errors, self.ERROR_RASTER)):
            if path:
                command += [flag, path]
                outputs[key] = path
        mask = self.parameterAsSource(parameters, self.MASK, context)
        if mask is not None:
            command += ["--mask", mask_to_geojson(mask, reference_crs, context)]
        command += self.extent_arguments(parameters, self.EXTENT, context, reference_crs)
        result = run_engine(command, feedback, [p for p in (report, html, errors) if p])
        style_on_load(context, errors)
        for band in result["bands"]:
            feedback.pushInfo(self.tr(
                "Band {band}: MAE {mae:.4g}, RMSE {rmse:.4g}, bias {bias:.4g}, PSNR {psnr:.2f} dB, SSIM {ssim:.4f}, "
                "R² {r2:.4f}".format(**{k: (v if v is not None else float("nan")) for k, v in band.items()})
            ))
        outputs.update({metric: result.get(metric.lower()) for metric in METRICS})
        outputs["BANDS_JSON"] = json.dumps(result["bands"])
        return outputs
