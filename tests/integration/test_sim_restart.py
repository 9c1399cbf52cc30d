"""A sim profile restarted on its ledger: every fill of every run is stored, balances carry on.

Each run builds a new venue, as the supervisor does on a restart, a reload or a crash-restart.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from kasmm.bot import Bot
from kasmm.clock import VirtualClock
from kasmm.config.schema import Profile, SimVenueConfig
from kasmm.core.types import Balances
from kasmm.limiter import TokenBucket
from kasmm.store import AsyncLedger, Ledger
from kasmm.store.balances import settle_fills
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.sim import SimVenue
from tests.support import demo_profile

#: Virtual seconds per run, and the gap between the runs (the restart).
RUN_S = 600.0
GAP_S = 100.0


class FirstBalances:
    """Passes everything through to ``inner``; remembers the first balances the bot read."""

    def __init__(self, inner: SimVenue) -> None:
        self.inner = inner
        self.name = inner.name
        self.first: Balances | None = None

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    async def fetch_balances(self) -> Balances:
        balances = await self.inner.fetch_balances()
        if self.first is None:
            self.first = balances
        return balances


async def run_once(
    profile: Profile, ledger: AsyncLedger, start: float
) -> tuple[Bot, SimVenue, FirstBalances]:
    """One run of ``profile`` from virtual time ``start``, on a venue built for it."""
    assert isinstance(profile.venue, SimVenueConfig)
    clock = VirtualClock(start)
    sim = SimVenue(profile.venue, profile.symbol, clock)
    probe = FirstBalances(sim)
    venue = RateLimitedVenue(probe, TokenBucket(1000, 1000, clock))
    bot = Bot(profile, venue, clock=clock, ledger=ledger, stop_at=start + RUN_S)
    await bot.run()
    await sim.connect()  # the bot closed it on the way out; reopen to inspect it
    return bot, sim, probe


def totals(balances: Balances) -> dict[str, Decimal]:
    return {asset: balances.total(asset) for asset in balances.assets}


@pytest.mark.anyio
async def test_second_run_stores_every_fill_and_resumes_the_balances(tmp_path: Path) -> None:
    profile = demo_profile()  # same seed in both runs: the same market, the same fills
    assert isinstance(profile.venue, SimVenueConfig)
    configured = {asset: Decimal(v) for asset, v in profile.venue.balances.items()}
    name, base, quote = profile.name, "KAS", "USDT"
    with Ledger(tmp_path / "kasmm.sqlite") as ledger:
        journal = AsyncLedger(ledger)
        _, sim1, probe1 = await run_once(profile, journal, 1_000_000.0)
        assert sim1.fills_total > 5
        assert probe1.first is not None and totals(probe1.first) == configured
        run1_fills = ledger.fills(name)
        assert len(run1_fills) == sim1.fills_total
        after_run1 = totals(await sim1.fetch_balances())
        assert after_run1 == settle_fills(configured, run1_fills, base, quote) != configured

        with capture_logs() as logs:
            bot2, sim2, probe2 = await run_once(profile, journal, 1_000_000.0 + RUN_S + GAP_S)

        # Every fill of the second run is stored (none taken for a duplicate of the first's).
        assert sim2.fills_total > 5
        assert not [e for e in logs if e["event"] == "fill_duplicate_ignored"]
        assert len(ledger.fills(name)) == sim1.fills_total + sim2.fills_total
        assert bot2.pnl.buy_count + bot2.pnl.sell_count == sim1.fills_total + sim2.fills_total

        # The restart started from configured + run 1's fills, which the ledger agrees with.
        assert probe2.first is not None and totals(probe2.first) == after_run1
        (restored,) = [e for e in logs if e["event"] == "balances_restored"]
        assert restored["balances"] == {a: str(v) for a, v in sorted(after_run1.items())}
        opening = ledger.opening(name)
        assert opening is not None and opening[0] == configured[base]
        assert not ledger.balance_drifts(name)

        # And at the end: the bot's inventory is the venue's and the ledger's position.
        end = totals(await sim2.fetch_balances())
        assert (bot2.inventory.base, bot2.inventory.quote) == (end[base], end[quote])
        assert end == settle_fills(configured, ledger.fills(name), base, quote)
        assert ledger.pnl_state(name, quote, opening).position == end[base] == bot2.pnl.position
