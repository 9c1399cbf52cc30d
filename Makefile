# Two entry points matter: `make run` and `make test` (see README). Both create .venv on demand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/kasmm supervise profiles/

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) state

# Benchmarks on the simulated venue; they print figures, nothing passes or fails (bench/README.md).
.PHONY: bench
bench: $(STAMP)
	@set -e; for script in $(sort $(filter-out bench/_common.py,$(wildcard bench/*.py))); do \
		echo "== $$script"; $(BIN)/python $$script; done
