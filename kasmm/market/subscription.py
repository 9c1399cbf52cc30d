"""A reader's handles on the hub: a :class:`Subscription` to one market, a :class:`ChangeWatch`
over several.

A subscription hands out the newest book only (:meth:`Subscription.next_book`): a reader that
falls behind skips stale books instead of working through a queue of them. A paper venue also
needs the public trades (:meth:`Subscription.items`), and those are never coalesced: each one
may fill an order. Waiting is event-driven: a publication wakes the watches of its own key.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Collection
from typing import TYPE_CHECKING

import anyio
import structlog

from kasmm.core.types import Book
from kasmm.market.book import MarketBook
from kasmm.venues.public_data import FeedItem

if TYPE_CHECKING:
    from kasmm.market.hub import MarketHub

log = structlog.get_logger("kasmm.market")

__all__ = ["MAX_PENDING_TRADES", "ChangeWatch", "Subscription"]

#: Trades a subscriber may have queued before the oldest are dropped (a reader that stopped).
MAX_PENDING_TRADES = 10_000


class ChangeWatch:
    """Woken by every publication of its keys (from :meth:`MarketHub.watch`).

    Level-triggered: a publication while nobody waits is not lost, the next :meth:`wait`
    returns at once. Compare :meth:`MarketHub.version` before and after to see which key
    changed.
    """

    def __init__(self, keys: Collection[str]) -> None:
        self.keys = frozenset(keys)
        self._event = anyio.Event()

    async def wait(self) -> None:
        """Return once one of the keys was published since the last return."""
        await self._event.wait()
        self._event = anyio.Event()

    def notify(self) -> None:
        """One of the keys was published (called by the hub)."""
        self._event.set()


class Subscription:
    """A reader's handle on one key (from :meth:`MarketHub.subscribe`).

    :meth:`next_book` waits for a book newer than the last one it returned; :meth:`items`
    (subscriptions opened with ``trades=True``) yields books and trades in arrival order, books
    coalesced: a reader that falls behind gets the newest book, and every trade.
    """

    def __init__(self, hub: MarketHub, key: str, *, trades: bool) -> None:
        self.hub = hub
        self.key = key
        self.trades = trades
        self._seen = 0
        self._pending: deque[FeedItem] = deque()
        self._arrived = anyio.Event()
        self._closed = False
        #: Trades dropped because this reader fell :data:`MAX_PENDING_TRADES` behind.
        self.dropped_trades = 0

    def latest(self) -> MarketBook | None:
        """The key's newest book (``None`` before the first)."""
        return self.hub.latest(self.key)

    async def next_book(self) -> MarketBook:
        """The key's newest book once it is newer than the one this call returned last."""
        await self.hub.wait_changed({self.key: self._seen})
        self._seen = self.hub.version(self.key)
        book = self.hub.latest(self.key)
        assert book is not None  # a version above zero means a book was published
        return book

    async def items(self) -> AsyncGenerator[FeedItem, None]:
        """Books and trades as the feed delivered them, until the subscription ends.

        :raises RuntimeError: the subscription was opened without ``trades``.
        """
        if not self.trades:
            raise RuntimeError(f"subscription to {self.key} was opened without trades")
        while True:
            while self._pending:
                yield self._pending.popleft()
            if self._closed:
                return
            self._arrived = anyio.Event()
            await self._arrived.wait()

    # --- fed by the hub ---------------------------------------------------------------------

    def deliver(self, item: FeedItem) -> None:
        """Queue a book or trade for :meth:`items` (called by the hub)."""
        pending = self._pending
        if isinstance(item, Book):
            if pending and isinstance(pending[-1], Book):
                pending[-1] = item  # only the newest book of a run counts
            else:
                pending.append(item)
        else:
            if len(pending) >= MAX_PENDING_TRADES:
                pending.popleft()
                self.dropped_trades += 1
                if self.dropped_trades == 1:
                    log.warning("market_reader_behind", key=self.key, kept=MAX_PENDING_TRADES)
            pending.append(item)
        self._arrived.set()

    def end(self) -> None:
        """End :meth:`items` (the subscription itself ends with its ``async with`` block)."""
        self._closed = True
        self._arrived.set()
