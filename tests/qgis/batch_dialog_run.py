"""Drive QGIS's batch dialog for pix2pix:translate in its own QGIS process (see test_outputs.py).

Usage: python3 batch_dialog_run.py PLUGINS_DIR JOB.json — JOB holds "rows" (INPUT, MODEL,
OUTPUT per row) and "report" (where to write what the dialog did). Ends with os._exit: a
QGIS process that ran the batch dialog can hang while Python tears it down.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(plugins: str, job_path: str) -> None:
    sys.path[:0] = [plugins, "/usr/share/qgis/python/plugins"]
    from qgis.core import QgsApplication, QgsProject

    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], True)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    from pix2pix_toolbox.processing_provider.provider import Pix2PixProvider
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from processing.tools import dataobjects

    provider = Pix2PixProvider()  # keep the Python object alive while QGIS uses it
    QgsApplication.processingRegistry().addProvider(provider)
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    algorithm = QgsApplication.processingRegistry().algorithmById("pix2pix:translate")
    dialog = BatchAlgorithmDialog(algorithm.create())
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
    layers = [{"source": layer.source(), "renderer": layer.renderer().type()}
              for layer in QgsProject.instance().mapLayers().values()]
    report = {"rows": panel.batchRowCount(), "layers": layers,
              "supports_batch": bool(algorithm.flags() & getattr(algorithm, "FlagSupportsBatch", 0))}
    with open(job["report"], "w", encoding="utf-8") as out:
        json.dump(report, out)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
