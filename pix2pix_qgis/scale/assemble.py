"""Assemble the parts of a distributed translation into one raster: a VRT, and optionally a COG.

The parts are checked before anything is written: all N present, from the same run
(fingerprint of input, model and options), on the same grid, and their row bands tile the
raster with no gap and no overlap; each GeoTIFF must match its sidecar. The VRT is written
by hand (the engine has rasterio, not GDAL's Python bindings) with paths relative to the
VRT, so the folder can move; the COG is GDAL's COG driver reading that VRT, as
``translate --cog`` does. Both are written atomically.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rasterio
import rasterio.shutil
from affine import Affine

from ..contract.errors import Pix2PixError
from ..core.grid import gdal_cache_mb
from ..core.outputs import staged_file
from ..core.progress import Progress
from ..infer.tiling import part_rows
from .parts import PART_NAME, read_sidecar

GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
              "int32": "Int32", "float32": "Float32", "float64": "Float64"}


def find_sidecars(sources: Sequence[str | Path]) -> list[Path]:
    """Sidecars named by ``sources``: folders (all parts in them), part GeoTIFFs or sidecars."""
    found: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            found += sorted(p for p in source.iterdir() if PART_NAME.match(p.name))
        elif PART_NAME.match(source.with_suffix(".json").name):
            found.append(source.with_suffix(".json"))
        else:
            raise Pix2PixError(f"{source} is neither a folder of parts nor a part-IIII-of-NNNN.tif/.json file.")
    if not found:
        raise Pix2PixError(
            f"No finished parts in {', '.join(map(str, sources))}. Run 'translate … FOLDER --part I/N' for every "
            "part first (a part counts once its .json sidecar is written)."
        )
    return sorted({p.absolute() for p in found})


def check_parts(sidecars: list[Path]) -> list[dict[str, Any]]:
    """The parts' documents in order, after every completeness and consistency check."""
    documents = []
    for path in sidecars:
        document = read_sidecar(path)
        document["path"] = path.parent / document["file"]
        if not document["path"].is_file():
            raise Pix2PixError(f"Part {document['part']}'s GeoTIFF {document['path']} is missing; run that part again.")
        documents.append(document)
    runs = {(d["run"], d["parts"]) for d in documents}
    if len(runs) > 1:
        raise Pix2PixError(
            f"The parts come from {len(runs)} different runs (other input, model, options or part count): "
            f"{', '.join(sorted(str(d['path'].name) for d in documents))}. Keep one run's parts per folder, "
            "or give the files to assemble explicitly."
        )
    count = documents[0]["parts"]
    by_index: dict[int, dict[str, Any]] = {}
    for document in documents:
        by_index.setdefault(document["part"], document)
    missing = sorted(set(range(count)) - set(by_index))
    if missing:
        names = ", ".join(f"{i}/{count}" for i in missing)
        raise Pix2PixError(
            f"{len(missing)} of {count} parts are missing or unfinished: {names}. Run translate with --part "
            f"{names.split(', ')[0]} (and the others), or re-run those array tasks, then assemble again."
        )
    ordered = [by_index[i] for i in range(count)]
    raster = ordered[0]["raster"]
    for document in ordered:
        if document["raster"] != raster:
            raise Pix2PixError(f"Part {document['part']} is on another grid than part 0; run all parts again.")
        expected = list(part_rows(raster["height"], document["part"], count))
        if document["rows"] != expected:
            raise Pix2PixError(f"Part {document['part']} covers rows {document['rows']}, not {expected}: "
                               "a gap or an overlap. Run that part again.")
        _check_geotiff(document)
    return ordered


def _check_geotiff(document: dict[str, Any]) -> None:
    raster, (start, stop) = document["raster"], document["rows"]
    expected = Affine(*raster["transform"]) * Affine.translation(0, start)
    with rasterio.open(document["path"]) as part:
        same = (part.width == raster["width"] and part.height == stop - start and part.count == raster["count"]
                and part.dtypes[0] == raster["dtype"] and part.transform.almost_equals(expected, precision=1e-9)
                and (part.crs.to_wkt() if part.crs else None) == raster["crs"]
                and _same(part.nodata, nodata_value(raster["nodata"])))
    if not same:
        raise Pix2PixError(f"{document['path']} does not match its sidecar (size, grid or type); "
                           f"run part {document['part']} again.")


