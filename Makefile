# Two entry points matter: `make run` and `make test` (see README). Both create .venv on demand.
# `make run` installs only what running needs; the dev tools (pytest, mypy, ruff, hypothesis,
# matplotlib) about double that wait and come with `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

# The dev extra includes everything running needs, so it satisfies `make run` too.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

venv: $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/kasmm supervise profiles/

test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) state

# Benchmarks on the simulated venue; they print figures, nothing passes or fails (bench/README.md).
.PHONY: bench
bench: $(DEV_STAMP)
	@set -e; for script in $(sort $(filter-out bench/_common.py,$(wildcard bench/*.py))); do \
		echo "== $$script"; $(BIN)/python $$script; done
