# The README's commands. TORCH_SPEC is installed before the project so that pip never
# pulls a second torch build; with CUDA: make setup TORCH_SPEC="torch==2.13.0 --index-url ..."
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo test test-all lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install $(TORCH_SPEC)
	$(BIN)/pip install -e '.[dev]'

demo: setup
	$(BIN)/gnnleaky sweep --out results/quick.sqlite
	$(BIN)/gnnleaky report results/quick.sqlite --out results/quick-report

test: setup
	$(BIN)/python -m pytest

test-all: setup
	$(BIN)/python -m pytest -m ""

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check gnnleaky tests benchmarks

bench: setup
	$(BIN)/python benchmarks/perf/sweep_speed.py
	$(BIN)/python benchmarks/perf/spectral.py

clean:
	rm -rf $(VENV) .cache results
