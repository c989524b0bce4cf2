"""examples/pix2pix_workflow.ipynb runs from top to bottom in a real Jupyter kernel (nbclient).

The notebook's ``parameters`` cell is replaced with a shorter run (one epoch, a narrow
generator, a coarser chip stride); every other cell runs as written. A failing cell fails
the test with that cell's traceback. The figures must reach the notebook as PNG outputs
although the API never goes through pyplot.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[3] / "examples" / "pix2pix_workflow.ipynb"
QUICK = 'EPOCHS = 1\nNGF = 8\nLR_FIND_STEPS = 10\nSTRIDE = 128\nWORK = "pix2pix-workflow"'
FIGURE_CELLS = ("data.show_batch(", "model.plot_lr_find()", "model.plot_losses()", "model.show_results(", "plt.show()")


def test_the_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert sum("parameters" in cell.metadata.get("tags", []) for cell in code) == 1


def test_the_workflow_notebook_runs_in_a_kernel(tmp_path, monkeypatch):
    # A kernel spec of this interpreter: the "python3" spec ipykernel installs runs whatever
    # "python" is first on PATH. Kernel runtime files go to tmp_path, not the home folder.
    spec = tmp_path / "jupyter" / "kernels" / "pix2pix-engine"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "pix2pix engine", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (parameters,) = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    parameters.source = QUICK
    NotebookClient(notebook, timeout=900, kernel_name="pix2pix-engine",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    code = {cell.source: cell for cell in notebook.cells if cell.cell_type == "code"}
    for start in FIGURE_CELLS:
        (cell,) = [cell for source, cell in code.items() if start in source]
        images = [out for out in cell.outputs if "image/png" in out.get("data", {})]
        assert len(images) == 1, f"{start}: {[out.get('output_type') for out in cell.outputs]}"
    text = "".join(out.get("text", "") for cell in code.values() for out in cell.outputs)
    assert "band 3: MAE" in text and "held-out area, 196608 pixels: MAE" in text
    work = tmp_path / "pix2pix-workflow"
    assert (work / "relief-to-imagery.p2p").is_file() and (work / "heldout-translated.tif").is_file()
