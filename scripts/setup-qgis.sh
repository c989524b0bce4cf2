#!/usr/bin/env bash
# Make sure QGIS (desktop, qgis_process and its Python bindings), the test runner for QGIS's
# Python and Xvfb (the GUI check runs the desktop on a virtual screen) are installed; install
# them from the distribution's packages if not. Idempotent.
set -euo pipefail
QGIS_PY=${QGIS_PY:-/usr/bin/python3}

have_qgis() {
  { command -v qgis_process.bin >/dev/null || command -v qgis_process >/dev/null; } &&
    command -v qgis >/dev/null && command -v xvfb-run >/dev/null && command -v xauth >/dev/null &&
    "$QGIS_PY" -c "import qgis.core, osgeo.gdal, pytest" >/dev/null 2>&1 &&
    "$QGIS_PY" -c "import venv, ensurepip" >/dev/null 2>&1
}

if have_qgis; then
  echo "QGIS: found $("$QGIS_PY" -c 'from qgis.core import Qgis; print(Qgis.QGIS_VERSION)' 2>/dev/null)"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "QGIS is missing and this is not a Debian/Ubuntu system: install QGIS >= 3.22 with its Python" \
       "bindings and pytest for that Python, then run make again." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "Installing QGIS from the distribution's packages (this takes a few minutes, once)..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  qgis python3-qgis qgis-providers python3-gdal gdal-bin python3-pytest python3-venv xvfb xauth >/dev/null
have_qgis || { echo "QGIS was installed but qgis_process or its Python bindings still fail." >&2; exit 1; }
echo "QGIS: installed $("$QGIS_PY" -c 'from qgis.core import Qgis; print(Qgis.QGIS_VERSION)')"
