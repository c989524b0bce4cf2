"""What more than one engine test module builds: real GeoTIFFs, paired and unpaired chips folders made by the
real exports, files of the reference pix2pix's layout, a :class:`Progress` that records, and a package's weights.

Plain functions and constants, imported by the tests (``from ..builders import mapping_chips``); the fixtures
built on them are in ``conftest.py``. Test modules never import each other (the architecture test says so).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from affine import Affine

from pix2pix_qgis import ChipSpec, Progress, UnpairedSpec, export_chips
from pix2pix_qgis.model.package import read_package

UTM_TRANSFORM = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 5_000_000.0)

# Tiny CycleGAN networks and chips: the tests check behaviour, not quality (two CPU cores shared by many).
CYCLEGAN_TINY = {"model_type": "cyclegan", "ngf": 4, "ndf": 4, "resnet_blocks": 1, "batch_size": 2,
                 "checkpoint_minutes": 0}
B_TRANSFORM = Affine(0.0003, 0, -60.0, 0, -0.0003, -10.0)  # WGS 84, on another continent than A
# 32 px chips; B kept at its own cell size (few chips); a quarter of each domain held out.
UNPAIRED_SPEC = UnpairedSpec(tile_size=32, stride=32, cell_size_b=0.0003, validation=0.25, seed=1, max_nodata=0.2)

# Tensor names, shapes and dtypes of files the real reference code wrote (fixtures/reference/README.md).
REFERENCE_KEYS = Path(__file__).parent / "fixtures" / "reference" / "keys.json"
REFERENCE_FILES = json.loads(REFERENCE_KEYS.read_text())["specs"]


def write_raster(
    path: Path,
    data: np.ndarray,
    crs: str | None = "EPSG:32633",
    transform: Affine = UTM_TRANSFORM,
    nodata: Any = None,
    **profile: Any,
) -> Path:
    """Write ``data`` (bands, rows, cols) as a GeoTIFF and return its path."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    if data.shape[0] != 3:
        profile.setdefault("photometric", "MINISBLACK")  # no implicit alpha band
    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
        dtype=data.dtype, crs=crs, transform=transform, nodata=nodata, **profile,
    ) as dst:
        dst.write(data)
    return path


def smooth_field(rng: np.random.Generator, bands: int, size: int, width: float = 0.04) -> np.ndarray:
    """(bands, size, size) uint8 of smooth random blobs (a few px across), spanning 0..250."""
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.fftfreq(size)[None]
    low_pass = np.exp(-(kx**2 + ky**2) / (2 * width**2))
    out = []
    for _ in range(bands):
        field = np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) * low_pass).real
        out.append((field - field.min()) / (field.max() - field.min()) * 250)
    return np.stack(out).astype("uint8")


def smooth_image(rng: np.random.Generator, bands: int, height: int, width: int) -> np.ndarray:
    """Natural-looking structure: smooth gradients plus blobs, 0..255."""
    yy, xx = np.mgrid[0:height, 0:width]
    layers = []
    for b in range(bands):
        phase = rng.random(2) * 6
        layers.append(127 + 60 * np.sin(xx / 17 + phase[0] + b) * np.cos(yy / 23 + phase[1]) + 30 * np.sin(yy / 7))
    return np.clip(np.stack(layers), 0, 255).astype("uint8")


def mapping_chips(folder: Path, size: int = 256, tile: int = 32, validation: float = 0.25, seed: int = 0,
                  b_nodata_block: bool = False) -> Path:
    """Chips of a deterministic mapping: B = 255 − A with bands permuted (3, 1, 2).

    With ``b_nodata_block`` B is float32 with nodata −9999 on a 6×7 px patch of every chip.
    """
    rng = np.random.default_rng(seed)
    a = smooth_field(rng, 3, size)
    b = (255 - a[[2, 0, 1]]).astype("float32" if b_nodata_block else "uint8")
    nodata = None
    if b_nodata_block:
        for row in range(0, size, tile):
            for col in range(0, size, tile):
                b[:, row + 3:row + 9, col + (row // tile) % 5:col + (row // tile) % 5 + 7] = -9999
        nodata = -9999.0
    write_raster(folder / "a.tif", a)
    write_raster(folder / "b.tif", b, nodata=nodata)
    spec = ChipSpec(tile_size=tile, stride=tile, validation=validation, seed=seed,
                    max_nodata=0.9 if b_nodata_block else 0.0)
    export_chips(folder / "a.tif", folder / "b.tif", folder / "chips", spec)
    return folder / "chips"


def esri_folder(folder: Path, chips_a: dict[str, np.ndarray], chips_b: dict[str, np.ndarray],
                masks_b: dict[str, np.ndarray] | None = None) -> Path:
    """An Esri-style folder (images/ + images2/, no chips.json) from arrays; optional internal masks on B."""
    for sub, chips in (("images", chips_a), ("images2", chips_b)):
        for name, data in chips.items():
            path = write_raster(folder / sub / name, data)
            if sub == "images2" and masks_b and name in masks_b:
                with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as dst:
                    dst.write_mask(masks_b[name].astype("uint8") * 255)
    return folder


def unpaired_rasters(root: Path) -> tuple[Path, Path]:
    """A: 3-band uint8 UTM with nodata 0 and a nodata corner; B: 3-band uint16 WGS 84, far away, nodata 65535."""
    rng = np.random.default_rng(3)
    a = rng.integers(20, 200, (3, 64, 96), dtype="uint8")
    a[:, :8, :8] = 0
    b = rng.integers(1000, 3000, (3, 96, 128)).astype("uint16")
    b[:, -5:, -7:] = 65535
    return (write_raster(root / "a.tif", a, nodata=0),
            write_raster(root / "b.tif", b, crs="EPSG:4326", transform=B_TRANSFORM, nodata=65535))


def checkpoint_like(spec: str, path: Path) -> Path:
    """A generator file with exactly the tensors of the reference's own file for ``spec``; random values."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, (shape, dtype) in REFERENCE_FILES[spec]["keys"].items():
        if dtype == "int64":
            state[key] = torch.zeros(shape, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.ones(shape)
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.1
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


class Recorder(Progress):
    """Keeps every event; cancels once ``cancel_at_step`` steps are done."""

    def __init__(self, cancel_at_step: int | None = None) -> None:
        super().__init__(None, threading.Event())
        self.events: list[dict[str, Any]] = []
        self.cancel_at_step = cancel_at_step

    def emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self.cancel_at_step is not None and event.get("step", 0) >= self.cancel_at_step:
            self.cancel_event.set()

    def steps(self) -> list[int]:
        return [e["step"] for e in self.events if e["type"] == "progress" and "step" in e]

    def infos(self) -> list[str]:
        return [e["message"] for e in self.events if e["type"] == "info"]


def weights(model: Path) -> dict[str, torch.Tensor]:
    """The A→B generator's tensors of a ``.p2p`` package by name: what two runs that must agree are compared on."""
    return read_package(model)[1]
