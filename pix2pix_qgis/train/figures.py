"""The figures a trained package carries: validation previews and loss curves as PNG bytes.

Drawn with Pillow so the engine needs no plotting library to train.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

NODATA_RGB = (96, 0, 96)  # nodata in previews: dark purple, distinct from black


def _rgb_bands(data: np.ndarray) -> np.ndarray:
    """(C, H, W) → (3, H, W): bands 1-2-3 as RGB, one band as grey, two as (1, 2, 1)."""
    if data.shape[0] >= 3:
        return data[:3]
    if data.shape[0] == 2:
        return data[[0, 1, 0]]
    return data[[0, 0, 0]]


def stretch_of(data: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2–98 % percentiles per displayed channel over valid pixels."""
    rgb = _rgb_bands(data)
    if not valid.any():
        return np.zeros(3), np.ones(3)
    values = rgb[:, valid]
    low, high = np.percentile(values, 2, axis=1), np.percentile(values, 98, axis=1)
    return low, np.where(high > low, high, low + 1)


def to_rgb(data: np.ndarray, valid: np.ndarray, stretch: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(C, H, W) → (H, W, 3) uint8 with ``stretch`` applied; nodata drawn in NODATA_RGB."""
    low, high = stretch
    rgb = (_rgb_bands(data) - low[:, None, None]) / (high - low)[:, None, None]
    image = (np.clip(np.nan_to_num(rgb), 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)
    image[~valid] = NODATA_RGB
    return image


def render_preview(rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], tile: int = 192) -> bytes:
    """PNG of Input | Target | Prediction, one row per (input, target, prediction, valid) chip.

    The input is stretched on its own; target and prediction share the target's stretch so
    their colours compare.
    """
    from PIL import Image, ImageDraw

    gap, header = 4, 18
    width = 3 * tile + 4 * gap
    height = header + max(1, len(rows)) * (tile + gap) + gap
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for col, label in enumerate(("Input (A)", "Target (B)", "Prediction")):
        draw.text((gap + col * (tile + gap) + 4, 3), label, fill=(0, 0, 0))
    for row, (a, b, pred, valid) in enumerate(rows):
        target_stretch = stretch_of(b, valid)
        images = (to_rgb(a, valid, stretch_of(a, valid)), to_rgb(b, valid, target_stretch),
                  to_rgb(pred, valid, target_stretch))
        for col, image in enumerate(images):
            resample = Image.Resampling.NEAREST if image.shape[0] < tile else Image.Resampling.BILINEAR
            tile_image = Image.fromarray(image).resize((tile, tile), resample)
            canvas.paste(tile_image, (gap + col * (tile + gap), header + row * (tile + gap)))
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


_SERIES = (
    ("adversarial", (("G_GAN", (200, 30, 30)), ("D_real", (30, 120, 200)), ("D_fake", (240, 150, 0))), False),
    ("L1 (normalised units, log scale)", (("G_L1", (40, 40, 40)), ("val_l1", (0, 160, 60))), True),
)


@dataclass(frozen=True)
class _Panel:
    """Maps (epoch, value) onto a pixel box; values on a log10 scale when ``log``."""

    box: tuple[int, int, int, int]  # left, top, right, bottom
    epochs: tuple[int, int]
    values: tuple[float, float]
    log: bool

    def _y(self, value: float) -> float:
        return math.log10(value) if self.log else value

    def point(self, epoch: int, value: float) -> tuple[float, float]:
        left, top, right, bottom = self.box
        e_lo, e_hi = self.epochs
        v_lo, v_hi = self._y(self.values[0]), self._y(self.values[1])
        x = left + (epoch - e_lo) / ((e_hi - e_lo) or 1) * (right - left)
        y = bottom - (self._y(value) - v_lo) / ((v_hi - v_lo) or 1.0) * (bottom - top - 16)
        return x, y


def render_losses(history: Sequence[dict[str, Any]], size: tuple[int, int] = (640, 420)) -> bytes:
    """PNG line chart of the per-epoch losses: adversarial terms above, train and validation L1 below."""
    from PIL import Image, ImageDraw

    width, height = size
    canvas = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    epochs = [row["epoch"] for row in history]
    panel_height = (height - 30) // 2
    for index, (title, series, log) in enumerate(_SERIES):
        top = 10 + index * (panel_height + 10)
        box = (60, top, width - 10, top + panel_height - 20)
        draw.rectangle(box, outline=(120, 120, 120))
        draw.text((box[0] + 4, top + 2), title, fill=(0, 0, 0))

        def plotted(row: dict[str, Any], name: str, log: bool = log) -> bool:
            return row.get(name) is not None and (row[name] > 0 or not log)

        values = [row[name] for row in history for name, _ in series if plotted(row, name)]
        if not values:
            continue
        panel = _Panel(box, (min(epochs), max(epochs)), (min(values), max(values)), log)
        draw.text((4, box[1]), f"{max(values):.3g}", fill=(0, 0, 0))
        draw.text((4, box[3] - 10), f"{min(values):.3g}", fill=(0, 0, 0))
        draw.text((box[0], box[3] + 2), f"epoch {min(epochs)}", fill=(0, 0, 0))
        draw.text((box[2] - 60, box[3] + 2), f"epoch {max(epochs)}", fill=(0, 0, 0))
        legend_x = box[0] + 250
        for name, color in series:
            points = [panel.point(row["epoch"], row[name]) for row in history if plotted(row, name)]
            if len(points) > 1:
                draw.line(points, fill=color, width=2)
            for x, y in points:
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=color)
            draw.text((legend_x, top + 2), name, fill=color)
            legend_x += 70
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()
