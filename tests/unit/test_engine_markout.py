"""The engine feeds the markout: every accepted book's mid, every fill of this run.

Driven sans-I/O on a hand-made clock (seconds on the interval clock): the view, the stored
KPI record and the status row carry what the engine measured.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from kasmm.bot.commands import StoreKpis
from kasmm.bot.engine import Engine
from kasmm.bot.stats import BotState
from kasmm.bot.view import build_view
from kasmm.console.rows import kpi_lines
from kasmm.core.ids import ClientIdFactory
from kasmm.core.markout import HorizonMarkout, MarkoutParams
from kasmm.core.types import (
    Book,
    BookLevel,
    Fill,
    MarketRules,
    OpenOrder,
    Side,
    TradeId,
)
from kasmm.supervisor.kpi_fields import kpi_fields
from tests.support import demo_profile

D = Decimal
RULES = MarketRules(symbol="KAS/USDT", base="KAS", quote="USDT", tick=D("0.00001"), lot=D(1))


def book(bid: str, ask: str) -> Book:
    return Book((BookLevel(D(bid), D(10_000)),), (BookLevel(D(ask), D(10_000)),), 0.0)


def engine(markout: MarkoutParams | None = None) -> Engine:
    e = Engine(demo_profile(), venue_name="sim", run_tag="r0000001", markout=markout)
    e.connected(RULES)
    return e


def own_fill(e: Engine, side: Side, price: str, size: int, trade: str) -> Fill:
    """A fill of an order this run placed (resting in the engine, so the fill closes it)."""
    cid = e.ids.next()
    order = OpenOrder(cid, side, D(price), D(size), D(size), created_at=0.0)
    e.open_orders[cid] = order
    return Fill(TradeId(trade), cid, side, D(price), D(size), D(0), "USDT", 0.0)


def test_fills_are_marked_by_the_first_book_after_each_horizon() -> None:
    e = engine()
    e.on_book(book("0.07990", "0.08010"), 0.0)  # mid 0.08
    e.on_fill(own_fill(e, Side.BUY, "0.07990", 1000, "t1"), 0.0)
    e.on_fill(own_fill(e, Side.SELL, "0.08010", 500, "t2"), 0.4)
    e.on_book(book("0.07995", "0.08015"), 1.1)  # mid 0.08005: marks t1 at 1 s
    e.on_book(book("0.08000", "0.08020"), 1.4)  # mid 0.0801: marks t2 at 1 s
    short, long = e.markout.horizons
    # t1 buy 0.0799 -> 0.08005: +0.00015 x 1000; t2 sell 0.0801 -> 0.0801: 0
    assert (short.horizon_s, short.fills, short.quote) == (1.0, 2, D("0.15000"))
    assert short.mean_bps == pytest.approx((0.00015 / 0.0799 * 1e4 + 0.0) / 2)
    assert long.fills == 0
    e.on_book(book("0.07970", "0.07990"), 10.3)  # mid 0.0798: marks t1 at 10 s (not t2)
    assert e.markout.horizons[1].fills == 1
    assert e.markout.horizons[1].quote == D("-0.00010") * 1000
    e.on_book(book("0.07970", "0.07990"), 10.4)
    assert e.markout.horizons[1].fills == 2  # t2: 0.0801 - 0.0798 = +0.0003 x 500
    assert e.markout.horizons[1].quote == D("-0.1") + D("0.15")


def test_a_book_without_a_mid_marks_nothing_and_the_next_one_does() -> None:
    e = engine(MarkoutParams((1.0,)))
    e.on_book(book("0.07990", "0.08010"), 0.0)
    e.on_fill(own_fill(e, Side.BUY, "0.07990", 100, "t1"), 0.0)
    one_sided = Book((BookLevel(D("0.07990"), D(1)),), (), 0.0)
    assert e.on_book(one_sided, 2.0)
    assert e.markout.horizons[0].fills == 0
    e.on_book(book("0.07990", "0.08010"), 2.5)
    assert e.markout.horizons[0].fills == 1


def test_a_rejected_book_marks_nothing() -> None:
    e = engine(MarkoutParams((1.0,)))
    e.on_book(book("0.07990", "0.08010"), 0.0)
    e.on_fill(own_fill(e, Side.BUY, "0.07990", 100, "t1"), 0.0)
    bad = Book((BookLevel(D("0.07990"), D(-1)),), (BookLevel(D("0.09"), D(1)),), 0.0)
    assert not e.on_book(bad, 2.0)
    assert e.markout.horizons[0].fills == 0


def test_a_fill_of_an_earlier_run_is_not_marked() -> None:
    # Delivered late (at a start, say): it happened too long ago for its horizons.
    e = engine(MarkoutParams((1.0,)))
    e.on_book(book("0.07990", "0.08010"), 0.0)
    e.first_run = False
    earlier_run = ClientIdFactory(e.profile.client_id_prefix, "r0000000").next()
    old = Fill(TradeId("t0"), earlier_run, Side.BUY, D("0.0799"), D(10), D(0), "USDT", 0.0)
    assert e.is_own(old.client_id) and not e.ids.is_this_run(old.client_id)
    e.on_fill(old, 0.0)
    e.on_book(book("0.08990", "0.09010"), 5.0)
    assert e.stats.fills == 1 and e.markout.horizons[0].fills == 0


def test_without_now_a_fill_starts_when_the_book_last_changed() -> None:
    e = engine(MarkoutParams((1.0,)))
    e.on_book(book("0.07990", "0.08010"), 3.0)
    e.on_fill(own_fill(e, Side.BUY, "0.07990", 100, "t1"))
    assert e.markout.next_due == 4.0


def test_the_view_kpi_record_and_status_row_carry_the_markout() -> None:
    e = engine()
    e.on_book(book("0.07990", "0.08010"), 0.0)
    e.on_fill(own_fill(e, Side.SELL, "0.08010", 1000, "t1"), 0.0)
    e.on_book(book("0.08010", "0.08030"), 1.0)  # mid 0.0802: adverse for the sell
    view = build_view(e, BotState.QUOTING, 1.0, 0)
    assert view.markout == e.markout.horizons
    short = view.markout[0]
    assert short == HorizonMarkout(
        1.0, 1, short.bps_sum, short.size_bps_sum, D(1000), D("-0.10000")
    )
    assert short.weighted_bps == pytest.approx(-0.0001 / 0.0801 * 1e4)
    e.persist(1.0, 1001.0)
    (record,) = [c.record for c in e.take() if isinstance(c, StoreKpis)]
    assert record.markouts == e.markout.horizons
    kpis = kpi_fields(view)["kpis"]
    # kasmm top's detail pane: size-weighted bps, fills, the quote sum
    assert "markout 1s -12.5 bps (n 1, -0.10000)  10s -" in kpi_lines({"kpis": kpis})
    row = kpis["markout"]
    assert row == {
        "1s": {"fills": 1, "mean_bps": -12.48, "weighted_bps": -12.48, "quote": "-0.10000"},
        "10s": {"fills": 0, "mean_bps": None, "weighted_bps": None, "quote": "0"},
    }
