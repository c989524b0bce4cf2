#!/usr/bin/python3
"""Drive the REAL Deepness dock widget headless: what a user gets by clicking, plus a screenshot.

/usr/bin/python3 deepness_gui_run.py MODEL.onnx RASTER.tif OUTDIR [--set NAME=VALUE ...] [--no-run]

Steps (Deepness 0.6.5 DeepnessDockWidget, iface=MagicMock() as in Deepness' own test_deepness_dockwidget.py):
  1. input layer combo := RASTER; model path := MODEL; click "Reload model" (pushButton_reloadModel:
     _load_model_and_display_info -> model type from metadata, check_loaded_model_outputs, tile size);
  2. click "Load default parameters" (pushButton_loadDefaultModelParameters: resolution, tile size,
     overlap, model type, reg_output_scaling ... from metadata);
  3. processed area := "Entire layer"; optional --set overrides of dock widgets, e.g.
     --set doubleSpinBox_superresolutionScaling=1 --set doubleSpinBox_superresolutionScaleFactor=1
  4. params = dock.get_inference_parameters()   (exactly what "Run" emits), then the map processor of
     that model type runs them synchronously (as Deepness' tests do; the GUI would run it as a QgsTask).
Writes OUTDIR/dock.png (widget grab), OUTDIR/gui.json (dock state, params, result), OUTDIR/result.npy,
OUTDIR/result.png (uint8 result as an image: bands 1-3, or each regression output side by side).
Environment as deepness_run.py (offscreen Qt; widget grabs render fine without an X server).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import deepness_run  # noqa: E402,F401  (sets sys.path and the Qt/XDG environment)
import numpy as np  # noqa: E402


def _png(arr: np.ndarray, path: Path) -> None:
    from qgis.PyQt.QtGui import QImage

    a = np.ascontiguousarray(arr.astype(np.uint8))
    if a.ndim == 2:
        a = np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))
    h, w, _ = a.shape
    QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy().save(str(path))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("raster")
    ap.add_argument("outdir")
    ap.add_argument("--set", action="append", default=[], metavar="WIDGET=VALUE")
    ap.add_argument("--no-run", action="store_true")
    a = ap.parse_args()
    a.model, a.raster = str(Path(a.model).resolve()), str(Path(a.raster).resolve())
    out = Path(a.outdir).resolve()
    os.chdir(tempfile.mkdtemp(prefix="deepness-cwd-"))  # Deepness writes 'grid_data' into the cwd
    out.mkdir(parents=True, exist_ok=True)

    from unittest.mock import MagicMock

    from test.test_utils import init_qgis

    init_qgis()
    from deepness.common.processing_parameters.map_processing_parameters import ProcessedAreaType
    from deepness.deepness_dockwidget import DeepnessDockWidget
    from deepness.processing.models.model_types import ModelDefinition
    from qgis.core import QgsProject, QgsRasterLayer

    rlayer = QgsRasterLayer(str(Path(a.raster).resolve()), Path(a.raster).stem)
    QgsProject.instance().addMapLayer(rlayer)
    dock = DeepnessDockWidget(iface=MagicMock())
    dock.mMapLayerComboBox_inputLayer.setLayer(rlayer)
    report: dict = {"combo_model_type_before": dock.comboBox_modelType.currentText()}
    dock.lineEdit_modelPath.setText(str(Path(a.model).resolve()))
    dock.pushButton_reloadModel.click()
    report["model_info_label"] = dock.label_modelInfo.text()
    dock.pushButton_loadDefaultModelParameters.click()
    dock.comboBox_processedAreaSelection.setCurrentText(ProcessedAreaType.ENTIRE_LAYER.value)
    for item in a.set:
        name, value = item.split("=", 1)
        widget = getattr(dock, name)
        if hasattr(widget, "setValue"):
            widget.setValue(type(widget.value())(float(value)))
        elif hasattr(widget, "setCurrentText"):
            widget.setCurrentText(value)
        else:
            raise SystemExit(f"cannot set {name}")
    widgets = ["comboBox_modelType", "doubleSpinBox_resolution_cm_px", "spinBox_tileSize_px", "spinBox_batchSize",
               "spinBox_processingTileOverlapPercentage", "doubleSpinBox_superresolutionScaleFactor",
               "doubleSpinBox_superresolutionScaling", "doubleSpinBox_regressionScaling",
               "comboBox_processedAreaSelection"]
    state = {}
    for name in widgets:
        w = getattr(dock, name, None)
        if w is not None:
            state[name] = w.currentText() if hasattr(w, "currentText") else w.value()
    report["dock_state"] = state
    dock.resize(620, 1500)
    dock.grab().save(str(out / "dock.png"))
    try:
        params = dock.get_inference_parameters()
    except Exception as exc:  # noqa: BLE001
        report["get_inference_parameters"] = f"{type(exc).__name__}: {exc}"
        (out / "gui.json").write_text(json.dumps(report, indent=1, default=str))
        print(json.dumps(report, indent=1, default=str))
        return 1
    report["params"] = {k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
                        for k, v in vars(params).items() if k != "model"}
    report["params"]["model_class"] = type(params.model).__name__
    report["params"]["overlap_px"] = params.processing_overlap_px
    if not a.no_run:
        definition = ModelDefinition.get_definition_for_params(params)
        proc = definition.map_processor_class(rlayer=rlayer, vlayer_mask=None, map_canvas=MagicMock(), params=params)
        proc.run()
        res = proc._processing_result  # noqa: SLF001
        report["processing_result"] = {"class": type(res).__name__, "message": getattr(res, "message", None)}
        if getattr(res, "exception", None) is not None:
            report["processing_result"]["exception"] = f"{type(res.exception).__name__}: {res.exception}"
        else:
            img = np.asarray(proc.get_result_img())
            np.save(out / "result.npy", img)
            report["result"] = deepness_run._stats(img)
            if img.ndim == 3 and img.shape[-1] in (1, 3, 4):
                _png(img[:, :, :3] if img.shape[-1] >= 3 else img[:, :, 0], out / "result.png")
            elif img.ndim == 3:  # regression: (outputs, H, W)
                _png(np.moveaxis(img[:3], 0, -1) if img.shape[0] >= 3 else img[0], out / "result.png")
    (out / "gui.json").write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
