"""Async token-bucket rate limiter with weighted acquire and an optional parent bucket.

Each profile owns a bucket; profiles that share a venue account also draw from the account's
bucket (its ``parent``), because exchanges limit per API key or IP, not per bot. Waiting uses
the injected clock, so in virtual time a rate-limited backtest advances time instead of sleeping.
"""

from __future__ import annotations

import anyio

from kasmm.clock import Clock


class TokenBucket:
    """A token bucket: ``capacity`` tokens at most, refilled at ``refill_per_s``.

    ``acquire(w)`` waits until ``w`` tokens are available and takes them. Waiters are served in
    arrival order (a lock), so a heavy request cannot be starved by a stream of light ones.
    """

    def __init__(
        self,
        capacity: float,
        refill_per_s: float,
        clock: Clock,
        *,
        parent: TokenBucket | None = None,
        name: str = "",
    ) -> None:
        if capacity <= 0 or refill_per_s <= 0:
            raise ValueError("capacity and refill_per_s must be positive")
        self.capacity = float(capacity)
        self.refill_per_s = float(refill_per_s)
        self.parent = parent
        self.name = name
        self._clock = clock
        self._tokens = float(capacity)
        self._updated = clock.now()
        # fast_acquire: an uncontended acquire does not yield to the event loop; every venue
        # request passes here, and under load each yield waits behind every ready task.
        self._lock = anyio.Lock(fast_acquire=True)

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_s)
            self._updated = now
        elif elapsed < 0:  # the clock moved backwards (wall clock step): restart from here
            self._updated = now

    @property
    def tokens(self) -> float:
        """Tokens available right now (for metrics)."""
        self._refill(self._clock.now())
        return self._tokens

    def try_acquire(self, weight: float = 1.0) -> bool:
        """Take ``weight`` tokens (from this bucket and its parents) if available now."""
        if self._lock.locked():
            return False  # someone is already waiting: do not jump the queue
        now = self._clock.now()
        self._refill(now)
        if self._tokens < weight:
            return False
        if self.parent is not None and not self.parent.try_acquire(weight):
            return False
        self._tokens -= weight
        return True

    async def acquire(self, weight: float = 1.0) -> float:
        """Wait for and take ``weight`` tokens; return the seconds spent waiting.

        :raises ValueError: ``weight`` exceeds the bucket's capacity (it could never be served).
        """
        if weight > self.capacity:
            raise ValueError(f"weight {weight} exceeds bucket capacity {self.capacity}")
        # Nobody queued and the tokens are there (here and up the chain): take them without
        # the lock, which only orders waiters. Every venue request passes here.
        if self.try_acquire(weight):
            return 0.0
        start = self._clock.now()
        async with self._lock:
            while True:
                now = self._clock.now()
                self._refill(now)
                if self._tokens >= weight:
                    self._tokens -= weight
                    break
                deadline = now + (weight - self._tokens) / self.refill_per_s
                await self._clock.sleep_until(deadline)
                now = self._clock.now()
                if now >= deadline:
                    # Waited out the whole shortfall: take the tokens even if float rounding
                    # of the elapsed time left a hair short. Looping again would compute a
                    # deadline that rounds to ``now``, and in virtual time spin forever.
                    self._refill(now)
                    self._tokens = max(0.0, self._tokens - weight)
                    break
        if self.parent is not None:
            try:
                await self.parent.acquire(weight)
            except BaseException:
                # Cancelled while queued on the account bucket: give our tokens back.
                self._tokens = min(self.capacity, self._tokens + weight)
                raise
        return self._clock.now() - start
