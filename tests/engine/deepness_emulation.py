"""Deepness 0.6.5's inference on a whole layer, reproduced in numpy for tests (no QGIS, no Deepness code).

Run as a script in onnxruntime 1.17.0's own environment (``ort117.py``): it reads the model's
metadata as Deepness does, tiles a raster, runs the model and assembles the result as Deepness
would, and saves what Deepness' ``get_result_img()`` returns. Scope: "entire layer", the
raster already at the model's resolution (no resampling), default band mapping.

Written from Deepness' code (PUTvision/qgis-plugin-deepness f450c63 = 0.6.5 + one merge; paths
under ``src/deepness/``); each step names the lines it follows:

- metadata: ``json.loads`` of each value; ``model_type`` → ``ModelType(value.capitalize())``
  (processing/models/model_base.py:184-197); ``standardization_mean/std`` as float32 arrays, both
  or neither (:199-224, common/processing_parameters/standardization_parameters.py:9-11);
  ``resolution`` (:226-239), ``tile_size`` (:241-254), ``tiles_overlap`` (:256-269),
  ``reg_output_scaling`` (:301-314); exactly one input (:39).
- overlap_px = int(tile · pct / 100 · 2) // 2 (common/processing_overlap.py:37), stride = tile − overlap_px.
- extended extent for an entire layer: ±overlap_px // 2 intersected with the layer (no margin), then
  the RIGHT edge grows by the missing columns and the TOP edge by the missing rows
  (processing/extent_utils.py:65-103); pixels outside the layer read as 0.
- tiles row-major (processing/map_processor/map_processor.py:97-98, :199-201); per batch:
  x[..., :C_in] → float32(x · 1/255) → (x − mean) / std → NCHW, for every dtype
  (processing/models/preprocessing_utils.py:13-41, model_base.py:409-412). No clip.
- post: NaN → 0, · output_scaling, float32 (map_processor_regression.py:160-170,
  map_processor_superresolution.py:168-173); regression keeps channel 0 of every output (:170).
- assembly in np.zeros(…, np.uint8) (map_processor.py:189): float → uint8 truncates and wraps.
  Regression pastes each tile's core, the overlap halves cut on inner sides only
  (processing/tile_params.py:89-123); superresolution writes whole tiles into stride-sized slots
  (map_processor_superresolution.py:51-53), so it needs overlap 0.
- crop to the layer: regression [y0:y1 + 1, x0:x1 + 1] (map_processor.py:178); superresolution
  [y0:y1, x0:x1] (map_processor_superresolution.py:87): its last row and column are dropped.

Usage: python -S deepness_emulation.py MODEL.onnx RASTER.npy OUT.npy KIND [OVERLAP_PERCENT]
(RASTER.npy: (H, W, C) in the raster's dtype; KIND: regressor | superresolution). Prints a JSON
line with onnxruntime's version and the metadata as read.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import numpy as np

MODEL_TYPES = ("Segmentor", "Regressor", "Detector", "Superresolution", "Recognition")


def read_metadata(session: Any) -> dict[str, Any]:
    """The settings Deepness takes from the model's metadata (defaults where it has none)."""
    meta = session.get_modelmeta().custom_metadata_map
    inputs = session.get_inputs()
    assert len(inputs) == 1, "Deepness' ModelBase accepts exactly one input"
    channels = inputs[0].shape[-3]
    model_type = json.loads(meta["model_type"]).capitalize() if "model_type" in meta else None
    assert model_type is None or model_type in MODEL_TYPES, model_type
    if "standardization_mean" in meta and "standardization_std" in meta:
        mean = np.array([float(x) for x in json.loads(meta["standardization_mean"])], dtype=np.float32)
        std = np.array([float(x) for x in json.loads(meta["standardization_std"])], dtype=np.float32)
    else:
        mean, std = np.zeros(channels, np.float32), np.ones(channels, np.float32)

    def number(name: str, kind: Callable[[Any], Any]) -> Any:
        return kind(json.loads(meta[name])) if name in meta else None

    return {"model_type": model_type, "mean": mean, "std": std, "resolution": number("resolution", float),
            "tile_size": number("tile_size", int), "tiles_overlap": number("tiles_overlap", int),
            "reg_output_scaling": number("reg_output_scaling", float),
            "class_names": json.loads(meta["class_names"]) if "class_names" in meta else None,
            "input_tile": inputs[0].shape[-1]}


