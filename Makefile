# Two entry points matter: `make run` and `make test` (see README). Both create .venv on demand.
# `make run` installs only what running needs; the dev tools (pytest, mypy, ruff, hypothesis,
# matplotlib) about double that wait and come with `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck venv clean native

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

# The mypyc-compiled hot path (kasmm/native.py): optional, about twice as fast per decision.
# Without a C compiler it builds nothing (exit 3) and kasmm keeps running its Python source.
native: $(DEV_STAMP)
	$(BIN)/python scripts/build_native.py

# The Python source is the reference: the whole suite runs on it (KASMM_PURE=1). Then the hot path
# is compiled and the unit tests, the venue contract suite, the bots' integration tests and the
# short soak and crash-restart runs go again on the compiled modules (KASMM_REQUIRE_NATIVE=1: an
# import that would fall back to the source fails instead). About 3 minutes.
# Each pass runs in two parts over the same tests: those that wait on or measure real time (marked
# `realtime` at collection by tests/realtime.py) one at a time with nothing beside them, and those
# that only compute. The source's compute-only tests run on one core while the compiler (a single
# gcc process) builds the hot path on the other; the compiled ones are spread over the cores
# (pytest-xdist).
NATIVE_TESTS := tests/unit tests/contract $(addprefix tests/integration/test_,\
	bot_sim.py bot_safety.py bot_risk.py bot_inventory_risk.py fill_delivery.py persistence.py \
	sim_restart.py resilience_regressions.py first_run.py supervisor.py soak_short.py \
	crash_restart_short.py bot_settlement_transfer.py)
# The exchange emulators' own tests exercise test equipment and ccxt only, nothing compiled: once.
# So do the ccxt venue's tests and the contract suite on the emulated exchanges (the ccxt layer
# is source; the contract suite still runs compiled on the sim, replay and paper venues), and
# settlement's (kasmm/settle, its plan, schedule and status are source; the bots' booking of a
# sweep, which is compiled, is tested by test_*transfers* and bot_settlement_transfer).
NATIVE_SKIP := --ignore-glob='tests/unit/test_emulator_*' --ignore-glob='tests/unit/test_settle_*' \
	--ignore-glob='tests/unit/test_settlement_*' -k 'not ccxt'
SERIAL := -m realtime
COMPUTE := -m 'not realtime'
PARALLEL := -n logical $(COMPUTE)
SOURCE_COMPUTE := KASMM_PURE=1 $(BIN)/python -m pytest -q $(COMPUTE) tests
test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	KASMM_PURE=1 $(BIN)/python -m pytest $(SERIAL) tests
	@echo "$(SOURCE_COMPUTE) (beside the build)"; \
	$(SOURCE_COMPUTE) & tests=$$!; trap 'kill $$tests 2>/dev/null' INT TERM; \
	status=0; $(BIN)/python scripts/build_native.py || status=$$?; \
	failed=0; wait $$tests || failed=$$?; \
	if [ $$failed -ne 0 ]; then echo "source pass (compute-only tests) failed"; exit $$failed; \
	elif [ $$status -eq 3 ]; then echo "native: no C compiler or mypyc; compiled modules not tested"; \
	elif [ $$status -ne 0 ]; then exit $$status; \
	else KASMM_REQUIRE_NATIVE=1 $(BIN)/python -m pytest -q $(PARALLEL) $(NATIVE_SKIP) $(NATIVE_TESTS) \
		&& KASMM_REQUIRE_NATIVE=1 $(BIN)/python -m pytest -q $(SERIAL) $(NATIVE_SKIP) $(NATIVE_TESTS); fi

clean:
	rm -rf $(VENV) state build
	find kasmm -name '*.so' -delete; rm -f kasmm/_native_stamp.json

# Benchmarks on the simulated venue; they print figures, nothing passes or fails (bench/README.md).
.PHONY: bench
# The compiled hot path first (its figures, with the source's beside them); without a C compiler
# (exit 3) the benches measure the source, and each says which it ran.
bench: $(DEV_STAMP)
	@$(BIN)/python scripts/build_native.py || [ $$? -eq 3 ]
	@set -e; for script in $(sort $(filter-out bench/_common.py,$(wildcard bench/*.py))); do \
		echo "== $$script"; $(BIN)/python $$script; done
