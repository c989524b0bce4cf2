"""Pickle-free zips of JSON and safetensors: the one reader and writer of model packages and checkpoints.

Readers accept only an exact list of entry names, parse only JSON and safetensors, and
never unpickle, so a model file from a stranger cannot run code. Writers stage the zip
under a temporary name and rename it on success.
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
from ..core.outputs import staged_file

MAX_JSON_BYTES = 64 * 2**20


MAX_ENTRY_BYTES = 16 * 2**30


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
    """The JSON object stored as entry ``name`` of ``path``; a pickle, bad UTF-8/JSON or a non-object is an error."""
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
