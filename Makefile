# Two commands do everything on a fresh Debian/Ubuntu machine:
#   make demo   set up, then run the main job on the bundled sample through qgis_process
#   make test   set up, then lint and run the engine tests and the QGIS tests
# Set-up steps are idempotent: a second run skips what is done.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
ENGINE_PY := $(VENV)/bin/python
QGIS_PY ?= /usr/bin/python3
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

test-engine: setup-engine
	$(ENGINE_PY) -m pytest tests/engine

test-qgis: setup
	PIX2PIX_PYTHON=$(CURDIR)/$(ENGINE_PY) $(QGIS_PY) -m pytest -p no:cacheprovider tests/qgis

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
