"""Fee-aware pricing (``add_fees``): the stage, its float-ticks form, and the pipeline with it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kasmm.core.fees import fee_ladder, fee_prices, usable_fee
from kasmm.core.quoting import compute_quotes
from kasmm.core.side_ladder import ladder
from kasmm.core.types import Side
from tests.unit.test_quoting import fixed, make_rules, make_state

D = Decimal
BUY, SELL = Side.BUY, Side.SELL


@pytest.mark.parametrize(
    ("side", "prices", "fee", "centre", "expected"),
    [
        # A fee moves bids down and asks up, in proportion to the price.
        (BUY, ("99", "98"), "0.001", "100", ("98.901", "97.902")),
        (SELL, ("101", "102"), "0.001", "100", ("101.101", "102.102")),
        (BUY, ("99",), "0", "100", ("99",)),
        # A rebate moves them in ...
        (BUY, ("99", "98"), "-0.001", "100", ("99.099", "98.098")),
        (SELL, ("101",), "-0.001", "100", ("100.899",)),
        # ... but never within half a tick (0.005) of the centre: the whole side shifts back.
        (BUY, ("99.99", "99.89"), "-0.001", "100", ("99.995", "99.8949")),
        (SELL, ("100.01", "100.11"), "-0.001", "100", ("100.005", "100.1049")),
        # A side the model put closer than that stays where it was (never pulled in further).
        (BUY, ("99.998",), "-0.01", "100", ("99.998",)),
        (SELL, ("100.001",), "-0.01", "100", ("100.001",)),
        # A positive fee on such a side still widens it.
        (BUY, ("99.998",), "0.0001", "100", ("99.9880002",)),
        ((BUY), (), "0.001", "100", ()),
    ],
)
def test_fee_prices(
    side: Side, prices: tuple[str, ...], fee: str, centre: str, expected: tuple[str, ...]
) -> None:
    out = fee_prices(side, tuple(map(D, prices)), D(fee), D(centre), D("0.01"))
    assert out == tuple(map(D, expected))


@pytest.mark.parametrize(
    ("centre", "half", "step", "fee"),
    [
        (10_000.0, 10.0, 5.0, 0.001),
        (10_000.0, 10.0, 5.0, -0.0005),
        (10_000.0, 0.2, 1.0, -0.001),  # under a tick: kept where it was
        (10_000.5, 3.0, 0.0, -0.001),  # the rebate bound binds
        (123.25, 0.75, 2.5, 0.0),
    ],
)
@pytest.mark.parametrize("side", [BUY, SELL])
def test_fee_ladder_moves_a_ladder_in_ticks_as_the_stage_moves_prices(
    side: Side, centre: float, half: float, step: float, fee: float
) -> None:
    c, h, s, n = fee_ladder(side, (centre, half, step, 3), fee)
    sign = -1 if side is BUY else 1
    moved = [c + sign * (h + i * s) for i in range(n)]
    prices = ladder(side, D(centre), D(half), D(step), 3)
    expected = fee_prices(side, prices, D(repr(fee)), D(centre), D(1))
    assert moved == pytest.approx([float(p) for p in expected], abs=1e-9)


@pytest.mark.parametrize(
    ("fee", "ok"),
    [("0", True), ("0.001", True), ("-0.0002", True), ("1", False), ("-1", False),
     ("NaN", False), ("Infinity", False)],
)  # fmt: skip
def test_usable_fee(fee: str, ok: bool) -> None:
    assert usable_fee(D(fee)) is ok


@pytest.mark.parametrize(
    ("fee", "bid", "ask"),
    [
        ("0", "99.90", "100.10"),  # 20 bps around 100: add_fees changes nothing without a fee
        ("0.001", "99.80", "100.21"),  # 99.9 * 0.999 = 99.8001 -> 99.80; 100.1 * 1.001 -> 100.21
        ("-0.0005", "99.94", "100.05"),  # a rebate tightens: 99.94995 -> 99.94; 100.04995 -> .05
        ("-0.01", "99.99", "100.01"),  # ... but stops half a tick from the centre
    ],
)
def test_compute_quotes_prices_the_fee_in(fee: str, bid: str, ask: str) -> None:
    state = make_state(rules=make_rules(maker_fee=fee), quote="1000")
    q = compute_quotes(fixed(add_fees=True, skew_strength=0.0), state).quotes
    assert (q.bids[0].price, q.asks[0].price) == (D(bid), D(ask))
    f = D(fee)
    if f >= 0:
        assert q.asks[0].price * (1 - f) >= q.bids[0].price * (1 + f)


def test_compute_quotes_ignores_the_fee_without_add_fees() -> None:
    state = make_state(rules=make_rules(maker_fee="0.001"), quote="1000")
    q = compute_quotes(fixed(skew_strength=0.0), state).quotes
    assert (q.bids[0].price, q.asks[0].price) == (D("99.90"), D("100.10"))


@pytest.mark.parametrize("fee", ["NaN", "1", "-2"])
def test_an_unusable_fee_is_bad_rules_with_add_fees(fee: str) -> None:
    state = make_state(rules=make_rules(maker_fee=fee))
    assert compute_quotes(fixed(add_fees=True), state).reason == "bad_rules"
    assert compute_quotes(fixed(), state).reason == "ok"
