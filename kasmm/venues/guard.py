"""A venue wrapper that bounds every request in time.

A venue call that hangs (a dead TCP connection, an exchange stuck in maintenance) must not stall
its profile forever, and must never stall other profiles. Every request gets a deadline; running
out of it raises :class:`~kasmm.errors.RequestTimedOut`, whose outcome the bot treats as unknown.
A batch call gets one deadline for the whole call (its orders are in flight together), and
running out of it leaves every order's outcome unknown. The event stream has no deadline here:
staleness of market data is the risk gate's job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from kasmm.errors import RequestTimedOut
from kasmm.venues.base import Venue
from kasmm.venues.decorator import VenueDecorator

T = TypeVar("T")


class TimeoutVenue(VenueDecorator):
    """Wrap ``inner`` so that each request fails with ``RequestTimedOut`` after ``timeout_s``."""

    def __init__(self, inner: Venue, timeout_s: float, connect_timeout_s: float = 30.0) -> None:
        super().__init__(inner)
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s

    async def _call(
        self,
        method: str,
        call: Callable[[], Awaitable[T]],
        *,
        weight: float = 1.0,
        arg: object = None,
    ) -> T:
        limit = self.connect_timeout_s if method == "connect" else self.timeout_s
        try:
            with anyio.fail_after(limit):
                return await call()
        except TimeoutError as exc:
            raise RequestTimedOut(f"{self.inner.name} {method} timed out after {limit:g}s") from exc

    async def close(self) -> None:
        """Bounded ``close`` (a hung close must not hold up a restart or a shutdown)."""
        await self._call("close", self.inner.close)
