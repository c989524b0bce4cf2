"""The HTML training report of a ``.p2p``: summary, advice, metrics per epoch, loss curves, validation previews.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..core.html import STYLE, html_image, html_number, html_table
from ..model.archive import parse_json, read_entries
from ..model.card import ModelCard
from ..model.package import MODEL_ENTRIES


def training_report(model_path: str | Path) -> str:
    """The HTML report of a ``.p2p``: summary, metrics per epoch, loss curves, validation previews."""
    model_path = Path(model_path)
    entries = read_entries(model_path, MODEL_ENTRIES, "model package (.p2p)")
    card = ModelCard.from_dict(parse_json(entries["model.json"], "model.json", model_path), model_path)
    metrics, generator = card.metrics, card.generator
    history = [dict(row) for row in metrics.history]
    columns = [c for c in ("epoch", "lr", "G_GAN", "G_L1", "G_feat", "D_real", "D_fake", "val_l1", "val_mae",
                           "val_rmse", "val_psnr", "val_ssim", "val_r2", "train_seconds", "samples_per_s")
               if any(c in row for row in history)]
    advice = "".join(f"<p class='warning'>{html.escape(str(line))}</p>" for line in card.training.get("advice", ()))
    summary = (
        f"<p>Model <b>{html.escape(model_path.name)}</b>: U-Net depth {generator.depth}, NGF {generator.ngf}, "
        f"{html.escape(generator.upsample)} upsampling, "
        f"{generator.in_channels} → {generator.out_channels} bands, chips of {card.chip_size} px. "
        f"Best epoch <b>{html_number(metrics.best_epoch)}</b> by validation "
        f"{html.escape(str(metrics.best_metric))}.</p>"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Pix2Pix training report</title>{STYLE}</head>"
        f"<body><h1>Pix2Pix training report</h1>{summary}{advice}"
        f"<h2>Metrics per epoch</h2>{html_table(history, columns, metrics.best_epoch, 'epoch')}"
        f"<h2>Losses</h2>{html_image(entries['losses.png'], 'loss curves')}"
        "<h2>Validation chips: input, target, and the predictions after the first, the best and the last epoch"
        f"</h2>{html_image(entries['preview.png'], 'previews')}"
        "</body></html>"
    )
