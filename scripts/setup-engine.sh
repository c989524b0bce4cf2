#!/usr/bin/env bash
# Create the engine's virtual environment (default .venv) with pinned CPU PyTorch, the engine
# (editable) and the development tools. Idempotent: a complete environment is left alone.
#   scripts/setup-engine.sh [VENV] [PYTHON]
# TORCH_INDEX_URL overrides where torch comes from (default: a local wheel if pip's
# find-links has one, else PyTorch's CPU index, so no multi-GB CUDA build is pulled).
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${2:-python3}
TORCH_VERSION=2.13.0
PY="$VENV/bin/python"

if [ -x "$PY" ] && "$PY" -c "
import importlib.metadata as m, torch, rasterio, shapely, safetensors, PIL, jsonschema, pytest, ruff, mpl_toolkits.basemap_data, onnx, onnxscript, onnxruntime
assert torch.__version__.split('+')[0] == '$TORCH_VERSION'
assert m.version('pix2pix-qgis')
" >/dev/null 2>&1; then
  echo "Engine environment: $VENV is complete"
  exit 0
fi

if [ ! -x "$PY" ]; then
  echo "Creating $VENV with $($PYTHON --version 2>&1)..."
  "$PYTHON" -m venv "$VENV"
fi
"$PY" -m pip install -q --upgrade pip

if "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "torch $TORCH_VERSION: present"
elif [ -n "${TORCH_INDEX_URL:-}" ]; then
  "$PY" -m pip install -q "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple
elif "$PY" -m pip install -q --dry-run --no-deps --no-index "torch==$TORCH_VERSION" >/dev/null 2>&1; then
  echo "torch $TORCH_VERSION: from the local wheel folder"
  "$PY" -m pip install -q "torch==$TORCH_VERSION"
else
  echo "torch $TORCH_VERSION: CPU build from download.pytorch.org"
  "$PY" -m pip install -q "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu \
    --extra-index-url https://pypi.org/simple
fi
"$PY" -m pip install -q -e ".[dev]"
echo "Engine environment: $VENV ready ($("$PY" -m pix2pix_qgis --version))"
