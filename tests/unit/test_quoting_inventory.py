"""Inventory stages: share and target, skew, share caps, balance and base-cap sizing."""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType

import pytest

from kasmm.core.params import QuotingParams
from kasmm.core.quoting import MarketState, QuoteDecision, compute_quotes
from kasmm.core.skew import (
    Budget,
    Excess,
    Inventory,
    deviation,
    inventory_at,
    inventory_q,
    quoted_sides,
    side_budget,
    skew_bps,
)
from kasmm.core.types import Balance, Balances, Book, BookLevel, MarketRules, Side

D = Decimal
RULES = MarketRules("ASSET/CASH", "ASSET", "CASH", tick=D("0.01"), lot=D("0.01"))
BOTH = frozenset({Side.BUY, Side.SELL})


def balances(base: str, quote: str) -> Balances:
    return Balances(MappingProxyType({"ASSET": Balance(D(base)), "CASH": Balance(D(quote))}))


def state(base: str, quote: str, bid: str = "99", ask: str = "101") -> MarketState:
    book = Book(bids=(BookLevel(D(bid), D(10)),), asks=(BookLevel(D(ask), D(10)),), ts=0.0)
    return MarketState(0.0, book, RULES, balances(base, quote), None, 1.0)


def fixed(**kw: object) -> QuotingParams:
    defaults: dict[str, object] = {"strategy": "fixed_spread", "spread_bps": 20.0, "size": D(1)}
    return QuotingParams(**{**defaults, **kw})  # type: ignore[arg-type]


def px(decision: QuoteDecision, side: Side) -> list[Decimal]:
    return [q.price for q in decision.quotes.side(side)]


def sz(decision: QuoteDecision, side: Side) -> list[Decimal]:
    return [q.size for q in decision.quotes.side(side)]


# --- inventory snapshot -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "base", "quote", "share", "target_base", "target_share"),
    [
        (fixed(), "5", "500", 0.5, D(5), 0.5),
        (fixed(target_share=0.2), "5", "500", 0.5, D(2), 0.2),
        (fixed(target_share=None, target_base=D(8)), "5", "500", 0.5, D(8), 0.8),
        (fixed(), "0", "0", None, None, None),  # empty portfolio: nothing to aim at
        (fixed(target_share=None, target_base=D(3)), "0", "0", None, D(3), None),
        (fixed(), "10", "0", 1.0, D(5), 0.5),
    ],
)
def test_inventory_at(
    params: QuotingParams,
    base: str,
    quote: str,
    share: float | None,
    target_base: Decimal | None,
    target_share: float | None,
) -> None:
    inv = inventory_at(params, balances(base, quote), RULES, D(100))
    assert inv.share == (None if share is None else pytest.approx(share))
    assert inv.target_base == target_base
    assert inv.target_share == (None if target_share is None else pytest.approx(target_share))


def absolute(target: str, **kw: object) -> QuotingParams:
    return fixed(target_share=None, target_base=D(target), **kw)


