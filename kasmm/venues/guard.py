"""A venue wrapper that bounds every request in time.

A venue call that hangs (a dead TCP connection, an exchange stuck in maintenance) must not stall
its profile forever, and must never stall other profiles. Every request gets a deadline; running
out of it raises :class:`~kasmm.errors.RequestTimedOut`, whose outcome the bot treats as unknown.
The event stream has no deadline here: staleness of market data is the risk gate's job.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

import anyio

from kasmm.core.types import (
    Balances,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderRequest,
    VenueEvent,
)
from kasmm.errors import RequestTimedOut
from kasmm.venues.base import Venue

T = TypeVar("T")


class TimeoutVenue:
    """Wrap ``inner`` so that each request fails with ``RequestTimedOut`` after ``timeout_s``."""

    def __init__(self, inner: Venue, timeout_s: float, connect_timeout_s: float = 30.0) -> None:
        self.inner = inner
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s

    @property
    def name(self) -> str:
        """The wrapped venue's name."""
        return self.inner.name

    async def _bounded(self, what: str, call: Callable[[], Awaitable[T]], limit: float) -> T:
        try:
            with anyio.fail_after(limit):
                return await call()
        except TimeoutError as exc:
            raise RequestTimedOut(f"{self.inner.name} {what} timed out after {limit:g}s") from exc

    async def connect(self) -> MarketRules:
        """Bounded ``connect``."""
        return await self._bounded("connect", self.inner.connect, self.connect_timeout_s)

    async def close(self) -> None:
        """Bounded ``close``."""
        await self._bounded("close", self.inner.close, self.timeout_s)

    def events(self) -> AsyncGenerator[VenueEvent, None]:
        """The wrapped venue's event stream, unbounded."""
        return self.inner.events()

    async def fetch_balances(self) -> Balances:
        """Bounded ``fetch_balances``."""
        return await self._bounded("fetch_balances", self.inner.fetch_balances, self.timeout_s)

    async def fetch_open_orders(self) -> list[OpenOrder]:
        """Bounded ``fetch_open_orders``."""
        return await self._bounded(
            "fetch_open_orders", self.inner.fetch_open_orders, self.timeout_s
        )

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        """Bounded ``place_order`` (a timeout leaves the outcome unknown)."""
        return await self._bounded(
            "place_order", lambda: self.inner.place_order(request), self.timeout_s
        )

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        """Bounded ``cancel_order``."""
        await self._bounded(
            "cancel_order", lambda: self.inner.cancel_order(client_id), self.timeout_s
        )

    async def cancel_all(self, prefix: str) -> int:
        """Bounded ``cancel_all``."""
        return await self._bounded(
            "cancel_all", lambda: self.inner.cancel_all(prefix), self.timeout_s
        )
