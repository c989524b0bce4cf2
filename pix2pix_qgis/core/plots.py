"""Every figure the engine draws: chip panels, loss curves and the learning-rate range test.

One module on numpy and matplotlib (no torch), so every layer can use it: the package's
``preview.png`` (predictions after the first, best and last epoch) and ``losses.png``
(training), the API's ``show_batch``, ``show_results``, ``plot_losses`` and ``plot_lr_find``,
and through the package the HTML training report.

Figures are plain :class:`matplotlib.figure.Figure` objects, never pyplot's: there is no
global figure registry to fill up in a loop or share between threads, and no GUI backend is
ever chosen. :func:`png` renders with the Agg canvas, so the CLI and runs under QGIS are
headless by construction; in Jupyter the API returns the figure and the notebook shows it
(:func:`enable_notebook_display`).

How a raster is shown (:class:`Display`): three bands as an RGB composite, otherwise one
chosen band in grey with a colour bar in the raster's units. 8-bit data is drawn on its full
0–255 range; anything else is stretched linearly between the 2nd and 98th percentiles of
its valid pixels, per displayed band. Nodata pixels are drawn in :data:`NODATA_COLOUR`. A
prediction is drawn with its target's stretch, so that their colours compare.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..contract.errors import Pix2PixError

NODATA_COLOUR = (96 / 255, 0.0, 96 / 255)  # dark purple: apart from black, white and grey values
STRETCH_PERCENTILES = (2.0, 98.0)
PANEL_INCHES = 2.4

# The per-epoch history rows (train.loop) drawn by losses_figure: (key, legend label).
ADVERSARIAL_SERIES = (("G_GAN", "generator GAN"), ("D_real", "discriminator, real"),
                      ("D_fake", "discriminator, fake"),
                      # CycleGAN (train.cyclegan): each direction's generator and the discriminator it faces
                      ("G_A", "generator A→B"), ("D_A", "discriminator of B"), ("G_B", "generator B→A"),
                      ("D_B", "discriminator of A"))
L1_SERIES = (("G_L1", "training L1"), ("val_l1", "validation L1"),
             ("cycle_A", "training cycle A→B→A (× λ)"), ("cycle_B", "training cycle B→A→B (× λ)"),
             ("val_cycle_A", "validation cycle A→B→A"), ("val_cycle_B", "validation cycle B→A→B"))


@dataclass(frozen=True)
class Display:
    """Which bands of a raster are drawn and how: three (1-based) → RGB composite, one → grey.

    ``eight_bit`` data is drawn on 0–255 as it is; other data is stretched (module docstring).
    """

    bands: tuple[int, ...]
    eight_bit: bool = False

    @classmethod
    def of(cls, count: int, dtype: str | None = None, bands: int | Sequence[int] | None = None,
           role: str = "raster") -> Display:
        """The display of a ``count``-band raster of ``dtype``: bands 1-2-3 for three bands, else
        band 1, unless ``bands`` (one band number, or three for a composite) says otherwise."""
        if bands is None:
            chosen: tuple[int, ...] = (1, 2, 3) if count == 3 else (1,)
        elif isinstance(bands, (int, np.integer)):
            chosen = (int(bands),)
        else:
            chosen = tuple(int(band) for band in bands)
        if len(chosen) not in (1, 3):
            raise Pix2PixError(f"Show one band of the {role}, or three as an RGB composite, not {len(chosen)} "
                               f"({list(chosen)}).")
        missing = [band for band in chosen if not 1 <= band <= count]
        if missing:
            raise Pix2PixError(f"The {role} has {count} band(s); band(s) {missing} do not exist (bands count "
                               "from 1).")
        return cls(chosen, dtype == "uint8")

    @property
    def rgb(self) -> bool:
        """True for an RGB composite of three bands, False for one band in grey."""
        return len(self.bands) == 3

    def describe(self) -> str:
        """The bands shown, for a column title: "bands 1-2-3 as RGB" or "band 2"."""
        return f"bands {'-'.join(map(str, self.bands))} as RGB" if self.rgb else f"band {self.bands[0]}"

    def stretch(self, data: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) per displayed band of (C, H, W) ``data``: 0–255 for 8-bit data, else the
        2nd–98th percentiles over ``valid`` (H, W) pixels (a flat band gets a span of 1)."""
        shown = data[[band - 1 for band in self.bands]]
        if self.eight_bit:
            return np.zeros(len(self.bands)), np.full(len(self.bands), 255.0)
        values = shown[:, valid & np.isfinite(shown).all(axis=0)]
        if values.shape[1] == 0:
            return np.zeros(len(self.bands)), np.ones(len(self.bands))
        low, high = np.percentile(values, STRETCH_PERCENTILES, axis=1)
        return low, np.where(high > low, high, low + 1.0)


