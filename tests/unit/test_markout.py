"""Markout of fills (kasmm.core.markout): exact values on hand-built sequences.

Convention: a buy is marked at mid(t + h) - price, a sell at price - mid(t + h), so a buy
followed by a rising mid is positive and a sell followed by a rising mid is negative (adverse).
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from kasmm.core.markout import (
    DEFAULT_HORIZONS_S,
    HorizonMarkout,
    MarkoutParams,
    MarkoutState,
    horizon_label,
)
from kasmm.core.types import Side

D = Decimal


def test_a_buy_then_a_rising_mid_is_positive_and_a_sell_negative() -> None:
    s = MarkoutState.start(MarkoutParams((1.0,)))
    s = s.fill(0.0, Side.BUY, D("100"), D("2"))
    s = s.fill(0.0, Side.SELL, D("100"), D("1"))
    s = s.observe_mid(1.0, D("101"))  # exactly t + h: this book marks both
    (m,) = s.horizons
    assert m.fills == 2
    # buy: +1 (100 bps) on 2; sell: -1 (-100 bps) on 1
    assert m.quote == D("2") - D("1") == D("1")
    assert m.size == D("3")
    assert m.bps_sum == pytest.approx(0.0)
    assert m.mean_bps == pytest.approx(0.0)
    assert m.weighted_bps == pytest.approx((2 * 100.0 - 1 * 100.0) / 3)
    assert m.mean_quote == D("0.5")
    assert s.pending == 0 and s.next_due == math.inf


def test_bps_are_of_the_fill_price_and_the_quote_sum_is_exact() -> None:
    s = MarkoutState.start(MarkoutParams((1.0,)))
    s = s.fill(0.0, Side.SELL, D("0.08000"), D("1500"))
    s = s.observe_mid(1.5, D("0.08004"))  # the mid rose 4 ticks through the sell
    (m,) = s.horizons
    assert m.quote == D("-0.06000")  # exact Decimal: -0.00004 x 1500
    assert m.mean_bps == pytest.approx(-5.0)
    assert m.weighted_bps == pytest.approx(-5.0)


def test_each_horizon_is_marked_by_the_first_book_at_or_after_it() -> None:
    s = MarkoutState.start()  # 1 s and 10 s
    assert s.params.horizons_s == DEFAULT_HORIZONS_S == (1.0, 10.0)
    s = s.fill(5.0, Side.BUY, D("100"), D("1"))
    assert s.next_due == 6.0
    before = s.observe_mid(5.99, D("150"))
    assert before is s  # nothing due: the very state back
    s = s.observe_mid(6.5, D("102"))  # first book after 6.0: marks 1 s with 102
    s = s.observe_mid(7.0, D("90"))  # later books do not re-mark it
    short, long = s.horizons
    assert (short.fills, short.quote) == (1, D("2"))
    assert long.fills == 0 and long.mean_bps is None and long.weighted_bps is None
    assert s.next_due == 15.0 and s.pending == 1
    s = s.observe_mid(15.0, D("97"))
    short, long = s.horizons
    assert (short.fills, long.fills, long.quote) == (1, 1, D("-3"))
    assert long.mean_bps == pytest.approx(-300.0)
    assert s.pending == 0


def test_size_weighting_differs_from_the_mean_per_fill() -> None:
    s = MarkoutState.start(MarkoutParams((1.0,)))
    s = s.fill(0.0, Side.BUY, D("100"), D("9"))  # +10 bps at 100.1
    s = s.fill(0.5, Side.BUY, D("100.2"), D("1"))  # -10 bps (at 100.1: -0.1 / 100.2)
    s = s.observe_mid(2.0, D("100.1"))
    (m,) = s.horizons
    small = -0.1 / 100.2 * 1e4
    assert m.fills == 2
    assert m.mean_bps == pytest.approx((10.0 + small) / 2)
    assert m.weighted_bps == pytest.approx((9 * 10.0 + small) / 10)
    assert m.quote == D("0.9") + D("-0.1")


def test_a_fill_with_no_later_book_is_not_counted_until_one_comes() -> None:
    s = MarkoutState.start(MarkoutParams((1.0,)))
    s = s.fill(0.0, Side.BUY, D("100"), D("1"))
    s = s.observe_mid(0.0, D("100"))  # the fill's own book: not a mark
    s = s.observe_mid(0.999, D("100"))
    assert s.horizons[0].fills == 0 and s.pending == 1
    s = s.observe_mid(30.0, D("104"))  # a quiet book: the first one after 1 s marks it
    assert s.horizons[0].fills == 1 and s.horizons[0].quote == D("4")


def test_fills_are_marked_in_order_and_only_once_due() -> None:
    s = MarkoutState.start(MarkoutParams((1.0,)))
    for i in range(5):
        s = s.fill(float(i), Side.BUY, D("100"), D("1"))
    s = s.observe_mid(2.5, D("101"))  # fills at 0 and 1 are due
    assert s.horizons[0].fills == 2 and s.pending == 3 and s.next_due == 3.0
    s = s.observe_mid(10.0, D("99"))
    m = s.horizons[0]
    assert m.fills == 5 and m.quote == D("2") + 3 * D("-1")


def test_old_states_stay_valid() -> None:
    # Persistent: a transition never changes the state it came from.
    s0 = MarkoutState.start(MarkoutParams((1.0,)))
    s1 = s0.fill(0.0, Side.BUY, D("100"), D("1"))
    s2 = s1.fill(0.1, Side.BUY, D("100"), D("1"))
    a = s2.observe_mid(1.05, D("101"))
    b = s2.observe_mid(2.0, D("99"))
    assert (a.horizons[0].fills, a.horizons[0].quote) == (1, D("1"))
    assert (b.horizons[0].fills, b.horizons[0].quote) == (2, D("-2"))
    assert s2.pending == 2 and s1.pending == 1 and s0.pending == 0


def test_pending_fills_are_bounded() -> None:
    s = MarkoutState.start(MarkoutParams((1.0, 2.0), max_pending=3))
    for i in range(5):
        s = s.fill(float(i) / 10, Side.BUY, D(100 + i), D("1"))
    assert s.pending == 3 and s.dropped == 4  # the two oldest, at both horizons
    s = s.observe_mid(5.0, D("110"))
    short, long = s.horizons
    # the survivors: prices 102, 103, 104
    assert short.fills == long.fills == 3
    assert short.quote == D("8") + D("7") + D("6")


def test_a_fill_that_is_not_a_positive_number_is_not_marked() -> None:
    s = MarkoutState.start()
    for price, size in ((D(0), D(1)), (D(1), D(0)), (D("NaN"), D(1)), (D(1), D("Infinity"))):
        assert s.fill(0.0, Side.BUY, price, size) is s


def test_a_mid_that_is_not_a_positive_number_marks_nothing() -> None:
    s = MarkoutState.start(MarkoutParams((1.0,))).fill(0.0, Side.BUY, D("100"), D("1"))
    assert s.observe_mid(2.0, D(0)) is s
    assert s.observe_mid(2.0, D("NaN")) is s


def test_a_fill_earlier_than_the_last_is_queued_at_its_time() -> None:
    s = MarkoutState.start(MarkoutParams((1.0,)))
    s = s.fill(5.0, Side.BUY, D("100"), D("1"))
    s = s.fill(4.0, Side.BUY, D("100"), D("1"))  # never on one clock; kept in order
    assert s.last_fill_at == 5.0
    s = s.observe_mid(6.0, D("101"))
    assert s.horizons[0].fills == 2


def test_sums_subtract_and_add_per_horizon() -> None:
    a = HorizonMarkout(1.0, 2, 10.0, 30.0, D(3), D("0.5"))
    b = HorizonMarkout(1.0, 5, 4.0, 36.0, D(7), D("-0.25"))
    step = b.since(a)
    assert step == HorizonMarkout(1.0, 3, -6.0, 6.0, D(4), D("-0.75"))
    assert a.plus(step) == b
    assert b.since(None) is b
    with pytest.raises(ValueError, match="horizons differ"):
        a.since(HorizonMarkout(10.0))
    with pytest.raises(ValueError, match="horizons differ"):
        a.plus(HorizonMarkout(10.0))


@pytest.mark.parametrize(
    ("horizons", "pending", "message"),
    [
        ((), 1, "at least one horizon"),
        ((0.0,), 1, "positive"),
        ((-1.0,), 1, "positive"),
        ((math.inf,), 1, "positive"),
        ((math.nan,), 1, "positive"),
        ((10.0, 1.0), 1, "increase strictly"),
        ((1.0, 1.0), 1, "increase strictly"),
        ((1.0,), 0, "max_pending"),
    ],
)
def test_params_refuse_bad_horizons(
    horizons: tuple[float, ...], pending: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        MarkoutParams(horizons, pending)


def test_a_long_queue_neither_recurses_in_repr_nor_in_equality() -> None:
    s = MarkoutState.start(MarkoutParams((1.0,), max_pending=50_000))
    for i in range(20_000):
        s = s.fill(float(i) * 1e-6, Side.BUY, D("100"), D("1"))
    assert "_queues" not in repr(s)
    assert s == s and s != s.fill(1.0, Side.BUY, D("100"), D("1"))
    s = s.observe_mid(5.0, D("100"))  # marks all 20 000 (reverses the back list once)
    assert s.horizons[0].fills == 20_000 and s.pending == 0


@pytest.mark.parametrize(
    ("horizon", "label"), [(1.0, "1s"), (10.0, "10s"), (0.5, "0.5s"), (60.0, "60s")]
)
def test_horizon_labels(horizon: float, label: str) -> None:
    assert horizon_label(horizon) == label
