"""core.plots, read through matplotlib's object model: panels, titles, axes, stretches, line data."""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
from matplotlib.image import AxesImage
from PIL import Image

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.core import plots
from pix2pix_qgis.core.plots import NODATA_COLOUR, Display


@dataclass
class Chip:
    name: str
    input: np.ndarray
    target: np.ndarray
    valid: np.ndarray
    prediction: np.ndarray | None = None


def image_axes(figure):
    """The panels (axes holding an image), row by row; colour bars are axes without one."""
    return [axes for axes in figure.axes if any(isinstance(a, AxesImage) for a in axes.get_children())]


def test_display_follows_the_band_count_and_dtype():
    assert Display.of(3, "uint8") == Display((1, 2, 3), eight_bit=True)
    assert Display.of(4, "uint16") == Display((1,), eight_bit=False)
    assert Display.of(1, "float32").describe() == "band 1"
    assert Display.of(4, "uint8", bands=(4, 3, 2)).describe() == "bands 4-3-2 as RGB"
    assert Display.of(5, None, bands=5).bands == (5,)
    with pytest.raises(Pix2PixError, match=r"has 3 band\(s\); band\(s\) \[4\] do not exist"):
        Display.of(3, "uint8", bands=4, role="target (B)")
    with pytest.raises(Pix2PixError, match="one band .* or three"):
        Display.of(3, "uint8", bands=(1, 2))


def test_stretch_is_2_to_98_percent_of_valid_pixels_and_0_255_for_8_bit():
    rng = np.random.default_rng(0)
    data = rng.uniform(100, 200, (2, 20, 20))
    valid = np.ones((20, 20), bool)
    valid[:5] = False
    data[:, :5] = 1e6  # invalid pixels must not move the stretch
    low, high = Display.of(2, "float32", bands=2).stretch(data, valid)
    assert low[0] == pytest.approx(np.percentile(data[1, 5:], 2))
    assert high[0] == pytest.approx(np.percentile(data[1, 5:], 98))
    low, high = Display.of(2, "uint8", bands=1).stretch(data, valid)
    assert (low[0], high[0]) == (0, 255)
    flat = np.full((1, 4, 4), 7.0)
    low, high = Display.of(1, "float32").stretch(flat, np.ones((4, 4), bool))
    assert (low[0], high[0]) == (7.0, 8.0)


def test_a_chip_grid_has_one_row_per_chip_and_labelled_columns():
    rng = np.random.default_rng(1)
    valid = np.ones((16, 16), bool)
    valid[2, 3] = False
    chips = [Chip(f"{i:09d}.tif", rng.integers(0, 256, (3, 16, 16)).astype("float32"),
                  rng.uniform(0, 1000, (1, 16, 16)), valid, rng.uniform(0, 1000, (1, 16, 16)))
             for i in range(3)]
    figure = plots.chips_figure(chips, Display.of(3, "uint8"), Display.of(1, "float32"), title="validation chips")
    panels = image_axes(figure)
    assert len(panels) == 9
    assert [axes.get_title() for axes in panels[:3]] == [
        "Input (A)\nbands 1-2-3 as RGB", "Target (B)\nband 1", "Prediction\nband 1"]
    assert [panels[3 * row].get_ylabel() for row in range(3)] == ["000000000.tif", "000000001.tif", "000000002.tif"]
    assert figure.get_suptitle() == "validation chips · nodata in purple"
    assert len(figure.axes) == 9 + 6  # a colour bar beside every single-band panel

    rgb = panels[0].get_images()[0].get_array()
    expected = chips[0].input.transpose(1, 2, 0) / 255  # 8-bit input: 0–255 without stretch
    expected[2, 3] = NODATA_COLOUR
    np.testing.assert_allclose(rgb, expected)
    assert panels[0].get_xlabel() == "0–255 (8-bit)"

    target, prediction = panels[1].get_images()[0], panels[2].get_images()[0]
    low, high = np.percentile(chips[0].target[0][valid], [2, 98])
    assert target.get_clim() == pytest.approx((low, high)) == prediction.get_clim()  # the target's stretch, shared
    assert target.get_cmap().name.startswith("gray")
    np.testing.assert_array_equal(target.get_array().mask, ~valid)
    np.testing.assert_array_equal(prediction.get_array().data, chips[0].prediction[0])
    assert panels[1].get_xlabel() == panels[2].get_xlabel() == f"stretch 2–98 %: {low:.4g}–{high:.4g}"