def draw_raster(axes: Any, data: np.ndarray, valid: np.ndarray, display: Display,
                stretch: tuple[np.ndarray, np.ndarray]) -> Any:
    """Draw (C, H, W) ``data`` on ``axes`` with ``stretch``; returns the ``AxesImage``.

    An RGB composite is an (H, W, 3) array in [0, 1]; one band is drawn in its own units
    with a grey colour map whose limits are the stretch, nodata masked in NODATA_COLOUR.
    """
    low, high = stretch
    shown = data[[band - 1 for band in display.bands]].astype(np.float64)
    invalid = ~valid | ~np.isfinite(shown).all(axis=0)
    if display.rgb:
        scaled = (shown - low[:, None, None]) / (high - low)[:, None, None]
        image = np.clip(np.nan_to_num(scaled), 0.0, 1.0).transpose(1, 2, 0)
        image[invalid] = NODATA_COLOUR
        return axes.imshow(image, interpolation="nearest")
    from matplotlib import colormaps

    cmap = colormaps["gray"].with_extremes(bad=NODATA_COLOUR)
    band = np.ma.masked_array(shown[0], mask=invalid)
    return axes.imshow(band, cmap=cmap, vmin=float(low[0]), vmax=float(high[0]), interpolation="nearest")


class ChipPanels(Protocol):
    """One chip as :func:`chips_figure` draws it (``data.dataset.ChipView`` is one).

    ``input`` (C_a, H, W) and ``target`` / ``prediction`` (C_b, H, W) in raster units,
    ``valid`` (H, W) bool; ``prediction`` is None when there is none to show.
    """

    # Read-only properties, so that frozen dataclasses such as ChipView satisfy the protocol.
    @property
    def name(self) -> str:
        """The chip's file name, shown as its row's label."""

    @property
    def input(self) -> np.ndarray:
        """(C_a, H, W) input in its raster units."""

    @property
    def target(self) -> np.ndarray:
        """(C_b, H, W) target in its raster units."""

    @property
    def valid(self) -> np.ndarray:
        """(H, W) bool, True where input and target are both valid."""

    @property
    def prediction(self) -> np.ndarray | None:
        """(C_b, H, W) prediction in target units, or None when there is none to show."""


def chips_figure(chips: Sequence[ChipPanels], input_display: Display | None = None,
                 target_display: Display | None = None, title: str | None = None) -> Figure:
    """One row per chip: Input (A) | Target (B) [| Prediction, when the chips have one].

    The input is stretched on its own; target and prediction share the target's stretch.
    Displays default to :meth:`Display.of` the band counts (stretched, as for non-8-bit data).
    """
    predicted = [chip.prediction for chip in chips if chip.prediction is not None]
    predictions = [("Prediction", predicted)] if predicted else []
    return predictions_figure(chips, predictions, input_display, target_display, title)


def predictions_figure(chips: Sequence[ChipPanels], predictions: Sequence[tuple[str, Sequence[np.ndarray]]],
                       input_display: Display | None = None, target_display: Display | None = None,
                       title: str | None = None) -> Figure:
    """One row per chip: Input (A) | Target (B) | one column per ``(title, arrays)`` of ``predictions``.

    Each column holds one (C_b, H, W) prediction per chip in target units (the package's
    preview: the predictions after the first, the best and the last epoch, side by side).
    Every prediction of a row is drawn with that row's target stretch, so columns compare.
    """
    if not chips:
        return _note_figure(title or "Chips", "No chips to show (this model was not trained here, or "
                                              "the folder has none).")
    short = [label for label, arrays in predictions if len(arrays) != len(chips)]
    if short:
        raise ValueError(f"Prediction column(s) {short} do not have one prediction per chip ({len(chips)}).")
    input_display = input_display or Display.of(chips[0].input.shape[0])
    target_display = target_display or Display.of(chips[0].target.shape[0])
    columns = [("Input (A)", input_display), ("Target (B)", target_display)]
    columns += [(label, target_display) for label, _ in predictions]
    figure = Figure(figsize=(PANEL_INCHES * len(columns) + 0.6 * len(columns), PANEL_INCHES * len(chips) + 0.6),
                    layout="constrained")
    grid = figure.subplots(len(chips), len(columns), squeeze=False)
    nodata = False
    for row, chip in enumerate(chips):
        target_stretch = target_display.stretch(chip.target, chip.valid)
        panels = [(chip.input, input_display.stretch(chip.input, chip.valid)), (chip.target, target_stretch)]
        panels += [(arrays[row], target_stretch) for _, arrays in predictions]
        for col, ((data, stretch), (label, display)) in enumerate(zip(panels, columns)):
            axes = grid[row, col]
            image = draw_raster(axes, data, chip.valid, display, stretch)
            axes.set_xticks([])
            axes.set_yticks([])
            axes.set_xlabel(_stretch_label(display, stretch), fontsize=7)
            if row == 0:
                axes.set_title(f"{label}\n{display.describe()}", fontsize=9)
            if col == 0:
                axes.set_ylabel(chip.name, fontsize=8)
            if not display.rgb:
                figure.colorbar(image, ax=axes, shrink=0.85)
        nodata = nodata or not chip.valid.all()
    if title or nodata:
        figure.suptitle(" · ".join(filter(None, [title, "nodata in purple" if nodata else None])), fontsize=10)
    return figure


