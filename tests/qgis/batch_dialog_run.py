"""Drive QGIS's batch dialog for pix2pix:translate in its own QGIS process (see test_outputs.py).

Usage: python3 batch_dialog_run.py PLUGINS_DIR JOB.json — JOB holds "rows" (INPUT, MODEL,
OUTPUT per row) and "report" (where to write what the dialog did). Ends with os._exit: a
QGIS process that ran the batch dialog can hang while Python tears it down.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def wait_for_tasks(app, timeout: float) -> None:
    """Let a batch run finish: QGIS 3.22 runs the rows inside runAlgorithm(); from 3.26 the C++ batch
    dialog runs them one after another as background tasks (under a proxy task that lasts the whole
    batch) and loads each row's outputs when its task ends, so the rows are done when no task is left."""
    from qgis.core import QgsApplication

    manager = QgsApplication.taskManager()
    deadline = time.monotonic() + timeout
    app.processEvents()
    while manager.countActiveTasks() > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the batch was still running after {timeout} s")
        app.processEvents()
        time.sleep(0.05)
    app.processEvents()


def main(plugins: str, job_path: str) -> None:
    sys.path[:0] = [plugins, "/usr/share/qgis/python/plugins"]
    from qgis.core import QgsApplication, QgsProject

    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], True)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    from pix2pix_toolbox.processing_provider.compat import ALGORITHM_SUPPORTS_BATCH
    from pix2pix_toolbox.processing_provider.provider import Pix2PixProvider
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from processing.tools import dataobjects

    provider = Pix2PixProvider()  # keep the Python object alive while QGIS uses it
    QgsApplication.processingRegistry().addProvider(provider)
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    algorithm = QgsApplication.processingRegistry().algorithmById("pix2pix:translate")
    dialog = BatchAlgorithmDialog(algorithm.create())
    # Shown, as in QGIS: a dialog that is not visible when a run ends deletes itself (deleteLater), which
    # from 3.44 can happen before the batch's last bookkeeping (its progress task is then never finished).
    dialog.show()
    panel = dialog.mainWidget()
    panel.addRow(len(job["rows"]) - panel.batchRowCount())
    context = dataobjects.createContext()
    columns = panel.parameter_to_column
    for row, values in enumerate(job["rows"]):
        for name in ("INPUT", "MODEL", "DEVICE"):
            panel.wrappers[row][columns[name]].setParameterValue(values[name], context)
        panel.tblParameters.cellWidget(row + 1, columns["OUTPUT"]).setValue(values["OUTPUT"])
    panel.checkLoadLayersOnCompletion.setChecked(True)
    dialog.runAlgorithm()
    wait_for_tasks(app, timeout=480)
    layers = [{"source": layer.source(), "renderer": layer.renderer().type()}
              for layer in QgsProject.instance().mapLayers().values()]
    report = {"rows": panel.batchRowCount(), "layers": layers,
              "supports_batch": bool(algorithm.flags() & ALGORITHM_SUPPORTS_BATCH)}
    with open(job["report"], "w", encoding="utf-8") as out:
        json.dump(report, out)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
