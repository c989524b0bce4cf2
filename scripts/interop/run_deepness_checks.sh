#!/bin/bash
# A model exported with --deepness regressor / superresolution, run by Deepness' own code, against translate.
#
#   DEEPNESS_SRC=path/to/qgis-plugin-deepness ORT117_SITE=path/to/ort117-site \
#       scripts/interop/run_deepness_checks.sh MODEL.p2p RASTER.tif WORK
#
# RASTER is on the model's training grid (e.g. the sample's relief.tif for a model trained on
# the sample). Deepness runs headless in the host's QGIS Python (/usr/bin/python3) with
# onnxruntime 1.17.0 (README.md says how both are set up); the engine runs from this
# repository's .venv. Writes WORK/results/*.json and, for the dock, WORK/gui_regressor/dock.png.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ENGINE="$REPO/.venv/bin/python"
: "${DEEPNESS_SRC:?set DEEPNESS_SRC to a checkout of PUTvision/qgis-plugin-deepness}"
: "${ORT117_SITE:?set ORT117_SITE to a pip --target folder with onnxruntime 1.17.0}"
export DEEPNESS_SRC ORT117_SITE
MODEL=$(realpath "$1"); RASTER=$(realpath "$2")
mkdir -p "$3"; WORK=$(cd "$3" && pwd); RESULTS="$WORK/results"; mkdir -p "$RESULTS"
cd "$WORK"

"$ENGINE" -m pix2pix_qgis export-onnx "$MODEL" regressor.onnx --deepness regressor 2>export_regressor.log
"$ENGINE" -m pix2pix_qgis export-onnx "$MODEL" superresolution.onnx --deepness superresolution \
    2>export_superresolution.log
# Deepness' tile is the model's chip size; translate's default tile is two or three chips.
CHIP=$("$ENGINE" -c "import sys; from pix2pix_qgis.model.package import read_package; print(read_package(sys.argv[1])[0].chip_size)" "$MODEL")
"$ENGINE" -m pix2pix_qgis translate "$RASTER" "$MODEL" translate_crop.tif --tile-size "$CHIP" --overlap 0 --blend crop \
    2>translate.log

deepness() { local name=$1; shift; /usr/bin/python3 "$HERE/deepness_run.py" "$@" "$WORK/$name" >/dev/null 2>"$WORK/$name.stderr" || true
             cp "$WORK/$name/run.json" "$RESULTS/$name.run.json"
             "$ENGINE" "$HERE/compare_translate.py" "$WORK/$name" translate_crop.tif >"$RESULTS/$name.compare.json" || true; }
# Regressor with everything from the metadata (what "Load default parameters" sets).
deepness regressor regressor.onnx "$RASTER"
# Superresolution: scale factor 1 and output scaling 1, which only Deepness' Python classes accept.
deepness superresolution superresolution.onnx "$RASTER" --type superresolution --output-scaling 1 --scale-factor 1
# The dock itself: Reload model, Load default parameters, Run's parameters; a screenshot.
/usr/bin/python3 "$HERE/deepness_gui_run.py" regressor.onnx "$RASTER" "$WORK/gui_regressor" >/dev/null \
    2>"$WORK/gui_regressor.stderr" || true
cp "$WORK/gui_regressor/gui.json" "$RESULTS/gui_regressor.json" 2>/dev/null || true
echo '{"model_type_used": "Regressor"}' >"$WORK/gui_regressor/run.json"
"$ENGINE" "$HERE/compare_translate.py" "$WORK/gui_regressor" translate_crop.tif >"$RESULTS/gui_regressor.compare.json" || true
echo "results in $RESULTS"
