"""The engine's cumulative KPI counters go to the ledger with each equity snapshot.

Driven sans-I/O on a hand-made clock: a bid and an ask 20 bps apart rest for 10 s, then only
the bid for 10 s; the obligation (spread <= 50 bps) holds exactly while both sides are quoted.
"""

from __future__ import annotations

from decimal import Decimal

from kasmm.bot.commands import StoreEquity, StoreKpis
from kasmm.bot.engine import Engine
from kasmm.core.types import Book, BookLevel, ClientOrderId, MarketRules, OpenOrder, Side
from kasmm.store import KpiRecord
from tests.support import demo_profile

D = Decimal
RULES = MarketRules(symbol="KAS/USDT", base="KAS", quote="USDT", tick=D("0.00001"), lot=D(1))
BOOK = Book((BookLevel(D("0.0799"), D(10_000)),), (BookLevel(D("0.0801"), D(10_000)),), 0.0)


def engine(obligations: dict[str, object] | None) -> Engine:
    profile = demo_profile() if obligations is None else demo_profile(obligations=obligations)
    e = Engine(profile, venue_name="sim", run_tag="r0000001")
    e.connected(RULES)
    e.book = BOOK  # mid 0.08
    return e


def rest(e: Engine, cid: str, side: Side, price: str, size: int) -> None:
    order = OpenOrder(ClientOrderId(cid), side, D(price), D(size), D(size), created_at=0.0)
    e.open_orders[order.client_id] = order


def stored(e: Engine) -> list[KpiRecord]:
    commands = e.take()
    kpis = [c.record for c in commands if isinstance(c, StoreKpis)]
    # One with every equity snapshot, never without one.
    assert len(kpis) == sum(isinstance(c, StoreEquity) for c in commands)
    return kpis


def test_kpi_counters_are_stored_with_each_equity_snapshot() -> None:
    e = engine({"max_spread_bps": 50, "min_uptime_pct": 90, "window_s": 60})
    rest(e, "b", Side.BUY, "0.07992", 1000)  # 10 bps below the mid: inside 0.5 %
    rest(e, "a", Side.SELL, "0.08008", 1000)
    e.persist(0.0, 1000.0)
    (first,) = stored(e)
    assert (first.ts, first.run_id, first.total_s, first.met_s, first.observed_s) == (
        1000.0,
        "r0000001",
        0.0,
        0.0,
        0.0,
    )
    e.persist(5.0, 1005.0)
    assert stored(e) == []  # the next snapshot is due 10 s after the last
    e.persist(10.0, 1010.0)
    (second,) = stored(e)
    del e.open_orders[ClientOrderId("a")]  # the ask filled or was cancelled in that round
    e.persist(10.0, 1010.0)  # the round's picture; no time passed, no snapshot due
    assert stored(e) == []
    e.persist(20.0, 1020.0)
    (third,) = stored(e)

    assert (second.total_s, second.both_s, second.bid_s, second.ask_s) == (10.0, 10.0, 10.0, 10.0)
    spread_bps = (0.08008 - 0.07992) / 0.08 * 1e4  # 20 bps
    assert abs(second.spread_bps_s - 10 * spread_bps) < 1e-9
    depth = 0.07992 * 1000 + 0.08008 * 1000  # 160 USDT, inside every band
    assert all(abs(d - 10 * depth) < 1e-9 for d in second.depth_s)
    assert (second.met_s, second.observed_s, second.required, second.breached) == (
        10.0,
        10.0,
        0.9,
        False,
    )
    # Then 10 s with the bid alone: not both sides, not met; the bid's depth only.
    assert (third.total_s, third.both_s, third.bid_s, third.ask_s) == (20.0, 10.0, 20.0, 10.0)
    assert abs(third.spread_bps_s - second.spread_bps_s) < 1e-12
    assert all(abs(d - (10 * depth + 10 * 79.92)) < 1e-9 for d in third.depth_s)
    assert (third.met_s, third.observed_s) == (10.0, 20.0)
    assert third.run_id == "r0000001" and third.ts == 1020.0


def test_without_obligations_the_obligation_columns_stay_empty() -> None:
    e = engine(None)
    rest(e, "b", Side.BUY, "0.07992", 1000)
    e.persist(0.0, 1000.0)
    e.persist(10.0, 1010.0)
    records = stored(e)
    assert [r.total_s for r in records] == [0.0, 10.0]
    last = records[-1]
    assert (last.bid_s, last.ask_s, last.both_s) == (10.0, 0.0, 0.0)
    assert (last.met_s, last.observed_s, last.required, last.breached) == (None,) * 4
