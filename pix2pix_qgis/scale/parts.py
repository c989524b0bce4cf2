"""Distributed translation: one part of a raster per job, each a GeoTIFF band of rows plus a sidecar.

``translate INPUT MODEL PARTS_FOLDER --part I/N`` (or each rank of a torchrun launch, or
each task of a job array) translates only the I-th of N bands of output rows (I counts
from 0). Bands are whole 256-row blocks of the output (the last takes the remainder), so
each part's internal blocks line up with the whole raster's. A part computes every tile of
the global tile plan that touches its rows, in the single run's order, and reads the halo
rows those tiles need; overlapping pixels are therefore summed from the same tiles in the
same order, and the assembled raster equals a single run's bit for bit on the CPU. The
price is the tile rows that straddle a boundary, computed by both neighbours.

Each part writes ``part-IIII-of-NNNN.tif`` and, once that is complete, ``part-IIII-of-NNNN.json``
(its rows, the whole raster's grid and a fingerprint of the input, model and options), so
``assemble`` can tell a finished part from a missing or foreign one.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from ..contract.errors import Pix2PixError
from ..core.documents import read_document
from ..core.outputs import staged_file
from ..core.paths import check_run_paths
from ..core.progress import Progress
from ..core.schema import PART_SCHEMA, validate
from ..infer.tiling import check_part
from ..infer.translate import translate_raster

PART_FORMAT, PART_VERSION = "pix2pix-qgis-part", 1


PART_NAME = re.compile(r"^part-(\d{4,})-of-(\d{4,})\.json$")


# Options that change pixels; device and batch size do not (on the CPU, bit for bit).
FINGERPRINT_FIELDS = ("tile_size", "overlap", "margin", "bands", "extent", "extent_crs", "blend", "tta", "dtype",
                      "creation_options", "precision", "backend", "direction")


def parse_part(text: str) -> tuple[int, int]:
    """``"I/N"`` → (I, N); I counts from 0, as SLURM_ARRAY_TASK_ID with ``--array=0-(N-1)``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise Pix2PixError(f"PART {text!r} must look like I/N, e.g. 0/4 for the first of four parts.")
    index, count = int(match[1]), int(match[2])
    check_part(index, count)
    return index, count


def part_paths(folder: Path, index: int, count: int) -> tuple[Path, Path]:
    """The part's GeoTIFF and its sidecar in ``folder``."""
    stem = f"part-{index:04d}-of-{count:04d}"
    return folder / f"{stem}.tif", folder / f"{stem}.json"


def run_fingerprint(input_path: Path, model_path: Path, spec: Any) -> str:
    """Identifies what a part was computed from, so parts of different runs are never mixed."""
    digest = hashlib.sha256()
    with open(model_path, "rb") as model:
        for chunk in iter(lambda: model.read(1 << 20), b""):
            digest.update(chunk)
    stat = input_path.stat()
    options = {name: getattr(spec, name) for name in FINGERPRINT_FIELDS}
    digest.update(json.dumps([str(input_path), stat.st_size, stat.st_mtime_ns, options], default=str).encode())
    return digest.hexdigest()[:20]


def _json_number(value: float | None) -> float | str | None:
    return "nan" if value is not None and math.isnan(value) else value


def describe_part(tif: Path, result: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    """The sidecar document of a finished part GeoTIFF (its rows and the whole raster's grid)."""
    import rasterio
    from rasterio.enums import MaskFlags

    start, stop = result["rows"]
    with rasterio.open(tif) as part:
        transform = part.transform * part.transform.translation(0, -start)
        masked = any(MaskFlags.per_dataset in flags for flags in part.mask_flag_enums)
        raster = {
            "width": part.width, "height": result["raster_height"], "count": part.count, "dtype": part.dtypes[0],
            "crs": part.crs.to_wkt() if part.crs else None, "transform": list(transform)[:6],
            "nodata": _json_number(part.nodata), "mask": masked,
            "colorinterp": [c.name for c in part.colorinterp],
        }
    index, count = result["part"]
    return {"format": PART_FORMAT, "format_version": PART_VERSION, "part": index, "parts": count,
            "rows": [start, stop], "file": tif.name, "run": fingerprint, "raster": raster,
            "tiles": result["tiles"], "seconds": result["seconds"]}


def translate_part(input_path: str | Path, model_path: str | Path, folder: str | Path, spec: Any,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Translate part ``spec.part`` of ``input_path`` into ``folder`` (shared by all parts)."""
    progress = progress or Progress()
    index, count = spec.part
    folder = Path(folder).absolute()
    if folder.suffix.lower() in (".tif", ".tiff", ".vrt") or (folder.exists() and not folder.is_dir()):
        raise Pix2PixError(
            f"With a part, OUTPUT is the folder all parts go to (shared by the jobs), not a file like {folder.name}. "
            "Give a folder, e.g. parts/, then build the raster with: pix2pix-qgis assemble parts/ OUTPUT.vrt"
        )
    tif, sidecar = part_paths(folder, index, count)
    check_run_paths(rasters={"input raster": input_path}, inputs={"model": model_path},
                    files={"part": tif, "part's sidecar": sidecar})
    folder.mkdir(parents=True, exist_ok=True)
    sidecar.unlink(missing_ok=True)  # until the new sidecar is written, this part counts as missing
    fingerprint = run_fingerprint(Path(input_path).absolute(), Path(model_path).absolute(), spec)
    progress.info(f"Translating part {index}/{count} (counted from 0) into {folder}.")
    result = translate_raster(input_path, model_path, tif, spec, progress)
    document = describe_part(tif, result, fingerprint)
    with staged_file(sidecar) as staging:
        staging.write_text(json.dumps(document, indent=1))
    return {**result, "sidecar": str(sidecar)}


def read_sidecar(path: Path) -> dict[str, Any]:
    """A part's sidecar, checked: schema, and ``file`` naming that very part's GeoTIFF beside it (never a path
    that leaves the folder, which assemble would otherwise open and put into the VRT)."""
    fix = "Run that part again."
    document = read_document(path, "part sidecar", str(path), fix)
    version = document.get("format_version", 99) if isinstance(document, dict) else None
    if not isinstance(document, dict) or document.get("format") != PART_FORMAT or not isinstance(version, int) \
            or version > PART_VERSION:
        raise Pix2PixError(f"{path} is not a part sidecar this engine knows; run that part again with this version.")
    validate(document, PART_SCHEMA, path, "the part sidecar", fix)
    match = PART_NAME.match(path.name)
    own = (int(match[1]), int(match[2])) if match else None
    expected = part_paths(path.parent, document["part"], document["parts"])[0].name
    if own != (document["part"], document["parts"]) or document["file"] != expected:
        raise Pix2PixError(f"{path} describes part {document['part']}/{document['parts']} in {document['file']!r}; "
                           f"a sidecar describes its own part, named like itself ({expected}). {fix}")
    return document