def _source(parent: ET.Element, tag: str, vrt_folder: Path, document: dict[str, Any], band: str) -> None:
    raster, (start, stop) = document["raster"], document["rows"]
    source = ET.SubElement(parent, tag)
    relative = os.path.relpath(document["path"], vrt_folder)
    ET.SubElement(source, "SourceFilename", relativeToVRT="1").text = Path(relative).as_posix()
    ET.SubElement(source, "SourceBand").text = band
    size = {"xSize": str(raster["width"]), "ySize": str(stop - start)}
    ET.SubElement(source, "SrcRect", {"xOff": "0", "yOff": "0", **size})
    ET.SubElement(source, "DstRect", {"xOff": "0", "yOff": str(start), **size})


def vrt_document(parts: list[dict[str, Any]], vrt_folder: Path) -> str:
    """VRT XML placing each part's rows at their place in the whole raster (plus the mask, if any)."""
    raster = parts[0]["raster"]
    root = ET.Element("VRTDataset", rasterXSize=str(raster["width"]), rasterYSize=str(raster["height"]))
    if raster["crs"]:
        ET.SubElement(root, "SRS").text = raster["crs"]
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(v) for v in Affine(*raster["transform"]).to_gdal())
    for band in range(1, raster["count"] + 1):
        element = ET.SubElement(root, "VRTRasterBand", dataType=GDAL_TYPES[raster["dtype"]], band=str(band))
        nodata = raster["nodata"]
        if nodata is not None:
            ET.SubElement(element, "NoDataValue").text = "nan" if nodata == "nan" else repr(float(nodata))
        ET.SubElement(element, "ColorInterp").text = raster["colorinterp"][band - 1].capitalize()
        for part in parts:
            _source(element, "SimpleSource", vrt_folder, part, str(band))
    if raster["mask"]:
        mask = ET.SubElement(ET.SubElement(root, "MaskBand"), "VRTRasterBand", dataType="Byte")
        for part in parts:
            _source(mask, "SimpleSource", vrt_folder, part, "mask,1")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def assemble_parts(sources: Sequence[str | Path], output_vrt: str | Path, cog: str | Path | None = None,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Check the parts in ``sources`` and write ``output_vrt`` (and the COG ``cog``); returns a summary."""
    progress = progress or Progress()
    output = Path(output_vrt).absolute()
    if output.suffix.lower() != ".vrt":
        raise Pix2PixError(f"The output {output} must end in .vrt; give --cog OUTPUT.tif for a single GeoTIFF too.")
    if cog is not None and Path(cog).suffix.lower() not in (".tif", ".tiff"):
        raise Pix2PixError(f"The COG {cog} must end in .tif or .tiff.")
    parts = check_parts(find_sidecars(sources))
    raster = parts[0]["raster"]
    progress.info(f"{len(parts)} parts make a {raster['width']}×{raster['height']} px raster; writing {output}.")
    with staged_file(output) as staging:
        staging.write_text(vrt_document(parts, output.parent))
    result: dict[str, Any] = {"output": str(output), "parts": len(parts), "width": raster["width"],
                              "height": raster["height"], "bands": raster["count"], "dtype": raster["dtype"],
                              "nodata": nodata_value(raster["nodata"]),
                              "tiles": sum(p["tiles"] for p in parts),
                              "part_seconds": [p["seconds"] for p in parts]}
    if cog is not None:
        progress.update(0.1, "writing the COG")
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True, GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=gdal_cache_mb()), \
                staged_file(Path(cog)) as staging:
            rasterio.shutil.copy(output, staging, driver="COG", compress="DEFLATE", bigtiff="IF_SAFER")
        result["cog"] = str(Path(cog).absolute())
    progress.update(1.0, "done")
    return result


def nodata_value(value: float | str | None) -> float | None:
    """A sidecar's nodata as a number: JSON has no NaN, so a part writes it as the string "nan"."""
    return float(value) if isinstance(value, str) else value


def _same(a: float | None, b: float | None) -> bool:
    return a == b or (a is not None and b is not None and math.isnan(a) and math.isnan(b))
