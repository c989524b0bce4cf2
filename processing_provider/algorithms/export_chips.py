"""Pix2Pix › Export paired chips (``pix2pix:exportchips``)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ..compat import NUMBER_DOUBLE, NUMBER_INTEGER, SOURCE_POLYGON, make_advanced
from ..engine import run_engine
from ..layers import mask_to_geojson
from .base import EngineAlgorithm

RESAMPLING = ["bilinear", "nearest", "cubic"]


class ExportChipsAlgorithm(EngineAlgorithm):
    INPUT, INPUT2, BANDS, BANDS2 = "INPUT", "INPUT2", "BANDS", "BANDS2"
    TILE_SIZE, STRIDE, EXTENT, MASK = "TILE_SIZE", "STRIDE", "EXTENT", "MASK"
    MAX_NODATA, VALIDATION, SEED, RESAMPLING = "MAX_NODATA", "VALIDATION", "SEED", "RESAMPLING"
    OUTPUT, RESOLUTION, ESRI_COMPATIBLE = "OUTPUT", "RESOLUTION", "ESRI_COMPATIBLE"

    def name(self) -> str:
        return "exportchips"

    def displayName(self) -> str:
        return self.tr("Export paired chips")

    def shortDescription(self) -> str:
        return self.tr("Cut two co-located rasters into paired, georeferenced training chips.")

    def tags(self) -> list[str]:
        return self.tr("pix2pix,deep learning,training data,chips,tiles,export,esri,image translation").split(",")

    def help_text(self) -> str:
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
            "arcgis.learn saved there.</p>"
            "<p>A and B may be any raster layers: local files are read as they are; a WMS, XYZ, GeoPackage or "
            "database layer A is read into a temporary GeoTIFF at <b>resolution</b> (default: native), and such a "
            "B is read directly onto A's grid.</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        add = self.addParameter
        add(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster (A, model input)")))
        add(QgsProcessingParameterRasterLayer(self.INPUT2, self.tr("Additional input raster (B, target)")))
        add(QgsProcessingParameterBand(self.BANDS, self.tr("Bands of A (default: all)"), None, self.INPUT,
                                       optional=True, allowMultiple=True))
        add(QgsProcessingParameterBand(self.BANDS2, self.tr("Bands of B (default: all)"), None, self.INPUT2,
                                       optional=True, allowMultiple=True))
        add(QgsProcessingParameterNumber(self.TILE_SIZE, self.tr("Tile size (pixels)"), NUMBER_INTEGER, 256,
                                         minValue=8, maxValue=8192))
        add(QgsProcessingParameterNumber(self.STRIDE, self.tr("Stride (pixels)"), NUMBER_INTEGER, 128,
                                         minValue=1, maxValue=8192))
        add(QgsProcessingParameterExtent(self.EXTENT, self.tr("Extent (default: the overlap of A and B)"),
                                         optional=True))
        add(QgsProcessingParameterFeatureSource(self.MASK, self.tr("Mask polygons (only chips fully inside)"),
                                                [SOURCE_POLYGON], optional=True))
        add(QgsProcessingParameterNumber(self.MAX_NODATA, self.tr("Largest nodata fraction per chip"),
                                         NUMBER_DOUBLE, 0.0, minValue=0.0, maxValue=1.0))
        add(QgsProcessingParameterNumber(self.VALIDATION, self.tr("Validation fraction (spatial blocks)"),
                                         NUMBER_DOUBLE, 0.1, minValue=0.0, maxValue=0.9))
        add(QgsProcessingParameterEnum(self.RESAMPLING, self.tr("Resampling of B onto A's grid"), RESAMPLING,
                                       defaultValue="bilinear", usesStaticStrings=True))
        add(QgsProcessingParameterNumber(self.RESOLUTION, self.tr("Resolution of A when a web/database layer "
                                                                  "(default: native)"), NUMBER_DOUBLE, None,
                                         optional=True, minValue=0.0))
        add(make_advanced(QgsProcessingParameterNumber(self.SEED, self.tr("Random seed of the split"),
                                                       NUMBER_INTEGER, 0, minValue=0)))
        add(make_advanced(QgsProcessingParameterBoolean(
            self.ESRI_COMPATIBLE, self.tr("Refuse what arcgis.learn would train differently"), False)))
        add(QgsProcessingParameterFolderDestination(self.OUTPUT, self.tr("Output folder")))
        self.addOutput(QgsProcessingOutputNumber("CHIP_COUNT", self.tr("Chips exported")))
        self.addOutput(QgsProcessingOutputNumber("TRAIN_COUNT", self.tr("Training chips")))
        self.addOutput(QgsProcessingOutputNumber("VALIDATION_COUNT", self.tr("Validation chips")))
        self.addOutput(QgsProcessingOutputFile("MANIFEST", self.tr("Manifest (chips.json)")))
        for parameter, text in self._help().items():
            self.parameterDefinition(parameter).setHelp(self.tr(text))

    @staticmethod
    def _help() -> dict[str, str]:
        return {
            "INPUT": "Raster A: what the model sees (e.g. a DSM, SAR, an old scan). Its grid defines the chips.",
            "INPUT2": "Raster B: what the model should produce (e.g. an orthophoto). Resampled onto A's grid.",
            "BANDS": "Bands of A to export, in this order. Empty: all bands.",
            "BANDS2": "Bands of B to export, in this order. Empty: all bands.",
            "TILE_SIZE": "Chip width and height in pixels. 256 is typical; 128 trains faster on a CPU.",
            "STRIDE": "Step between chip origins. Equal to the tile size: no overlap; half: 50 % overlap.",
            "EXTENT": "Export only this area (reprojected to A's CRS).",
            "MASK": "Polygons: only chips that lie completely inside a polygon are exported.",
            "MAX_NODATA": "Chips with a larger share of nodata pixels (in A or B) are skipped. 0: none allowed.",
            "VALIDATION": "Share of chips held out for validation, as whole spatial blocks. 0: no validation.",
            "RESAMPLING": "bilinear for continuous values (imagery, heights); nearest for classes.",
            "SEED": "Seed of the random choice of validation blocks; the same seed gives the same split.",
            "RESOLUTION": "When A is not a local file (WMS, XYZ, GeoPackage, PostGIS raster) it is read into a "
                          "temporary GeoTIFF over EXTENT at this cell size, in A's CRS units (default: A's native "
                          "one). A B that is not a local file is read directly onto A's grid. Local files are "
                          "read as they are.",
            "ESRI_COMPATIBLE": "The folder is also an arcgis.learn Pix2Pix training folder. arcgis.learn's "
                               "Pix2Pix needs tiles of a multiple of 256 px and copies bands to make A and B "
                               "equal in number; without this option such an export only warns, with it the "
                               "export stops.",
            "OUTPUT": "A new or empty folder. A previous export there is replaced when this one succeeds; what "
                      "other tools saved in it (arcgis.learn's models/ and statistics caches) is kept.",
        }

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict[str, Any]:
        raster_a = self.raster(self.INPUT)
        extent = self.parameterAsExtent(parameters, self.EXTENT, context, raster_a.crs) if parameters.get(
            self.EXTENT) else None
        resolution = self.parameterAsDouble(parameters, self.RESOLUTION, context) if parameters.get(
            self.RESOLUTION) not in (None, "") else None
        path_a, grid_a, written_a = self.raster_file(self.INPUT, context, feedback, extent, resolution or None)
        path_b, _, _ = self.raster_file(self.INPUT2, context, feedback, grid=grid_a)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        command = [
            "export", path_a, path_b, output,
            "--tile-size", str(self.parameterAsInt(parameters, self.TILE_SIZE, context)),
            "--stride", str(self.parameterAsInt(parameters, self.STRIDE, context)),
            "--max-nodata", repr(self.parameterAsDouble(parameters, self.MAX_NODATA, context)),
            "--validation", repr(self.parameterAsDouble(parameters, self.VALIDATION, context)),
            "--seed", str(self.parameterAsInt(parameters, self.SEED, context)),
            "--resampling", self.parameterAsEnumString(parameters, self.RESAMPLING, context) or "bilinear",
        ]
        if self.parameterAsBoolean(parameters, self.ESRI_COMPATIBLE, context):
            command.append("--esri-compatible")
        for name, flag in ((self.BANDS, "--bands"), (self.BANDS2, "--bands2")):
            bands = self.parameterAsInts(parameters, name, context)
            if bands:
                command += [flag, ",".join(str(b) for b in bands)]
        if not written_a:  # a written A already covers exactly the extent
            command += self.extent_arguments(parameters, self.EXTENT, context, raster_a.crs)
        mask = self.parameterAsSource(parameters, self.MASK, context)
        if mask is not None:
            command += ["--mask", mask_to_geojson(mask, raster_a.crs, context)]
        result = run_engine(command, feedback, [output])
        return {
            self.OUTPUT: output,
            "CHIP_COUNT": result["chips"],
            "TRAIN_COUNT": result["train"],
            "VALIDATION_COUNT": result["validation"],
            "MANIFEST": result["manifest"],
        }
