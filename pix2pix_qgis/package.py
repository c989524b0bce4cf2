"""The model package ``.p2p`` and the resumable training checkpoint, both pickle-free zips.

A ``.p2p`` is one zip holding exactly ``model.json`` (everything translation needs: bands,
normalisation, architecture, chip size, training grid, plus the training record),
``weights.safetensors`` (the generator of the best epoch), ``preview.png``, ``losses.png``
and ``metrics.csv``. The checkpoint (``<model>.ckpt``) holds exactly ``checkpoint.json``
and ``tensors.safetensors``. Readers accept only those names, parse only JSON and
safetensors, and never unpickle, so a model file from a stranger cannot run code.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import platform
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from . import __version__
from .dataset import Normalization
from .errors import Pix2PixError
from .networks import GeneratorSpec, UnetGenerator
from .outputs import staged_file
from .schema import CHECKPOINT_SCHEMA, MODEL_SCHEMA, validate

MODEL_FORMAT, MODEL_VERSION = "pix2pix-model", 1
CHECKPOINT_FORMAT, CHECKPOINT_VERSION = "pix2pix-checkpoint", 1
MODEL_ENTRIES = ("model.json", "weights.safetensors", "preview.png", "losses.png", "metrics.csv")
CHECKPOINT_ENTRIES = ("checkpoint.json", "tensors.safetensors")
MAX_JSON_BYTES = 64 * 2**20
MAX_ENTRY_BYTES = 16 * 2**30
NODATA_RGB = (96, 0, 96)  # nodata in previews: dark purple, distinct from black


# --- safe zip reading ---------------------------------------------------------------------------


def read_entries(path: str | Path, expected: Sequence[str], what: str) -> dict[str, bytes]:
    """The entries of the zip at ``path``, refused unless they are exactly ``expected``.

    Refused too: entries whose names would escape a folder ('..', absolute paths),
    duplicate or encrypted entries, and oversized ones.
    """
    path = Path(path)
    if not path.is_file():
        raise Pix2PixError(f"The {what} {path} does not exist. Check the path.")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as stream:
            looks_zip = stream.read(4) == b"PK\x03\x04"
        if looks_zip:
            raise Pix2PixError(f"{path} is truncated or damaged (its zip directory is missing); write it again.")
        raise Pix2PixError(f"{path} is not a {what} (not a zip file). Give a file written by 'train'.")
    try:
        return _read_checked_entries(path, expected, what)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise Pix2PixError(f"{path} is truncated or damaged ({exc}); write it again.") from exc


def _read_checked_entries(path: Path, expected: Sequence[str], what: str) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        for name in names:
            parts = name.replace("\\", "/").split("/")
            if ".." in parts or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
                raise Pix2PixError(f"{path} has an entry named {name!r} that points outside the package; refused.")
        if "data.pkl" in {n.replace("\\", "/").split("/")[-1] for n in names}:
            raise Pix2PixError(
                f"{path} is a PyTorch pickle checkpoint (it holds data.pkl), not a {what}. Pickles can run code "
                "when loaded, so this engine never opens them; train a model with 'train' instead."
            )
        if sorted(names) != sorted(expected) or len(set(names)) != len(names):
            raise Pix2PixError(
                f"{path} is not a valid {what}: it holds {sorted(names)}, expected exactly {sorted(expected)}. "
                "It may be damaged or come from another program; refused."
            )
        entries = {}
        for info in infos:
            if info.flag_bits & 0x1:
                raise Pix2PixError(f"{path} has an encrypted entry {info.filename!r}; refused.")
            limit = MAX_JSON_BYTES if info.filename.endswith((".json", ".csv")) else MAX_ENTRY_BYTES
            if info.file_size > limit:
                raise Pix2PixError(f"{path}: entry {info.filename!r} is implausibly large ({info.file_size} bytes).")
            entries[info.filename] = archive.read(info)
    return entries


def parse_json(data: bytes, name: str, path: Path) -> dict[str, Any]:
    if data[:1] == b"\x80":
        raise Pix2PixError(f"{path}: {name} is a pickle, not JSON; refused (pickles can run code).")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Pix2PixError(f"{path}: {name} is not valid JSON ({exc}); the file is damaged.") from exc
    if not isinstance(value, dict):
        raise Pix2PixError(f"{path}: {name} must hold a JSON object; the file is damaged.")
    return value


def parse_safetensors(data: bytes, name: str, path: Path) -> dict[str, torch.Tensor]:
    """Tensors from safetensors bytes, after checking the header so nothing else is parsed."""
    if data[:1] == b"\x80" or data[:2] == b"PK":
        raise Pix2PixError(f"{path}: {name} is a pickle or a PyTorch file, not safetensors; refused.")
    if len(data) < 10:
        raise Pix2PixError(f"{path}: {name} is truncated; the file is damaged.")
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > len(data) - 8 or data[8:9] != b"{":
        raise Pix2PixError(f"{path}: {name} is not a safetensors file; the file is damaged.")
    try:
        return load_safetensors(data)
    except Exception as exc:  # safetensors raises its own error types
        raise Pix2PixError(f"{path}: {name} cannot be read as safetensors ({exc}); the file is damaged.") from exc


def write_zip(path: Path, entries: dict[str, bytes]) -> Path:
    """Write ``entries`` as a zip at ``path`` atomically (tensors stored, text deflated)."""
    with staged_file(path) as staging, zipfile.ZipFile(staging, "w", allowZip64=True) as archive:
        for name, data in entries.items():
            compress = zipfile.ZIP_STORED if name.endswith((".safetensors", ".png")) else zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compress_type=compress)
    return Path(path).absolute()


def _to_json(value: Any) -> bytes:
    return json.dumps(value, indent=1, allow_nan=False, default=_json_default).encode("utf-8")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _cpu_tensors(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + key: value.detach().cpu().contiguous() for key, value in state.items()}


# --- the model package --------------------------------------------------------------------------


def software_versions() -> dict[str, str]:
    import rasterio
    import safetensors

    return {"pix2pix_qgis": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "rasterio": rasterio.__version__, "gdal": rasterio.__gdal_version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def model_metadata(
    chips: dict[str, Any],
    generator: GeneratorSpec,
    discriminator: dict[str, Any],
    training: dict[str, Any],
    history: list[dict[str, Any]],
    best_epoch: int | None,
    best_metric: str,
) -> dict[str, Any]:
    """The ``model.json`` document; ``chips`` is :meth:`ChipsFolder.describe`."""
    best = next((row for row in history if row.get("epoch") == best_epoch), None)
    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "architecture": {"generator": generator.to_dict(), "discriminator": discriminator},
        "chip_size": chips["chip_size"],
        "input": chips["input"],
        "output": chips["output"],
        "grid": chips["grid"],
        "inference": {
            "mode": "eval",
            "note": "BatchNorm uses its running statistics and dropout is off, so each tile's output does not "
                    "depend on the other tiles in its batch and runs are repeatable.",
        },
        "training": {**training, "chips": chips["chips"]},
        "metrics": {"best_epoch": best_epoch, "best_metric": best_metric, "best": best, "history": history},
        "software": software_versions(),
    }


def write_package(
    path: str | Path,
    metadata: dict[str, Any],
    generator_state: dict[str, torch.Tensor],
    preview_png: bytes,
    losses_png: bytes,
) -> Path:
    """Write the ``.p2p`` at ``path`` atomically; returns its absolute path."""
    weights = save_safetensors(_cpu_tensors(generator_state), metadata={"format": "pix2pix-generator"})
    return write_zip(Path(path), {
        "model.json": _to_json(metadata),
        "weights.safetensors": weights,
        "preview.png": preview_png,
        "losses.png": losses_png,
        "metrics.csv": metrics_csv(metadata["metrics"]["history"]).encode("utf-8"),
    })


def read_package(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``model.json`` and the generator's tensors of a ``.p2p``, checked but not yet built."""
    path = Path(path)
    entries = read_entries(path, MODEL_ENTRIES, "model package (.p2p)")
    metadata = parse_json(entries["model.json"], "model.json", path)
    if metadata.get("format") != MODEL_FORMAT or not isinstance(metadata.get("format_version"), int):
        raise Pix2PixError(f"{path} is not a Pix2Pix model package (model.json format {metadata.get('format')!r}).")
    if metadata["format_version"] > MODEL_VERSION:
        raise Pix2PixError(
            f"{path} is model format version {metadata['format_version']}; this engine reads up to "
            f"{MODEL_VERSION}. Update the plugin."
        )
    validate(metadata, MODEL_SCHEMA, path, "model.json", "The package is damaged or was not written by 'train'.")
    return metadata, parse_safetensors(entries["weights.safetensors"], "weights.safetensors", path)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[UnetGenerator, dict[str, Any]]:
    """The generator of a ``.p2p`` in eval mode on ``device``, and its ``model.json``."""
    metadata, state = read_package(path)
    spec = GeneratorSpec.from_dict(metadata["architecture"]["generator"])
    with torch.device("meta"):  # no random initialisation (0.4 s for NGF 64) that the weights replace
        generator = UnetGenerator(spec)
    try:
        generator.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise Pix2PixError(f"{path}: the weights do not match the architecture in model.json ({exc}).") from exc
    return generator.to(device).eval(), metadata


