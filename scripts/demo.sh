#!/usr/bin/env bash
# The main job on the bundled sample, through real QGIS: make the relief → imagery pair,
# install the plugin from its zip into an isolated QGIS profile, then with qgis_process:
# export chips from the western three quarters, train a small model, translate the held-out
# eastern quarter and evaluate it against the real imagery. Everything lands in demo-output/.
# DEMO_EPOCHS (default 20) and DEMO_NGF (default 16) trade time for quality.
set -euo pipefail
ENGINE_PY=${ENGINE_PY:-.venv/bin/python}
QGIS_PY=${QGIS_PY:-/usr/bin/python3}
OUT=${DEMO_OUTPUT:-demo-output}
QGIS_PROCESS=$(command -v qgis_process.bin || command -v qgis_process)

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "== 1/6 Sample pair (ETOPO1 relief → Blue Marble imagery, EPSG:4326) → $OUT/sample"
"$ENGINE_PY" -c "from pix2pix_qgis.sample import make_sample_pair; make_sample_pair('$OUT/sample')"

echo "== 2/6 Plugin from dist/pix2pix_toolbox.zip into an isolated QGIS profile"
rm -rf "$OUT/qgis"
mkdir -p "$OUT/qgis/plugins" "$OUT/qgis/profile"
"$QGIS_PY" scripts/build_plugin.py "$OUT/qgis/pix2pix_toolbox.zip" >/dev/null
"$QGIS_PY" -m zipfile -e "$OUT/qgis/pix2pix_toolbox.zip" "$OUT/qgis/plugins"
export QGIS_PLUGINPATH="$OUT/qgis/plugins" QGIS_CUSTOM_CONFIG_PATH="$OUT/qgis/profile"
export QT_QPA_PLATFORM=offscreen PIX2PIX_PYTHON=${PIX2PIX_PYTHON:-$(pwd)/$ENGINE_PY}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
"$QGIS_PROCESS" plugins enable pix2pix_toolbox >/dev/null

# The sample covers lon -20..48.27, lat 8.8..60 (1/15 degree pixels). Training uses
# lon -20..31.2 (768 columns); lon 31.2..48.27 (256 columns) is held out for evaluation.
TRAIN_EXTENT="-20,31.2,8.8,60 [EPSG:4326]"
HELDOUT_EXTENT="31.2,48.2667,8.8,60 [EPSG:4326]"

echo "== 3/6 qgis_process run pix2pix:exportchips (training area)"
"$QGIS_PROCESS" run pix2pix:exportchips -- \
  INPUT="$OUT/sample/relief.tif" INPUT2="$OUT/sample/imagery.tif" EXTENT="$TRAIN_EXTENT" \
  TILE_SIZE=128 STRIDE=64 VALIDATION=0.15 OUTPUT="$OUT/chips"

echo "== 4/6 qgis_process run pix2pix:train (${DEMO_EPOCHS:-20} epochs, NGF ${DEMO_NGF:-16}, CPU)"
"$QGIS_PROCESS" run pix2pix:train -- \
  CHIPS="$OUT/chips" EPOCHS="${DEMO_EPOCHS:-20}" BATCH_SIZE=8 NGF="${DEMO_NGF:-16}" DEVICE=cpu \
  OUTPUT_MODEL="$OUT/model.p2p" OUTPUT_HTML="$OUT/training-report.html"

echo "== 5/6 qgis_process run pix2pix:translate (held-out area)"
"$QGIS_PROCESS" run pix2pix:translate -- \
  INPUT="$OUT/sample/relief.tif" MODEL="$OUT/model.p2p" EXTENT="$HELDOUT_EXTENT" DEVICE=cpu \
  OUTPUT="$OUT/translated-heldout.tif"

echo "== 6/6 qgis_process run pix2pix:evaluate (against the real imagery)"
"$QGIS_PROCESS" --json run pix2pix:evaluate -- \
  PREDICTION="$OUT/translated-heldout.tif" REFERENCE="$OUT/sample/imagery.tif" \
  OUTPUT_REPORT="$OUT/metrics-heldout.json" OUTPUT_HTML="$OUT/metrics-heldout.html" >"$OUT/evaluate.json"
"$ENGINE_PY" - "$OUT" <<'PY'
# The yardstick beside the model: a per-pixel linear colour regression fitted on the training
# columns, scored on the held-out columns the same way (8-bit, data range 255).
import json, sys
from pathlib import Path
import numpy as np, rasterio
from pix2pix_qgis.evaluate.baseline import apply_linear, fit_linear
from pix2pix_qgis.evaluate.metrics import checkerboard_share, compute_metrics
out = Path(sys.argv[1])


def read(name, window=None):
    with rasterio.open(out / name) as src:
        return src.read(window=window)


# The held-out window is where translate wrote its output; the training columns lie west of it.
with rasterio.open(out / "sample/imagery.tif") as imagery_src, rasterio.open(out / "translated-heldout.tif") as pred:
    held = imagery_src.window(*pred.bounds).round_offsets().round_lengths()
translated = read("translated-heldout.tif")
relief, imagery = read("sample/relief.tif"), read("sample/imagery.tif")
west = slice(0, int(held.col_off))
coefficients = fit_linear(relief[:, :, west], imagery[:, :, west])
linear = np.round(np.clip(apply_linear(coefficients, read("sample/relief.tif", held)), 0, 255))
target = read("sample/imagery.tif", held).astype(float)
model, baseline = json.load(open(out / "metrics-heldout.json")), compute_metrics(linear, target, data_range=255)
print(f"Held-out area ({model['pixels']} pixels, 0-255 units):")
for name, m in (("pix2pix model", model), ("linear colour regression", baseline)):
    print(f"  {name:<25} MAE {m['mae']:6.2f}  RMSE {m['rmse']:6.2f}  PSNR {m['psnr']:5.2f} dB  SSIM {m['ssim']:.3f}")
print(f"  The model gains {model['psnr'] - baseline['psnr']:+.2f} dB PSNR over the per-pixel regression "
      "(higher PSNR and SSIM are better).")
print(f"  Energy at the 2-pixel period (checkerboard): prediction {checkerboard_share(translated) * 1e6:.0f}, "
      f"imagery {checkerboard_share(target) * 1e6:.0f} (parts per million)")
PY
echo
echo "Outputs in $OUT: chips/, model.p2p, training-report.html, translated-heldout.tif, metrics-heldout.{json,html}"
