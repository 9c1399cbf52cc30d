"""A venue wrapper that sends every request through a token bucket.

This is the "token bucket -> venue" step of the data path for venues that do not weigh their
own requests (the simulated venue: one token per request). The ccxt venue instead routes
ccxt's per-endpoint costs into the same kind of bucket from inside its request path.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from kasmm.core.types import (
    Balances,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderRequest,
    VenueEvent,
)
from kasmm.limiter import TokenBucket
from kasmm.venues.base import Venue


class RateLimitedVenue:
    """Wrap ``inner`` so that each request first takes ``weight`` tokens from ``limiter``."""

    def __init__(self, inner: Venue, limiter: TokenBucket, weight: float = 1.0) -> None:
        self.inner = inner
        self.limiter = limiter
        self.weight = weight

    @property
    def name(self) -> str:
        """The wrapped venue's name."""
        return self.inner.name

    async def connect(self) -> MarketRules:
        """``connect`` after taking a token."""
        await self.limiter.acquire(self.weight)
        return await self.inner.connect()

    async def close(self) -> None:
        """``close`` (free: it sends nothing that counts against a limit)."""
        await self.inner.close()

    def events(self) -> AsyncGenerator[VenueEvent, None]:
        """The wrapped venue's event stream (pushed data costs no tokens)."""
        return self.inner.events()

    async def fetch_balances(self) -> Balances:
        """``fetch_balances`` after taking a token."""
        await self.limiter.acquire(self.weight)
        return await self.inner.fetch_balances()

    async def fetch_open_orders(self) -> list[OpenOrder]:
        """``fetch_open_orders`` after taking a token."""
        await self.limiter.acquire(self.weight)
        return await self.inner.fetch_open_orders()

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        """``place_order`` after taking a token."""
        await self.limiter.acquire(self.weight)
        return await self.inner.place_order(request)

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        """``cancel_order`` after taking a token."""
        await self.limiter.acquire(self.weight)
        await self.inner.cancel_order(client_id)

    async def cancel_all(self, prefix: str) -> int:
        """``cancel_all`` after taking a token."""
        await self.limiter.acquire(self.weight)
        return await self.inner.cancel_all(prefix)
