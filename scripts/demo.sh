#!/usr/bin/env bash
# The main job on the bundled sample, through real QGIS: make the relief → imagery pair,
# install the plugin from its zip into an isolated QGIS profile, and run the export with
# qgis_process. Everything lands in demo-output/.
set -euo pipefail
ENGINE_PY=${ENGINE_PY:-.venv/bin/python}
QGIS_PY=${QGIS_PY:-/usr/bin/python3}
OUT=${DEMO_OUTPUT:-demo-output}
QGIS_PROCESS=$(command -v qgis_process.bin || command -v qgis_process)

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "== 1/3 Sample pair (ETOPO1 relief → Blue Marble imagery, EPSG:4326) → $OUT/sample"
"$ENGINE_PY" -c "from pix2pix_qgis.sample import make_sample_pair; make_sample_pair('$OUT/sample')"

echo "== 2/3 Plugin from dist/pix2pix_toolbox.zip into an isolated QGIS profile"
rm -rf "$OUT/qgis"
mkdir -p "$OUT/qgis/plugins" "$OUT/qgis/profile"
"$QGIS_PY" scripts/build_plugin.py "$OUT/qgis/pix2pix_toolbox.zip" >/dev/null
"$QGIS_PY" -m zipfile -e "$OUT/qgis/pix2pix_toolbox.zip" "$OUT/qgis/plugins"
export QGIS_PLUGINPATH="$OUT/qgis/plugins" QGIS_CUSTOM_CONFIG_PATH="$OUT/qgis/profile"
export QT_QPA_PLATFORM=offscreen PIX2PIX_PYTHON=${PIX2PIX_PYTHON:-$(pwd)/$ENGINE_PY}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
"$QGIS_PROCESS" plugins enable pix2pix_toolbox >/dev/null

echo "== 3/3 qgis_process run pix2pix:exportchips"
"$QGIS_PROCESS" run pix2pix:exportchips -- \
  INPUT="$OUT/sample/relief.tif" INPUT2="$OUT/sample/imagery.tif" \
  TILE_SIZE=128 STRIDE=64 VALIDATION=0.15 OUTPUT="$OUT/chips"
echo
echo "Chips: $OUT/chips ($(ls "$OUT/chips/images" | wc -l) pairs; manifest $OUT/chips/chips.json)"
