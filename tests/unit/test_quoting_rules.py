"""Market-rule stages on their own: rounding, ladders on the grid, post-only guard, minimums."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kasmm.core.rules import (
    guard_prices,
    round_price,
    round_prices,
    round_size,
    size_ok,
    to_decimal,
)
from kasmm.core.types import MarketRules, Side

D = Decimal
BUY, SELL = Side.BUY, Side.SELL


def rules(tick: str = "0.01", lot: str = "0.01", **kw: str) -> MarketRules:
    return MarketRules(
        "ASSET/CASH", "ASSET", "CASH", D(tick), D(lot), **{k: D(v) for k, v in kw.items()}
    )


@pytest.mark.parametrize(
    ("side", "price", "tick", "expected"),
    [
        (BUY, "1.239", "0.01", "1.23"),  # bids round down
        (SELL, "1.231", "0.01", "1.24"),  # asks round up
        (BUY, "1.23", "0.01", "1.23"),
        (SELL, "1.23", "0.01", "1.23"),
        (BUY, "10.7", "0.5", "10.5"),
        (SELL, "10.2", "0.5", "10.5"),
        (BUY, "0.08004", "0.0025", "0.08"),
        (SELL, "0.08004", "0.0025", "0.0825"),
        (BUY, "99.94999999999999", "0.01", "99.95"),  # float noise snaps onto the grid
        (SELL, "100.05000000000001", "0.01", "100.05"),
        (BUY, "99.9499", "0.01", "99.94"),  # a real difference does not
        (SELL, "100.0501", "0.01", "100.06"),
    ],
)
def test_round_price(side: Side, price: str, tick: str, expected: str) -> None:
    assert round_price(side, D(price), D(tick)) == D(expected)


@pytest.mark.parametrize(
    ("side", "raw", "expected"),
    [
        (BUY, ["99.909", "99.859"], ["99.90", "99.85"]),
        (SELL, ["100.101", "100.151"], ["100.11", "100.16"]),
        (BUY, ["99.90", "99.90", "99.899"], ["99.90", "99.89", "99.88"]),  # pushed apart
        (SELL, ["100.10", "100.101"], ["100.10", "100.11"]),
        (BUY, ["0.015", "0.005", "-1"], ["0.01", None, None]),  # non-positive dropped
        (SELL, ["1", "1e25"], ["1.00", None]),  # beyond MAX_STEPS ticks dropped
    ],
)
def test_round_prices(side: Side, raw: list[str], expected: list[str | None]) -> None:
    out = round_prices(side, [D(p) for p in raw], rules())
    assert out == tuple(None if p is None else D(p) for p in expected)


@pytest.mark.parametrize(
    ("side", "prices", "bid", "ask", "expected"),
    [
        (BUY, ["99.90", "99.85"], "99.99", "100.01", ["99.90", "99.85"]),  # untouched
        (BUY, ["100.05", "100.00"], "99.99", "100.01", ["100.00", "99.99"]),  # clamped
        (BUY, ["100.01"], "99.99", "100.01", ["100.00"]),  # at the ask: one tick inside
        (BUY, ["100.05"], "99.99", "100.005", ["100.00"]),  # off-grid ask
        (SELL, ["99.95", "100.00"], "99.99", "100.01", ["100.00", "100.01"]),
        (SELL, ["99.99"], "99.99", "100.01", ["100.00"]),
        (SELL, ["100.10", "100.15"], "99.99", "100.01", ["100.10", "100.15"]),
        (SELL, [None, "99.00"], "99.99", "100.01", [None, "100.00"]),
        (BUY, ["0.01"], "0.01", "0.01", [None]),  # no room below a one-tick ask
    ],
)
def test_guard_prices(
    side: Side, prices: list[str | None], bid: str, ask: str, expected: list[str | None]
) -> None:
    raw = [None if p is None else D(p) for p in prices]
    out = guard_prices(side, raw, D("0.01"), D(bid), D(ask))
    assert out == tuple(None if p is None else D(p) for p in expected)


@pytest.mark.parametrize(
    ("size", "lot", "expected"),
    [("1.239", "0.01", "1.23"), ("1.23", "0.01", "1.23"), ("7", "5", "5"), ("0.9", "1", "0")],
)
def test_round_size_rounds_down(size: str, lot: str, expected: str) -> None:
    assert round_size(D(size), D(lot)) == D(expected)


@pytest.mark.parametrize(
    ("price", "size", "market", "check", "ok"),
    [
        ("10", "1", rules(), True, True),
        ("10", "0.001", rules(), True, False),  # below the lot
        ("10", "0", rules(), True, False),
        ("10", "1", rules(min_size="2"), True, False),
        ("10", "2", rules(min_size="2"), True, True),
        ("10", "1", rules(min_notional="10"), True, True),
        ("10", "0.99", rules(min_notional="10"), True, False),
        ("10", "0.99", rules(min_notional="10"), False, True),  # exact model: no notional check
    ],
)
def test_size_ok(price: str, size: str, market: MarketRules, check: bool, ok: bool) -> None:
    assert size_ok(D(price), D(size), market, check_notional=check) is ok


@pytest.mark.parametrize(
    ("x", "expected"), [(0.1, "0.1"), (99.95, "99.95"), (1e-7, "1E-7"), (-2.5, "-2.5")]
)
def test_to_decimal_uses_shortest_repr(x: float, expected: str) -> None:
    assert to_decimal(x) == D(expected)


@pytest.mark.parametrize("x", [float("nan"), float("inf"), float("-inf")])
def test_to_decimal_refuses_non_finite(x: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        to_decimal(x)
