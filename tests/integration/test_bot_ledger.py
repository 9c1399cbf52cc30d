"""The bot with a ledger: duplicate fills count once, balance drift is stored and adopted."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.bot import BALANCE_REFRESH_S, Bot
from kasmm.clock import VirtualClock
from kasmm.core.types import Balance, Balances, OrderFilled, VenueEvent
from kasmm.limiter import TokenBucket
from kasmm.store import AsyncLedger, Ledger
from kasmm.venues.base import Venue
from kasmm.venues.decorator import VenueDecorator
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.sim import SimVenue
from tests.support import demo_profile


class DuplicatingVenue(VenueDecorator):
    """Delivers every fill event twice (a websocket replay after a reconnect)."""

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        async for event in self.inner.events():
            yield event
            if isinstance(event, OrderFilled):
                yield event


class DriftingVenue(VenueDecorator):
    """Reports 100 KAS more than the account holds after the first balance read."""

    reads = 0

    async def fetch_balances(self) -> Balances:
        real = await self.inner.fetch_balances()
        self.reads += 1
        if self.reads == 1:
            return real
        kas = real.get("KAS")
        return Balances({**real.assets, "KAS": Balance(kas.free + 100, kas.locked)})


def bot_on(venue: Venue, clock: VirtualClock, ledger: AsyncLedger, stop_at: float) -> Bot:
    profile = demo_profile()
    limiter = TokenBucket(1000, 1000, clock)
    return Bot(
        profile, RateLimitedVenue(venue, limiter), clock=clock, ledger=ledger, stop_at=stop_at
    )


@pytest.mark.anyio
async def test_duplicate_fill_events_count_once(tmp_path: Path) -> None:
    clock = VirtualClock(0.0)
    profile = demo_profile()
    assert profile.venue.type == "sim"
    sim = SimVenue(profile.venue, profile.symbol, clock)
    with Ledger(tmp_path / "l.sqlite") as ledger:
        bot = bot_on(DuplicatingVenue(sim), clock, AsyncLedger(ledger), stop_at=900.0)
        await bot.run()
        await sim.connect()
        balances = await sim.fetch_balances()
        assert sim.fills_total > 0
        assert len(ledger.fills(profile.name)) == sim.fills_total
        assert bot.pnl.buy_count + bot.pnl.sell_count == sim.fills_total
        assert bot.inventory.base == balances.total("KAS")
        assert bot.inventory.quote == balances.total("USDT")


@pytest.mark.anyio
async def test_balance_drift_is_logged_stored_and_the_venue_wins(tmp_path: Path) -> None:
    clock = VirtualClock(0.0)
    profile = demo_profile()
    sim = SimVenue(profile.venue, profile.symbol, clock)  # type: ignore[arg-type]
    with Ledger(tmp_path / "l.sqlite") as ledger:
        bot = bot_on(
            DriftingVenue(sim), clock, AsyncLedger(ledger), stop_at=BALANCE_REFRESH_S * 2.5
        )
        await bot.run()
        drifts = ledger.balance_drifts(profile.name)
        assert drifts and all(d[1] == "KAS" and d[3] - d[2] == Decimal(100) for d in drifts[:1])
        assert bot.stats.balance_drifts >= 1
