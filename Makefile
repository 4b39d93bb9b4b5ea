# Entry points: `make run` (reproduce the results), `make test` (the whole suite, as CI runs it),
# `make test-fast` (everything but the tests marked slow), `make docs` (the documentation site).
# Each creates .venv when missing and installs once; a stamp file records the install so the
# second call does not reinstall unless pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LINTED := src tests benchmarks examples docs/conf.py conftest.py

.PHONY: run test test-fast lint docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/finetune-theory reproduce

# ruff and mypy (the type check of src/, configured in pyproject.toml), then the tests, the
# docstring examples (doctests), the README quick tour and every gallery example, on 2 worker
# processes.
test: lint
	$(BIN)/python -m pytest -n 2 -q

test-fast: lint
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/python -m mypy

# The site, offline, warnings as errors (numpydoc's included): docs/_build/html/index.html.
# The gallery scripts run at their documentation sizes (about a minute of CPU in all).
docs: $(STAMP)
	$(BIN)/python -m sphinx -b html -W --keep-going -q docs docs/_build/html

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) results build dist .pytest_cache .mypy_cache docs/_build docs/auto_examples docs/sg_execution_times.rst
