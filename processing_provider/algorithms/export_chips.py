"""Pix2Pix › Export paired chips (``pix2pix:exportchips``)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
)

from ...pix2pix_qgis.contract.tables import EXPORT
from ..compat import SOURCE_POLYGON
from ..engine import run_engine
from ..layers import mask_to_geojson
from .base import EngineAlgorithm


class ExportChipsAlgorithm(EngineAlgorithm):
    """Export paired chips: cuts rasters A and B into a training chips folder (``export``)."""
    COMMAND = EXPORT
    INPUT, INPUT2, EXTENT, MASK, OUTPUT = "INPUT", "INPUT2", "EXTENT", "MASK", "OUTPUT"

    def name(self) -> str:
        """Stable id ``pix2pix:exportchips`` (scripts and models use it; never translated)."""
        return "exportchips"

    def displayName(self) -> str:
        """The tool's translated name in the Processing toolbox."""
        return self.tr("Export paired chips")

    def shortDescription(self) -> str:
        """One translated line: the toolbox tooltip and the modeler's description."""
        return self.tr("Cut two co-located rasters into paired, georeferenced training chips.")

    def tags(self) -> list[str]:
        """Translated words the toolbox search matches besides the name."""
        return self.tr("pix2pix,deep learning,training data,chips,tiles,export,esri,image translation").split(",")

    def help_text(self) -> str:
        """What the tool does, what each option trades and typical values (translated HTML)."""
        return self.tr(
            "<p>Cuts the <b>input raster</b> (A, what the model will see) and the <b>target raster</b> "
            "(B, what it should produce) into paired chips for training Pix2Pix.</p>"
            "<p>Chips are pixel-exact windows of A. When B has another CRS, cell size or alignment, it is "
            "resampled onto A's grid (bilinear by default; use nearest for categories) and the log says so.</p>"
            "<p><b>Tile size</b>: chip width in pixels; 256 is typical, and it must be a multiple of 2^depth of "
            "the network (any multiple of 32 works with the defaults). <b>Stride</b>: step between chips; half "
            "the tile size gives 50 % overlap and four times more chips from the same area.</p>"
            "<p><b>Validation</b>: the share of chips held out, taken as whole spatial blocks; training chips "
            "that overlap a validation chip are dropped, so validation scores are honest.</p>"
            "<p>Output: a folder in Esri's Export Tiles layout (images/, images2/, "
            "esri_accumulated_stats.json, map.txt, as ArcGIS Pro 3.3 writes them) plus chips.json with grids, "
            "statistics and the split. ArcGIS arcgis.learn can train on it too if the tile size is a multiple of "
            "256 (the log warns otherwise). A previous export in the folder is replaced, but not what "
            "arcgis.learn saved there (models/, its statistics); a folder that also holds other files is "
            "refused, naming them.</p>"
            "<p>A and B may be any raster layers: local files are read as they are; a WMS, XYZ, GeoPackage or "
            "database layer A is read into a temporary GeoTIFF at <b>resolution</b> (default: native), and such a "
            "B is read directly onto A's grid.</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        """Declare the parameters and outputs.

        Rasters A and B, extent, mask and chips folder, the ``export`` table's options, and the chip-count and
        manifest outputs.
        """
        self.declare({
            self.INPUT: QgsProcessingParameterRasterLayer,
            self.INPUT2: QgsProcessingParameterRasterLayer,
            self.EXTENT: lambda name, label: QgsProcessingParameterExtent(name, label, optional=True),
            self.MASK: lambda name, label: QgsProcessingParameterFeatureSource(name, label, [SOURCE_POLYGON],
                                                                               optional=True),
            self.OUTPUT: QgsProcessingParameterFolderDestination,
        })
        self.addOutput(QgsProcessingOutputNumber("CHIP_COUNT", self.tr("Chips exported")))
        self.addOutput(QgsProcessingOutputNumber("TRAIN_COUNT", self.tr("Training chips")))
        self.addOutput(QgsProcessingOutputNumber("VALIDATION_COUNT", self.tr("Validation chips")))
        self.addOutput(QgsProcessingOutputFile("MANIFEST", self.tr("Manifest (chips.json)")))

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict[str, Any]:
        """Run ``export`` on A and B (A cut to the extent and resolution asked for).

        Returns the folder, chip counts per split and the manifest path.
        """
        raster_a = self.raster(self.INPUT)
        extent = self.parameterAsExtent(parameters, self.EXTENT, context, raster_a.crs) if parameters.get(
            self.EXTENT) else None
        resolution = self.resolution(parameters, context)
        path_a, grid_a, written_a = self.raster_file(self.INPUT, context, feedback, extent, resolution)
        path_b, _, _ = self.raster_file(self.INPUT2, context, feedback, grid=grid_a)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        command = ["export", path_a, path_b, output, *self.table_arguments(parameters, context)]
        if not written_a:  # a written A already covers exactly the extent
            command += self.extent_arguments(parameters, self.EXTENT, context, raster_a.crs)
        mask = self.parameterAsSource(parameters, self.MASK, context)
        if mask is not None:
            command += self.argv(self.MASK, mask_to_geojson(mask, raster_a.crs, context))
        result = run_engine(command, feedback, [output])
        return {
            self.OUTPUT: output,
            "CHIP_COUNT": result["chips"],
            "TRAIN_COUNT": result["train"],
            "VALIDATION_COUNT": result["validation"],
            "MANIFEST": result["manifest"],
        }
