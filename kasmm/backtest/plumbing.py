"""One backtest path's plumbing: a clock with an end, a lock-free bucket, a quiet logger.

Both keep the production semantics (a ``VirtualClock``; the :class:`~kasmm.limiter.TokenBucket`
arithmetic) without what only matters with several tasks: a backtest path is one synchronous
loop (:mod:`kasmm.backtest.driver`), so nothing yields, nothing locks.
"""

from __future__ import annotations

from typing import Any

import structlog

from kasmm.clock import VirtualClock
from kasmm.config.schema import Profile
from kasmm.limiter import TokenBucket

#: How often a running path reports how far it got (wall seconds).
PROGRESS_EVERY_S = 0.25
#: structlog's level numbers, for dropping the engine's log commands below ``log_level`` cheaply.
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


class HorizonReached(Exception):
    """The market tried to move past the end of the run (raised by :class:`BacktestClock`)."""


class BacktestClock(VirtualClock):
    """A ``VirtualClock`` that jumps without yielding to the event loop and stops at ``end``.

    :meth:`past_end` tells the synchronous driver that a market step falls after the run (the
    market never moves after its end). ``sleep_until`` past ``end`` raises
    :class:`HorizonReached` before time moves, for async code that drives a simulated venue on
    this clock (bench/churn.py's naive loop). Waits of the token bucket and request latencies
    use :meth:`advance_to`: a round in progress at the end finishes, and the run ends there.
    :meth:`wall` is :meth:`now`, as for every virtual clock (the driver relies on it).
    """

    def __init__(self, start: float = 0.0, end: float | None = None) -> None:
        super().__init__(start)
        self.end = end

    def past_end(self, t: float) -> bool:
        """Whether a market step at ``t`` (or the clock itself) lies after the end."""
        end = self.end
        return end is not None and (t > end or self._now > end)

    def step_to(self, t: float) -> bool:
        """Move to a market step at ``t``; ``False`` (the clock stays) when it is
        :meth:`past_end`.

        :meth:`past_end` and :meth:`advance_to` written out: the driver calls this once a market
        step, and this class is source (it subclasses a source class), so each call is a frame.
        """
        end, now = self.end, self._now
        if end is not None and (t > end or now > end):
            return False
        if t > now:
            self._now = t
        return True

    async def sleep_until(self, deadline: float) -> None:
        """Jump to ``deadline``.

        :raises HorizonReached: ``deadline`` or the clock is past ``end``.
        """
        if self.past_end(deadline):
            raise HorizonReached(deadline)
        self.advance_to(deadline)


class BacktestBucket(TokenBucket):
    """The production token bucket's arithmetic for one requester in virtual time, plus counters.

    :meth:`take` takes the tokens when they are there and otherwise moves the (virtual) clock
    on until the shortfall has refilled, exactly like :class:`TokenBucket`, but without its
    FIFO lock (a backtest has a single requester). ``unlimited`` never waits. ``spent`` is the
    weight drawn, ``waited_s`` the virtual time spent waiting.
    """

    def __init__(
        self,
        capacity: float,
        refill_per_s: float,
        clock: VirtualClock,
        *,
        unlimited: bool = False,
        name: str = "",
    ) -> None:
        super().__init__(capacity, refill_per_s, clock, name=name)
        self.clock = clock
        self.unlimited = unlimited
        self.spent = 0.0
        self.waited_s = 0.0

    def take(self, weight: float = 1.0) -> float:
        """Take ``weight`` tokens, moving the clock on if needed; return the wait.

        A weight above the capacity (a batch of single requests, say) is taken in
        capacity-sized parts, one after the other, as the rate-limited venue does.
        """
        if weight <= 0:
            return 0.0
        self.spent += weight
        if self.unlimited:
            return 0.0
        waited = 0.0
        while weight > self.capacity:
            waited += self._take(self.capacity)
            weight -= self.capacity
        return waited + self._take(weight)

    def request(self, weight: float, latency_s: float) -> float:
        """One request: its tokens (:meth:`take`), then its latency on the clock; return the time
        it left (after its tokens, before its latency).

        One call a request for the compiled driver: this class is source (it subclasses a
        source class), and a call into source from compiled code costs more than the calls
        made here.
        """
        self.take(weight)
        clock = self.clock
        at = clock.now()
        if latency_s > 0:
            clock.advance_to(at + latency_s)
        return at

    def _take(self, weight: float) -> float:
        start = self._clock.now()
        self._refill(start)
        if self._tokens >= weight:
            self._tokens -= weight
            return 0.0
        self.clock.advance_to(start + (weight - self._tokens) / self.refill_per_s)
        now = self._clock.now()
        self._refill(now)
        self._tokens = max(0.0, self._tokens - weight)
        self.waited_s += now - start
        return now - start

    async def acquire(self, weight: float = 1.0) -> float:
        """:meth:`take` for async callers (never waits on the event loop)."""
        if weight > self.capacity and not self.unlimited:
            raise ValueError(f"weight {weight} exceeds bucket capacity {self.capacity}")
        return self.take(weight)


def quiet_logger(profile: Profile, venue: str, level: int) -> Any:
    """A logger that drops events below ``level`` (same processors and output as configured)."""
    config = structlog.get_config()
    logger = structlog.wrap_logger(
        config["logger_factory"](),
        processors=config["processors"],
        wrapper_class=structlog.make_filtering_bound_logger(level),
    )
    return logger.bind(profile=profile.name, venue=venue, symbol=profile.symbol)
