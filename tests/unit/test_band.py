"""The price band: the slow average mid, the band in force, and its gate on a decision."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kasmm.core.band import (
    ABOVE_CEILING,
    BELOW_FLOOR,
    Band,
    SlowMid,
    apply_band,
    band_of,
    pricing_mid,
    update,
    with_quotes,
)
from kasmm.core.params import PriceBandParams
from kasmm.core.quoting import QuoteDecision
from kasmm.core.skew import Excess
from kasmm.core.types import OrderIntent, Quotes, Side

D = Decimal


def ladder(mid: str, *, bids: int = 2, asks: int = 2, step: str = "0.001") -> Quotes:
    m, s = D(mid), D(step)
    return Quotes(
        tuple(OrderIntent(Side.BUY, m - s * (i + 1), D(100), i) for i in range(bids)),
        tuple(OrderIntent(Side.SELL, m + s * (i + 1), D(100), i) for i in range(asks)),
    )


def decision(quotes: Quotes, mid: str | None, ref: str | None = None) -> QuoteDecision:
    return QuoteDecision(
        quotes,
        None if mid is None else D(mid),
        None,
        20.0,
        0.0,
        0.5,
        None,
        "ok",
        reference_mid=None if ref is None else D(ref),
    )


# --- the slow average -------------------------------------------------------------------------


def test_the_first_mid_is_the_average_and_a_half_life_moves_it_half_way() -> None:
    s = update(None, 1.0, 10.0, 60.0)
    assert s == SlowMid(1.0, 10.0)
    s = update(s, 2.0, 70.0, 60.0)  # one half-life later
    assert s is not None and s.value == pytest.approx(1.5) and s.at == 70.0
    s = update(s, 2.0, 190.0, 60.0)  # two more: 1.5 + 0.75 * 0.5
    assert s is not None and s.value == pytest.approx(1.875)


@pytest.mark.parametrize("mid", [math.nan, math.inf, 0.0, -1.0])
def test_an_unusable_mid_changes_nothing(mid: float) -> None:
    assert update(None, mid, 0.0, 60.0) is None
    s = SlowMid(1.0, 0.0)
    assert update(s, mid, 5.0, 60.0) is s


def test_a_mid_at_the_same_time_weighs_nothing() -> None:
    s = SlowMid(1.0, 5.0)
    assert update(s, 9.0, 5.0, 60.0) is s
    assert update(s, 9.0, 4.0, 60.0) is s


@given(
    st.lists(st.tuples(st.floats(0.01, 100.0), st.floats(0.0, 1000.0)), min_size=1, max_size=40),
    st.floats(0.1, 1e5),
)
@settings(deadline=None)
def test_the_average_stays_within_the_mids_seen(
    steps: list[tuple[float, float]], halflife: float
) -> None:
    s: SlowMid | None = None
    now = 0.0
    for mid, dt in steps:
        now += dt
        s = update(s, mid, now, halflife)
    assert s is not None
    lo, hi = min(m for m, _ in steps), max(m for m, _ in steps)
    assert lo * (1 - 1e-12) <= s.value <= hi * (1 + 1e-12)


# --- the band in force ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "slow", "want"),
    [
        (PriceBandParams(), None, None),
        (PriceBandParams(floor=D("0.05")), None, Band(D("0.05"), None)),
        (PriceBandParams(ceiling=D("0.2")), None, Band(None, D("0.2"))),
        (PriceBandParams(D("0.05"), D("0.2")), SlowMid(1.0, 0.0), Band(D("0.05"), D("0.2"))),
        (PriceBandParams(band_pct=5.0), None, None),  # no average yet: no moving band
        (PriceBandParams(band_pct=5.0), SlowMid(0.08, 0.0), Band(D("0.0760"), D("0.0840"))),
        (PriceBandParams(band_pct=0.5), SlowMid(2.0, 0.0), Band(D("1.990"), D("2.010"))),
    ],
)
def test_band_of(params: PriceBandParams, slow: SlowMid | None, want: Band | None) -> None:
    assert band_of(params, slow) == want


# --- the gate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("band", "mid", "ref", "bids", "asks", "reason"),
    [
        # The quotes are always bids 0.099, 0.098 and asks 0.101, 0.102; the mid varies (a
        # skewed or reference-priced ladder is not centred on the own mid).
        # inside the band: nothing changes
        (Band(D("0.05"), D("0.2")), "0.1", None, 2, 2, "ok"),
        # mid above the ceiling: asks only
        (Band(None, D("0.09")), "0.1", None, 0, 2, ABOVE_CEILING),
        # mid below the floor: bids only
        (Band(D("0.11"), None), "0.1", None, 2, 0, BELOW_FLOOR),
        # the mid under the ceiling, the best bid above it: that level only goes
        (Band(None, D("0.0985")), "0.098", None, 1, 2, "ok"),
        # the mid over the floor, the best ask below it: that level only goes
        (Band(D("0.1015"), None), "0.102", None, 2, 1, "ok"),
        # every bid above the ceiling: the side goes, with the reason
        (Band(None, D("0.0975")), "0.097", None, 0, 2, ABOVE_CEILING),
        # the reference prices: its mid, not the own one, decides
        (Band(None, D("0.2")), "0.1", "0.3", 0, 2, ABOVE_CEILING),
        (Band(D("0.05"), None), "0.1", "0.01", 2, 0, BELOW_FLOOR),
        # a mid exactly on a bound is inside
        (Band(D("0.1"), D("0.1")), "0.1", None, 2, 2, "ok"),
    ],
)
def test_apply_band(
    band: Band, mid: str, ref: str | None, bids: int, asks: int, reason: str
) -> None:
    d = decision(ladder("0.1"), mid, ref)
    out = apply_band(d, band)
    assert (len(out.quotes.bids), len(out.quotes.asks), out.reason) == (bids, asks, reason)
    if (bids, asks) == (2, 2):
        assert out is d
    want_side = Side.SELL if bids == 0 else Side.BUY if asks == 0 else None
    assert out.one_sided is want_side
    # the model's numbers are as they were
    assert (out.mid, out.spread_bps, out.reference_mid) == (d.mid, d.spread_bps, d.reference_mid)


def test_no_band_and_no_quotes_are_left_alone() -> None:
    d = decision(ladder("0.1"), "0.1")
    assert apply_band(d, None) is d
    empty = decision(Quotes(), "0.1")
    assert apply_band(empty, Band(None, D("0.01"))) is empty


def test_pricing_mid_is_the_reference_when_one_priced() -> None:
    assert pricing_mid(decision(Quotes(), "0.1")) == D("0.1")
    assert pricing_mid(decision(Quotes(), "0.1", "0.2")) == D("0.2")


prices = st.integers(1, 2000).map(lambda n: D(n) / 1000)


@given(
    st.lists(prices, max_size=4),
    st.lists(prices, max_size=4),
    st.none() | prices,
    st.none() | prices,
    st.none() | prices,
)
def test_no_bid_above_the_ceiling_no_ask_below_the_floor_and_nothing_added(
    bid_prices: list[Decimal],
    ask_prices: list[Decimal],
    floor: Decimal | None,
    ceiling: Decimal | None,
    mid: Decimal | None,
) -> None:
    quotes = Quotes(
        tuple(OrderIntent(Side.BUY, p, D(1), i) for i, p in enumerate(sorted(bid_prices)[::-1])),
        tuple(OrderIntent(Side.SELL, p, D(1), i) for i, p in enumerate(sorted(ask_prices))),
    )
    d = QuoteDecision(quotes, mid, None, None, 0.0, None, None, "ok")
    out = apply_band(d, Band(floor, ceiling))
    assert set(out.quotes.bids) <= set(quotes.bids) and set(out.quotes.asks) <= set(quotes.asks)
    if ceiling is not None:
        assert all(i.price <= ceiling for i in out.quotes.bids)
        if mid is not None and mid > ceiling:
            assert not out.quotes.bids
    if floor is not None:
        assert all(i.price >= floor for i in out.quotes.asks)
        if mid is not None and mid < floor:
            assert not out.quotes.asks
    # what is kept keeps its order (best first)
    assert list(out.quotes.bids) == [i for i in quotes.bids if i in out.quotes.bids]


def test_a_gated_decision_keeps_every_other_field_of_the_models_answer() -> None:
    # Every field but the quotes, the side quoted and the reason describes the model's answer:
    # a field added to QuoteDecision must be carried too (join_unmet once was not).
    bid = OrderIntent(Side.BUY, Decimal("0.0799"), Decimal(100))
    decision = QuoteDecision(
        Quotes(bids=(bid,), asks=()),
        Decimal("0.08"),
        0.08,
        20.0,
        1.5,
        0.4,
        Side.BUY,
        "ok",
        Excess(Decimal(5), 0.01),
        "gate:KAS/USDT",
        Decimal("0.0801"),
        (Side.SELL,),
    )
    assert all(getattr(decision, f.name) != f.default for f in dataclasses.fields(decision)), (
        "every field set apart from its default, so a dropped one shows"
    )
    gated = with_quotes(decision, Quotes(), "above_ceiling")
    assert gated == dataclasses.replace(
        decision, quotes=Quotes(), one_sided=None, reason="above_ceiling"
    )
