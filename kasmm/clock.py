"""Injected clocks: the same venue and bot code run in real time and in virtual time."""

from __future__ import annotations

import time
from typing import Protocol

import anyio
import anyio.lowlevel


class Clock(Protocol):
    """A source of time that can also wait."""

    @property
    def is_virtual(self) -> bool:
        """True when time only advances by ``sleep_until`` calls."""
        ...

    def now(self) -> float:
        """Seconds on a clock that never steps: for intervals, deadlines, ages, rate windows."""
        ...

    def wall(self) -> float:
        """Epoch seconds: only for timestamps and calendar boundaries (days, schedules)."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline``."""
        ...


class RealClock:
    """Real time: a monotonic clock for intervals, the system clock for timestamps.

    Intervals (book age, order age, rate windows, deadlines, backoff) must not move when the
    system clock steps (NTP, an operator, a VM resume): a step back of 600 s would otherwise keep
    a dead book "fresh" for ten minutes.
    """

    is_virtual = False

    def now(self) -> float:
        """Monotonic seconds (arbitrary origin): only differences mean anything."""
        return time.monotonic()

    def wall(self) -> float:
        """Epoch seconds from the system clock (may step: NTP, an operator, a VM resume)."""
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until the monotonic clock reaches ``deadline``."""
        delay = deadline - time.monotonic()
        if delay > 0:
            await anyio.sleep(delay)
        else:
            await anyio.lowlevel.checkpoint()


class VirtualClock:
    """Simulated time that jumps forward instantly; used by tests and backtests."""

    is_virtual = True

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        """Current virtual time."""
        return self._now

    def wall(self) -> float:
        """Virtual time is both the interval clock and the calendar."""
        return self._now

    def advance_to(self, t: float) -> None:
        """Move time forward to ``t`` (never backwards)."""
        if t > self._now:
            self._now = t

    async def sleep_until(self, deadline: float) -> None:
        """Jump to ``deadline`` and yield once so other tasks can run."""
        self.advance_to(deadline)
        await anyio.lowlevel.checkpoint()
