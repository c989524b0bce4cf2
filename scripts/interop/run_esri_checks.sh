#!/bin/bash
# Our exports against arcgis.learn's real prepare_data / Pix2Pix / fit (esri_check.py), end to end.
#
#   ARCGIS_PY=path/to/arcgis-venv/bin/python scripts/interop/run_esri_checks.sh WORK
#
# WORK receives the sample rasters, the exports, the engine's logs and one JSON per check
# (WORK/results/*.json). The engine runs from this repository's .venv; arcgis.learn from
# ARCGIS_PY (README.md says how that environment is built). FIT=0 skips arcgis.learn's one fit
# epoch (the slow part: about 90 s on a 2-core machine, wrap the script in /work/tools/heavy).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ENGINE="$REPO/.venv/bin/python"
: "${ARCGIS_PY:?set ARCGIS_PY to the python of the arcgis.learn environment}"
mkdir -p "$1"
WORK=$(cd "$1" && pwd)
RESULTS="$WORK/results"
mkdir -p "$RESULTS"
cd "$WORK"
export PYTHONPATH="$REPO/benchmarks"

# The bundled sample (Europe, 1024x768, relief -> imagery) and its eastern neighbour (Asia).
"$ENGINE" -c '
from pathlib import Path
from bench_training import HELD_OUT, TRAIN_WINDOW, write_pair
write_pair(Path("."), TRAIN_WINDOW, "europe")
write_pair(Path("."), HELD_OUT["asia"], "asia")
'
export_() { "$ENGINE" -m pix2pix_qgis export "$@"; }
check() { local name=$1; shift; "$ARCGIS_PY" "$HERE/esri_check.py" "$@" --out "$RESULTS/$name.json" >/dev/null \
          2>"$RESULTS/$name.stderr" || true; }

# 1. Tile 256: arcgis.learn reads, batches, builds and (FIT=1, the default) fits one epoch, on a copy.
export_ europe_relief.tif europe_imagery.tif export256 --tile-size 256 --stride 128 2>export256.log
if [ "${FIT:-1}" = 1 ]; then check t256_fit export256; else check t256 export256 --no-fit; fi

# 2. Tile 128: the export warns; arcgis.learn loads the folder, Pix2Pix(data) refuses it.
export_ europe_relief.tif europe_imagery.tif export128 --tile-size 128 --stride 128 2>export128.log
check t128 export128 --no-fit
# ... and --esri-compatible stops before writing anything (exit 2).
set +e
export_ europe_relief.tif europe_imagery.tif refused128 --tile-size 128 --stride 128 --esri-compatible \
    2>refused128.log
echo "{\"exit_code\": $?, \"folder_exists\": $([ -e refused128 ] && echo true || echo false)}" \
    >"$RESULTS/t128_esri_compatible.json"
set -e

# 3. arcgis.learn writes into the folder (in place); a re-export keeps what it wrote.
check in_place_before export256 --no-fit --in-place
mkdir -p export256/models/kept && echo kept >export256/models/kept/kept.txt
export_ europe_relief.tif europe_imagery.tif export256 --tile-size 256 --stride 256 2>reexport256.log
ls -R export256 | grep -v '^[0-9]*\.tif$' >"$RESULTS/after_reexport_listing.txt"
check in_place_after export256 --no-fit --in-place

# 4. Two folders: arcgis.learn's multi-folder path.
export_ asia_relief.tif asia_imagery.tif asia256 --tile-size 256 --stride 128 2>asia256.log
check two_folders export256 asia256 --no-fit
echo "results in $RESULTS"
