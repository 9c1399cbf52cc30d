"""Joining the book (``join_depth``): the stages, their float-ticks form, the pipeline with them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kasmm.core.join import join_ladder, join_limit, join_prices, join_target, side_centre
from kasmm.core.params import QuotingParams
from kasmm.core.quoting import MarketState, compute_quotes
from kasmm.core.types import Book, BookLevel, Side
from tests.unit.test_quoting import fixed, make_balances, make_rules

D = Decimal
BUY, SELL = Side.BUY, Side.SELL


def levels(*pairs: tuple[str, str]) -> tuple[BookLevel, ...]:
    return tuple(BookLevel(D(p), D(s)) for p, s in pairs)


@pytest.mark.parametrize(
    ("side", "book", "depth", "target"),
    [
        # The first level already exceeds the depth: one tick inside it.
        (BUY, levels(("99.50", "10")), "5", 9951),
        (SELL, levels(("100.50", "10")), "5", 10049),
        # Dust ahead of us is ignored: the summed size passes 5 at the third level.
        (BUY, levels(("99.50", "1"), ("99.40", "2"), ("99.30", "3")), "5", 9931),
        (SELL, levels(("100.50", "1"), ("100.60", "2"), ("100.70", "3")), "5", 10069),
        # Exactly the depth is not more than it: the next level.
        (BUY, levels(("99.50", "5"), ("99.40", "1")), "5", 9941),
        # A depth of 0: the best level itself.
        (BUY, levels(("99.50", "0.001")), "0", 9951),
        # An off-grid level: the first grid price strictly inside it.
        (BUY, levels(("99.505", "10")), "5", 9951),
        (SELL, levels(("100.505", "10")), "5", 10050),
        # The visible levels never pass the depth, or the side is empty: no join.
        (BUY, levels(("99.50", "1"), ("99.40", "2")), "5", None),
        (SELL, (), "0", None),
        # Garbage ends the walk.
        (BUY, levels(("99.50", "1"), ("NaN", "10")), "5", None),
        (BUY, levels(("99.50", "-1"), ("99.40", "10")), "0", None),
    ],
)
def test_join_target(
    side: Side, book: tuple[BookLevel, ...], depth: str, target: int | None
) -> None:
    assert join_target(side, book, D(depth), D("0.01")) == target


@pytest.mark.parametrize(
    ("side", "min_bps", "expected"),
    [
        (BUY, None, "99.90"),  # no minimum: the side's own best price
        (SELL, None, "100.10"),
        (BUY, "10", "99.95"),  # half of 10 bps of 100 from the centre
        (SELL, "10", "100.05"),
        (BUY, "0", "99.995"),  # never closer than half a tick
        (SELL, "0.5", "100.005"),
    ],
)
def test_join_limit(side: Side, min_bps: str | None, expected: str) -> None:
    top = D("99.90") if side is BUY else D("100.10")
    bps = None if min_bps is None else D(min_bps)
    assert join_limit(side, D(100), top, D(100), bps, D("0.01")) == D(expected)


@pytest.mark.parametrize(
    ("side", "prices", "target", "limit", "expected"),
    [
        (BUY, ("99.90", "99.80"), "99.51", "99.90", ("99.51", "99.41")),  # backs off
        (BUY, ("99.90", "99.80"), "99.97", "99.90", ("99.90", "99.80")),  # would tighten: stays
        (BUY, ("99.90", "99.80"), "99.97", "99.95", ("99.95", "99.85")),  # tightens to the min
        (SELL, ("100.10", "100.20"), "100.49", "100.10", ("100.49", "100.59")),
        (SELL, ("100.10", "100.20"), "100.02", "100.05", ("100.05", "100.15")),
        (SELL, (), "100.02", "100.05", ()),
    ],
)
def test_join_prices(
    side: Side, prices: tuple[str, ...], target: str, limit: str, expected: tuple[str, ...]
) -> None:
    out = join_prices(side, tuple(map(D, prices)), D(target), D(limit))
    assert out == tuple(map(D, expected))


@pytest.mark.parametrize(
    ("side", "fee", "expected"),
    [
        (BUY, None, "100"),
        (BUY, "0.001", "99.900"),  # a fee moves the bound out with the prices
        (SELL, "0.001", "100.100"),
        (BUY, "-0.001", "100"),  # a rebate never moves it in
        (SELL, "-0.001", "100"),
    ],
)
def test_side_centre(side: Side, fee: str | None, expected: str) -> None:
    assert side_centre(side, D(100), None if fee is None else D(fee)) == D(expected)


@pytest.mark.parametrize(
    ("side", "ladder", "target", "min_half", "top"),
    [
        (BUY, (10_000.0, 10.0, 2.0, 3), 9_950, -1.0, 9_950.0),
        (BUY, (10_000.0, 10.0, 2.0, 3), 9_995, -1.0, 9_990.0),  # only backs off
        (BUY, (10_000.0, 10.0, 2.0, 3), 9_999, 5.0, 9_995.0),  # down to the minimum
        (SELL, (10_000.0, 10.0, 2.0, 3), 10_050, -1.0, 10_050.0),
        (SELL, (10_000.0, 10.0, 2.0, 3), 10_001, 0.5, 10_001.0),
        (SELL, (10_000.0, 10.0, 2.0, 3), 10_000, 0.5, 10_000.5),
    ],
)
def test_join_ladder_moves_the_ladder_in_ticks(
    side: Side, ladder: tuple[float, float, float, int], target: int, min_half: float, top: float
) -> None:
    c, half, step, n = join_ladder(side, ladder, target, 10_000.0, min_half)
    assert (step, n) == (ladder[2], ladder[3])  # deeper levels keep their step
    assert (c - half if side is BUY else c + half) == top


def join_state(bids: tuple[BookLevel, ...], asks: tuple[BookLevel, ...]) -> MarketState:
    return MarketState(
        now=0.0,
        book=Book(bids=bids, asks=asks, ts=0.0),
        rules=make_rules(),
        balances=make_balances("50", "5000"),
        sigma=None,
        time_left_s=1.0,
    )


#: Dust at the touch (99.99 / 100.01), real size behind it (99.50 / 100.50); mid 100.
DUSTY = join_state(
    levels(("99.99", "0.1"), ("99.50", "10")), levels(("100.01", "0.1"), ("100.50", "10"))
)


@pytest.mark.parametrize(
    ("params", "bids", "asks"),
    [
        # 20 bps: 99.90 / 100.10 without a join.
        (fixed(levels=2, level_step_bps=10.0), ("99.90", "99.80"), ("100.10", "100.20")),
        # The join backs off to one tick inside the size beyond the dust; levels keep the step.
        (fixed(levels=2, level_step_bps=10.0, join_depth=D(1)), ("99.51", "99.41"),
         ("100.49", "100.59")),
        # A depth of 0 joins the dust itself: closer than the model, so no move without a min.
        (fixed(levels=2, level_step_bps=10.0, join_depth=D(0)), ("99.90", "99.80"),
         ("100.10", "100.20")),
        # With a minimum of 4 bps it may tighten, down to 2 bps from the centre.
        (fixed(levels=2, level_step_bps=10.0, join_depth=D(0), join_min_spread_bps=4.0),
         ("99.98", "99.88"), ("100.02", "100.12")),
        # Joining the dust exactly (min 0): one tick inside it, but the post-only guard holds.
        (fixed(join_depth=D(0), join_min_spread_bps=0.0), ("99.99",), ("100.01",)),
    ],
)  # fmt: skip
def test_compute_quotes_joins_the_book(
    params: QuotingParams, bids: tuple[str, ...], asks: tuple[str, ...]
) -> None:
    decision = compute_quotes(params, DUSTY)  # an inventory on target: no skew
    assert tuple(str(o.price) for o in decision.quotes.bids) == bids
    assert tuple(str(o.price) for o in decision.quotes.asks) == asks
    assert decision.join_unmet == ()


def test_the_join_never_crosses_a_one_tick_book() -> None:
    """A target one tick inside the best bid of a one-tick book is the ask: the guard keeps
    the bid behind it (the guard is on with a join even where the profile turned it off)."""
    state = join_state(levels(("99.99", "10")), levels(("100.00", "10")))
    params = fixed(join_depth=D(1), join_min_spread_bps=0.0, skew_strength=0.0)
    q = compute_quotes(params, state).quotes
    assert q.bids[0].price < D("100.00") and q.asks[0].price > D("99.99")
    unguarded = fixed(join_depth=D(1), join_min_spread_bps=0.0, post_only_guard=False)
    q = compute_quotes(unguarded, state).quotes
    assert q.bids[0].price < D("100.00") and q.asks[0].price > D("99.99")


def test_a_side_without_enough_visible_size_is_not_joined_and_the_decision_says_so() -> None:
    state = join_state(levels(("99.50", "0.5")), levels(("100.50", "10")))
    params = fixed(join_depth=D(1), skew_strength=0.0)
    decision = compute_quotes(params, state)
    assert decision.join_unmet == (BUY,)
    assert decision.quotes.bids[0].price == D("99.90")  # where the model put it
    assert decision.quotes.asks[0].price == D("100.49")
    assert compute_quotes(fixed(skew_strength=0.0), state).join_unmet == ()
