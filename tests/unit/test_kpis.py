"""Market-making KPIs: uptime, own spread and depth integrated over time; the bot reports them."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal

import pytest

from kasmm.backtest.driver import BacktestDriver
from kasmm.backtest.engine import backtest_profile, build_path
from kasmm.backtest.overrides import apply_overrides
from kasmm.bot.engine import RECENT_FILLS
from kasmm.core.grid import grid_of
from kasmm.core.kpis import (
    DEPTH_BANDS,
    NOTHING,
    KpiState,
    Picture,
    Snapshot,
    observe,
    snapshot,
    summarize,
)
from kasmm.core.types import ClientOrderId, MarketRules, OpenOrder, Side
from tests.support import demo_profile, path_spec

D = Decimal


def order(side: Side, price: str, size: str = "100") -> OpenOrder:
    return OpenOrder(
        client_id=ClientOrderId(f"k_{side}{price}"),
        side=side,
        price=D(price),
        size=D(size),
        remaining=D(size),
        created_at=0.0,
    )


def test_snapshot_measures_own_spread_and_depth_bands_around_the_mid() -> None:
    picture = snapshot(
        [order(Side.BUY, "0.0996"), order(Side.SELL, "0.1004"), order(Side.SELL, "0.1015")],
        D("0.1"),
    )
    assert picture.bid and picture.ask
    assert picture.spread_bps == pytest.approx(80.0)  # 0.0008 / 0.1
    # +-0.5 %: the two inner orders; +-1 %: the same; +-2 %: the 1.5 % ask too.
    assert picture.depth == pytest.approx((9.96 + 10.04, 9.96 + 10.04, 9.96 + 10.04 + 10.15))
    assert snapshot([order(Side.BUY, "1")], None) is NOTHING


def test_uptime_books_each_interval_to_the_picture_that_held_during_it() -> None:
    both = snapshot([order(Side.BUY, "0.099"), order(Side.SELL, "0.101")], D("0.1"))
    bid_only = snapshot([order(Side.BUY, "0.099")], D("0.1"))
    state = observe(KpiState(), 0.0, both)  # quoted both sides from t=0 ...
    state = observe(state, 30.0, bid_only)  # ... until 30, then only the bid ...
    state = observe(state, 40.0, NOTHING)  # ... until 40, then nothing ...
    state = observe(state, 100.0, both)  # ... until 100
    kpis = summarize(state, placed_size=D(400), filled_size=D(100), order_actions=12, fills=3)
    assert kpis.seconds == 100.0
    assert kpis.uptime_both == pytest.approx(0.30)
    assert kpis.uptime_bid == pytest.approx(0.40)
    assert kpis.uptime_ask == pytest.approx(0.30)
    assert kpis.avg_spread_bps == pytest.approx(200.0)  # only the time both were quoted
    assert kpis.avg_depth[0] == 0.0  # 1 % away: outside the 0.5 % band
    assert kpis.avg_depth[1] == pytest.approx((9.9 + 10.1) * 0.3 + 9.9 * 0.1)
    assert kpis.fill_ratio == 0.25 and kpis.order_to_trade == 4.0
    assert len(kpis.depth_now) == len(DEPTH_BANDS)


def test_no_time_no_ratios() -> None:
    kpis = summarize(KpiState(), placed_size=D(0), filled_size=D(0), order_actions=0, fills=0)
    assert kpis.uptime_both is None and kpis.avg_spread_bps is None
    assert kpis.fill_ratio is None and kpis.order_to_trade is None


def test_a_quoting_bot_reports_its_kpis_in_its_view() -> None:
    driver = build_path(path_spec(demo_profile(), 120.0))
    driver.run()
    kpis = driver.view().kpis
    assert kpis is not None
    assert kpis.seconds == pytest.approx(120.0, abs=1.0)
    # The demo quotes both sides nearly all the time, inside a few tens of bps.
    assert kpis.uptime_both is not None and kpis.uptime_both > 0.9
    assert kpis.avg_spread_bps is not None and 5 < kpis.avg_spread_bps < 100
    counters = driver.view().counters
    assert kpis.order_to_trade is not None
    fills = driver.view().pnl.buy_count + driver.view().pnl.sell_count
    assert kpis.order_to_trade == (counters.orders_placed + counters.orders_cancelled) / fills
    # The view also lists this run's latest fills, newest last, at most RECENT_FILLS.
    recent = driver.view().recent_fills
    assert len(recent) == min(RECENT_FILLS, fills) and recent
    assert [f.ts for f in recent] == sorted(f.ts for f in recent)


def run_demo(overrides: dict[str, object], horizon: float) -> BacktestDriver:
    profile = apply_overrides(backtest_profile(demo_profile(), "random_walk"), overrides)
    driver = build_path(path_spec(profile, horizon))
    driver.run()
    return driver


def test_an_obligation_the_bot_cannot_meet_is_breached_after_a_whole_window() -> None:
    # The demo quotes tens of bps wide: a 1 bps spread obligation is never met.
    driver = run_demo({"obligations": {"max_spread_bps": 1, "window_s": 60}}, 150.0)
    status = driver.view().obligation
    assert status is not None
    assert status.share == 0.0 and status.required == 0.95 and status.breached


def test_an_obligation_the_bot_meets_is_not_breached() -> None:
    driver = run_demo(
        {
            "obligations": {
                "max_spread_bps": 500,
                "min_depth": {"band_pct": 2, "quote": 50},
                "min_uptime_pct": 80,
                "window_s": 60,
            }
        },
        150.0,
    )
    status = driver.view().obligation
    assert status is not None and status.share is not None
    assert status.share > 0.9 and not status.breached
    assert status.observed_s >= 60


def _exact(picture: Snapshot) -> tuple[object, ...]:
    """Every field, floats bit for bit (``==`` would let 0.0 == -0.0 pass)."""
    return (picture.bid, picture.ask, repr(picture.spread_bps), tuple(map(repr, picture.depth)))


def test_picture_is_snapshot_whatever_changes_between_calls() -> None:
    """The engine's cached picture returns exactly what snapshot() computes, on random orders
    and mids, with the orders kept, partly replaced or reordered, and prices on band edges."""
    rng = random.Random(5)
    mids = [D("0.1"), D("0.08"), D("0.080096"), D("100"), D("0.0800005"), D("123.456789")]
    picture = Picture()
    orders: list[OpenOrder] = []
    mid = mids[0]
    for step in range(3000):
        roll = rng.random()
        if roll < 0.3:
            mid = rng.choice(mids) + D(rng.randint(-50, 50)) * D("0.000001")
        elif roll < 0.5 or not orders:
            side = rng.choice((Side.BUY, Side.SELL))
            if rng.random() < 0.3:  # exactly on a band's edge (as snapshot() computes it)
                band = rng.choice(DEPTH_BANDS)
                price = mid - mid * band if side is Side.BUY else mid + mid * band
            else:
                price = mid * (1 + D(rng.randint(-300, 300)) / 10000)
            size = D(rng.choice(("1500", "1500.00", "1", "0.01", str(rng.randint(1, 5000)))))
            left = size if rng.random() < 0.7 else size / rng.choice((2, 3, 7))
            new = OpenOrder(ClientOrderId(f"k_{step}"), side, price, size, left, 0.0)
            if orders and rng.random() < 0.5:
                orders[rng.randrange(len(orders))] = new
            else:
                orders.append(new)
        elif roll < 0.6:
            orders.pop(rng.randrange(len(orders)))
        elif roll < 0.7:
            rng.shuffle(orders)
        expected = snapshot(orders, mid)
        # Every other call hands over the mid's float (Book.mid_float), as the engine does.
        mid_float = float(mid) if step % 2 else None
        assert _exact(picture.of(orders, mid, mid_float)) == _exact(expected)
    assert picture.of(orders, None) is NOTHING and picture.of(orders, D("NaN")) is NOTHING


@pytest.mark.parametrize("mid", [D("1e-320"), D("1e-400"), D("1e310"), D("5E-324")])
def test_picture_is_snapshot_where_floats_lose_precision(mid: Decimal) -> None:
    orders = [
        OpenOrder(ClientOrderId("k_b"), Side.BUY, mid * D("0.995"), D(1), D(1), 0.0),
        OpenOrder(ClientOrderId("k_a"), Side.SELL, mid * D("1.01"), D(1), D(1), 0.0),
        OpenOrder(ClientOrderId("k_c"), Side.SELL, mid * D("1.03"), D(1), D(1), 0.0),
    ]
    try:
        expected = _exact(snapshot(orders, mid))
    except ArithmeticError as exc:  # 1e-400 is 0.0 as a float: both divide by it
        with pytest.raises(type(exc)):
            Picture().of(orders, mid)
    else:
        assert _exact(Picture().of(orders, mid)) == expected


def test_picture_reuses_its_answer_while_orders_and_mid_stay() -> None:
    picture = Picture()
    orders = [order(Side.BUY, "0.0996"), order(Side.SELL, "0.1004")]
    first = picture.of(orders, D("0.1"))
    assert picture.of(list(orders), D("0.100")) is first  # the same orders, an equal mid
    assert picture.of(orders, D("0.1001")) is not first


def test_picture_of_orders_on_grids_is_snapshot() -> None:
    """Orders on a grid take their float price by tick count: still snapshot() exactly, with
    prices of any exponent, grids that change, and more tick counts than are remembered."""
    rng = random.Random(8)
    rules = [
        MarketRules(symbol="KAS/USDT", base="KAS", quote="USDT", tick=D(tick), lot=D("0.01"))
        for tick in ("0.000001", "0.0001", "0.5")
    ]
    grids = [grid_of(r) for r in rules]
    picture = Picture()
    orders: list[OpenOrder] = []
    for step in range(4000):
        grid = grids[0] if step < 3000 else rng.choice(grids)
        mid_ticks = rng.randint(70_000, 90_000) if step < 2000 else rng.randint(80_000, 80_050)
        mid = grid.price(mid_ticks)
        for _ in range(rng.randint(1, 3)):
            side = rng.choice((Side.BUY, Side.SELL))
            ticks = mid_ticks + (-1 if side is Side.BUY else 1) * rng.randint(1, 2000)
            price = grid.price(ticks)
            if rng.random() < 0.3:
                price = D(f"{price}000")  # an equal price with another exponent
            size = D(rng.randint(1, 5000))
            new = OpenOrder(ClientOrderId(f"k_{step}"), side, price, size, size, 0.0)
            new = replace(new, ticks=ticks, grid=grid)
            if orders and rng.random() < 0.6:
                orders[rng.randrange(len(orders))] = new
            else:
                orders.append(new)
        if len(orders) > 8:
            orders.pop(0)
        expected = snapshot(orders, mid)
        assert _exact(picture.of(orders, mid, float(mid))) == _exact(expected)


@pytest.mark.parametrize(
    "tick", ["0.000001", "0.00025", "0.5", "1", "7", "1E-22", "1E-23", "0.3333333333333333333"]
)
def test_a_price_on_a_grid_converts_as_float_does(tick: str) -> None:
    rng = random.Random(tick)
    grid = grid_of(
        MarketRules(symbol="KAS/USDT", base="KAS", quote="USDT", tick=D(tick), lot=D("0.01"))
    )
    picture = Picture()
    for _ in range(3000):
        ticks = rng.choice((rng.randint(1, 10**6), rng.randint(1, 2**60), 2**53 // 7 + 1))
        new = OpenOrder(ClientOrderId("k_1"), Side.BUY, grid.price(ticks), D(1), D(1), 0.0)
        new = replace(new, ticks=ticks, grid=grid)
        assert repr(picture._float_price(new)) == repr(float(new.price))
