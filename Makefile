# shotgraph: the two commands a new machine needs are `make demo` and `make test`.
SHELL  := /bin/bash
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench assets clean browser report-check

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

## browser: Debian's chromium for the report's browser test, installed when it is missing
## (root and apt-get); without them the test is skipped and says why
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "make browser: no $(CHROMIUM), and installing Debian's chromium needs root and apt-get:" \
			"the report's browser test will be skipped"; exit 0; fi; \
	echo "make browser: no $(CHROMIUM): apt-get update && apt-get install -y chromium"; \
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "make browser: apt-get could not install chromium: the report's browser test will be skipped"

## report-check: render the demo, write its report, check it in headless chromium
report-check: demo browser
	$(BIN)/shotgraph report pipelines/demo.yaml
	$(BIN)/python scripts/report_browser_check.py pipelines/demo.report/index.html \
		--screenshot test-artifacts/report-demo.png

## test: the whole suite, with lint, type checks and the layer contracts (docs/architecture.md);
## the fal-js check installs @fal-ai/client into tests/js/node_modules (npm ci) on its first run
# With Python's bytecode caches, as for bench: without them every pytest worker rewrites
# every test module's asserts again and every `shotgraph` subprocess compiles what it imports.
test: export PYTHONDONTWRITEBYTECODE :=
test: $(STAMP) browser
	$(BIN)/ruff check runner tests benchmarks scripts
	$(BIN)/ruff format --check runner tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions action.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows docs/examples/shotgraph-workflow.yml runner/data/scaffold/github-workflow.yml
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check runner tests benchmarks scripts
	$(BIN)/ruff format --check runner tests benchmarks scripts
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## bench: every benchmark, each prints its figures; then README's speed table from them.
## With Python's bytecode caches, as a user has them (an environment may turn them off).
bench: export PYTHONDONTWRITEBYTECODE :=
bench: $(STAMP)
	@set -o pipefail; for b in benchmarks/[a-z]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done | tee .bench.log
	$(BIN)/python scripts/bench_table.py .bench.log

## assets: regenerate the example keyframes and motion clips
assets: $(STAMP)
	$(BIN)/python scripts/make_example_assets.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache tests/js/node_modules
