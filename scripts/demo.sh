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
"$ENGINE_PY" - "$OUT/metrics-heldout.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"Held-out area ({m['pixels']} pixels): MAE {m['mae']:.2f}, RMSE {m['rmse']:.2f} (0-255 units), "
      f"PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f}, R2 {m['r2']:.3f}")
PY
echo
echo "Outputs in $OUT: chips/, model.p2p, training-report.html, translated-heldout.tif, metrics-heldout.{json,html}"
