"""Ledger: orders and their history, exactly-once fills, PnL from stored fills, equity, modes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.core.pnl import PnlState, apply_fill
from kasmm.core.types import ClientOrderId, Fill, Side, TradeId, VenueOrderId
from kasmm.store import (
    DuplicateOrderError,
    EquitySnapshot,
    Ledger,
    ModeChange,
    OrderStatus,
    UnknownOrderError,
    local_midnight,
)

D = Decimal
QUOTE = "USDT"
P = "kas_usdt"


def fill(n: int, side: Side, price: str, size: str, fee: str = "0", fee_asset: str = QUOTE) -> Fill:
    return Fill(
        trade_id=TradeId(f"t{n}"),
        client_id=ClientOrderId(f"c{n}"),
        side=side,
        price=D(price),
        size=D(size),
        fee=D(fee),
        fee_asset=fee_asset,
        ts=1000.0 + n,
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "state" / "kasmm.sqlite") as opened:
        yield opened


# --- orders ---------------------------------------------------------------------------------


def test_order_lifecycle_appends_events_and_tracks_open_orders(ledger: Ledger) -> None:
    a, b, c = ClientOrderId("a"), ClientOrderId("b"), ClientOrderId("c")
    ledger.record_order(P, a, Side.BUY, D("0.10"), D("100"), 1.0, level=0)
    ledger.record_order(P, b, Side.SELL, D("0.11"), D("100"), 1.0, level=1)
    ledger.record_order(P, c, Side.SELL, D("0.12"), D("100"), 1.0, level=2)
    assert ledger.open_orders(P) == [a, b, c]

    ledger.record_order_status(P, a, "open", 2.0, venue_id=VenueOrderId("v-a"))
    ledger.record_order_status(P, a, OrderStatus.PARTIALLY_FILLED, 3.0)
    ledger.record_order_status(P, b, "rejected", 2.0, reason="post_only")
    ledger.record_order_status(P, c, "unknown", 2.0, reason="timeout")
    assert ledger.open_orders(P) == [a, c]

    ledger.record_order_status(P, a, "filled", 4.0)
    ledger.record_order_status(P, c, "cancelled", 5.0)
    assert ledger.open_orders(P) == []
    history = ledger.order_history(P, a)
    assert [(e.ts, e.status) for e in history] == [
        (1.0, OrderStatus.NEW),
        (2.0, OrderStatus.OPEN),
        (3.0, OrderStatus.PARTIALLY_FILLED),
        (4.0, OrderStatus.FILLED),
    ]
    assert history[1].venue_id == "v-a"
    assert ledger.order_history(P, b)[-1].reason == "post_only"


def test_open_orders_are_per_profile(ledger: Ledger) -> None:
    ledger.record_order("one", ClientOrderId("x"), Side.BUY, D(1), D(1), 1.0)
    ledger.record_order("two", ClientOrderId("x"), Side.BUY, D(1), D(1), 1.0)
    ledger.record_order_status("one", ClientOrderId("x"), "cancelled", 2.0)
    assert ledger.open_orders("one") == []
    assert ledger.open_orders("two") == [ClientOrderId("x")]


def test_order_errors_leave_nothing_behind(ledger: Ledger) -> None:
    cid = ClientOrderId("a")
    ledger.record_order(P, cid, Side.BUY, D(1), D(1), 1.0)
    with pytest.raises(DuplicateOrderError):
        ledger.record_order(P, cid, Side.SELL, D(2), D(2), 2.0)
    with pytest.raises(UnknownOrderError):
        ledger.record_order_status(P, ClientOrderId("never"), "open", 2.0)
    with pytest.raises(ValueError, match="bogus"):
        ledger.record_order_status(P, cid, "bogus", 2.0)
    assert [e.status for e in ledger.order_history(P, cid)] == [OrderStatus.NEW]
    assert ledger.order_history(P, ClientOrderId("never")) == []


# --- fills and PnL --------------------------------------------------------------------------


def test_duplicate_fill_is_stored_once_and_not_double_counted(ledger: Ledger) -> None:
    first = fill(1, Side.BUY, "1.00", "100", "0.1")
    assert ledger.record_fill(P, first) is True
    assert ledger.record_fill(P, first) is False
    assert ledger.fills(P) == [first]
    state = ledger.pnl_state(P, QUOTE, None)
    assert (state.position, state.fees, state.buy_count) == (D(100), D("0.1"), 1)


def test_same_trade_id_in_another_profile_is_another_fill(ledger: Ledger) -> None:
    f = fill(1, Side.BUY, "1", "1")
    assert ledger.record_fill("one", f) is True
    assert ledger.record_fill("two", f) is True
    assert ledger.fills("one") == ledger.fills("two") == [f]


def test_pnl_matches_hand_computed_sequence(ledger: Ledger) -> None:
    for f in (
        fill(1, Side.BUY, "1.00", "100", "0.1"),
        fill(2, Side.BUY, "1.10", "100", "0.1"),
        fill(3, Side.SELL, "1.20", "150", "0.1"),
    ):
        assert ledger.record_fill(P, f)
    state = ledger.pnl_state(P, QUOTE, None)
    # avg = (100 * 1.00 + 100 * 1.10) / 200 = 1.05; realized = (1.20 - 1.05) * 150 = 22.5
    assert state.avg_cost == D("1.05")
    assert state.realized == D("22.5")
    assert state.position == D(50)
    assert state.fees == D("0.3")
    # net at 1.20: 22.5 + 50 * (1.20 - 1.05) - 0.3
    assert state.net(D("1.20")) == D("29.7")


def test_opening_is_stored_once_and_carried_into_pnl(ledger: Ledger) -> None:
    assert ledger.opening(P) is None
    assert ledger.set_opening(P, D(1000), D("1.00"), 5.0) is True
    assert ledger.set_opening(P, D(7), D("9.99"), 6.0) is False  # a restart keeps the first
    assert ledger.opening(P) == (D(1000), D("1.00"))
    ledger.record_fill(P, fill(1, Side.BUY, "1.10", "1000"))
    ledger.record_fill(P, fill(2, Side.SELL, "1.20", "500"))
    state = ledger.pnl_state(P, QUOTE, ledger.opening(P))
    # avg = (1000 * 1.00 + 1000 * 1.10) / 2000 = 1.05; realized = (1.20 - 1.05) * 500 = 75
    assert (state.position, state.avg_cost, state.realized) == (D(1500), D("1.05"), D(75))


def test_pnl_state_equals_folding_the_same_fills_in_memory(ledger: Ledger) -> None:
    specs = [
        (Side.BUY, "0.1031", "250", "0.02"),
        (Side.SELL, "0.1040", "400", "0.03"),  # crosses to short
        (Side.BUY, "0.1022", "300", "1.5"),
        (Side.SELL, "0.1027", "75", "0"),
    ]
    expected = PnlState.opening(D(100), D("0.1025"))
    for n, (side, price, size, fee) in enumerate(specs):
        f = fill(n, side, price, size, fee, "KAS" if n == 2 else QUOTE)
        expected = apply_fill(expected, f, QUOTE)
        ledger.record_fill(P, f)
    assert ledger.pnl_state(P, QUOTE, (D(100), D("0.1025"))) == expected


def test_fills_keep_insertion_order_and_filter_by_time(ledger: Ledger) -> None:
    late, early = fill(9, Side.SELL, "2", "1"), fill(1, Side.BUY, "1", "1")
    ledger.record_fill(P, late)
    ledger.record_fill(P, early)
    assert ledger.fills(P) == [late, early]
    assert ledger.fills(P, since=1005.0) == [late]
    assert ledger.fills("other") == []


@pytest.mark.parametrize(
    "text", ["0.000001234", "1.10", "1E-18", "-0.5", "0", "98765432109876543210.0123456789"]
)
def test_decimal_round_trip_is_exact(ledger: Ledger, text: str) -> None:
    f = Fill(
        trade_id=TradeId("t"),
        client_id=ClientOrderId("c"),
        side=Side.BUY,
        price=D(text),
        size=D(text),
        fee=D(text),
        fee_asset=QUOTE,
        ts=1.5,
        remaining=D(text),
        is_maker=False,
        venue_id=VenueOrderId("v"),
    )
    ledger.record_fill(P, f)
    ledger.record_equity(P, 1.0, D(text), D(text), D(text), D(text))
    (back,) = ledger.fills(P)
    assert back == f
    assert str(back.price) == text  # same digits and exponent, not just equal value
    (snap,) = ledger.equity_series(P)
    assert [str(v) for v in (snap.equity, snap.mid, snap.base, snap.quote)] == [text] * 4
    with closing(sqlite3.connect(ledger.path)) as raw:
        assert raw.execute("SELECT typeof(price) FROM fills").fetchone() == ("text",)


def test_money_must_be_a_finite_decimal(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="finite"):
        ledger.record_equity(P, 1.0, D("NaN"), D(1), D(1), D(1))
    with pytest.raises(TypeError, match="Decimal"):
        ledger.record_equity(P, 1.0, 1.5, D(1), D(1), D(1))  # type: ignore[arg-type]
    assert ledger.equity_series(P) == []


# --- equity ---------------------------------------------------------------------------------


def test_peak_equity_and_series(ledger: Ledger) -> None:
    assert ledger.peak_equity(P) is None
    for ts, equity in ((1.0, "1000"), (2.0, "1050.5"), (3.0, "1020")):
        ledger.record_equity(P, ts, D(equity), D("0.1"), D(1000), D(equity) - 100)
    assert ledger.peak_equity(P) == D("1050.5")
    assert ledger.peak_equity("other") is None
    assert [s.equity for s in ledger.equity_series(P, since=2.0)] == [D("1050.5"), D(1020)]
    assert ledger.equity_series(P)[0] == EquitySnapshot(1.0, D(1000), D("0.1"), D(1000), D(900))


def test_daily_pnl_across_a_day_boundary(ledger: Ledger) -> None:
    #  ts (UTC)            Berlin (UTC+1)     equity  base  quote
    #  01-14 21:00         01-14 22:00          990    90    891
    #  01-14 22:50         01-14 23:50         1000   100    900
    #  01-14 23:30         01-15 00:30         1010   100    900
    #  01-15 09:00         01-15 10:00         1020   200    790
    rows = [
        (utc(2024, 1, 14, 21), "990", "1.10", "90", "891"),
        (utc(2024, 1, 14, 22, 50), "1000", "1.00", "100", "900"),
        (utc(2024, 1, 14, 23, 30), "1010", "1.10", "100", "900"),
        (utc(2024, 1, 15, 9), "1020", "1.15", "200", "790"),
    ]
    for ts, equity, mid, base, quote in rows:
        ledger.record_equity(P, ts, D(equity), D(mid), D(base), D(quote))
    now, mark = utc(2024, 1, 15, 10), D("1.12")
    # equity now = 200 * 1.12 + 790 = 1014
    # Berlin midnight = 01-14 23:00 UTC -> last snapshot before it is 1000
    assert ledger.daily_pnl(P, "Europe/Berlin", now, mark) == D(14)
    # UTC midnight = 01-15 00:00 UTC -> 1010
    assert ledger.daily_pnl(P, "UTC", now, mark) == D(4)
    # Tokyo midnight = 01-14 15:00 UTC -> nothing before: the first snapshot of the day, 990
    assert ledger.daily_pnl(P, "Asia/Tokyo", now, mark) == D(24)
    # Berlin, 01-14 23:55 local: latest snapshot (100 base, 900 quote) at 1.12 = 1012; start 990
    assert ledger.daily_pnl(P, "Europe/Berlin", utc(2024, 1, 14, 22, 55), mark) == D(22)
    assert ledger.daily_pnl("other", "UTC", now, mark) == D(0)


@pytest.mark.parametrize(
    ("now", "tz", "midnight"),
    [
        (utc(2024, 1, 15, 10), "Europe/Berlin", utc(2024, 1, 14, 23)),
        (utc(2024, 1, 15, 0), "UTC", utc(2024, 1, 15, 0)),
        # the day DST starts in New York: midnight is still EST (UTC-5)
        (utc(2024, 3, 10, 12), "America/New_York", utc(2024, 3, 10, 5)),
        (utc(2024, 3, 11, 12), "America/New_York", utc(2024, 3, 11, 4)),
    ],
)
def test_local_midnight(now: float, tz: str, midnight: float) -> None:
    assert local_midnight(now, tz) == midnight


# --- modes and profiles ---------------------------------------------------------------------


def test_mode_changes_and_profiles(ledger: Ledger) -> None:
    assert ledger.profiles() == []
    ledger.record_mode("b", 1.0, "normal", "start")
    ledger.record_mode("b", 2.0, "wide", "schedule")
    ledger.record_mode("b", 3.0, "normal", "operator")
    with pytest.raises(ValueError, match="source"):
        ledger.record_mode("b", 4.0, "normal", "cron")
    assert ledger.mode_changes("b") == [
        ModeChange(1.0, "normal", "start"),
        ModeChange(2.0, "wide", "schedule"),
        ModeChange(3.0, "normal", "operator"),
    ]
    ledger.record_fill("a", fill(1, Side.BUY, "1", "1"))
    ledger.record_risk_event("c", 1.0, "trip", "stale_book", "pause", "paused", {})
    assert ledger.profiles() == ["a", "b", "c"]


def test_balance_drift_is_stored_exactly(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        ledger.record_balance_drift("p", 5.0, "KAS", Decimal("100.01"), Decimal("99.5"))
        assert ledger.balance_drifts("p") == [(5.0, "KAS", Decimal("100.01"), Decimal("99.5"))]
        assert ledger.balance_drifts("other") == []
