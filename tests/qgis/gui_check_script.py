"""Run inside the QGIS desktop (``qgis --code gui_check_script.py``) by test_gui.py, under Xvfb.

The journey of an analyst: the Processing toolbox filtered on "Pix2Pix", the Translate raster
dialog filled in (an input layer from the project, a model, an extent, an output file), Run, and
the map canvas with the input raster and the translated output side by side (the output covers
the eastern part of the input). Screenshots and a JSON of what was found go to $PIX2PIX_GUI_OUT;
the job ($PIX2PIX_GUI_JOB, JSON: input, model, extent, output) comes from the test. Ends with
os._exit: a clean QGIS exit is not what is tested, and can stall under Xvfb.
"""

import json
import os
import time
import traceback
from pathlib import Path

from qgis.core import QgsProject, QgsRectangle
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QTextEdit
from qgis.utils import iface, plugins

OUT = os.environ["PIX2PIX_GUI_OUT"]
JOB = json.loads(Path(os.environ["PIX2PIX_GUI_JOB"]).read_text(encoding="utf-8"))
RUN_TIMEOUT_S = 300
found = {"errors": []}
state = {}


def tree_texts(view):
    model, texts = view.model(), []

    def walk(parent, depth):
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            texts.append("  " * depth + str(model.data(index)))
            walk(index, depth + 1)

    walk(view.rootIndex(), 0)
    return texts


def step(function):
    """Run one step of the journey; any error is recorded and ends it."""

    def guarded(*args):
        try:
            function(*args)
        except Exception:
            found["errors"].append(traceback.format_exc())
            finish()

    return guarded


def finish():
    with open(os.path.join(OUT, "gui.json"), "w", encoding="utf-8") as out:
        json.dump(found, out, indent=1)
    os._exit(0)


@step
def toolbox_step():
    processing_plugin = plugins["processing"]
    processing_plugin.toolboxAction.setChecked(True)
    toolbox = processing_plugin.toolbox
    toolbox.show()
    toolbox.searchBox.setText("Pix2Pix")
    toolbox.algorithmTree.expandAll()
    QApplication.processEvents()
    found["plugin_loaded"] = "pix2pix_toolbox" in plugins
    found["toolbox"] = tree_texts(toolbox.algorithmTree)
    QTimer.singleShot(1500, lambda: grab_toolbox(toolbox))


@step
def grab_toolbox(toolbox):
    toolbox.grab().save(os.path.join(OUT, "toolbox.png"))
    dialog_step()


@step
def dialog_step():
    import processing

    layer = iface.addRasterLayer(JOB["input"], "relief (input)")
    assert layer is not None and layer.isValid(), JOB["input"]
    state["input"] = layer
    iface.mapCanvas().setExtent(layer.extent())
    dialog = processing.createAlgorithmDialog("pix2pix:translate", {
        "INPUT": layer.id(), "MODEL": JOB["model"], "EXTENT": JOB["extent"], "DEVICE": "cpu",
        "OUTPUT": JOB["output"]})
    dialog.resize(1100, 760)
    dialog.show()
    QApplication.processEvents()
    state["dialog"] = dialog
    found["dialog_title"] = dialog.windowTitle()
    found["dialog_parameters"] = list(dialog.mainWidget().wrappers.keys())
    found["dialog_values"] = {name: str(value) for name, value in dialog.createProcessingParameters().items()}
    QTimer.singleShot(1500, grab_dialog)


@step
def grab_dialog():
    dialog = state["dialog"]
    dialog.grab().save(os.path.join(OUT, "translate-dialog.png"))
    run = dialog.runButton() if hasattr(dialog, "runButton") else None
    if run is not None:
        run.click()  # what the analyst does; it calls runAlgorithm()
    else:
        dialog.runAlgorithm()
    state["started"] = time.monotonic()
    QTimer.singleShot(500, wait_for_output)


def output_layer():
    for layer in QgsProject.instance().mapLayers().values():
        if Path(layer.source().split("|")[0]) == Path(JOB["output"]):
            return layer
    return None


@step
def wait_for_output():
    layer = output_layer()
    if layer is None:
        if time.monotonic() - state["started"] > RUN_TIMEOUT_S:
            log = state["dialog"].findChild(QTextEdit, "txtLog")
            found["dialog_log"] = log.toPlainText() if log is not None else ""
            raise TimeoutError(f"the translated raster was not loaded within {RUN_TIMEOUT_S} s")
        QTimer.singleShot(500, wait_for_output)
        return
    found["run_seconds"] = round(time.monotonic() - state["started"], 1)
    found["output_renderer"] = layer.renderer().type()
    found["output_extent"] = layer.extent().toString(6)
    found["input_extent"] = state["input"].extent().toString(6)
    state["dialog"].close()
    canvas = iface.mapCanvas()
    extent = QgsRectangle(state["input"].extent())
    extent.scale(1.04)
    canvas.setExtent(extent)
    canvas.refreshAllLayers()
    QTimer.singleShot(500, lambda: wait_for_canvas(canvas))


@step
def wait_for_canvas(canvas):
    if canvas.isDrawing():
        QTimer.singleShot(300, lambda: wait_for_canvas(canvas))
        return
    found["canvas_layers"] = [layer.name() for layer in canvas.layers()]
    QTimer.singleShot(800, grab_result)


@step
def grab_result():
    iface.mainWindow().grab().save(os.path.join(OUT, "translate-result.png"))
    iface.mapCanvas().grab().save(os.path.join(OUT, "map-canvas.png"))
    finish()


iface.mainWindow().resize(1400, 900)
QTimer.singleShot(3000, toolbox_step)
