"""Fixtures every test directory shares.

Plain helpers (the polling helpers, the profile builder) live in :mod:`tests.support`, imported
by name: pytest advises against importing from a conftest.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests run on asyncio, the bot's runtime (and ccxt's).

    Session-scoped so that fixtures of any scope (a module's emulator, say) may depend on it.
    """
    return "asyncio"
