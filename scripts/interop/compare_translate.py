"""Compare a deepness_run.py result (OUTDIR/result.npy) with an engine ``translate`` GeoTIFF.

    python compare_translate.py DEEPNESS_OUTDIR TRANSLATE.tif   (any Python with numpy + rasterio or GDAL)

Superresolution results are (H, W, C); regression results are (outputs, H, W); both start at the
raster's top-left pixel (Deepness drops the last row and column for superresolution). Prints MAE,
largest difference and the share of equal pixels, in levels.
"""

import json
import sys
from pathlib import Path

import numpy as np

try:
    import rasterio

    with rasterio.open(sys.argv[2]) as src:
        ref = src.read()
except ImportError:
    from osgeo import gdal

    ref = gdal.Open(sys.argv[2]).ReadAsArray()
res = np.load(Path(sys.argv[1]) / "result.npy")
run = json.loads((Path(sys.argv[1]) / "run.json").read_text())
if run["model_type_used"] == "Superresolution":
    res = res.transpose(2, 0, 1)
c, h, w = res.shape
difference = np.abs(res.astype(np.int64) - ref[:c, :h, :w].astype(np.int64))
print(json.dumps({"deepness": sys.argv[1], "translate": sys.argv[2], "compared_shape": [c, h, w],
                  "reference_shape": list(ref.shape), "mae": float(difference.mean()), "max": int(difference.max()),
                  "exact_pct": float((difference == 0).mean() * 100),
                  "le1_pct": float((difference <= 1).mean() * 100)}))
