"""The HTML evaluation reports: per-band and overall metrics of a prediction against a reference, and the
unpaired measures (distributions against target chips, the cycle error).
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


def unpaired_report(result: dict[str, Any]) -> str:
    """A self-contained HTML page of an ``evaluate-unpaired`` result: distributions, then reference and cycle."""
    columns = ["band", "wasserstein", "wasserstein_relative", "prediction_mean", "target_mean", "prediction_std",
               "target_std", "prediction_pixels", "target_pixels"]
    overall = {"band": "mean", "wasserstein": result.get("wasserstein"),
               "wasserstein_relative": result.get("wasserstein_relative")}
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Unpaired evaluation</title>{STYLE}</head><body>"
        f"<h1>Unpaired evaluation</h1><p>Prediction <b>{html.escape(str(result.get('prediction')))}</b> against "
        f"the {html.escape(str(result.get('split')))} chips of domain {html.escape(str(result.get('domain')))} in "
        f"<b>{html.escape(str(result.get('chips')))}</b>.</p>",
        html_table([*result["bands"], overall], columns),
        "<p>Wasserstein: the 1-D earth mover's distance between the pixel values, in the target's units; relative: "
        "divided by the target's standard deviation.</p>",
    ]
    metrics = ["band", "mae", "rmse", "bias", "psnr", "ssim", "r2", "data_range"]
    for key, title in (("reference", "Against the reference"), ("cycle", "Cycle reconstruction (A→B→A against A)")):
        if result.get(key):
            section = result[key]
            parts.append(f"<h2>{title}</h2>" + html_table(
                [*section["bands"], {"band": "mean", **{k: section.get(k) for k in metrics[1:-1]}}], metrics))
    return "".join(parts) + "</body></html>"
