"""``HubPublicFeed``: a paper venue's public data, read from the supervisor's hub.

A paper profile simulates its fills against a real market's books and trades. Inside a
supervisor it reads them from the hub's shared feed of that market instead of opening its own
(:class:`~kasmm.venues.paper.PaperVenue` takes any :class:`~kasmm.venues.public_data.PublicFeed`):
two paper profiles and a live one on MEXC KAS/USDT cost one connection and one budget.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from kasmm.core.types import MarketRules
from kasmm.market.hub import MarketHub, Subscription
from kasmm.venues.public_data import FeedItem

__all__ = ["HubPublicFeed"]


class HubPublicFeed:
    """A :class:`~kasmm.venues.public_data.PublicFeed` over ``hub``'s feed of ``key``."""

    def __init__(self, hub: MarketHub, key: str) -> None:
        self.hub = hub
        self.key = key
        self._subscription: Subscription | None = None

    async def load_market(self) -> MarketRules:
        """The market's rules, loaded once by the hub's feed.

        :raises VenueError: unknown market, or the exchange cannot be reached.
        """
        return await self.hub.load_market(self.key)

    async def watch(self) -> AsyncGenerator[FeedItem, None]:
        """Books and trades of the shared feed (books coalesced), until :meth:`close`."""
        async with self.hub.subscribe(self.key, trades=True) as sub:
            self._subscription = sub
            try:
                async with aclosing(sub.items()) as items:
                    async for item in items:
                        yield item
            finally:
                self._subscription = None

    async def close(self) -> None:
        """End a running :meth:`watch` (the hub stops the feed if nobody else reads it)."""
        if self._subscription is not None:
            self._subscription.end()
