"""Quoting core, deviation rule and reduce-only gate together, for both kinds of target.

The bot feeds the quoting core's ``decision.excess`` to both the ``max_inventory_deviation``
rule and the gate; these tests do the same, so the rule and the gate can never disagree.
"""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kasmm.core.params import QuotingParams
from kasmm.core.quoting import MarketState, compute_quotes
from kasmm.core.risk import (
    InventoryDeviationLimit,
    RiskInputs,
    RiskLimits,
    RiskState,
    TradingState,
    evaluate,
    gate,
)
from kasmm.core.types import Balance, Balances, Book, BookLevel, MarketRules, Quotes, Side

D = Decimal
RULES = MarketRules("ASSET/CASH", "ASSET", "CASH", tick=D("0.01"), lot=D("0.01"))
DEVIATION = RiskLimits(
    max_inventory_deviation=InventoryDeviationLimit(share=0.2, action="reduce_only")
)


def market(base: str, quote: str) -> MarketState:
    book = Book(bids=(BookLevel(D(99), D(10)),), asks=(BookLevel(D(101), D(10)),), ts=0.0)
    balances = Balances(MappingProxyType({"ASSET": Balance(D(base)), "CASH": Balance(D(quote))}))
    return MarketState(0.0, book, RULES, balances, None, 1.0)


def fixed(**kw: Any) -> QuotingParams:
    return QuotingParams(**{"strategy": "fixed_spread", "spread_bps": 20.0, "size": D(1), **kw})


def absolute(target: str, **kw: Any) -> QuotingParams:
    return fixed(target_share=None, target_base=D(target), **kw)


def avellaneda(target: str) -> QuotingParams:
    return QuotingParams(
        strategy="avellaneda_stoikov",
        spread_bps=10.0,
        size=D(1),
        gamma=0.1,
        kappa=1.5,
        sigma=1.0,
        target_share=None,
        target_base=D(target),
    )


# Portfolio worth 1000 at mid 100: ``base`` 9.5 is a 95 % base share.
@pytest.mark.parametrize(
    ("params", "base", "quote", "state", "bids", "asks"),
    [
        # target_base: the deviation is measured against the target's share of the portfolio
        (absolute("5"), "9.5", "50", TradingState.REDUCE_ONLY, False, True),  # 95 % vs 50 %
        (absolute("2", levels=3), "8", "200", TradingState.REDUCE_ONLY, False, True),
        (absolute("8", levels=3), "2", "800", TradingState.REDUCE_ONLY, True, False),
        (absolute("5"), "0.5", "950", TradingState.REDUCE_ONLY, True, False),  # 5 % vs 50 %
        (absolute("5"), "6", "400", TradingState.ACTIVE, True, True),  # 10 points off: fine
        (avellaneda("2"), "8", "200", TradingState.REDUCE_ONLY, False, True),
        (avellaneda("8"), "2", "800", TradingState.REDUCE_ONLY, True, False),
        # target_share: unchanged
        (fixed(), "8", "200", TradingState.REDUCE_ONLY, False, True),
        (fixed(), "2", "800", TradingState.REDUCE_ONLY, True, False),
        (fixed(), "6", "400", TradingState.ACTIVE, True, True),
    ],
)
def test_deviation_trips_and_reduce_only_quotes_the_reducing_side(
    params: QuotingParams, base: str, quote: str, state: TradingState, bids: bool, asks: bool
) -> None:
    decision = compute_quotes(params, market(base, quote))
    risk, trips = evaluate(
        DEVIATION, RiskState(), RiskInputs(now=0.0, inventory_excess=decision.excess)
    )
    assert risk.trading_state(0.0) is state
    assert [t.rule for t in trips] == (["max_inventory_deviation"] if risk.reduce_only else [])
    gated = gate(decision.quotes, risk.trading_state(0.0), decision.excess)
    assert (bool(gated.bids), bool(gated.asks)) == (bids, asks)


def test_a_target_beyond_a_share_cap_does_not_fight_the_cap() -> None:
    # 10 base is worth the whole portfolio at this mid, beyond max_share 0.9: the caps quote
    # only asks above 0.9, so the target is held at the cap and reduce-only agrees with them
    # (before, it quoted bids only, the caps asks only, and together nothing).
    decision = compute_quotes(absolute("10"), market("9.5", "50"))
    assert decision.reason == "above_max_share" and decision.quotes.asks
    assert decision.excess is not None and decision.excess.base == D("0.5")
    gated = gate(decision.quotes, TradingState.REDUCE_ONLY, decision.excess)
    assert gated.asks == decision.quotes.asks and gated.bids == ()


def amounts(top: int) -> st.SearchStrategy[Decimal]:
    return st.integers(0, top * 100).map(lambda n: D(n) / 100)


@st.composite
def reduce_case(draw: st.DrawFn) -> tuple[QuotingParams, MarketState]:
    """Fixed-spread or AS, either target kind, any caps, around mid 100 with 1000 of capital."""
    target_base = draw(st.none() | amounts(12))
    caps = st.none() | amounts(12)
    params = QuotingParams(
        strategy=draw(st.sampled_from(["fixed_spread", "avellaneda_stoikov"])),
        spread_bps=20.0,
        size=draw(amounts(3).filter(lambda x: x > 0)),
        levels=draw(st.integers(1, 4)),
        level_step_bps=10.0,
        gamma=0.1,
        kappa=1.5,
        sigma=draw(st.floats(0.0, 2.0)),
        target_share=None if target_base is not None else draw(st.floats(0.0, 1.0)),
        target_base=target_base,
        min_share=draw(st.none() | st.floats(0.0, 0.5)),
        max_share=draw(st.none() | st.floats(0.5, 1.0)),
        min_base=draw(caps),
        max_base=draw(caps),
    )
    base = draw(amounts(10))
    quote = draw(amounts(1000))
    return params, market(str(base), str(quote))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reduce_case())
def test_reduce_only_never_quotes_the_side_that_grows_the_excess(
    case: tuple[QuotingParams, MarketState],
) -> None:
    params, state = case
    decision = compute_quotes(params, state)
    excess = decision.excess
    gated = gate(decision.quotes, TradingState.REDUCE_ONLY, excess)
    if excess is None or excess.sign == 0:
        assert gated == Quotes()
        return
    reducing = Side.SELL if excess.sign > 0 else Side.BUY
    assert gated.side(reducing.opposite) == ()
    offered = decision.quotes.side(reducing)
    kept = gated.side(reducing)
    # Never nothing when the core had a reducing quote; never more levels than cover it.
    assert kept == offered[: len(kept)]
    assert bool(kept) == bool(offered)
    assert sum((o.size for o in kept[:-1]), D(0)) < abs(excess.base)
    # The share caps and the excess agree on which side is long (where base caps do not
    # override the share caps).
    share = decision.inventory_share
    if share is not None and params.min_base is None and params.max_base is None:
        if params.max_share is not None and share > params.max_share:
            assert excess.sign > 0
        if params.min_share is not None and share < params.min_share:
            assert excess.sign < 0