# Portfolio worth 1000 at mid 100 unless empty. The excess is inventory minus the effective
# target, in base and as a share of the portfolio (the unit of max_inventory_deviation).
@pytest.mark.parametrize(
    ("params", "base", "quote", "target_base", "target_share", "excess"),
    [
        (fixed(), "5", "500", D(5), 0.5, Excess(D(0), 0.0)),
        (fixed(), "8", "200", D(5), 0.5, Excess(D(3), 0.3)),
        (absolute("8"), "5", "500", D(8), 0.8, Excess(D(-3), -0.3)),
        (absolute("5"), "9.5", "50", D(5), 0.5, Excess(D("4.5"), 0.45)),  # 95 % base share
        # A target beyond a share cap is held at the cap: the caps are hard limits.
        (absolute("9.5"), "9.5", "50", D(9), 0.9, Excess(D("0.5"), 0.05)),
        (absolute("0"), "0.5", "950", D(1), 0.1, Excess(D("-0.5"), -0.05)),
        (absolute("0", min_share=None), "0.5", "950", D(0), 0.0, Excess(D("0.5"), 0.05)),
        # ... and within the absolute base caps, which win over the share caps.
        (fixed(max_base=D(4)), "5", "500", D(4), 0.4, Excess(D(1), 0.1)),
        (absolute("5", min_base=D(7)), "5", "500", D(7), 0.7, Excess(D(-2), -0.2)),
        (absolute("5", max_base=D(1), min_share=0.3), "5", "500", D(1), 0.1, Excess(D(4), 0.4)),
        # An empty portfolio has no shares; a base target still says which way to go.
        (absolute("3"), "0", "0", D(3), None, Excess(D(-3), None)),
        (fixed(), "0", "0", None, None, None),
    ],
)
def test_target_and_excess(
    params: QuotingParams,
    base: str,
    quote: str,
    target_base: Decimal | None,
    target_share: float | None,
    excess: Excess | None,
) -> None:
    inv = inventory_at(params, balances(base, quote), RULES, D(100))
    assert inv.target_base == target_base
    assert inv.target_share == (None if target_share is None else pytest.approx(target_share))
    if excess is None:
        assert inv.excess is None
        return
    assert inv.excess is not None and inv.excess.base == excess.base
    assert inv.excess.share == (None if excess.share is None else pytest.approx(excess.share))


def test_the_decision_carries_the_excess_even_when_it_quotes_nothing() -> None:
    params = QuotingParams(
        strategy="avellaneda_stoikov", spread_bps=10.0, size=D(1), gamma=0.1, kappa=1.5
    )
    decision = compute_quotes(params, state("8", "200"))  # no sigma estimate yet
    assert decision.reason == "no_sigma" and decision.quotes.all == ()
    assert decision.excess is not None and decision.excess.base == D(3)
    assert decision.excess.share == pytest.approx(0.3)


def test_inventory_uses_totals_including_locked() -> None:
    locked = Balances(
        MappingProxyType({"ASSET": Balance(D(1), D(4)), "CASH": Balance(D(100), D(400))})
    )
    inv = inventory_at(fixed(), locked, RULES, D(100))
    assert (inv.base, inv.quote, inv.share) == (D(5), D(500), 0.5)


# --- deviation and skew -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "target", "lo", "hi", "expected"),
    [
        (0.5, 0.5, 0.1, 0.9, 0.0),
        (0.7, 0.5, 0.1, 0.9, 0.5),
        (0.9, 0.5, 0.1, 0.9, 1.0),
        (0.99, 0.5, 0.1, 0.9, 1.0),  # clamped
        (0.3, 0.5, 0.1, 0.9, -0.5),
        (0.0, 0.5, 0.1, 0.9, -1.0),
        (0.75, 0.5, None, None, 0.5),  # no caps: normalized by the distance to 1
        (0.25, 0.5, None, None, -0.5),  # ... and to 0
        (0.6, 0.9, 0.1, 0.9, -0.375),
        (0.95, 0.9, 0.1, 0.9, 1.0),  # target at the cap: any excess is full deviation
        (None, 0.5, 0.1, 0.9, 0.0),
        (0.7, None, 0.1, 0.9, 0.0),
        (float("nan"), 0.5, 0.1, 0.9, 0.0),
    ],
)
def test_deviation(
    share: float | None, target: float | None, lo: float | None, hi: float | None, expected: float
) -> None:
    assert deviation(share, target, lo, hi) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("dev", "strength", "spread", "expected"),
    [
        (0.0, 1.0, 20.0, 0.0),
        (1.0, 1.0, 20.0, -10.0),
        (-1.0, 2.0, 20.0, 20.0),
        (0.5, 0.0, 20.0, 0.0),
    ],
)
def test_skew_bps(dev: float, strength: float, spread: float, expected: float) -> None:
    assert skew_bps(dev, strength, spread) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("base", "target", "size", "q"),
    [("3", "0", "1", 3.0), ("5", "5", "2", 0.0), ("1", "5", "2", -2.0), ("3", None, "1", 0.0)],
)
def test_inventory_q(base: str, target: str | None, size: str, q: float) -> None:
    assert inventory_q(D(base), None if target is None else D(target), D(size)) == q


