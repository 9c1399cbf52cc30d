"""A venue wrapper that sends every request through a token bucket.

This is the "token bucket -> venue" step of the data path for venues that do not weigh their
own requests (the simulated and paper venues: one token per request). The ccxt venue instead
routes ccxt's per-endpoint costs into the same kind of bucket from inside its request path.

**What a batch call costs.** The bucket is charged per request the venue *really sends*, as the
exchange would count them: a batch call to a venue with a batch endpoint is one request
(``weight`` once), while ``n`` orders sent as concurrent single requests (no batch endpoint,
``BatchLimits()``) are ``n`` requests (``n * weight``). The count comes from the decorator base
(:func:`kasmm.venues.batch.requests_sent`). A charge larger than the bucket's capacity is taken
in capacity-sized parts, one after the other, so that a large batch waits for its tokens
instead of failing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from kasmm.limiter import TokenBucket
from kasmm.venues.base import Venue
from kasmm.venues.decorator import VenueDecorator

T = TypeVar("T")


def _smallest_capacity(bucket: TokenBucket) -> float:
    """The capacity of the smallest bucket in ``bucket``'s parent chain (the largest single
    acquire every bucket on the way can serve)."""
    capacity = bucket.capacity
    parent = bucket.parent
    while parent is not None:
        capacity = min(capacity, parent.capacity)
        parent = parent.parent
    return capacity


class RateLimitedVenue(VenueDecorator):
    """Wrap ``inner`` so that each request first takes ``weight`` tokens from ``limiter``.

    ``close`` and the event stream are free: they send nothing that counts against a limit.
    """

    def __init__(self, inner: Venue, limiter: TokenBucket, weight: float = 1.0) -> None:
        super().__init__(inner)
        self.limiter = limiter
        self.weight = weight

    async def _call(
        self,
        method: str,
        call: Callable[[], Awaitable[T]],
        *,
        weight: float = 1.0,
        arg: object = None,
    ) -> T:
        tokens = self.weight * weight
        if tokens > 0:
            if weight > 1:  # several requests at once: may exceed a bucket's capacity
                part = _smallest_capacity(self.limiter)
                while tokens > part:
                    await self.limiter.acquire(part)
                    tokens -= part
            await self.limiter.acquire(tokens)
        return await call()
