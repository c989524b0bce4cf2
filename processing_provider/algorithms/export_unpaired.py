"""Pix2Pix › Export unpaired chips (``pix2pix:exportunpaired``)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
)

from ...pix2pix_qgis.contract.tables import EXPORT_UNPAIRED
from ..compat import SOURCE_POLYGON
from ..engine import run_engine
from ..layers import mask_to_geojson
from .base import EngineAlgorithm


def _polygons(name: str, label: str) -> QgsProcessingParameterFeatureSource:
    """An optional polygon layer parameter (a mask)."""
    return QgsProcessingParameterFeatureSource(name, label, [SOURCE_POLYGON], optional=True)


class ExportUnpairedAlgorithm(EngineAlgorithm):
    """Export unpaired chips: cuts two rasters that need not overlap into CycleGAN chips (``export-unpaired``)."""

    COMMAND = EXPORT_UNPAIRED
    INPUT, INPUT2, MASK, MASK2, OUTPUT = "INPUT", "INPUT2", "MASK", "MASK2", "OUTPUT"

    def name(self) -> str:
        """Stable id ``pix2pix:exportunpaired`` (scripts and models use it; never translated)."""
        return "exportunpaired"

    def displayName(self) -> str:
        """The tool's translated name in the Processing toolbox."""
        return self.tr("Export unpaired chips")

    def shortDescription(self) -> str:
        """One translated line: the toolbox tooltip and the modeler's description."""
        return self.tr("Cut two rasters that need not overlap into unpaired training chips for CycleGAN.")

    def tags(self) -> list[str]:
        """Translated words the toolbox search matches besides the name."""
        return self.tr("cyclegan,unpaired,deep learning,training data,chips,tiles,export,esri,sar").split(",")

    def help_text(self) -> str:
        """What the tool does, what each option trades and typical values (translated HTML)."""
        return self.tr(
            "<p>Cuts raster <b>A</b> (one domain, e.g. SAR or a historic scan) and raster <b>B</b> (the other, "
            "e.g. an orthophoto) into chips for <i>Train CycleGAN</i>. Unlike <i>Export paired chips</i>, A and B "
            "need not overlap, be taken at the same time, or share a CRS or cell size: each raster is cut on its "
            "own grid, with its own statistics, nodata rules, mask and validation split.</p>"
            "<p>B is resampled, in its own CRS, to A's cell size on the ground (or <b>cell size of B</b>), so a "
            "chip covers the same ground in both domains; the log says so.</p>"
            "<p><b>Tile size</b>: chip width in pixels, the same in both domains (128 trains faster on a CPU; "
            "ResNet generators need a multiple of 4). <b>Stride</b>: step between chips. <b>Validation</b>: the "
            "share of each domain's chips held out, as whole spatial blocks.</p>"
            "<p>Output: Esri's CycleGAN layout (A/images, B/images, with Esri's statistics files) plus chips.json. "
            "A previous unpaired export in the folder is replaced, keeping what arcgis.learn saved there; a folder "
            "that holds anything else is refused, naming it.</p>"
            "<p>A and B may be any raster layers: local files are read as they are; a WMS, XYZ, GeoPackage or "
            "database layer is first read into a temporary GeoTIFF on its own grid at its native resolution.</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        """Declare the parameters and outputs.

        Rasters A and B, a mask for each, the chips folder, the ``export-unpaired`` table's options, and the
        chip counts per domain and split and the manifest.
        """
        self.declare({
            self.INPUT: QgsProcessingParameterRasterLayer,
            self.INPUT2: QgsProcessingParameterRasterLayer,
            self.MASK: _polygons,
            self.MASK2: _polygons,
            self.OUTPUT: QgsProcessingParameterFolderDestination,
        })
        for name, label in (("TRAIN_A", "Training chips of A"), ("VALIDATION_A", "Validation chips of A"),
                            ("TRAIN_B", "Training chips of B"), ("VALIDATION_B", "Validation chips of B")):
            self.addOutput(QgsProcessingOutputNumber(name, self.tr(label)))
        self.addOutput(QgsProcessingOutputFile("MANIFEST", self.tr("Manifest (chips.json)")))

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict[str, Any]:
        """Run ``export-unpaired`` on A and B, each a file on its own grid, masks in each raster's CRS.

        Returns the folder, chip counts per domain and split, and the manifest path.
        """
        path_a, _, _ = self.raster_file(self.INPUT, context, feedback)
        path_b, _, _ = self.raster_file(self.INPUT2, context, feedback)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        command = ["export-unpaired", path_a, path_b, output, *self.table_arguments(parameters, context)]
        for name, raster in ((self.MASK, self.INPUT), (self.MASK2, self.INPUT2)):
            mask = self.parameterAsSource(parameters, name, context)
            if mask is not None:
                command += self.argv(name, mask_to_geojson(mask, self.raster(raster).crs, context, name))
        result = run_engine(command, feedback, [output])
        counts = {f"{split.upper()}_{domain.upper()}": result[f"{domain}_{split}"]
                  for domain in ("a", "b") for split in ("train", "validation")}
        return {self.OUTPUT: output, "MANIFEST": result["manifest"], **counts}
