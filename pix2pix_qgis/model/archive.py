"""Pickle-free zips of JSON and safetensors: the one reader and writer of model packages and checkpoints.

Readers accept only an exact list of entry names, parse only JSON and safetensors, and
never unpickle, so a model file from a stranger cannot run code. They read within bounds:
an entry is refused before it is inflated when its declared size is implausible or when it
would inflate far more than weights or JSON do (a zip bomb), then read in pieces; JSON goes
through ``core.documents`` (nesting depth, finite numbers); tensors of another float type
(float16, bfloat16, float64) are cast to float32, and NaN or infinite weights are refused
with the tensor's name. Writers stage the zip under a temporary name and rename it on success.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load as load_safetensors

from ..contract.errors import Pix2PixError
from ..core.documents import parse_document
from ..core.outputs import staged_file
from ..core.paths import check_input_file

MAX_JSON_BYTES = 16 * 2**20  # model.json of 1000 epochs is about 1 MiB


MAX_ENTRY_BYTES = 16 * 2**30


# Deflated tensors shrink by a few percent and JSON by about 10:1; a bomb inflates by up to 1000:1.
MAX_INFLATION = {"json": 100, "binary": 20}


_CHUNK = 2**20


def read_entries(path: str | Path, expected: Sequence[str], what: str,
                 optional: Sequence[str] = ()) -> dict[str, bytes]:
    """The entries of the zip at ``path``, refused unless they are exactly ``expected`` plus any of ``optional``.

    Refused too: entries whose names would escape a folder ('..', absolute paths),
    duplicate or encrypted entries, and oversized ones.
    """
    path = check_input_file(path, what, "Check the path.")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as stream:
            looks_zip = stream.read(4) == b"PK\x03\x04"
        if looks_zip:
            raise Pix2PixError(f"{path} is truncated or damaged (its zip directory is missing); write it again.")
        raise Pix2PixError(f"{path} is not a {what} (not a zip file). Give a file written by 'train'.")
    try:
        return _read_checked_entries(path, expected, what, optional)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise Pix2PixError(f"{path} is truncated or damaged ({exc}); write it again.") from exc


def _read_checked_entries(path: Path, expected: Sequence[str], what: str, optional: Sequence[str]) -> dict[str, bytes]:
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
        required = [name for name in names if name not in optional]
        if sorted(required) != sorted(expected) or len(set(names)) != len(names):
            raise Pix2PixError(
                f"{path} is not a valid {what}: it holds {sorted(names)}, expected exactly {sorted(expected)}. "
                "It may be damaged or come from another program; refused."
            )
        entries = {}
        for info in infos:
            if info.flag_bits & 0x1:
                raise Pix2PixError(f"{path} has an encrypted entry {info.filename!r}; refused.")
            entries[info.filename] = _read_bounded(archive, info, path)
    return entries


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    """One entry's bytes, refused before inflating anything when its sizes are implausible (see the module)."""
    kind = "json" if info.filename.endswith((".json", ".csv")) else "binary"
    limit = MAX_JSON_BYTES if kind == "json" else MAX_ENTRY_BYTES
    if info.file_size > limit:
        raise Pix2PixError(f"{path}: entry {info.filename!r} is implausibly large ({info.file_size} bytes); "
                           "the file is damaged or not a model; refused.")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > _CHUNK and ratio > MAX_INFLATION[kind]:
        raise Pix2PixError(
            f"{path}: entry {info.filename!r} would inflate from {info.compress_size} to {info.file_size} bytes "
            f"({ratio:.0f}:1), far more than weights or JSON compress; this is a zip bomb or a damaged file. Refused."
        )
    chunks = []
    with archive.open(info) as stream:  # zipfile stops at the declared size and checks the CRC at the end
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            chunks.append(chunk)
    return b"".join(chunks)


def parse_json(data: bytes, name: str, path: Path) -> dict[str, Any]:
    """The JSON object stored as entry ``name`` of ``path``; a pickle, bad UTF-8/JSON or a non-object is an error."""
    if data[:1] == b"\x80":
        raise Pix2PixError(f"{path}: {name} is a pickle, not JSON; refused (pickles can run code).")
    value = parse_document(data, f"{path}: {name}", "The file is damaged; use another model or write it again.")
    if not isinstance(value, dict):
        raise Pix2PixError(f"{path}: {name} must hold a JSON object; the file is damaged.")
    return value


def parse_safetensors(data: bytes, name: str, path: Path) -> dict[str, torch.Tensor]:
    """Tensors from safetensors bytes, after checking the header so nothing else is parsed.

    The header's shape decides, not the first bytes: a safetensors file starts with its
    header's length, whose first byte is 0x80 (a pickle's mark) for one length in 256.
    """
    (header_size,) = struct.unpack("<Q", data[:8]) if len(data) >= 8 else (None,)
    if header_size is None or header_size > len(data) - 8 or data[8:9] != b"{":
        if data[:1] == b"\x80" or data[:2] == b"PK":
            raise Pix2PixError(f"{path}: {name} is a pickle or a PyTorch file, not safetensors; refused.")
        if len(data) < 10:
            raise Pix2PixError(f"{path}: {name} is truncated; the file is damaged.")
        raise Pix2PixError(f"{path}: {name} is not a safetensors file; the file is damaged.")
    try:
        tensors = load_safetensors(data)
    except Exception as exc:  # safetensors raises its own error types
        raise Pix2PixError(f"{path}: {name} cannot be read as safetensors ({exc}); the file is damaged.") from exc
    return {key: _checked_tensor(tensor, key, name, path) for key, tensor in tensors.items()}


def _checked_tensor(tensor: torch.Tensor, key: str, name: str, path: Path) -> torch.Tensor:
    if tensor.is_complex():
        raise Pix2PixError(f"{path}: {name} holds complex numbers in tensor {key!r}; the file is damaged or not a "
                           "model of this engine.")
    if not tensor.is_floating_point():
        return tensor  # step counters, random generator states
    if tensor.dtype != torch.float32:  # float16, bfloat16, float64 exports: the networks compute in float32
        tensor = tensor.float()
    if not bool(torch.isfinite(tensor).all()):
        raise Pix2PixError(
            f"{path}: {name} holds NaN or infinite values in tensor {key!r}; every pixel computed with it would be "
            "wrong. The training that wrote it probably diverged: use an earlier model, or train again with a lower "
            "learning rate."
        )
    return tensor


def write_zip(path: Path, entries: dict[str, bytes]) -> Path:
    """Write ``entries`` as a zip at ``path`` atomically (tensors stored, text deflated)."""
    with staged_file(path) as staging, zipfile.ZipFile(staging, "w", allowZip64=True) as archive:
        for name, data in entries.items():
            compress = zipfile.ZIP_STORED if name.endswith((".safetensors", ".png")) else zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compress_type=compress)
    return Path(path).absolute()


def to_json(value: Any) -> bytes:
    """``value`` as the indented UTF-8 JSON written into packages (numpy scalars become numbers; NaN refused)."""
    return json.dumps(value, indent=1, allow_nan=False, default=_json_default).encode("utf-8")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def cpu_tensors(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies of ``state`` with ``prefix`` on each key, as safetensors needs."""
    return {prefix + key: value.detach().cpu().contiguous() for key, value in state.items()}