def _missing(size: int, tile: int, stride: int) -> int:
    return tile - size if size <= tile else (stride - (size - tile) % stride) % stride


def deepness_infer(run: Callable[[np.ndarray], list[np.ndarray]], image: np.ndarray, tile: int, overlap_pct: float,
                   mean: np.ndarray, std: np.ndarray, kind: str, output_scaling: float, outputs: int) -> np.ndarray:
    """What Deepness' map processor returns for ``image`` (H, W, C): uint8 (C, H, W) or (H−1, W−1, C)."""
    height, width, channels = image.shape
    overlap = int(tile * overlap_pct / 100 * 2) // 2
    stride = tile - overlap
    missing_y, missing_x = _missing(height, tile, stride), _missing(width, tile, stride)
    extended = np.zeros((height + missing_y, width + missing_x, channels), image.dtype)
    extended[missing_y:, :width] = image  # rows added at the top, columns at the right
    rows = round((extended.shape[0] - tile) / stride) + 1
    cols = round((extended.shape[1] - tile) / stride) + 1
    if kind == "superresolution":
        full = np.zeros((*extended.shape[:2], outputs), np.uint8)
    else:
        full = np.zeros((outputs, *extended.shape[:2]), np.uint8)
    half = max((tile - stride) // 2, 0)
    for row in range(rows):
        for col in range(cols):
            y, x = row * stride, col * stride
            batch = extended[None, y:y + tile, x:x + tile, :len(mean)]
            batch = np.float32(batch * 1. / 255.)
            batch = np.transpose((batch - mean) / std, (0, 3, 1, 2))
            results = [np.array(r) for r in run(batch)]
            for result in results:
                result[np.isnan(result)] = 0
                result *= output_scaling
            if kind == "superresolution":
                full[y:y + stride, x:x + stride, :] = results[0][0].astype(np.float32).transpose(1, 2, 0)
                continue
            per_output = np.array([(r if r.ndim == 4 else r[:, None])[:, 0].astype(np.float32) for r in results])
            y0, y1, x0, x1 = y + half, y + tile - half - 1, x + half, x + tile - half - 1
            y0, x0 = (y0 - half if row == 0 else y0), (x0 - half if col == 0 else x0)
            y1, x1 = (y1 + half if row == rows - 1 else y1), (x1 + half if col == cols - 1 else x1)
            full[:, y0:y1 + 1, x0:x1 + 1] = per_output[:, 0, y0 - y:y1 + 1 - y, x0 - x:x1 + 1 - x]
    if kind == "superresolution":
        return full[missing_y:missing_y + height - 1, :width - 1, :]
    return full[:, missing_y:missing_y + height, :width]


def main(argv: list[str]) -> int:
    import onnxruntime as ort

    model, raster, out, kind = argv[:4]
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    meta = read_metadata(session)
    overlap = float(argv[4]) if len(argv) > 4 else float(meta["tiles_overlap"])
    scaling = meta["reg_output_scaling"] if kind == "regressor" else 1.0  # superresolution: set in the UI only
    outputs = len(session.get_outputs()) if kind == "regressor" else session.get_outputs()[0].shape[-3]
    name = session.get_inputs()[0].name
    result = deepness_infer(lambda x: session.run(None, {name: x}), np.load(raster), meta["input_tile"], overlap,
                            meta["mean"], meta["std"], kind, scaling, outputs)
    np.save(out, result)
    print(json.dumps({"onnxruntime": ort.__version__, "numpy": np.__version__, "overlap": overlap,
                      **{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in meta.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
