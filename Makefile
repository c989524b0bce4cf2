# Two commands do everything on a fresh Debian/Ubuntu machine:
#   make demo   set up, then run the main job on the bundled sample through qgis_process
#   make test   set up, then lint and run the engine tests and the QGIS tests on every QGIS version
# Set-up steps are idempotent: a second run skips what is done.
#   make test-qgis QGIS=3.40   the QGIS tests on one version (or a list: QGIS="3.22 3.40")
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
ENGINE_PY := $(VENV)/bin/python
QGIS_PY ?= /usr/bin/python3
# The QGIS version matrix: the declared minimum (the host's Debian 12 QGIS), the LTR and the newest
# release in Debian; versions other than the host's run in Debian chroots (scripts/qgis-chroot.sh).
# 3.44 (Debian forky, a moving testing release) runs on request: make test-qgis QGIS=3.44
QGIS_VERSIONS ?= 3.22 3.40
QGIS ?= $(QGIS_VERSIONS)
export QT_QPA_PLATFORM ?= offscreen

.PHONY: setup setup-engine setup-qgis test test-engine test-qgis lint demo plugin bench clean

setup: setup-qgis setup-engine

setup-qgis:
	@QGIS_PY=$(QGIS_PY) scripts/setup-qgis.sh

setup-engine:
	@scripts/setup-engine.sh $(VENV) $(PYTHON)

lint: setup-engine
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(ENGINE_PY) scripts/check_qt6.py
	$(ENGINE_PY) -m pytest -q -p no:cacheprovider tests/tools

test-engine: setup-engine
	$(ENGINE_PY) -m pytest tests/engine

test-qgis: setup
	QGIS_PY=$(QGIS_PY) ENGINE_PY=$(ENGINE_PY) scripts/test-qgis.sh $(QGIS)

test: setup lint test-engine test-qgis

demo: setup
	ENGINE_PY=$(ENGINE_PY) QGIS_PY=$(QGIS_PY) scripts/demo.sh

plugin:
	$(QGIS_PY) scripts/build_plugin.py dist/pix2pix_toolbox.zip

bench: setup-engine
	$(ENGINE_PY) benchmarks/bench_export.py
	$(ENGINE_PY) benchmarks/bench_training.py throughput
	$(ENGINE_PY) benchmarks/bench_translate.py throughput
	$(ENGINE_PY) benchmarks/bench_translate.py kernels
	$(ENGINE_PY) benchmarks/bench_parts.py halo

clean:
	rm -rf dist demo-output .pytest_cache
