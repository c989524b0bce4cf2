"""Tiny real models for provider tests: trained in seconds by the engine's CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from .paths import ENGINE_PYTHON
from .rasters import write_raster


def train_tiny_model(root: Path, target_bands: str = "1,2,3") -> Path:
    """A 3-band → ``target_bands`` model (32 px chips, NGF 4, one epoch) in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(3).integers(0, 255, (3, 128, 128)).astype("uint8")
    raster = write_raster(root / "rgb.tif", data)
    for argv in (["export", str(raster), str(raster), str(root / "chips"), "--tile-size", "32", "--stride", "32",
                  "--validation", "0.2", "--bands2", target_bands],
                 ["train", str(root / "chips"), str(root / "model.p2p"), "--epochs", "1", "--ngf", "4",
                  "--batch-size", "8", "--device", "cpu"]):
        run = subprocess.run([ENGINE_PYTHON, "-m", "pix2pix_qgis", *argv, "--progress", "none"],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
    return root / "model.p2p"
