#!/usr/bin/python3
"""Run an ONNX model through the REAL Deepness 0.6.5 code, headless, on a raster; write the result rasters.

Interpreter: the host QGIS 3.22 Python, /usr/bin/python3 (Debian 12). The script puts on sys.path:
  $DEEPNESS_SRC/src  (the plugin package `deepness`, git f450c6342d82 = v0.6.5 + merge of PR #195)
  $DEEPNESS_SRC      (its tests, for test.test_utils.init_qgis)
  $ORT117_SITE       (onnxruntime 1.17.0 + opencv-python-headless 4.9.0.80, pip --target, no numpy:
                      QGIS's numpy 1.24.2 is used)
and sets QT_QPA_PLATFORM=offscreen and a private XDG_RUNTIME_DIR before importing qgis.

Usage:
  /usr/bin/python3 deepness_run.py MODEL.onnx RASTER.tif OUTDIR
      [--type auto|superresolution|regression|segmentation]   (auto: Deepness' type-from-metadata path,
                                                             fallback Segmentor = the dock's first entry)
      [--resolution-cm X | --resolution-cm metadata | --resolution-cm raster | --resolution-cm default]
      [--overlap PCT | --overlap metadata]   [--batch-size N]
      [--output-scaling S]                  (Superresolution: UI default 255; Regression: metadata
                                             reg_output_scaling, else UI default 1)
      [--scale-factor F]                    (Superresolution only; the UI minimum is 2, default here 1)
      [--gui-resolution-rounding]           (round resolution to 2 decimals like the dock's spin box)

What it does, exactly as the dock does it (deepness_dockwidget.py):
  * model: ModelBase.get_model_type_from_metadata(path) -> ModelType(value) ->
    ModelDefinition.get_definition_for_type(...).model_class(path); model.check_loaded_model_outputs()
  * tile size from the model input shape (input_0_shape[-1]); metadata tile_size/tiles_overlap/resolution/
    reg_output_scaling as _load_default_model_parameters() applies them;
  * channels mapping: as InputChannelsMappingWidget.set_rlayer + set_model (default mapping);
  * ProcessedAreaType.ENTIRE_LAYER, map_canvas=MagicMock() (as Deepness' own tests),
    MapProcessorX(rlayer=..., vlayer_mask=None, map_canvas=..., params=...).run() synchronously.
Writes OUTDIR/run.json (settings, metadata as Deepness read it, result shape/dtype/stats, message or
exception), OUTDIR/result.npy (get_result_img(), unchanged), and OUTDIR/deepness_*.tif: the very
GeoTIFF(s) Deepness itself wrote to its temp dir for the QGIS layers (float32, copied).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

# DEEPNESS_SRC: a checkout of PUTvision/qgis-plugin-deepness (its src/deepness package and its test/ bootstrap);
# ORT117_SITE: a `pip install --target` folder with onnxruntime 1.17.0 (see README.md). Neither is in this repository.
DEEPNESS_SRC = Path(os.environ.get("DEEPNESS_SRC", "qgis-plugin-deepness")).resolve()
ORT117_SITE = Path(os.environ.get("ORT117_SITE", "ort117-site")).resolve()
sys.path[:0] = [str(DEEPNESS_SRC / "src"), str(DEEPNESS_SRC), str(ORT117_SITE)]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if not os.environ.get("XDG_RUNTIME_DIR") or not os.access(os.environ["XDG_RUNTIME_DIR"], os.W_OK):
    runtime = tempfile.mkdtemp(prefix="xdg-deepness-")
    os.chmod(runtime, 0o700)
    os.environ["XDG_RUNTIME_DIR"] = runtime

import numpy as np  # noqa: E402  (QGIS's numpy)


def _stats(a: np.ndarray) -> dict:
    a = np.asarray(a)
    return {"shape": list(a.shape), "dtype": str(a.dtype), "min": float(a.min()), "max": float(a.max()),
            "mean": float(a.astype(np.float64).mean())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("raster")
    ap.add_argument("outdir")
    ap.add_argument("--type", default="auto", choices=["auto", "superresolution", "regression", "segmentation"])
    ap.add_argument("--resolution-cm", default="metadata",
                    help="number, or 'metadata' (fallback: raster), 'raster' (the raster's own pixel size), "
                         "'default' (Deepness' 3.0 cm/px)")
    ap.add_argument("--overlap", default="metadata", help="percent, or 'metadata' (fallback: Deepness default 15)")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--output-scaling", type=float)
    ap.add_argument("--scale-factor", type=float, default=1.0)
    ap.add_argument("--gui-resolution-rounding", action="store_true")
    args = ap.parse_args(argv)
    args.model, args.raster = str(Path(args.model).resolve()), str(Path(args.raster).resolve())
    out = Path(args.outdir).resolve()
    # Deepness' save_result_img_as_tif creates a GTiff named 'grid_data' in the CURRENT directory
    # (map_processor_regression.py:141, map_processor_superresolution.py:151): run in a scratch cwd.
    os.chdir(tempfile.mkdtemp(prefix="deepness-cwd-"))
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"argv": sys.argv[1:], "python": sys.executable}

    from unittest.mock import MagicMock

    from test.test_utils import init_qgis  # Deepness' own test bootstrap

    init_qgis()
    import onnxruntime
    from deepness.common.channels_mapping import ChannelsMapping, ImageChannelStandaloneBand
    from deepness.common.config_entry_key import ConfigEntryKey
    from deepness.common.misc import TMP_DIR_PATH
    from deepness.common.processing_overlap import ProcessingOverlap, ProcessingOverlapOptions
    from deepness.common.processing_parameters.map_processing_parameters import ProcessedAreaType
    from deepness.processing.models.model_base import ModelBase
    from deepness.processing.models.model_types import ModelDefinition, ModelType
    from qgis.core import Qgis, QgsRasterLayer, QgsUnitTypes

    report["qgis"] = Qgis.QGIS_VERSION
    report["onnxruntime"] = onnxruntime.__version__
    report["numpy"] = np.__version__

    # --- model, as _load_model_with_type_from_metadata does ---------------------------------------
    chosen = {"superresolution": ModelType.SUPERRESOLUTION, "regression": ModelType.REGRESSION,
              "segmentation": ModelType.SEGMENTATION}.get(args.type)
    try:
        type_from_metadata = ModelBase.get_model_type_from_metadata(args.model)
    except Exception as exc:  # noqa: BLE001
        report["load_error"] = f"{type(exc).__name__}: {exc}"
        (out / "run.json").write_text(json.dumps(report, indent=1))
        print(json.dumps(report, indent=1))
        return 2
    report["metadata_model_type"] = type_from_metadata
    if args.type == "auto":
        model_type = ModelType(type_from_metadata) if type_from_metadata else ModelType.SEGMENTATION
    else:
        model_type = chosen
        if type_from_metadata and ModelType(type_from_metadata) != chosen:
            report["note"] = f"metadata says {type_from_metadata}; the dock would switch to it, --type overrides"
    definition = ModelDefinition.get_definition_for_type(model_type)
    model = definition.model_class(args.model)
    report["model_type_used"] = model_type.value
    try:
        model.check_loaded_model_outputs()
        report["check_loaded_model_outputs"] = "ok"
    except Exception as exc:  # noqa: BLE001
        report["check_loaded_model_outputs"] = f"{type(exc).__name__}: {exc}"
    std = model.standardization_parameters
    report["read_by_deepness"] = {
        "input_shape": list(model.get_input_shape()), "output_shapes": [list(s) for s in model.get_output_shapes()],
        "model_type": model.get_metadata_model_type(), "resolution": model.get_metadata_resolution(),
        "tile_size": model.get_metadata_tile_size(), "tiles_overlap": model.get_metadata_tiles_overlap(),
        "reg_output_scaling": model.get_metadata_regression_output_scaling(),
        "standardization_mean": std.mean.tolist(), "standardization_std": std.std.tolist(),
        "outputs_names": model.outputs_names, "number_of_output_channels": model.get_number_of_output_channels(),
        "batch_size_fixed": model.get_model_batch_size(),
    }

    # --- raster layer and channels mapping (InputChannelsMappingWidget.set_rlayer + set_model) -----
    rlayer = QgsRasterLayer(str(Path(args.raster).resolve()), "input")
    if not rlayer.isValid() or rlayer.width() == 0:
        raise SystemExit(f"cannot open {args.raster} as a QGIS raster layer")
    from qgis.core import QgsProject

    QgsProject.instance().addMapLayer(rlayer)
    channels = ChannelsMapping()
    channels.set_image_channels([ImageChannelStandaloneBand(band_number=b, name=rlayer.bandName(b))
                                 for b in range(1, rlayer.bandCount() + 1)])
    channels.set_number_of_model_inputs(model.get_number_of_channels())
    channels = channels.get_as_default_mapping()

    to_m = QgsUnitTypes.fromUnitToUnitFactor(rlayer.crs().mapUnits(), QgsUnitTypes.DistanceUnit.DistanceMeters)
    raster_cm = rlayer.rasterUnitsPerPixelX() * to_m * 100
    if args.resolution_cm == "metadata":
        resolution = model.get_metadata_resolution() or raster_cm
        source = "metadata" if model.get_metadata_resolution() else "raster (no metadata)"
    elif args.resolution_cm == "raster":
        resolution, source = raster_cm, "raster"
    elif args.resolution_cm == "default":
        resolution, source = float(ConfigEntryKey.PREPROCESSING_RESOLUTION.value[1]), "Deepness default"
    else:
        resolution, source = float(args.resolution_cm), "argument"
    if args.gui_resolution_rounding:
        resolution = round(resolution, 2)
    if args.overlap == "metadata":
        meta_overlap = model.get_metadata_tiles_overlap()
        overlap = meta_overlap if meta_overlap is not None else int(ConfigEntryKey.PREPROCESSING_TILES_OVERLAP.value[1])
    else:
        overlap = float(args.overlap)
    tile = int(model.get_input_shape()[-1])
    common = dict(resolution_cm_per_px=resolution, tile_size_px=tile, batch_size=args.batch_size, local_cache=False,
                  processed_area_type=ProcessedAreaType.ENTIRE_LAYER, mask_layer_id=None, input_layer_id=rlayer.id(),
                  input_channels_mapping=channels,
                  processing_overlap=ProcessingOverlap(ProcessingOverlapOptions.OVERLAP_IN_PERCENT, percentage=overlap),
                  model=model)
    if model_type == ModelType.SUPERRESOLUTION:
        extra = dict(output_scaling=255.0 if args.output_scaling is None else args.output_scaling,
                     scale_factor=args.scale_factor)
    elif model_type == ModelType.REGRESSION:
        meta = model.get_metadata_regression_output_scaling()
        extra = dict(output_scaling=args.output_scaling if args.output_scaling is not None else (meta or 1.0))
    else:
        extra = dict(postprocessing_dilate_erode_size=0, pixel_classification__probability_threshold=0.0)
    params = definition.parameters_class(**common, **extra)
    report["settings"] = {"resolution_cm_per_px": resolution, "resolution_source": source,
                          "raster_pixel_cm": raster_cm, "raster_crs": rlayer.crs().authid(),
                          "raster_size": [rlayer.width(), rlayer.height(), rlayer.bandCount()],
                          "tile_size_px": tile, "overlap_percent": overlap,
                          "overlap_px": params.processing_overlap_px, "stride_px": params.processing_stride_px,
                          **{k: v for k, v in extra.items()}}

    # --- run the map processor ----------------------------------------------------------------------
    before = set(Path(TMP_DIR_PATH).glob("*.tif")) if Path(TMP_DIR_PATH).exists() else set()
    processor = definition.map_processor_class(rlayer=rlayer, vlayer_mask=None, map_canvas=MagicMock(), params=params)
    t0 = time.time()
    processor.run()
    report["seconds"] = round(time.time() - t0, 2)
    result = processor._processing_result  # noqa: SLF001
    report["processing_result"] = {"class": type(result).__name__, "message": getattr(result, "message", None)}
    exc = getattr(result, "exception", None)
    if exc is not None:
        report["processing_result"]["exception"] = f"{type(exc).__name__}: {exc}"
        report["processing_result"]["traceback"] = traceback.format_exception(type(exc), exc, exc.__traceback__)[-4:]
    try:
        img = processor.get_result_img()
        np.save(out / "result.npy", np.asarray(img))
        report["result"] = _stats(img)
        report["result"]["grid"] = {"tiles_x": processor.x_bins_number, "tiles_y": processor.y_bins_number,
                                    "extended_px": [processor.img_size_x_pixels, processor.img_size_y_pixels]}
    except Exception as e:  # noqa: BLE001
        report["result"] = f"{type(e).__name__}: {e}"
    written = sorted(set(Path(TMP_DIR_PATH).glob("*.tif")) - before) if Path(TMP_DIR_PATH).exists() else []
    copies = []
    for i, path in enumerate(written):
        dst = out / f"deepness_{i}_{path.name.split('__')[0].replace(' ', '_')}.tif"
        shutil.copyfile(path, dst)
        copies.append(dst.name)
    report["deepness_tifs"] = copies
    (out / "run.json").write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps(report, indent=1, default=str))
    return 0 if report["processing_result"]["class"] == "MapProcessingResultSuccess" else 1


if __name__ == "__main__":
    sys.exit(main())
