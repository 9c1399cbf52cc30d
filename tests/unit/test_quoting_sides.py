"""Per-side spreads (``bid_fraction``) and held orders (``MarketState.held``) in the pipeline."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from kasmm.core.held import Held, held_budget, held_levels
from kasmm.core.params import QuotingParams
from kasmm.core.quoting import compute_quotes
from kasmm.core.skew import Budget
from kasmm.core.types import Side
from tests.unit.test_quoting import exact_as, fixed, make_state

D = Decimal
BUY, SELL = Side.BUY, Side.SELL


@pytest.mark.parametrize(
    ("bid_fraction", "bid", "ask"),
    [
        (0.5, "99.80", "100.20"),  # 40 bps around 100: 20 a side
        (0.25, "99.90", "100.30"),  # 10 bps below, 30 above
        (0.75, "99.70", "100.10"),
        (0.0, "100.00", "100.40"),  # all of it above the centre
        (1.0, "99.60", "100.00"),
    ],
)
def test_bid_fraction_splits_the_spread(bid_fraction: float, bid: str, ask: str) -> None:
    state = make_state(quote="1000", base="10")
    params = fixed(spread_bps=40.0, bid_fraction=bid_fraction, skew_strength=0.0)
    decision = compute_quotes(params, state)
    q = decision.quotes
    assert (str(q.bids[0].price), str(q.asks[0].price)) == (bid, ask)
    assert decision.spread_bps == 40.0  # the total, as before


def test_the_volatility_widening_scales_both_sides_alike() -> None:
    from kasmm.core.params import VolatilityParams

    vol = VolatilityParams(horizon_s=1.0, multiplier=1.0, cap_bps=1000.0)
    params = fixed(spread_bps=40.0, bid_fraction=0.25, skew_strength=0.0, volatility=vol)
    state = dataclasses.replace(make_state(quote="1000", base="10"), sigma=0.4)  # 40 bps
    q = compute_quotes(params, state).quotes
    assert (str(q.bids[0].price), str(q.asks[0].price)) == ("99.80", "100.60")  # 80 bps: 20/60


def test_avellaneda_stoikov_ignores_bid_fraction() -> None:
    state = make_state(sigma=1.0)
    plain = compute_quotes(exact_as(), state)
    assert compute_quotes(exact_as(bid_fraction=0.1), state) == plain


@pytest.mark.parametrize("bid_fraction", [-0.1, 1.5, float("nan")])
def test_an_unusable_bid_fraction_is_bad_params(bid_fraction: float) -> None:
    params = fixed(bid_fraction=bid_fraction)
    assert compute_quotes(params, make_state()).reason == "bad_params"


# --- held orders ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "budget", "held", "expected"),
    [
        (BUY, Budget(quote=D(500)), Held(bid_quote=D(120)), Budget(quote=D(380))),
        (BUY, Budget(base=D(3), quote=D(100)), Held(bid_quote=D(120)), Budget(D(3), D(0))),
        (BUY, Budget(), Held(bid_quote=D(120)), Budget()),  # unlimited stays unlimited
        (BUY, Budget(quote=D(500)), Held(ask_base=D(2)), Budget(quote=D(500))),  # the other side
        (SELL, Budget(base=D(5)), Held(ask_base=D(2)), Budget(base=D(3))),
        (SELL, Budget(base=D(1)), Held(ask_base=D(2)), Budget(base=D(0))),
        (SELL, Budget(), Held(ask_base=D(2)), Budget()),
    ],
)
def test_held_budget(side: Side, budget: Budget, held: Held, expected: Budget) -> None:
    assert held_budget(side, budget, held) == expected


@pytest.mark.parametrize(
    ("side", "held", "expected"),
    [
        (BUY, None, 3),
        (BUY, Held(bid_levels=1, ask_levels=2), 2),
        (SELL, Held(bid_levels=1, ask_levels=2), 1),
        (SELL, Held(ask_levels=5), -2),  # 0 or less: the side is empty
    ],
)
def test_held_levels(side: Side, held: Held | None, expected: int) -> None:
    assert held_levels(side, 3, held) == expected


def quoted(params: QuotingParams, held: Held | None) -> tuple[list[str], list[str]]:
    s = dataclasses.replace(make_state(base="3.5", quote="400"), held=held)
    q = compute_quotes(params, s).quotes
    return [f"{o.level}:{o.size}" for o in q.bids], [f"{o.level}:{o.size}" for o in q.asks]


@pytest.mark.parametrize(
    ("held", "bids", "asks"),
    [
        (None, ["0:1.00", "1:1.00", "2:1.00"], ["0:1.00", "1:1.00", "2:1.00"]),
        # a held ask takes a level: the quotes keep the best two
        (Held(ask_levels=1, ask_base=D(1)), ["0:1.00", "1:1.00", "2:1.00"], ["0:1.00", "1:1.00"]),
        # ... and the base it locks: 2.5 of the 3.5 base left to sell
        (Held(ask_levels=1, ask_base=D(1)), None, ["0:1.00", "1:1.00"]),
        (Held(ask_levels=1, ask_base=D(2)), None, ["0:1.00", "1:0.50"]),
        (Held(bid_levels=3), [], None),
        (Held(bid_levels=1, bid_quote=D(250)), ["0:1.00", "1:0.50"], None),  # 400 - 250 cash
    ],
)
def test_held_orders_take_levels_and_budget(
    held: Held | None, bids: list[str] | None, asks: list[str] | None
) -> None:
    params = fixed(levels=3, level_step_bps=10.0, skew_strength=0.0, min_share=None, max_share=None)
    got_bids, got_asks = quoted(params, held)
    if bids is not None:
        assert got_bids == bids
    if asks is not None:
        assert got_asks == asks
