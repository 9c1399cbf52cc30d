"""``PublishingVenue``: a simulated venue's books, published to the hub as it produces them.

A simulated or replayed market has no public feed to open: the only source of its books is the
venue of the profile that trades it. Wrapped in this decorator (``build_stack`` does it when the
supervisor gives a hub), every ``BookUpdated`` it yields is also published under its key, so
other profiles can reference it. Nothing else changes: the events pass through in order, and
the venue advances only as far as its own bot pulls them (publishing never pulls).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import structlog

from kasmm.core.types import BookUpdated, VenueEvent
from kasmm.market.hub import MarketHub
from kasmm.venues.base import Venue
from kasmm.venues.decorator import VenueDecorator

log = structlog.get_logger("kasmm.market")

__all__ = ["PublishingVenue"]


class PublishingVenue(VenueDecorator):
    """Wrap ``inner`` so that its books are published to ``hub`` under ``key``.

    :param key: the market ``inner`` trades, ``"<exchange>:<symbol>"``.
    """

    def __init__(self, inner: Venue, hub: MarketHub, key: str) -> None:
        super().__init__(inner)
        self.hub = hub
        self.key = key

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        """The inner venue's events, each book also published (source ``venue``) while this
        venue is the key's publisher (the first to claim it; another simulated venue under the
        same key is another market: its books are not mixed in, and it says so once)."""
        hub, key = self.hub, self.key
        publishing = hub.claim(key, self)
        if not publishing:
            log.info("market_publisher_taken", key=key, venue=self.name)
        try:
            async with aclosing(self.inner.events()) as events:
                async for event in events:
                    if publishing and isinstance(event, BookUpdated):
                        hub.publish(key, event.book, "venue")
                    yield event
        finally:
            hub.release(key, self)
