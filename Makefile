# shotgraph: the two commands a new machine needs are `make demo` and `make test`.
SHELL  := /bin/bash
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench assets clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

## demo: render pipelines/demo.yaml offline with the local fal emulator
demo: $(STAMP)
	$(BIN)/shotgraph run pipelines/demo.yaml --backend local

## test: the whole suite, with lint, type checks and the layer contracts (docs/architecture.md)
test: $(STAMP)
	$(BIN)/ruff check runner tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check runner tests benchmarks scripts
	$(BIN)/ruff format --check runner tests benchmarks scripts
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## bench: every benchmark, each prints its figures; then README's speed table from them
bench: $(STAMP)
	@set -o pipefail; for b in benchmarks/[a-z]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done | tee .bench.log
	$(BIN)/python scripts/bench_table.py .bench.log

## assets: regenerate the example keyframes and motion clips
assets: $(STAMP)
	$(BIN)/python scripts/make_example_assets.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
