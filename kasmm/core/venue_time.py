"""The venue's clock as seen from here: exchange time estimated from the venue's own timestamps.

Some decisions compare an exchange timestamp with "now": was this fill executed before the
balances were read (then the balances already hold it)? Comparing with the local wall clock is
wrong by the skew between the two clocks (seconds are common; a stepped clock makes it minutes),
so a local clock running ahead would make fresh fills look old. Exchange time is compared with
exchange time instead: each event the venue stamps gives a sample ``offset = exchange_ts -
local_monotonic``; the one-way delay only ever makes a sample smaller, so the largest recent
sample is the best estimate. Samples age out in windows, so a venue whose clock is corrected (or
a monotonic clock that drifts a few ppm from the exchange's) is followed within two windows.

Pure: frozen values in, frozen values out; the caller passes its monotonic time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Length of one sample window (seconds of local monotonic time).
WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class VenueClock:
    """Best offsets of the current and the previous window (``-inf`` = no sample yet)."""

    window_start: float = -math.inf
    current: float = -math.inf
    previous: float = -math.inf

    def observe(self, exchange_ts: float, local_now: float) -> VenueClock:
        """Fold in an event the venue stamped ``exchange_ts`` (epoch s), received at
        ``local_now`` (monotonic s). Non-finite stamps are ignored."""
        if not math.isfinite(exchange_ts):
            return self
        sample = exchange_ts - local_now
        if local_now - self.window_start >= WINDOW_S:
            previous = self.current if local_now - self.window_start < 2 * WINDOW_S else -math.inf
            return VenueClock(window_start=local_now, current=sample, previous=previous)
        if sample <= self.current:
            return self
        return VenueClock(self.window_start, sample, self.previous)

    def at(self, local_now: float) -> float | None:
        """The venue's time at ``local_now``, or ``None`` before any sample."""
        best = max(self.current, self.previous)
        return None if best == -math.inf else local_now + best