def output_normalization(metadata: dict[str, Any]) -> Normalization:
    return Normalization.from_dict(metadata["output"]["normalization"])


def input_normalization(metadata: dict[str, Any]) -> Normalization:
    return Normalization.from_dict(metadata["input"]["normalization"])


@torch.no_grad()
def predict(generator: UnetGenerator, batch: torch.Tensor, output_norm: Normalization) -> torch.Tensor:
    """Normalised input (B, C_in, H, W) → prediction (B, C_out, H, W) in the target's units (float32).

    H and W must be multiples of 2**depth (pad first); the generator should be in eval mode.
    """
    parameter = next(generator.parameters())
    out = generator(batch.to(device=parameter.device, dtype=parameter.dtype)).float()
    return output_norm.invert(out)


# --- figures and tables -------------------------------------------------------------------------


def metrics_csv(history: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in history:
        columns += [key for key, value in row.items() if key not in columns and not isinstance(value, (list, dict))]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return out.getvalue()


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
            resample = Image.NEAREST if image.shape[0] < tile else Image.BILINEAR
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


# --- the checkpoint -----------------------------------------------------------------------------


def checkpoint_path(model_path: str | Path) -> Path:
    """Where the resumable checkpoint of ``model_path`` lives: beside it, ``<name>.ckpt``."""
    model_path = Path(model_path).absolute()
    return model_path.with_name(model_path.name + ".ckpt")


def flatten_optimizer(state: dict[str, Any], prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's ``state_dict`` as tensors (named ``prefix/<param>/<key>``) plus a JSON structure.

    The tensors are the optimizer's own (not copies) when it lives on the CPU: serialise
    them, don't hand them to another optimizer.
    """
    tensors: dict[str, torch.Tensor] = {}
    per_param: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        entry: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                name = f"{prefix}/{index}/{key}"
                tensors[name] = value.detach().cpu().contiguous()
                entry[key] = {"tensor": name}
            else:
                entry[key] = {"value": value}
        per_param[str(index)] = entry
    return tensors, {"state": per_param, "param_groups": state["param_groups"]}


def unflatten_optimizer(structure: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for index, entry in structure["state"].items():
        state[int(index)] = {
            key: tensors[spec["tensor"]] if "tensor" in spec else spec["value"] for key, spec in entry.items()
        }
    groups = [{**group, **({"betas": tuple(group["betas"])} if "betas" in group else {})}
              for group in structure["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(path: Path, document: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Path:
    """Write ``checkpoint.json`` (``document`` plus the format) and the tensors, atomically."""
    document = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, **document}
    blob = save_safetensors({name: t.detach().cpu().contiguous() for name, t in tensors.items()})
    return write_zip(path, {"checkpoint.json": _to_json(document), "tensors.safetensors": blob})


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``checkpoint.json`` and the tensors of a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    entries = read_entries(path, CHECKPOINT_ENTRIES, "training checkpoint")
    document = parse_json(entries["checkpoint.json"], "checkpoint.json", path)
    if document.get("format") != CHECKPOINT_FORMAT or document.get("format_version", 99) > CHECKPOINT_VERSION:
        raise Pix2PixError(f"{path} is not a training checkpoint this engine can resume; train without resume.")
    validate(document, CHECKPOINT_SCHEMA, path, "checkpoint.json", "Train afresh without resume.")
    return document, parse_safetensors(entries["tensors.safetensors"], "tensors.safetensors", path)


def tensor_group(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors named ``prefix/<key>``, keyed by ``<key>``."""
    start = len(prefix) + 1
    return {name[start:]: value for name, value in tensors.items() if name.startswith(prefix + "/")}
