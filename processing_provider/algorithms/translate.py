"""Pix2Pix › Translate raster (``pix2pix:translate``)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..compat import FILE_FILE, NUMBER_DOUBLE, NUMBER_INTEGER, make_advanced
from ..engine import run_engine
from ..styling import style_on_load
from .base import EngineAlgorithm
from .train import DEVICES

BLENDS = ["hann", "crop"]
BACKENDS = ["torch", "onnxruntime"]
DTYPES = ["same as the training target", "uint8", "uint16", "int16", "float32"]


class TranslateAlgorithm(EngineAlgorithm):
    INPUT, MODEL, OUTPUT, BANDS = "INPUT", "MODEL", "OUTPUT", "BANDS"
    TILE_SIZE, OVERLAP, BATCH_SIZE, DEVICE, EXTENT = "TILE_SIZE", "OVERLAP", "BATCH_SIZE", "DEVICE", "EXTENT"
    BLEND, TTA, OUTPUT_DTYPE, COG, CREATION_OPTIONS = "BLEND", "TTA", "OUTPUT_DTYPE", "COG", "CREATION_OPTIONS"
    RESOLUTION, BACKEND = "RESOLUTION", "BACKEND"

    def name(self) -> str:
        return "translate"

    def displayName(self) -> str:
        return self.tr("Translate raster")

    def shortDescription(self) -> str:
        return self.tr("Translate a whole raster of any size with a trained Pix2Pix model.")

    def tags(self) -> list[str]:
        return self.tr("pix2pix,deep learning,inference,predict,translate,image translation").split(",")

    def help_text(self) -> str:
        return self.tr(
            "<p>Applies a <b>.p2p</b> model from <i>Train Pix2Pix</i> to a raster of any size and writes a "
            "georeferenced GeoTIFF on the input's grid (same CRS, transform, width and height, or the "
            "<b>extent</b>'s window) in the target's units, bands and data type.</p>"
            "<p>The raster is processed in overlapping tiles; each tile's outer margin is discarded and the rest "
            "of the overlap is cross-faded, so no seams show. Memory stays bounded whatever the raster size. "
            "Nodata in the input is nodata in the output.</p>"
            "<p><b>Tile size</b>: default the model's chip size; larger tiles give the network more context. "
            "<b>Overlap</b>: default a quarter tile; more overlap costs more compute (the log shows the factor). "
            "<b>Batch size</b>: tiles per forward pass on a GPU (the CPU runs one at a time). "
            "<b>TTA</b> (advanced) averages the 8 flips and rotations: smoother, 8× slower.</p>"
            "<p>The input may be any raster layer. Local files (GeoTIFF, VRT, ...) are read as they are; a WMS, "
            "XYZ, GeoPackage or database layer is first read into a temporary GeoTIFF over the <b>extent</b> at "
            "<b>resolution</b> (default: its native one) — use the resolution the model was trained at.</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        add = self.addParameter
        add(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster")))
        add(QgsProcessingParameterFile(self.MODEL, self.tr("Model (.p2p)"), behavior=FILE_FILE, extension="p2p"))
        add(QgsProcessingParameterBand(self.BANDS, self.tr("Input bands (default: as in training)"), None,
                                       self.INPUT, optional=True, allowMultiple=True))
        add(QgsProcessingParameterNumber(self.TILE_SIZE, self.tr("Tile size (pixels; default: the model's)"),
                                         NUMBER_INTEGER, None, optional=True, minValue=8, maxValue=16384))
        add(QgsProcessingParameterNumber(self.OVERLAP, self.tr("Overlap (pixels; default: a quarter tile)"),
                                         NUMBER_INTEGER, None, optional=True, minValue=0, maxValue=8192))
        add(QgsProcessingParameterNumber(self.BATCH_SIZE, self.tr("Batch size"), NUMBER_INTEGER, 4, minValue=1,
                                         maxValue=1024))
        add(QgsProcessingParameterEnum(self.DEVICE, self.tr("Device"), DEVICES, defaultValue="auto",
                                       usesStaticStrings=True))
        add(QgsProcessingParameterExtent(self.EXTENT, self.tr("Extent (default: the whole raster)"), optional=True))
        add(QgsProcessingParameterNumber(self.RESOLUTION, self.tr("Resolution of web/database layers (default: "
                                                                  "native)"), NUMBER_DOUBLE, None, optional=True,
                                         minValue=0.0))
        add(make_advanced(QgsProcessingParameterEnum(self.BLEND, self.tr("Blending of overlaps"), BLENDS,
                                                     defaultValue="hann", usesStaticStrings=True)))
        add(make_advanced(QgsProcessingParameterBoolean(self.TTA, self.tr("Test-time augmentation (8 views)"),
                                                        False)))
        add(make_advanced(QgsProcessingParameterEnum(self.OUTPUT_DTYPE, self.tr("Output data type"), DTYPES,
                                                     defaultValue=DTYPES[0], usesStaticStrings=True)))
        add(make_advanced(QgsProcessingParameterBoolean(self.COG, self.tr("Cloud Optimized GeoTIFF"), False)))
        add(make_advanced(QgsProcessingParameterEnum(self.BACKEND, self.tr("Inference backend"), BACKENDS,
                                                     defaultValue="torch", usesStaticStrings=True)))
        add(make_advanced(QgsProcessingParameterString(self.CREATION_OPTIONS,
                                                       self.tr("GDAL creation options (KEY=VALUE;…)"),
                                                       optional=True)))
        add(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Translated raster")))
        for parameter, text in {
            "INPUT": "A raster like the training input A (same kind of data and bands).",
            "MODEL": "The .p2p file written by Train Pix2Pix.",
            "BANDS": "Bands to feed the model, in order; default: the bands used in training.",
            "TILE_SIZE": "Must be a multiple of 2^depth of the model (the log names it on error).",
            "OVERLAP": "Pixels shared by neighbouring tiles: a margin is discarded, the rest is cross-faded.",
            "BATCH_SIZE": "Tiles per forward pass on a GPU. On the CPU tiles run one at a time (as fast, and the "
                          "output is identical bit for bit whatever this value).",
            "DEVICE": "auto uses the first CUDA GPU when PyTorch sees one, else the CPU.",
            "EXTENT": "Translate only this area; the output covers exactly its pixels.",
            "RESOLUTION": "For an input that is not a local file (WMS, XYZ, GeoPackage, PostGIS raster): the cell "
                          "size, in the layer's CRS units, of the temporary GeoTIFF it is read into over EXTENT. "
                          "Default: the layer's native one (a tiled service's finest zoom). Use the resolution the "
                          "model was trained at. Local files are read as they are.",
            "BLEND": "hann: cross-fade overlaps (no seams); crop: hard cut in the middle of each overlap.",
            "TTA": "Average the predictions of the 8 flips and rotations of each tile (8× slower).",
            "OUTPUT_DTYPE": "Values are rounded and clipped to the type's range.",
            "COG": "Write a Cloud Optimized GeoTIFF (internal tiling and overviews).",
            "BACKEND": "torch (default) or onnxruntime: about 1.5× faster on the CPU for large rasters (BENCHMARKS.md) "
                       "when the optional packages are installed in the engine's Python (pip install onnx "
                       "onnxscript onnxruntime); CPU only. A model's first use exports it once (~10 s), later "
                       "runs load it from a per-user cache. Outputs differ from torch's by at most a level or two "
                       "in a few pixels.",
            "CREATION_OPTIONS": "Extra GDAL GeoTIFF options, e.g. COMPRESS=ZSTD;PREDICTOR=2.",
            "OUTPUT": "GeoTIFF, written under a temporary name and renamed when complete.",
        }.items():
            self.parameterDefinition(parameter).setHelp(self.tr(text))

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict[str, Any]:
        raster = self.raster(self.INPUT)
        extent = self.parameterAsExtent(parameters, self.EXTENT, context, raster.crs) if parameters.get(
            self.EXTENT) else None
        resolution = self.parameterAsDouble(parameters, self.RESOLUTION, context) if parameters.get(
            self.RESOLUTION) not in (None, "") else None
        source, _, written = self.raster_file(self.INPUT, context, feedback, extent, resolution or None)
        model = self.parameterAsFile(parameters, self.MODEL, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        command = [
            "translate", source, model, output,
            "--batch-size", str(self.parameterAsInt(parameters, self.BATCH_SIZE, context)),
            "--device", self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto",
            "--blend", self.parameterAsEnumString(parameters, self.BLEND, context) or "hann",
            "--backend", self.parameterAsEnumString(parameters, self.BACKEND, context) or "torch",
        ]
        for name, flag in ((self.TILE_SIZE, "--tile-size"), (self.OVERLAP, "--overlap")):
            if parameters.get(name) not in (None, ""):
                command += [flag, str(self.parameterAsInt(parameters, name, context))]
        bands = self.parameterAsInts(parameters, self.BANDS, context)
        if bands:
            command += ["--bands", ",".join(str(b) for b in bands)]
        if not written:  # a written layer already covers exactly the extent
            command += self.extent_arguments(parameters, self.EXTENT, context, raster.crs)
        dtype = self.parameterAsEnumString(parameters, self.OUTPUT_DTYPE, context)
        if dtype and dtype != DTYPES[0]:
            command += ["--dtype", dtype]
        if self.parameterAsBoolean(parameters, self.TTA, context):
            command.append("--tta")
        if self.parameterAsBoolean(parameters, self.COG, context):
            command.append("--cog")
        options = self.parameterAsString(parameters, self.CREATION_OPTIONS, context) or ""
        for option in filter(None, (o.strip() for o in options.replace("|", ";").split(";"))):
            command += ["--co", option]
        result = run_engine(command, feedback, [output])
        style_on_load(context, output)
        feedback.pushInfo(self.tr(
            f"{result['width']}×{result['height']} px in {result['seconds']:.1f} s "
            f"({result['megapixels_per_second']:.2f} MP/s on {result['device']}; {result['tiles']} tiles, "
            f"compute factor {result['compute_factor']:.2f})."
        ))
        return {self.OUTPUT: output}
