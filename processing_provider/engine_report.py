"""The *Check engine* report: what ``doctor`` knows about the interpreter in use, as a small HTML page."""

from __future__ import annotations

import html
from typing import Any

FIELDS = (
    ("Interpreter", "python_executable"), ("Chosen from", "source"), ("Python", "python"),
    ("Engine (pix2pix_qgis)", "pix2pix_qgis"), ("PyTorch", "torch"), ("PyTorch CUDA build", "torch_cuda_build"),
    ("CUDA available", "cuda_available"), ("NumPy", "numpy"), ("rasterio", "rasterio"), ("GDAL (rasterio's)", "gdal"),
    ("shapely", "shapely"), ("safetensors", "safetensors"), ("matplotlib", "matplotlib"), ("Platform", "platform"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "<i>missing</i>"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return html.escape(str(value))


def _device(device: dict[str, Any]) -> str:
    details = ", ".join(f"{k} {v}" for k, v in device.items() if k != "name")
    return f"<li><b>{html.escape(str(device['name']))}</b>{' — ' + html.escape(details) if details else ''}</li>"


def check_report(report: dict[str, Any], error: str = "", fix: str = "") -> str:
    """HTML for a doctor report (or for the error that kept the engine from answering)."""
    ok = bool(report.get("ok")) and not error
    verdict = ("<p style='color:#1a7f37'><b>The engine is ready.</b></p>" if ok else
               "<p style='color:#cf222e'><b>The engine is not ready.</b> Run <i>Pix2Pix › Set up engine</i>, or "
               "point Processing › Options › Providers › Pix2Pix › Python interpreter at a Python that has the "
               "engine's dependencies"
               + (f", or install them into this one: <tt>{html.escape(fix)}</tt>" if fix else "") + ".</p>")
    rows = "".join(f"<tr><th style='text-align:left'>{name}</th><td>{_cell(report.get(key))}</td></tr>"
                   for name, key in FIELDS if key in report)
    problems = [*report.get("problems", []), *([error] if error else [])]
    problem_list = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
    devices = "".join(_device(d) for d in report.get("devices", []))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Pix2Pix engine check</title></head><body>"
        f"<h2>Pix2Pix engine check</h2>{verdict}"
        f"<table border='1' cellpadding='4' cellspacing='0'>{rows}</table>"
        + (f"<h3>Devices</h3><ul>{devices}</ul>" if devices else "")
        + (f"<h3>Problems</h3><ul>{problem_list}</ul>" if problem_list else "")
        + "</body></html>"
    )
