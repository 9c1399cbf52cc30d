"""A ccxt venue's events when its public book comes from the supervisor's hub.

Three live profiles on MEXC KAS/USDT would otherwise open three book websockets (or poll three
times) and pay three times the public budget for one order book. Given a ``book_feed`` (a
subscription to the hub's key of its market), the venue's stream is the merge of two sources:

* the hub's books, each the newest when the venue gets to it (a bot that falls behind skips
  stale books, as the live driver does with its own), stamped with their arrival time on the
  interval clock, so the stale-book rule measures the shared book's real age;
* the account's private stream (:func:`~kasmm.venues.ccxt.stream.event_stream` without books):
  fills, venue-side closes and listings, websocket or REST as before.

The first event is still a book (the hub's first), as the bot expects of any venue.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager, aclosing
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from kasmm.core.types import VenueEvent
from kasmm.market.book import MarketBook
from kasmm.venues.ccxt.stream import event_stream

if TYPE_CHECKING:
    from kasmm.venues.ccxt.venue import CcxtVenue

__all__ = ["BookFeed", "BookReader", "shared_book_stream"]


class BookReader(Protocol):
    """What the venue reads a shared book through (a hub :class:`Subscription`)."""

    async def next_book(self) -> MarketBook:
        """The newest book once it is newer than the one returned last."""
        ...


#: Opens a subscription to the venue's market for the duration of its event stream.
BookFeed = Callable[[], AbstractAsyncContextManager[BookReader]]


async def shared_book_stream(venue: CcxtVenue, feed: BookFeed) -> AsyncGenerator[VenueEvent, None]:
    """The venue's events with its books from ``feed`` (see the module docstring)."""
    async with feed() as reader:
        yield venue.on_shared_book(await reader.next_book())
        queue: asyncio.Queue[VenueEvent | BaseException] = asyncio.Queue()

        async def pump_private() -> None:
            private = event_stream(venue, venue.settings, websocket=venue.use_websocket)
            try:
                async with aclosing(private) as events:
                    async for event in events:
                        queue.put_nowait(event)
                queue.put_nowait(StopAsyncIteration())
            except Exception as exc:
                queue.put_nowait(exc)

        pump = asyncio.ensure_future(pump_private())
        # Each waits until it completes (neither loses anything when the other wins); the next
        # book is asked for only once the last one was yielded, so books never queue up.
        book: asyncio.Future[MarketBook] | None = None
        private: asyncio.Future[VenueEvent | BaseException] | None = None
        try:
            while True:
                if book is None:
                    book = asyncio.ensure_future(reader.next_book())
                if private is None:
                    private = asyncio.ensure_future(queue.get())
                either: set[asyncio.Future[Any]] = {book, private}
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                if book.done():
                    done, book = book, None
                    yield venue.on_shared_book(done.result())
                if private.done():
                    item, private = private.result(), None
                    if isinstance(item, StopAsyncIteration):
                        return
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            waiting: list[asyncio.Future[Any]] = [pump]
            waiting.extend(f for f in (book, private) if f is not None)
            for future in waiting:
                future.cancel()
            with anyio.CancelScope(shield=True):  # the private stream closes before we return
                await asyncio.gather(*waiting, return_exceptions=True)
