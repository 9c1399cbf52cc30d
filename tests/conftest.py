"""Fixtures every test directory shares.

Plain helpers (the polling helpers, the profile builder) live in :mod:`tests.support`, imported
by name: pytest advises against importing from a conftest.
"""

from __future__ import annotations

import decimal
import logging
from collections.abc import Iterator

import pytest
import structlog

from tests.realtime import is_realtime_path, keeps_a_hypothesis_deadline


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests run on asyncio, the bot's runtime (and ccxt's).

    Session-scoped so that fixtures of any scope (a module's emulator, say) may depend on it.
    """
    return "asyncio"


@pytest.fixture(autouse=True)
def restore_decimal_context() -> Iterator[None]:
    """Every test leaves the decimal context as it found it. Tests that drive ccxt directly
    (the exchange emulators' own) let its ``decimal_to_precision`` switch the context to
    ``ROUND_HALF_UP`` with ``Underflow`` trapped (kasmm's venues isolate it:
    :mod:`kasmm.venues.ccxt.decimal_context`); a hedging test after them rounded its halves
    up."""
    saved = decimal.getcontext().copy()
    yield
    decimal.setcontext(saved)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Every test leaves logging as it found it. ``kasmm.cli.main`` configures it globally,
    onto the ``sys.stderr`` of the moment, which is a capture stream pytest closes after the
    test: a later test logging through it failed with "I/O operation on closed file" (the
    backtest equivalence tests after ``test_pnl_command.py``, in that order)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``realtime`` every test that waits on or measures real time (:mod:`tests.realtime`):
    ``make test`` runs those one at a time, and spreads the others over the cores."""
    for item in items:
        if is_realtime_path(item.path) or keeps_a_hypothesis_deadline(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.realtime)
