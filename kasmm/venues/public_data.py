"""A market's public data as kasmm values: trades on the tape, the feed that delivers them.

No ccxt here: the replay venue and its file format use these types too, and a backtest should
not pay for importing an exchange library it never calls.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from kasmm.core.types import Book, MarketRules, Side

__all__ = ["FeedItem", "PublicFeed", "PublicTrade"]


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """One trade printed on the public tape: ``size`` at ``price``, ``taker_side`` aggressed."""

    price: Decimal
    size: Decimal
    taker_side: Side
    ts: float
    trade_id: str


FeedItem = Book | PublicTrade


class PublicFeed(Protocol):
    """A source of one market's rules, books and trades (no account, no credentials)."""

    async def load_market(self) -> MarketRules:
        """The market's trading rules (tick, lot, minimums, published fee rates).

        :raises VenueError: the market is unknown or the exchange cannot be reached.
        """
        ...

    def watch(self) -> AsyncGenerator[FeedItem, None]:
        """Books and trades in the order they arrived, until the feed is closed."""
        ...

    async def close(self) -> None:
        """Release connections; a running :meth:`watch` ends."""
        ...
