"""``ReferenceVenue``: the books of the markets a profile references, in its event stream.

A profile that prices off other markets (``reference:``) needs their books where it already
handles its own: in ``events()``. This decorator subscribes to each referenced key for as long
as the stream runs and yields, between the inner venue's events, a
``ReferenceUpdated(key, book, received_at)`` whenever a key has a newer book than the one last
delivered. Coalesced: a bot that was busy gets only the newest book of each key, never a queue
of stale ones (the hub keeps only the newest).

Two rules keep the inner stream intact:

* **It is never blocked.** In real time the next inner event is awaited in one pending
  ``asyncio`` task that references do not cancel: when a reference arrives first it is yielded
  and the same pull goes on waiting. The inner stream is pulled one event at a time, as without
  the decorator.
* **A simulated venue never runs ahead.** On a virtual clock nothing waits in the background:
  before each pull of the inner venue, the references published so far are delivered, then the
  inner venue is pulled to its next event. Time advances only as the bot pulls, and the order of
  events is a function of the order of pulls and publications: deterministic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from contextlib import AsyncExitStack
from typing import Any

import anyio

from kasmm.clock import Clock
from kasmm.core.types import ReferenceUpdated, VenueEvent
from kasmm.market.hub import MarketHub
from kasmm.venues.base import Venue
from kasmm.venues.decorator import VenueDecorator

__all__ = ["ReferenceVenue"]


class ReferenceVenue(VenueDecorator):
    """Wrap ``inner`` so that its events interleave the books of ``keys`` (module docstring).

    :param keys: the referenced markets, ``"<exchange>:<symbol>"`` (duplicates ignored).
    :param clock: the bot's clock (virtual: deliver between pulls, never in the background).
    """

    def __init__(self, inner: Venue, hub: MarketHub, keys: Sequence[str], clock: Clock) -> None:
        super().__init__(inner)
        self.hub = hub
        self.keys: tuple[str, ...] = tuple(dict.fromkeys(keys))
        self.clock = clock

    def _changes(self, delivered: dict[str, int]) -> list[ReferenceUpdated]:
        """A ``ReferenceUpdated`` per key with a book newer than the one delivered last."""
        out: list[ReferenceUpdated] = []
        hub = self.hub
        for key, seen in delivered.items():
            version = hub.version(key)
            if version != seen:
                delivered[key] = version
                book = hub.latest(key)
                if book is not None:
                    out.append(ReferenceUpdated(key, book.book, book.received_at))
        return out

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        """The inner events with the references' books interleaved (module docstring)."""
        async with AsyncExitStack() as stack:
            for key in self.keys:
                await stack.enter_async_context(self.hub.subscribe(key))
            watch = stack.enter_context(self.hub.watch(self.keys))
            delivered = dict.fromkeys(self.keys, 0)
            inner = self.inner.events()
            stack.push_async_callback(inner.aclose)
            if self.clock.is_virtual:
                while True:
                    for update in self._changes(delivered):
                        yield update
                    try:
                        event = await anext(inner)
                    except StopAsyncIteration:
                        return
                    yield event
            pending: asyncio.Future[Any] | None = None
            try:
                while True:
                    for update in self._changes(delivered):
                        yield update
                    if pending is None:
                        pending = asyncio.ensure_future(anext(inner))
                    if not pending.done():
                        changed = asyncio.ensure_future(watch.wait())
                        try:
                            await asyncio.wait(
                                {pending, changed}, return_when=asyncio.FIRST_COMPLETED
                            )
                        finally:
                            changed.cancel()
                    if pending.done():
                        done, pending = pending, None
                        try:
                            event = done.result()
                        except StopAsyncIteration:
                            return
                        yield event
            finally:
                if pending is not None and not pending.done():
                    pending.cancel()
                    # Shielded: the inner stream is closed next, which it cannot be while
                    # this pull still runs it (a cancelled caller is cancelled again at
                    # every await under anyio).
                    with anyio.CancelScope(shield=True):
                        await asyncio.gather(pending, return_exceptions=True)
