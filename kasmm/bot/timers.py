"""Periodic duties measured on the engine's interval clock (the caller passes ``now``)."""

from __future__ import annotations

import math


class Every:
    """Due once every ``interval_s`` (first at once); :meth:`force` makes it due now."""

    __slots__ = ("_last", "interval_s")

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last = -math.inf

    def due(self, now: float) -> bool:
        """Whether the interval has passed since the last :meth:`mark`."""
        return now - self._last >= self.interval_s

    def mark(self, now: float) -> None:
        """The duty was done at ``now``."""
        self._last = now

    def take(self, now: float) -> bool:
        """If due: mark it done at ``now`` and return True."""
        if now - self._last >= self.interval_s:
            self._last = now
            return True
        return False

    def force(self) -> None:
        """Make it due at the next check."""
        self._last = -math.inf