@pytest.mark.parametrize(
    ("base", "quote", "bid", "ask", "skew"),
    [
        ("5", "500", "99.90", "100.10", 0.0),  # on target
        ("7", "300", "99.85", "100.05", -5.0),  # long: dev 0.5 -> both quotes 5 bps lower
        ("3", "700", "99.95", "100.15", 5.0),  # short: both higher
        ("9", "100", "99.80", "100.00", -10.0),  # at max_share: a full half-spread
    ],
)
def test_skew_direction(base: str, quote: str, bid: str, ask: str, skew: float) -> None:
    decision = compute_quotes(fixed(), state(base, quote))
    assert decision.skew_bps == pytest.approx(skew)
    assert (px(decision, Side.BUY), px(decision, Side.SELL)) == ([D(bid)], [D(ask)])


def test_no_skew_with_zero_strength() -> None:
    decision = compute_quotes(fixed(skew_strength=0.0), state("7", "300"))
    assert (px(decision, Side.BUY), px(decision, Side.SELL)) == ([D("99.90")], [D("100.10")])


def test_as_skews_through_reservation_price() -> None:
    params = QuotingParams(
        strategy="avellaneda_stoikov",
        spread_bps=10.0,
        size=D(1),
        gamma=0.1,
        kappa=1.5,
        sigma=1.0,
        post_only_guard=False,
    )
    neutral = compute_quotes(params, state("5", "500"))
    long = compute_quotes(params, state("7", "300"))
    short = compute_quotes(params, state("3", "700"))
    assert long.quotes.bids[0].price < neutral.quotes.bids[0].price < short.quotes.bids[0].price
    assert long.quotes.asks[0].price < neutral.quotes.asks[0].price < short.quotes.asks[0].price


# --- share caps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "lo", "hi", "sides", "reason"),
    [
        (0.5, 0.1, 0.9, BOTH, "ok"),
        (0.9, 0.1, 0.9, BOTH, "ok"),  # at the cap: still both
        (0.91, 0.1, 0.9, frozenset({Side.SELL}), "above_max_share"),
        (0.09, 0.1, 0.9, frozenset({Side.BUY}), "below_min_share"),
        (0.99, None, None, BOTH, "ok"),
        (None, 0.1, 0.9, BOTH, "ok"),
    ],
)
def test_quoted_sides(
    share: float | None, lo: float | None, hi: float | None, sides: frozenset[Side], reason: str
) -> None:
    assert quoted_sides(share, lo, hi) == (sides, reason)


@pytest.mark.parametrize(
    ("base", "quote", "one_sided", "reason"),
    [
        ("9.5", "50", Side.SELL, "above_max_share"),  # share 0.95
        ("0.5", "950", Side.BUY, "below_min_share"),  # share 0.05
        ("5", "500", None, "ok"),
    ],
)
def test_one_sided_beyond_caps(base: str, quote: str, one_sided: Side | None, reason: str) -> None:
    decision = compute_quotes(fixed(levels=2), state(base, quote))
    assert (decision.one_sided, decision.reason) == (one_sided, reason)
    if one_sided is not None:
        assert decision.quotes.side(one_sided.opposite) == ()
        assert len(decision.quotes.side(one_sided)) == 2


# --- sizes and budgets --------------------------------------------------------------------


INV = Inventory(D(5), D(500), 0.5, None, None)
NEGATIVE = Inventory(D(-1), D(-5), None, None, None)
UNCHECKED = fixed(balances_known=False)


