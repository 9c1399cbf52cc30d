"""Inventory rebalance by order end to end: the live bot's IOC through the venue stack and the
ledger, and backtests where rebalance orders bring a lopsided account back into its band."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from kasmm.backtest import run_backtest
from kasmm.backtest.driver import BacktestDriver, Request
from kasmm.backtest.engine import build_path
from kasmm.backtest.plumbing import LEVELS
from kasmm.bot import Bot
from kasmm.bot.rebalancer import REBALANCE_LEVEL
from kasmm.clock import VirtualClock
from kasmm.config.schema import Profile, SimVenueConfig
from kasmm.core.quoting import QuoteDecision
from kasmm.core.types import OrderRequest, Side, VenueEvent
from kasmm.limiter import TokenBucket
from kasmm.store import AsyncLedger, Ledger
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.sim import SimVenue
from tests.support import demo_profile, path_spec

#: Everything in KAS: a base share of 0.99 against a band of [0.2, 0.8].
LOPSIDED: dict[str, Any] = {"balances": {"KAS": 100_000, "USDT": 100}}
#: A thin taker flow (one market order in 5 s): skew alone takes minutes to sell the excess.
THIN = {"market": {"taker_rate_per_s": 0.2, "taker_size_mean": 1000}}
MAX_SIZE = Decimal(5000)
INTERVAL_S = 20.0
MAX_SHARE = 0.8


def lopsided(rebalance: dict[str, Any] | None) -> Profile:
    """The demo profile all in KAS on a thin market; no reduce-only rule (a post-only rebalance
    order rests only while trading is fully allowed)."""
    overrides: dict[str, Any] = {
        "venue": {**LOPSIDED, **THIN},
        "kill_switch": {"max_inventory_deviation": None},
    }
    if rebalance is not None:
        overrides["inventory"] = {"rebalance": rebalance}
    return demo_profile(**overrides)


def rebalance_of(order: str) -> dict[str, Any]:
    return {
        "order": order,
        "max_size": int(MAX_SIZE),
        "max_slippage_bps": 20,
        "min_interval_s": INTERVAL_S,
    }


# --- the live driver ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_live_ioc_rebalance_executes_and_its_fills_are_in_the_ledger(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(0.0)
    profile = lopsided(rebalance_of("ioc"))
    assert isinstance(profile.venue, SimVenueConfig)
    sim = SimVenue(profile.venue, profile.symbol, clock)
    with Ledger(tmp_path / "l.sqlite") as ledger:
        limiter = TokenBucket(1000, 1000, clock)
        bot = Bot(
            profile,
            RateLimitedVenue(sim, limiter),
            clock=clock,
            ledger=AsyncLedger(ledger),
            stop_at=50.0,
        )
        await bot.run()
        with sqlite3.connect(tmp_path / "l.sqlite") as conn:
            rows = conn.execute(
                "SELECT client_id, side, size, status FROM orders WHERE profile = ? AND level = ?"
                " ORDER BY created_ts",
                (profile.name, REBALANCE_LEVEL),
            ).fetchall()
        fills = ledger.fills(profile.name)
    # At 0, 20 and 40 s: each a sell of max_size, filled whole (the book is deep enough within
    # the slippage cap), its fills stored against its client id.
    assert [(side, Decimal(size), status) for _, side, size, status in rows] == [
        ("sell", MAX_SIZE, "filled")
    ] * 3
    for cid, *_ in rows:
        mine = [f for f in fills if f.client_id == cid]
        assert mine and all(not f.is_maker and f.side is Side.SELL for f in mine)
        assert sum(f.size for f in mine) == MAX_SIZE
    view = bot.view()
    assert view.rebalance is not None
    assert dict(view.rebalance.orders) == {"post_only": 0, "ioc": 3}
    assert view.rebalance.last is not None and view.rebalance.last.status == "filled"
    await sim.connect()  # the bot's stop closed it
    assert bot.inventory.base == (await sim.fetch_balances()).total("KAS")


# --- backtests ------------------------------------------------------------------------------


class Watch:
    """Records a path: when the share first came back into the band, the rebalance orders."""

    def __init__(self) -> None:
        self.in_band_at: float | None = None
        self.iocs: list[tuple[float, OrderRequest]] = []
        self.posts: list[tuple[float, OrderRequest]] = []

    def request(self, request: Request) -> None:
        if request.method == "place_ioc":
            self.iocs.append((request.at, request.arg))
        elif request.method == "place_orders":
            for order in request.arg:
                if not order.is_ioc and request.result is not None:
                    self.posts.append((request.at, order))

    def handled(self, at: float, event: VenueEvent, decision: QuoteDecision | None) -> None:
        share = None if decision is None else decision.inventory_share
        if self.in_band_at is None and share is not None and share <= MAX_SHARE:
            self.in_band_at = at


def watched(
    rebalance: dict[str, Any] | None, horizon: float = 300.0, log_level: int = LEVELS["error"]
) -> tuple[Watch, BacktestDriver]:
    watch = Watch()
    spec = replace(path_spec(lopsided(rebalance), horizon), log_level=log_level)
    driver = build_path(spec, observer=watch)
    driver.run()
    return watch, driver


def test_ioc_rebalance_brings_the_share_into_its_band_faster_than_skew_alone() -> None:
    skew, _ = watched(None)
    ioc, driver = watched(rebalance_of("ioc"))
    assert skew.in_band_at is not None and ioc.in_band_at is not None
    assert ioc.in_band_at < skew.in_band_at / 2
    # Bounded: max_size each, min_interval_s apart, and none once the share is back in band.
    times = [at for at, _ in ioc.iocs]
    assert len(times) >= 2 and all(r.size <= MAX_SIZE for _, r in ioc.iocs)
    assert all(b - a >= INTERVAL_S for a, b in pairwise(times))
    assert all(at <= ioc.in_band_at for at in times)
    status = driver.view().rebalance
    assert status is not None and status.orders == (("post_only", 0), ("ioc", len(times)))


def test_post_only_rebalance_rests_one_order_at_a_time_repriced_each_interval() -> None:
    skew, _ = watched(None)
    with capture_logs() as logs:
        post, driver = watched(rebalance_of("post_only"), log_level=LEVELS["info"])
    assert post.in_band_at is not None and skew.in_band_at is not None
    assert post.in_band_at <= skew.in_band_at
    orders = [e for e in logs if e["event"] == "rebalance_order"]
    done = [e for e in logs if e["event"] == "rebalance_done"]
    assert len(orders) >= 2 and len(done) == len(orders)  # each ended before the next
    assert all(e["order"] == "post_only" and e["side"] == "sell" for e in orders)
    assert all(Decimal(e["size"]) <= MAX_SIZE for e in orders)
    # Each placed as a maker at the price logged, min_interval_s after the one before.
    times: list[float] = []
    pending = [(Decimal(e["price"]), Decimal(e["size"])) for e in orders]
    for at, request in post.posts:
        if pending and (request.price, request.size) == pending[0]:
            assert request.post_only and request.side is Side.SELL
            times.append(at)
            pending.pop(0)
    assert not pending
    assert all(b - a >= INTERVAL_S for a, b in pairwise(times))
    status = driver.view().rebalance
    assert status is not None and status.orders == (("post_only", len(orders)), ("ioc", 0))
    assert not driver.engine.held  # nothing left held after the stop


def test_run_backtest_with_rebalance_ends_closer_to_the_target() -> None:
    off = run_backtest(lopsided(None), paths=1, horizon_s=60, workers=1)
    on = run_backtest(lopsided(rebalance_of("ioc")), paths=1, horizon_s=60, workers=1)
    base_off = off.run.paths[0].final_inventory
    base_on = on.run.paths[0].final_inventory
    # three IOCs of max_size (0, 20 and 40 s) sold on top of what the quotes sold
    assert base_on < base_off - 10_000
