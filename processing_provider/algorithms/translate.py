"""Pix2Pix › Translate raster (``pix2pix:translate``)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ...pix2pix_qgis.contract.tables import TRANSLATE
from ..compat import FILE_FILE
from ..engine import run_engine
from ..styling import style_on_load
from .base import EngineAlgorithm


class TranslateAlgorithm(EngineAlgorithm):
    """Translate raster: applies a ``.p2p`` model to a whole raster of any size, tile by tile (``translate``)."""
    COMMAND = TRANSLATE
    INPUT, MODEL, EXTENT, OUTPUT = "INPUT", "MODEL", "EXTENT", "OUTPUT"

    def name(self) -> str:
        """Stable id ``pix2pix:translate`` (scripts and models use it; never translated)."""
        return "translate"

    def displayName(self) -> str:
        """The tool's translated name in the Processing toolbox."""
        return self.tr("Translate raster")

    def shortDescription(self) -> str:
        """One translated line: the toolbox tooltip and the modeler's description."""
        return self.tr("Translate a whole raster of any size with a trained Pix2Pix or CycleGAN model.")

    def tags(self) -> list[str]:
        """Translated words the toolbox search matches besides the name."""
        return self.tr("pix2pix,cyclegan,deep learning,inference,predict,translate,image translation").split(",")

    def help_text(self) -> str:
        """What the tool does, what each option trades and typical values (translated HTML)."""
        return self.tr(
            "<p>Applies a <b>.p2p</b> model from <i>Train Pix2Pix</i> or <i>Train CycleGAN</i> to a raster of any "
            "size and writes a georeferenced GeoTIFF on the input's grid (same CRS, transform, width and height, or "
            "the <b>extent</b>'s window) in the target's units, bands and data type.</p>"
            "<p><b>Direction</b>: a2b (default) turns a raster like the training input A into B; b2a, for CycleGAN "
            "models (which hold both generators), turns a raster like B into A.</p>"
            "<p>The raster is processed in overlapping tiles; each tile's outer margin is discarded and the rest "
            "of the overlap is cross-faded, so no seams show. Memory stays bounded whatever the raster size. "
            "Nodata in the input is nodata in the output.</p>"
            "<p><b>Tile size</b>: default two or three chips of the model; larger tiles give the network more context. "
            "<b>Overlap</b>: default a quarter chip; more overlap costs more compute (the log shows the factor). "
            "<b>Batch size</b>: tiles per forward pass on a GPU (the CPU uses one fixed batch shape, so its output "
            "is the same bit for bit whatever this value). "
            "<b>TTA</b> (advanced) averages the 8 flips and rotations: smoother, 8× slower. "
            "<b>Precision</b> (advanced): float32 is exact; bfloat16 (CPUs with AVX512-BF16 or AMX, recent "
            "GPUs) and float16 (GPU) are faster and differ slightly (see the parameter's help).</p>"
            "<p>The input may be any raster layer. Local files (GeoTIFF, VRT, ...) are read as they are; a WMS, "
            "XYZ, GeoPackage or database layer is first read into a temporary GeoTIFF over the <b>extent</b> at "
            "<b>resolution</b> (default: its native one) — use the resolution the model was trained at.</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        """Declare the parameters and outputs.

        Input raster, model file, extent and output raster, plus the ``translate`` table's options.
        """
        self.declare({
            self.INPUT: QgsProcessingParameterRasterLayer,
            self.MODEL: lambda name, label: QgsProcessingParameterFile(name, label, behavior=FILE_FILE,
                                                                       extension="p2p"),
            self.EXTENT: lambda name, label: QgsProcessingParameterExtent(name, label, optional=True),
            self.OUTPUT: QgsProcessingParameterRasterDestination,
        })

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict[str, Any]:
        """Run ``translate`` on the input, cut to the extent and resolution asked for; returns the output path.

        The output is styled when loaded, and the log says how fast it went.
        """
        raster = self.raster(self.INPUT)
        extent = self.parameterAsExtent(parameters, self.EXTENT, context, raster.crs) if parameters.get(
            self.EXTENT) else None
        resolution = self.resolution(parameters, context)
        source, _, written = self.raster_file(self.INPUT, context, feedback, extent, resolution)
        model = self.parameterAsFile(parameters, self.MODEL, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        command = ["translate", source, model, output, *self.table_arguments(parameters, context)]
        if not written:  # a written layer already covers exactly the extent
            command += self.extent_arguments(parameters, self.EXTENT, context, raster.crs)
        result = run_engine(command, feedback, [output])
        style_on_load(context, output)
        feedback.pushInfo(self.tr(
            "{width}×{height} px in {seconds:.1f} s ({megapixels_per_second:.2f} MP/s on {device}; {tiles} tiles, "
            "compute factor {compute_factor:.2f})."
        ).format(**result))
        return {self.OUTPUT: output}