@pytest.mark.parametrize(
    ("params", "inv", "side", "budget"),
    [
        (fixed(), INV, Side.BUY, Budget(quote=D(500))),
        (fixed(), INV, Side.SELL, Budget(base=D(5))),
        (fixed(), NEGATIVE, Side.SELL, Budget(base=D(0))),
        (fixed(), NEGATIVE, Side.BUY, Budget(quote=D(0))),
        (fixed(max_base=D(6)), INV, Side.BUY, Budget(base=D(1), quote=D(500))),
        (fixed(max_base=D(4)), INV, Side.BUY, Budget(base=D(0), quote=D(500))),
        (fixed(min_base=D(2)), INV, Side.SELL, Budget(base=D(3))),
        (fixed(min_base=D(7)), INV, Side.SELL, Budget(base=D(0))),
        (UNCHECKED, INV, Side.SELL, Budget()),
        (UNCHECKED, INV, Side.BUY, Budget()),
        (fixed(balances_known=False, min_base=D(2)), INV, Side.SELL, Budget(base=D(3))),
        (fixed(balances_known=False, max_base=D(8)), INV, Side.BUY, Budget(base=D(3))),
    ],
)
def test_side_budget(params: QuotingParams, inv: Inventory, side: Side, budget: Budget) -> None:
    assert side_budget(side, params, inv) == budget


def test_sizes_shrink_to_balances_cumulatively() -> None:
    # Bids at 99.90 / 99.80 with 150 cash: 1 then floor(50.1/99.8, 0.01) = 0.50.
    # Asks: 1.5 base total -> 1 then 0.5. Share is 0.5 so both sides are quoted.
    params = fixed(levels=2, level_step_bps=10.0, min_share=None, max_share=None)
    decision = compute_quotes(params, state("1.5", "150"))
    assert sz(decision, Side.BUY) == [D(1), D("0.50")]
    assert sz(decision, Side.SELL) == [D(1), D("0.5")]
    assert (decision.one_sided, decision.reason) == (None, "ok")


def test_empty_balance_side_is_reported() -> None:
    params = fixed(min_share=None, max_share=None)
    decision = compute_quotes(params, state("3", "0"))
    assert (decision.one_sided, decision.reason) == (Side.SELL, "one_side_no_size")
    nothing = compute_quotes(params, state("0", "0"))
    assert (nothing.quotes.all, nothing.reason) == ((), "no_size")


def test_balances_ignored_when_not_enforced() -> None:
    params = fixed(min_share=None, max_share=None, balances_known=False)
    decision = compute_quotes(params, state("0", "0"))
    assert sz(decision, Side.BUY) == sz(decision, Side.SELL) == [D(1)]


@pytest.mark.parametrize(
    ("params", "bid_sizes", "ask_sizes"),
    [
        (fixed(levels=2, max_base=D("6.5")), [D(1), D("0.5")], [D(1), D(1)]),
        (fixed(levels=2, max_base=D(5)), [], [D(1), D(1)]),
        (fixed(levels=2, min_base=D("3.25")), [D(1), D(1)], [D(1), D("0.75")]),
        (fixed(levels=2, min_base=D(6)), [D(1), D(1)], []),
    ],
)
def test_absolute_base_caps(
    params: QuotingParams, bid_sizes: list[Decimal], ask_sizes: list[Decimal]
) -> None:
    decision = compute_quotes(params, state("5", "500"))
    assert (sz(decision, Side.BUY), sz(decision, Side.SELL)) == (bid_sizes, ask_sizes)


def test_quote_size_unit_converts_at_mid() -> None:
    # 250 cash per level at mid 100 = 2.5 base per level, same for every level.
    decision = compute_quotes(fixed(size=D(250), size_unit="quote", levels=2), state("50", "5000"))
    assert sz(decision, Side.BUY) == sz(decision, Side.SELL) == [D("2.5"), D("2.5")]
