"""The HTML training report of a ``.p2p``: summary, advice, metrics per epoch, loss curves, validation previews.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..core.html import STYLE, html_image, html_number, html_table
from ..model.archive import parse_json, read_entries
from ..model.card import ModelCard
from ..model.package import B2A_WEIGHTS, MODEL_ENTRIES


def training_report(model_path: str | Path) -> str:
    """The HTML report of a ``.p2p``: summary, metrics per epoch, loss curves, validation previews."""
    model_path = Path(model_path)
    entries = read_entries(model_path, MODEL_ENTRIES, "model package (.p2p)", optional=(B2A_WEIGHTS,))
    card = ModelCard.from_dict(parse_json(entries["model.json"], "model.json", model_path), model_path)
    metrics, generator = card.metrics, card.generator
    history = [dict(row) for row in metrics.history]
    columns = [c for c in ("epoch", "lr", "G_GAN", "G_L1", "G_feat", "D_real", "D_fake", "val_l1", "val_mae",
                           "val_rmse", "val_psnr", "val_ssim", "val_r2", "D_A", "G_A", "cycle_A", "idt_A", "D_B",
                           "G_B", "cycle_B", "idt_B", "val_cycle_A", "val_cycle_B", "train_seconds",
                           "samples_per_s")
               if any(c in row for row in history)]
    advice = "".join(f"<p class='warning'>{html.escape(str(line))}</p>" for line in card.training.get("advice", ()))
    if card.model_type == "cyclegan":
        kept = f"Kept epoch <b>{html_number(metrics.best_epoch)}</b> (the last: no pairs tell a best one)."
        what = (f"CycleGAN, two {html.escape(generator.name)} generators (A → B and B → A), NGF {generator.ngf}, "
                f"{generator.in_channels} ↔ {generator.out_channels} bands")
    else:
        kept = (f"Best epoch <b>{html_number(metrics.best_epoch)}</b> by validation "
                f"{html.escape(str(metrics.best_metric))}.")
        what = (f"{html.escape(generator.name)}, NGF {generator.ngf}, "
                f"{html.escape(generator.upsample)} upsampling, {generator.in_channels} → {generator.out_channels} "
                "bands")
    previews = ("Validation chips of A translated to B, and of B translated to A" if card.model_type == "cyclegan"
                else "Validation chips: input, target, and the predictions after the first, the best and the last "
                     "epoch")
    trained = card.training
    how = (f" Trained on {html.escape(str(trained.get('device', '?')))} in {html.escape(str(trained['precision']))}."
           if "precision" in trained else "")  # models trained before PRECISION existed do not say
    summary = (f"<p>Model <b>{html.escape(model_path.name)}</b>: {what}, chips of {card.chip_size} px. {kept}"
               f"{how}</p>")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Pix2Pix training report</title>{STYLE}</head>"
        f"<body><h1>Pix2Pix training report</h1>{summary}{advice}"
        f"<h2>Metrics per epoch</h2>{html_table(history, columns, metrics.best_epoch, 'epoch')}"
        f"<h2>Losses</h2>{html_image(entries['losses.png'], 'loss curves')}"
        f"<h2>{previews}</h2>{html_image(entries['preview.png'], 'previews')}"
        "</body></html>"
    )
