"""Keep ccxt from changing the Decimal arithmetic of the rest of the process.

ccxt's ``decimal_to_precision`` (behind every ``price_to_precision`` and
``amount_to_precision``, so behind every order a ccxt exchange sends) sets the *current*
``decimal`` context's rounding to ``ROUND_HALF_UP`` and traps ``Underflow``, and never puts them
back. The decimal context is one object shared by every task that inherited it, so after the
first order of a ccxt profile every Decimal operation in the supervisor (the quoting core, PnL,
the risk rules, a simulated venue next to it) would run with ccxt's settings: an
``Underflow`` raised where the default context rounds to zero, and ties rounded away from zero at
the 28th digit where a backtest of the same decisions rounds them to even.

kasmm rounds money explicitly everywhere it rounds, but the context must still be the one the
core was written and tested against. So every exchange instance kasmm builds or is handed runs
``decimal_to_precision`` in a private copy of the context (:func:`isolate_decimal_context`).
"""

from __future__ import annotations

import decimal
import functools
from collections.abc import Callable
from typing import Any

__all__ = ["isolate_decimal_context"]


def isolate_decimal_context(exchange: Any) -> None:
    """Make ``exchange`` round in a copy of the caller's decimal context (idempotent).

    ccxt keeps the function as an instance attribute (``self.decimal_to_precision``), which is
    what every one of its precision helpers calls; the module function itself is untouched.
    """
    original: Callable[..., Any] | None = getattr(exchange, "decimal_to_precision", None)
    if original is None or getattr(original, "kasmm_isolated", False):
        return

    @functools.wraps(original)
    def isolated(*args: Any, **kwargs: Any) -> Any:
        with decimal.localcontext():
            return original(*args, **kwargs)

    isolated.kasmm_isolated = True  # type: ignore[attr-defined]
    exchange.decimal_to_precision = isolated
