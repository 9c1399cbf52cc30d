"""The helpers the bot uses to assemble a MarketState: exclude_own and time_left."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from kasmm.core.params import RollingHorizon, SessionEndHorizon
from kasmm.core.quoting import exclude_own, time_left
from kasmm.core.types import Book, BookLevel, ClientOrderId, OpenOrder, Side

D = Decimal


# --- exclude_own --------------------------------------------------------------------------


def own(side: Side, price: str, remaining: str) -> OpenOrder:
    return OpenOrder(
        ClientOrderId(f"{side}-{price}"), side, D(price), D(remaining), D(remaining), 0.0
    )


@pytest.mark.parametrize(
    ("orders", "bids", "asks"),
    [
        ([], [("99", "10"), ("98", "5")], [("101", "10")]),
        ([own(Side.BUY, "99", "4")], [("99", "6"), ("98", "5")], [("101", "10")]),
        ([own(Side.BUY, "99", "10")], [("98", "5")], [("101", "10")]),
        ([own(Side.BUY, "99", "12")], [("98", "5")], [("101", "10")]),  # stale book
        ([own(Side.SELL, "99", "4")], [("99", "10"), ("98", "5")], [("101", "10")]),  # wrong side
        ([own(Side.SELL, "101", "3"), own(Side.SELL, "101", "7")], [("99", "10"), ("98", "5")], []),
        ([own(Side.BUY, "97", "1")], [("99", "10"), ("98", "5")], [("101", "10")]),
    ],
)
def test_exclude_own(
    orders: list[OpenOrder], bids: list[tuple[str, str]], asks: list[tuple[str, str]]
) -> None:
    book = Book(
        bids=(BookLevel(D(99), D(10)), BookLevel(D(98), D(5))),
        asks=(BookLevel(D(101), D(10)),),
        ts=3.0,
    )
    out = exclude_own(book, orders)
    assert out.bids == tuple(BookLevel(D(p), D(s)) for p, s in bids)
    assert out.asks == tuple(BookLevel(D(p), D(s)) for p, s in asks)
    assert out.ts == 3.0


# --- time_left ----------------------------------------------------------------------------


def epoch(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp()


ROLLING = RollingHorizon(window_s=42.0)
MIDNIGHT = SessionEndHorizon(end=dt.time(0, 0), timezone="UTC")
NY_CLOSE = SessionEndHorizon(end=dt.time(16, 0), timezone="America/New_York")


@pytest.mark.parametrize(
    ("horizon", "wall", "session_end", "expected"),
    [
        (ROLLING, 123.0, None, 42.0),
        (ROLLING, 123.0, 200.0, 42.0),  # a rolling window ignores any session end
        (MIDNIGHT, 1000.0, 1600.0, 600.0),  # explicit (backtest) end
        (MIDNIGHT, 1700.0, 1600.0, 0.0),  # past the end: never negative
        (MIDNIGHT, epoch(2024, 1, 15, 23, 0), None, 3600.0),
        (MIDNIGHT, epoch(2024, 1, 16, 0, 0), None, 0.0),  # exactly at the end
        (MIDNIGHT, epoch(2024, 1, 16, 0, 0) + 1, None, 86399.0),
        (NY_CLOSE, epoch(2024, 7, 1, 12, 0), None, 8 * 3600.0),  # 08:00 EDT
        (NY_CLOSE, epoch(2024, 3, 9, 22, 0), None, 22 * 3600.0),  # 17:00 EST -> 16:00 EDT
    ],
)
def test_time_left(
    horizon: RollingHorizon | SessionEndHorizon,
    wall: float,
    session_end: float | None,
    expected: float,
) -> None:
    assert time_left(horizon, wall, session_end) == pytest.approx(expected)
