"""Market keys: ``"<exchange>:<symbol>"``, the one name of a market inside a supervisor.

``exchange`` is the ccxt id for a real exchange (``mexc``, ``gate``, ...) and a simulated
venue's ``exchange`` name (``sim`` unless the profile names one). Two profiles with the same key
trade the same order book, so they share its feed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# One definition of a profile's own key, where the config becomes core values.
from kasmm.config.to_core import market_key, profile_market_key, venue_exchange

if TYPE_CHECKING:
    from kasmm.config.schema import Profile

__all__ = [
    "SIM_EXCHANGE",
    "market_key",
    "profile_market_key",
    "reference_keys",
    "split_key",
    "venue_exchange",
]

#: The exchange name of a simulated venue that names none.
SIM_EXCHANGE = "sim"


def split_key(key: str) -> tuple[str, str]:
    """``(exchange, symbol)`` of a market key.

    :raises ValueError: not ``EXCHANGE:BASE/QUOTE``.
    """
    exchange, sep, symbol = key.partition(":")
    base, slash, quote = symbol.partition("/")
    if not (sep and exchange and base and slash and quote) or "/" in quote:
        raise ValueError(f"market key must look like EXCHANGE:BASE/QUOTE, got {key!r}")
    return exchange, symbol


def reference_keys(profile: Profile) -> tuple[str, ...]:
    """Every market ``profile``'s ``reference:`` reads (sources and conversion pairs, each
    once); empty without one."""
    from kasmm.config.to_core import reference_params

    return reference_params(profile).keys
