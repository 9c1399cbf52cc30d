"""The Avellaneda–Stoikov session end is a calendar time: the bot measures it on the wall clock.

In real time ``Clock.now()`` is monotonic (an arbitrary origin), so ``T - t`` to a daily session
end taken from it counted down to a local time of 1970, not of today.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from kasmm.bot import Bot
from kasmm.clock import VirtualClock
from kasmm.config.schema import SimVenueConfig
from kasmm.venues.sim import SimVenue
from tests.support import make_profile

GAMMA, KAPPA, SIGMA = 1.0, 10_000.0, 2.4e-4
#: 23:00 UTC: one hour before the session end at midnight.
EVENING = dt.datetime(2024, 1, 15, 23, 0, tzinfo=dt.UTC).timestamp()


class MonotonicVirtualClock(VirtualClock):
    """Virtual time whose interval clock has an arbitrary origin, as ``time.monotonic`` does."""

    def __init__(self, start: float, wall_at_start: float) -> None:
        super().__init__(start)
        self._offset = wall_at_start - start

    def wall(self) -> float:
        return self.now() + self._offset


@pytest.mark.anyio
async def test_session_end_counts_down_on_the_wall_clock() -> None:
    profile = make_profile(
        venue={"balances": {"KAS": "50000", "USDT": "4000"}, "seed": 2},
        modes={"passive": {"size": 1000, "spread_bps": 1}, "aggressive": {"spread_bps": 1}},
        strategy={
            "type": "avellaneda_stoikov",
            "gamma": GAMMA,
            "kappa": KAPPA,
            "sigma": SIGMA,
            "horizon": {"type": "session_end", "end": "00:00", "timezone": "UTC"},
        },
        kill_switch={"stale_book": None},
    )
    assert isinstance(profile.venue, SimVenueConfig)
    clock = MonotonicVirtualClock(start=1000.0, wall_at_start=EVENING)
    venue = SimVenue(profile.venue, profile.symbol, clock)
    bot = Bot(profile, venue, clock=clock, stop_at=1000.0 + 30)
    await bot.run()
    decision = bot.last_decision
    assert decision is not None and decision.mid is not None and decision.spread_bps is not None
    # spread = gamma sigma^2 (T - t) + (2 / gamma) ln(1 + gamma / kappa), in price units
    spread = decision.spread_bps * float(decision.mid) / 1e4
    tau = (spread - 2 / GAMMA * math.log1p(GAMMA / KAPPA)) / (GAMMA * SIGMA**2)
    assert 3600 - 60 < tau <= 3600  # an hour to midnight, less the seconds the run took
