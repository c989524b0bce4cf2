"""The HTML evaluation report: per-band and overall metrics of a prediction against a reference.
"""

from __future__ import annotations

import html
from typing import Any

from ..core.html import STYLE, html_table


def evaluation_report(result: dict[str, Any]) -> str:
    """A self-contained HTML page of an ``evaluate`` result: overall and per-band metrics."""
    columns = ["band", "mae", "rmse", "bias", "psnr", "ssim", "r2", "data_range"]
    overall = {"band": "mean", **{k: result.get(k) for k in columns[1:-1]}}
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Pix2Pix evaluation</title>{STYLE}</head><body>"
        f"<h1>Evaluation</h1><p>Prediction <b>{html.escape(str(result.get('prediction')))}</b> against reference "
        f"<b>{html.escape(str(result.get('reference')))}</b> over {result.get('pixels')} valid pixels "
        f"({html.escape(str(result.get('extent')))}).</p>"
        f"{html_table([*result['bands'], overall], columns)}"
        "<p>MAE, RMSE and bias in the reference's units; PSNR (dB) and SSIM on the stated data range.</p>"
        "</body></html>"
    )
