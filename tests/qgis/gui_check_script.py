"""Run inside the QGIS desktop (``qgis --code gui_check_script.py``) by test_gui.py, under Xvfb.

Opens the Processing toolbox filtered on "Pix2Pix" and the Translate raster dialog, saves
screenshots and a JSON of what it found into $PIX2PIX_GUI_OUT, then quits QGIS.
"""

import json
import os
import traceback

from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication
from qgis.utils import iface, plugins

OUT = os.environ["PIX2PIX_GUI_OUT"]
found = {"errors": []}


def tree_texts(view):
    model, texts = view.model(), []

    def walk(parent, depth):
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            texts.append("  " * depth + str(model.data(index)))
            walk(index, depth + 1)

    walk(view.rootIndex(), 0)
    return texts


def finish():
    with open(os.path.join(OUT, "gui.json"), "w", encoding="utf-8") as out:
        json.dump(found, out, indent=1)
    os._exit(0)  # a clean QGIS exit is not what is tested, and can stall under Xvfb


def dialog_step():
    try:
        import processing

        dialog = processing.createAlgorithmDialog("pix2pix:translate")
        dialog.resize(1100, 760)
        dialog.show()
        QApplication.processEvents()
        found["dialog_title"] = dialog.windowTitle()
        found["dialog_parameters"] = list(dialog.mainWidget().wrappers.keys())
        found["dialog_help"] = dialog.findChild(type(dialog.textShortHelp), "textShortHelp").toPlainText() \
            if hasattr(dialog, "textShortHelp") else ""
        QTimer.singleShot(1500, lambda: grab_dialog(dialog))
    except Exception:
        found["errors"].append(traceback.format_exc())
        finish()


def grab_dialog(dialog):
    try:
        dialog.grab().save(os.path.join(OUT, "translate-dialog.png"))
        iface.mainWindow().grab().save(os.path.join(OUT, "main-window.png"))
    except Exception:
        found["errors"].append(traceback.format_exc())
    finish()


def toolbox_step():
    try:
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
    except Exception:
        found["errors"].append(traceback.format_exc())
        finish()


def grab_toolbox(toolbox):
    try:
        toolbox.grab().save(os.path.join(OUT, "toolbox.png"))
    except Exception:
        found["errors"].append(traceback.format_exc())
    dialog_step()


iface.mainWindow().resize(1400, 900)
QTimer.singleShot(3000, toolbox_step)
