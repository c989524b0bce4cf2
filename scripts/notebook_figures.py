"""Run examples/pix2pix_workflow.ipynb as written and save two of its figures for the README.

    .venv/bin/python scripts/notebook_figures.py [WORK_FOLDER]

Writes docs/images/notebook-show-results.png and docs/images/notebook-losses.png (the
outputs of ``model.show_results(...)`` and ``model.plot_losses()``) and prints each code
cell's run time. The notebook's outputs stay out of git; WORK_FOLDER (default a temporary
folder) receives what the notebook writes and the executed copy, pix2pix_workflow.executed.ipynb.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
FIGURES = {"model.show_results(": "notebook-show-results.png", "model.plot_losses()": "notebook-losses.png"}


def main(work: Path) -> None:
    spec = work / "jupyter" / "kernels" / "pix2pix-engine"  # this interpreter, not "python" on PATH
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "pix2pix engine", "language": "python"}))
    os.environ["JUPYTER_PATH"] = str(work / "jupyter")
    notebook = nbformat.read(REPO / "examples" / "pix2pix_workflow.ipynb", as_version=4)
    client = NotebookClient(notebook, timeout=3600, kernel_name="pix2pix-engine",
                            resources={"metadata": {"path": str(work)}})
    started = time.monotonic()
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            tick = time.monotonic()
            client.execute_cell(cell, index)
            if cell.cell_type == "code":
                print(f"{time.monotonic() - tick:7.1f} s  {cell.source.splitlines()[0][:70]}")
    print(f"{time.monotonic() - started:7.1f} s  in all")
    nbformat.write(notebook, work / "pix2pix_workflow.executed.ipynb")
    for start, name in FIGURES.items():
        (cell,) = [cell for cell in notebook.cells if cell.cell_type == "code" and start in cell.source]
        (png,) = [out["data"]["image/png"] for out in cell.outputs if "image/png" in out.get("data", {})]
        (REPO / "docs" / "images" / name).write_bytes(base64.b64decode(png))
        print(f"wrote docs/images/{name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]).absolute() if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="pix2pix-notebook-")))
