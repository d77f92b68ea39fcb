# The README's commands. TORCH_SPEC is installed before the project so that pip never
# pulls a second torch build. With CUDA, e.g.:
#   make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.gnnleaky-installed

.PHONY: setup demo test test-all lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install $(TORCH_SPEC)
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/gnnleaky sweep quick --backend processes --max-group 6 --out results/quick.sqlite
	$(BIN)/gnnleaky report results/quick.sqlite --out results/quick-report

test: setup
	$(BIN)/python -m pytest

test-all: setup
	$(BIN)/python -m pytest -m "slow or not slow"

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check gnnleaky tests benchmarks

bench: setup
	$(BIN)/python benchmarks/perf/sweep_speed.py
	$(BIN)/python benchmarks/perf/user_loop.py
	$(BIN)/python benchmarks/perf/spectral.py
	$(BIN)/python benchmarks/perf/scale.py

clean:
	rm -rf $(VENV) .cache results
