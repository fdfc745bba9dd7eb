# pyfix_smtp developer entry points. Two set-up commands (README):
#   make demo   - create .venv, install the package, run the main job
#   make test   - create .venv, install dev extras and the real peers, run every check
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck pytest docs peers bench bench-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,docs,bench]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/python examples/demo.py

peers:
	./scripts/install-peers.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check pyfix_smtp tests examples benchmarks scripts
	$(BIN)/ruff format --check pyfix_smtp tests examples benchmarks scripts

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict pyfix_smtp

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest $(PYTEST_ARGS)

docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test: $(VENV)/.installed-dev peers lint typecheck pytest docs

# Benchmarks against smtp-source, smtplib and aiosmtplib (benchmarks/README.md).
bench: $(VENV)/.installed-dev peers
	$(BIN)/python -m benchmarks.run

bench-smoke: $(VENV)/.installed-dev peers
	$(BIN)/python -m benchmarks.run --smoke

clean:
	rm -rf $(VENV) site .mypy_cache .ruff_cache .pytest_cache .hypothesis