def _stretch_label(display: Display, stretch: tuple[np.ndarray, np.ndarray]) -> str:
    if display.eight_bit:
        return "0–255 (8-bit)"
    low, high = stretch
    ranges = ", ".join(f"{lo:.4g}–{hi:.4g}" for lo, hi in zip(low, high))
    return f"stretch {STRETCH_PERCENTILES[0]:g}–{STRETCH_PERCENTILES[1]:g} %: {ranges}"


def losses_figure(history: Sequence[Mapping[str, Any]], best_epoch: int | None = None) -> Figure:
    """Per-epoch losses (``train.loop``'s history rows): the adversarial terms above, training and
    validation L1 (normalised units) below; the best epoch marked."""
    if not history:
        return _note_figure("Losses", "No training history (an imported model).")
    figure = Figure(figsize=(7.0, 6.0), layout="constrained")
    adversarial, l1 = figure.subplots(2, 1, sharex=True)
    epochs = [row["epoch"] for row in history]
    for axes, series in ((adversarial, ADVERSARIAL_SERIES), (l1, L1_SERIES)):
        for key, label in series:
            values = [np.nan if row.get(key) is None else float(row[key]) for row in history]
            if not np.isnan(values).all():
                axes.plot(epochs, values, marker="o", markersize=3, label=label)
        if best_epoch is not None:
            axes.axvline(best_epoch, color="0.5", linestyle=":", label=f"best epoch ({best_epoch})")
        axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
    adversarial.set_title("Adversarial losses", fontsize=10)
    adversarial.set_ylabel("loss")
    cycle = any("cycle_A" in row for row in history)
    l1.set_title("Cycle-consistency L1" if cycle else "L1 between prediction and target", fontsize=10)
    l1.set_ylabel("L1 (normalised units, [-1, 1])")
    l1.set_xlabel("epoch")
    l1.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def lr_figure(lrs: Sequence[float], losses: Sequence[float], suggestion: float) -> Figure:
    """The learning-rate range test: smoothed generator loss against the learning rate (log scale),
    with the suggested rate marked."""
    figure = Figure(figsize=(6.5, 4.0), layout="constrained")
    axes = figure.subplots()
    axes.plot(lrs, losses, label="generator loss (smoothed)")
    axes.axvline(suggestion, color="tab:red", linestyle="--", label=f"suggested {suggestion:.2e}")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("generator loss (GAN + λ·L1)")
    axes.set_title("Learning-rate range test", fontsize=10)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3, which="both")
    return figure


def _note_figure(title: str, note: str) -> Figure:
    figure = Figure(figsize=(6.0, 1.5), layout="constrained")
    axes = figure.subplots()
    axes.set_axis_off()
    axes.set_title(title, fontsize=10)
    axes.text(0.5, 0.5, note, ha="center", va="center", fontsize=9, transform=axes.transAxes)
    return figure


def png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes, rendered by Agg (no display, no pyplot)."""
    FigureCanvasAgg(figure)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=dpi)
    return out.getvalue()


def enable_notebook_display() -> None:
    """In IPython, let a returned Figure show itself, also when pyplot was never imported.

    Jupyter's inline backend registers a PNG formatter for Figure only when pyplot loads it;
    the API's figures do not go through pyplot, so it registers that formatter itself when no
    formatter knows Figure yet. A no-op outside IPython or when one is already registered.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    formatters = shell.display_formatter
    printers = [formatter.type_printers for formatter in formatters.formatters.values()]
    if any(Figure in known for known in [*printers, formatters.ipython_display_formatter.type_printers]):
        return
    from IPython.core.pylabtools import select_figure_formats

    select_figure_formats(shell, {"png"})
