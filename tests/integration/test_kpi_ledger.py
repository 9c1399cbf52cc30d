"""A bot with a ledger stores its KPI counters with every equity snapshot, under its run id.

Two runs of the demo profile on one ledger (virtual time, 120 s each): each run's rows are
cumulative from zero under its own run id, one per equity snapshot, and the last one agrees
with what the bot's view showed when it stopped (up to the snapshot interval).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kasmm.bot import Bot
from kasmm.clock import VirtualClock
from kasmm.limiter import TokenBucket
from kasmm.store import AsyncLedger, Ledger
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.sim import SimVenue
from tests.support import demo_profile


@pytest.mark.anyio
async def test_each_run_stores_cumulative_kpis_under_its_own_run_id(tmp_path: Path) -> None:
    clock = VirtualClock(0.0)
    profile = demo_profile()
    assert profile.venue.type == "sim"
    runs: list[tuple[str, float]] = []
    with Ledger(tmp_path / "l.sqlite") as ledger:
        for stop_at in (120.0, 240.0):
            sim = SimVenue(profile.venue, profile.symbol, clock)
            limiter = TokenBucket(1000, 1000, clock)
            bot = Bot(
                profile,
                RateLimitedVenue(sim, limiter),
                clock=clock,
                ledger=AsyncLedger(ledger),
                stop_at=stop_at,
            )
            await bot.run()
            kpis = bot.view().kpis
            assert kpis is not None
            runs.append((bot.run_tag, kpis.seconds))
        records = ledger.kpi_series(profile.name)
        equity = ledger.equity_series(profile.name)

    assert len(records) == len(equity) >= 20
    assert [r.ts for r in records] == [s.ts for s in equity]
    (first_run, _), (second_run, _) = runs
    assert first_run != second_run
    assert {r.run_id for r in records} == {first_run, second_run}
    for run_id, seconds in runs:
        rows = [r for r in records if r.run_id == run_id]
        assert rows[0].total_s == 0.0  # cumulative from the bot's start
        totals = [r.total_s for r in rows]
        assert totals == sorted(totals)
        assert seconds - 10.5 < totals[-1] <= seconds
        last = rows[-1]
        assert 0.9 * last.total_s < last.both_s <= last.bid_s <= last.total_s
        assert last.order_actions > 0 and last.placed_size > 0
        assert last.met_s is None  # the demo profile has no obligations
    # The second run's rows come after the first's, and start from zero again.
    boundary = next(i for i, r in enumerate(records) if r.run_id == second_run)
    assert records[boundary - 1].total_s > records[boundary].total_s == 0.0
