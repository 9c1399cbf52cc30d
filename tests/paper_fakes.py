"""A scripted public feed for the paper venue's tests (unit and contract): no network."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator
from decimal import Decimal

import anyio.lowlevel

from kasmm.core.types import Book, BookLevel, MarketRules, Side
from kasmm.venues.public_data import FeedItem, PublicTrade

#: KAS/USDT-like rules: the defaults of the simulator, fees 10 bps maker / 20 bps taker.
KAS_USDT = MarketRules(
    symbol="KAS/USDT",
    base="KAS",
    quote="USDT",
    tick=Decimal("0.000001"),
    lot=Decimal("0.01"),
    min_notional=Decimal("1"),
    min_size=Decimal("0.01"),
    maker_fee=Decimal("0.001"),
    taker_fee=Decimal("0.002"),
)


def make_book(bids: list[tuple[str, str]], asks: list[tuple[str, str]], ts: float = 0.0) -> Book:
    """A book from ``(price, size)`` strings, best first."""
    return Book(
        bids=tuple(BookLevel(Decimal(p), Decimal(s)) for p, s in bids),
        asks=tuple(BookLevel(Decimal(p), Decimal(s)) for p, s in asks),
        ts=ts,
    )


def make_trade(price: str, size: str, taker: Side, ts: float, trade_id: str = "") -> PublicTrade:
    """A public trade from strings."""
    return PublicTrade(Decimal(price), Decimal(size), taker, ts, trade_id or f"t-{price}-{ts}")


class FakeFeed:
    """A ``PublicFeed`` the test scripts: :meth:`push` books and trades, ``watch`` yields them.

    When nothing is queued ``watch`` waits for the next push, or, with ``repeat_last_book``,
    yields the last book again (like a REST poll of a quiet market).
    """

    def __init__(self, rules: MarketRules = KAS_USDT, *, repeat_last_book: bool = False) -> None:
        self.rules = rules
        self.repeat_last_book = repeat_last_book
        self.loads = 0
        self.watches = 0
        self.closed = False
        self.last_book: Book | None = None
        self._items: deque[FeedItem] = deque()
        self._wakeup = asyncio.Event()

    def push(self, *items: FeedItem) -> None:
        """Queue items for ``watch``."""
        self._items.extend(items)
        self._wakeup.set()

    async def load_market(self) -> MarketRules:
        """The scripted rules."""
        self.loads += 1
        return self.rules

    async def watch(self) -> AsyncGenerator[FeedItem, None]:
        """Queued items in order; then wait (or repeat the last book) until closed."""
        self.watches += 1
        self.closed = False
        while not self.closed:
            if self._items:
                item = self._items.popleft()
                if isinstance(item, Book):
                    self.last_book = item
                yield item
            elif self.repeat_last_book and self.last_book is not None:
                await anyio.lowlevel.checkpoint()
                yield self.last_book
            else:
                self._wakeup.clear()
                await self._wakeup.wait()

    async def close(self) -> None:
        """End ``watch``."""
        self.closed = True
        self._wakeup.set()
