"""The rebalance order (:mod:`kasmm.core.rebalance`): when, which side, how much, at what price."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from kasmm.core.params import QuotingParams, RebalanceParams
from kasmm.core.rebalance import Free, RebalanceDecision, Touch, band_breach, rebalance_order
from kasmm.core.rules import BPS
from kasmm.core.skew import ShareDecimals, inventory_of
from kasmm.core.types import MarketRules, Side

D = Decimal
RULES = MarketRules(
    symbol="KAS/USDT",
    base="KAS",
    quote="USDT",
    tick=D("0.00001"),
    lot=D(1),
    min_notional=D(1),
    min_size=D(10),
    maker_fee=D("0.001"),
    taker_fee=D("0.002"),
)
QUOTING = QuotingParams(strategy="fixed_spread", spread_bps=40, size=D(1500))
MID = D("0.08")
TOUCH = Touch(D("0.07990"), D("0.08010"))
NO_OWN = Touch()
POST = RebalanceParams("post_only", max_size=D(100_000), min_interval_s=60)
IOC = RebalanceParams("ioc", max_size=D(100_000), max_slippage_bps=20, min_interval_s=60)


def decide(
    params: RebalanceParams = POST,
    *,
    base: str = "100000",
    quote: str = "0",
    quoting: QuotingParams = QUOTING,
    touch: Touch = TOUCH,
    own: Touch = NO_OWN,
    free: Free | None = None,
    now: float = 100.0,
    last_at: float | None = None,
    rules: MarketRules = RULES,
) -> RebalanceDecision:
    b, q = D(base), D(quote)
    inv = inventory_of(quoting, b, q, MID, ShareDecimals.of(quoting))
    return rebalance_order(
        params, quoting, inv, MID, touch, own, rules, free or Free(b, q), now, last_at
    )


@pytest.mark.parametrize(
    ("share", "side"),
    [
        (None, None),
        (0.5, None),
        (0.9, None),  # at the cap is inside the band
        (0.91, Side.SELL),
        (0.1, None),
        (0.05, Side.BUY),
    ],
)
def test_band_breach(share: float | None, side: Side | None) -> None:
    assert band_breach(share, QUOTING) is side


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"base": "50000", "quote": "4000"}, "in_band"),
        ({"base": "0", "quote": "0"}, "no_share"),
        ({"last_at": 50.0}, "interval"),
        ({"touch": Touch(D("0.0799"), None)}, "no_touch"),
        ({"params": IOC, "touch": Touch(None, D("0.0801"))}, "no_touch"),
        ({"free": Free(D(0), D(0))}, "no_free_balance"),
        ({"free": Free(D(5), D(0))}, "below_minimum"),
        # the own bid sits at the others' ask - 1 tick and the ask: nothing sells above it
        (
            {"touch": Touch(D("0.0799"), D("0.0800")), "own": Touch(D("0.0800"), None)},
            "would_cross",
        ),
        ({"params": IOC, "own": Touch(D("0.08000"), None)}, "own_order_in_the_way"),
    ],
)
def test_no_order(kwargs: dict[str, object], reason: str) -> None:
    decided = decide(**kwargs)  # type: ignore[arg-type]
    assert decided.order is None
    assert decided.reason == reason


def test_a_long_inventory_sells_one_tick_inside_the_ask() -> None:
    decided = decide(base="100000", quote="0", last_at=30.0)  # 70 s ago: due again
    order = decided.order
    assert order is not None
    assert (order.side, order.price, order.order) == (Side.SELL, D("0.08009"), "post_only")
    assert order.reason == "above_max_share" and order.share == 1.0
    # half the value at the target, the sale's proceeds (less the fee) above the mid included
    assert D(49_900) < order.size < D(50_000)


def test_a_short_inventory_buys_one_tick_inside_the_bid() -> None:
    order = decide(base="0", quote="8000").order
    assert order is not None
    assert (order.side, order.price) == (Side.BUY, D("0.07991"))
    assert order.reason == "below_min_share"


@pytest.mark.parametrize(
    ("touch", "own", "side", "price"),
    [
        # a one-tick spread: at the touch
        (Touch(D("0.07999"), D("0.08000")), NO_OWN, Side.SELL, D("0.08000")),
        # an own bid at the others' ask - 1 tick: at the touch, above it
        (Touch(D("0.07990"), D("0.08010")), Touch(D("0.08009"), None), Side.SELL, D("0.08010")),
        (Touch(D("0.07999"), D("0.08000")), NO_OWN, Side.BUY, D("0.07999")),
        # no bid at all: one tick inside the ask
        (Touch(None, D("0.08010")), NO_OWN, Side.SELL, D("0.08009")),
    ],
)
def test_post_only_price_at_the_touch_when_the_spread_is_one_tick(
    touch: Touch, own: Touch, side: Side, price: Decimal
) -> None:
    base, quote = ("100000", "0") if side is Side.SELL else ("0", "8000")
    order = decide(base=base, quote=quote, touch=touch, own=own).order
    assert order is not None
    assert (order.side, order.price) == (side, price)


@pytest.mark.parametrize(
    ("side", "price"),
    [
        # 0.0799 * (1 - 0.002) = 0.0797402, rounded up to the tick
        (Side.SELL, D("0.07975")),
        # 0.0801 * (1 + 0.002) = 0.0802602, rounded down
        (Side.BUY, D("0.08026")),
    ],
)
def test_ioc_price_is_the_slippage_cap_rounded_toward_less_slippage(
    side: Side, price: Decimal
) -> None:
    base, quote = ("100000", "0") if side is Side.SELL else ("0", "8000")
    order = decide(IOC, base=base, quote=quote).order
    assert order is not None
    assert (order.side, order.price, order.order) == (side, price, "ioc")


def test_ioc_stops_a_tick_short_of_an_own_order() -> None:
    order = decide(IOC, own=Touch(D("0.07980"), None)).order
    assert order is not None
    assert order.price == D("0.07981")


def test_max_size_bounds_the_order_and_the_lot_floors_it() -> None:
    order = decide(RebalanceParams("ioc", max_size=D("1234.7"))).order
    assert order is not None and order.size == D(1234)


def test_a_base_target_is_reached_by_the_excess_itself() -> None:
    quoting = QuotingParams(
        strategy="fixed_spread", spread_bps=40, size=D(1500), target_base=D(60_000)
    )
    order = decide(quoting=quoting, base="100000", quote="100").order
    assert order is not None and order.size == D(40_000)


def test_a_free_balance_bounds_the_order() -> None:
    order = decide(free=Free(D(777), D(0))).order
    assert order is not None and order.size == D(777)
    buy = decide(base="0", quote="8000", free=Free(D(0), D(8))).order
    assert buy is not None
    assert buy.price * buy.size * (1 + RULES.maker_fee) <= D(8)


# --- the invariants -------------------------------------------------------------------------

prices = st.integers(min_value=1_000, max_value=20_000)  # in ticks of 0.00001
amounts = st.integers(min_value=0, max_value=10_000_000)


@settings(max_examples=400, deadline=None)
@given(
    base=amounts,
    quote_cents=st.integers(min_value=0, max_value=100_000_000),
    bid=prices,
    spread=st.integers(min_value=1, max_value=200),
    own_gap=st.one_of(st.none(), st.integers(min_value=-5, max_value=50)),
    kind=st.sampled_from(["post_only", "ioc"]),
    max_size=st.integers(min_value=1, max_value=5_000_000),
    slip=st.integers(min_value=0, max_value=500),
    target=st.sampled_from([0.2, 0.5, 0.8]),
    locked=st.integers(min_value=0, max_value=100),
)
def test_the_order_reduces_the_deviation_and_never_overshoots(
    base: int,
    quote_cents: int,
    bid: int,
    spread: int,
    own_gap: int | None,
    kind: str,
    max_size: int,
    slip: int,
    target: float,
    locked: int,
) -> None:
    tick = RULES.tick
    quoting = QuotingParams(
        strategy="fixed_spread",
        spread_bps=40,
        size=D(1500),
        target_share=target,
        min_share=target - 0.1,
        max_share=target + 0.1,
    )
    best_bid, best_ask = bid * tick, (bid + spread) * tick
    mid = (best_bid + best_ask) / 2
    b, q = D(base), D(quote_cents) / 100
    inv = inventory_of(quoting, b, q, mid, ShareDecimals.of(quoting))
    own = NO_OWN
    if own_gap is not None:  # an own bid and ask this many ticks behind the others' touch
        own = Touch((bid - own_gap) * tick, (bid + spread + own_gap) * tick)
    free = Free(b * (100 - locked) / 100, q * (100 - locked) / 100)
    params = RebalanceParams(kind, max_size=D(max_size), max_slippage_bps=slip)  # type: ignore[arg-type]
    decided = rebalance_order(
        params, quoting, inv, mid, Touch(best_bid, best_ask), own, RULES, free, 0.0, None
    )
    order = decided.order
    event(decided.reason if order is None else f"{kind} {order.side.value}")
    if order is None:
        return
    fee = RULES.maker_fee if kind == "post_only" else RULES.taker_fee
    sell = order.side is Side.SELL
    assert order.side is band_breach(inv.share, quoting)
    assert 0 < order.size <= params.max_size
    assert order.size % RULES.lot == 0 and order.price % tick == 0
    assert order.size >= RULES.min_size and order.price * order.size >= RULES.min_notional
    if sell:
        assert order.size <= free.base
    else:
        assert order.price * order.size * (1 + fee) <= free.quote
    if kind == "post_only":
        # a maker: never at or beyond the other side of the book, own orders included
        if sell:
            assert order.price > best_bid and (own.bid is None or order.price > own.bid)
            assert order.price <= best_ask
        else:
            assert order.price < best_ask and (own.ask is None or order.price < own.ask)
            assert order.price >= best_bid
        worst = best = order.price
    else:
        cap = D(slip) / BPS
        if sell:  # never below the cap, never at an own bid, never above what it can take
            assert order.price >= best_bid * (1 - cap) and order.price <= best_bid
            assert own.bid is None or order.price > own.bid
            worst, best = order.price, best_bid
        else:
            assert order.price <= best_ask * (1 + cap) and order.price >= best_ask
            assert own.ask is None or order.price < own.ask
            worst, best = best_ask, order.price
    # Executed anywhere it can (its worst to its best price), the share moves toward the target
    # and never past it: measured exactly, at the mid, after the fee.
    t, m = Fraction(str(target)), Fraction(mid)
    before = _share(Fraction(b), Fraction(q), m)
    for price in (worst, best):
        p = Fraction(price) * (1 + Fraction(fee) if not sell else 1 - Fraction(fee))
        s = Fraction(order.size)
        nb, nq = (
            (Fraction(b) - s, Fraction(q) + s * p)
            if sell
            else (Fraction(b) + s, Fraction(q) - s * p)
        )
        after = _share(nb, nq, m)
        if sell:
            assert t <= after < before
        else:
            assert before < after <= t


def _share(base: Fraction, quote: Fraction, mid: Fraction) -> Fraction:
    return base * mid / (base * mid + quote)
