"""Self-contained HTML reports (images inlined) for QGIS's results viewer and for people.

One file each, no external assets, so a report can be mailed or archived beside its model.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from .outputs import staged_file
from .package import MODEL_ENTRIES, read_entries

STYLE = """<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
tr.best { background: #e6f4e6; font-weight: bold; } img { max-width: 100%; border: 1px solid #ddd; }
</style>"""


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(rows: list[dict[str, Any]], columns: list[str], best: Any = None, key: str = "") -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        marker = ' class="best"' if key and best is not None and row.get(key) == best else ""
        body.append(f"<tr{marker}>" + "".join(f"<td>{_number(row.get(c))}</td>" for c in columns) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _image(png: bytes, alt: str) -> str:
    if not png:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def training_report(model_path: str | Path) -> str:
    """The HTML report of a ``.p2p``: summary, metrics per epoch, loss curves, validation previews."""
    entries = read_entries(model_path, MODEL_ENTRIES, "model package (.p2p)")
    meta = json.loads(entries["model.json"])
    metrics = meta.get("metrics", {})
    history = metrics.get("history", [])
    columns = [c for c in ("epoch", "lr", "G_GAN", "G_L1", "D_real", "D_fake", "val_l1", "val_mae", "val_rmse",
                           "val_psnr", "val_ssim", "val_r2", "train_seconds", "samples_per_s")
               if any(c in row for row in history)]
    generator = meta["architecture"]["generator"]
    summary = (
        f"<p>Model <b>{html.escape(Path(model_path).name)}</b>: U-Net depth {generator['depth']}, "
        f"NGF {generator['ngf']}, "
        f"{generator['in_channels']} → {generator['out_channels']} bands, chips of {meta['chip_size']} px. "
        f"Best epoch <b>{_number(metrics.get('best_epoch'))}</b> by validation "
        f"{html.escape(str(metrics.get('best_metric')))}.</p>"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Pix2Pix training report</title>{STYLE}</head>"
        f"<body><h1>Pix2Pix training report</h1>{summary}"
        f"<h2>Metrics per epoch</h2>{_table(history, columns, metrics.get('best_epoch'), 'epoch')}"
        f"<h2>Losses</h2>{_image(entries['losses.png'], 'loss curves')}"
        f"<h2>Validation chips: input, target, prediction</h2>{_image(entries['preview.png'], 'previews')}"
        "</body></html>"
    )


def evaluation_report(result: dict[str, Any]) -> str:
    columns = ["band", "mae", "rmse", "bias", "psnr", "ssim", "r2", "data_range"]
    overall = {"band": "mean", **{k: result.get(k) for k in columns[1:-1]}}
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Pix2Pix evaluation</title>{STYLE}</head><body>"
        f"<h1>Evaluation</h1><p>Prediction <b>{html.escape(str(result.get('prediction')))}</b> against reference "
        f"<b>{html.escape(str(result.get('reference')))}</b> over {result.get('pixels')} valid pixels "
        f"({html.escape(str(result.get('extent')))}).</p>"
        f"{_table([*result['bands'], overall], columns)}"
        "<p>MAE, RMSE and bias in the reference's units; PSNR (dB) and SSIM on the stated data range.</p>"
        "</body></html>"
    )


def write_html(path: str | Path, document: str) -> str:
    with staged_file(Path(path)) as staging:
        staging.write_text(document, encoding="utf-8")
    return str(Path(path).absolute())