@pytest.mark.parametrize("bands", [1, 2, 4])
def test_the_training_preview_has_one_column_per_epoch_with_the_target_stretch(bands):
    rng = np.random.default_rng(0)
    valid = np.ones((16, 16), bool)
    valid[:4] = False
    chips = [Chip(f"{i}.tif", rng.random((bands, 16, 16)), rng.random((1, 16, 16)) * 100, valid) for i in range(2)]
    epochs = [(title, [rng.random((1, 16, 16)) * 100 for _ in chips])
              for title in ("Epoch 1", "Epoch 5 (best, kept)", "Epoch 9 (last)")]
    figure = plots.predictions_figure(chips, epochs, Display.of(bands), Display.of(1))
    panels = image_axes(figure)
    assert len(panels) == 2 * 5
    assert [axes.get_title().split("\n")[0] for axes in panels[:5]] == [
        "Input (A)", "Target (B)", "Epoch 1", "Epoch 5 (best, kept)", "Epoch 9 (last)"]
    second_row = [axes.get_images()[0] for axes in panels[5:]]
    low, high = np.percentile(chips[1].target[0][valid], [2, 98])
    assert all(image.get_clim() == pytest.approx((low, high)) for image in second_row[1:])
    np.testing.assert_array_equal(second_row[4].get_array().data, epochs[2][1][1][0])
    np.testing.assert_array_equal(second_row[0].get_array().mask, ~valid)  # nodata drawn in NODATA_COLOUR
    assert figure.get_suptitle() == "nodata in purple"
    assert Image.open(io.BytesIO(plots.png(figure))).size[0] > Image.open(io.BytesIO(plots.png(
        plots.predictions_figure(chips, epochs[1:2])))).size[0]
    with pytest.raises(ValueError, match="one prediction per chip"):
        plots.predictions_figure(chips, [("Epoch 1", epochs[0][1][:1])])


def test_rgb_panels_are_clipped_to_the_stretch():
    data = np.stack([np.linspace(0, 1000, 100).reshape(10, 10)] * 3)
    chip = Chip("a", data, data, np.ones((10, 10), bool))
    panels = image_axes(plots.chips_figure([chip], Display.of(3, "uint16"), Display.of(3, "uint16")))
    assert len(panels) == 2 and panels[0].get_title().startswith("Input (A)")
    image = panels[0].get_images()[0].get_array()
    low, high = np.percentile(data[0], [2, 98])
    assert image.min() == 0.0 and image.max() == 1.0
    np.testing.assert_allclose(image[..., 0], np.clip((data[0] - low) / (high - low), 0, 1))


HISTORY = [
    {"epoch": 1, "G_GAN": 0.9, "G_L1": 0.40, "D_real": 0.7, "D_fake": 0.6, "val_l1": 0.35},
    {"epoch": 2, "G_GAN": 1.1, "G_L1": 0.30, "D_real": 0.6, "D_fake": 0.5, "val_l1": 0.31},
    {"epoch": 3, "G_GAN": 1.3, "G_L1": 0.25, "D_real": 0.5, "D_fake": 0.4, "val_l1": None},
]


def test_the_loss_figure_draws_the_history():
    figure = plots.losses_figure(HISTORY, best_epoch=2)
    adversarial, l1 = figure.axes
    assert adversarial.get_ylabel() == "loss" and l1.get_xlabel() == "epoch"
    assert l1.get_ylabel() == "L1 (normalised units, [-1, 1])"
    lines = {line.get_label(): line for line in adversarial.lines + l1.lines}
    assert list(lines["generator GAN"].get_xdata()) == [1, 2, 3]
    assert list(lines["discriminator, fake"].get_ydata()) == [0.6, 0.5, 0.4]
    assert list(lines["training L1"].get_ydata()) == [0.40, 0.30, 0.25]
    validation = lines["validation L1"].get_ydata()
    assert list(validation[:2]) == [0.35, 0.31] and np.isnan(validation[2])  # no value: a gap, not a zero
    assert list(lines["best epoch (2)"].get_xdata()) == [2, 2]


def test_the_lr_figure_marks_the_suggestion_on_a_log_axis():
    lrs, losses = [1e-5, 1e-4, 1e-3, 1e-2], [50.0, 40.0, 20.0, 90.0]
    (axes,) = plots.lr_figure(lrs, losses, 1e-3).axes
    assert axes.get_xscale() == "log" and axes.get_xlabel() == "learning rate"
    curve, marker = axes.lines
    assert list(curve.get_xdata()) == lrs and list(curve.get_ydata()) == losses
    assert list(marker.get_xdata()) == [1e-3, 1e-3] and marker.get_label() == "suggested 1.00e-03"


def test_figures_without_data_say_so_and_render_headless():
    empty = ((plots.chips_figure([]), "No chips to show"), (plots.losses_figure([]), "No training history"))
    for figure, text in empty:
        assert text in figure.axes[0].texts[0].get_text()
        image = Image.open(io.BytesIO(plots.png(figure, dpi=50)))
        assert image.format == "PNG" and image.size == (300, 75)  # 6 × 1.5 inches at 50 dpi


def test_the_engine_draws_headless_without_pyplot():
    """The CLI, training, the report and the API draw through Agg and never import pyplot, which
    would choose a backend (a GUI one where a display exists) and keep every figure alive."""
    code = ("import sys\n"
            "from pix2pix_qgis.cli import main\n"
            "from pix2pix_qgis.train import loop, report\n"
            "from pix2pix_qgis import api\n"
            "from pix2pix_qgis.core import plots\n"
            "data = plots.png(plots.losses_figure([{'epoch': 1, 'G_L1': 0.5, 'val_l1': 0.4}], 1))\n"
            "assert data[:8] == b'\\x89PNG\\r\\n\\x1a\\n'\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
