"""Issue 19's pricing settings in a backtest: each read from the quotes and fills of a sim path.

Per-side spreads, level size growth, fee-aware prices and joining the book are stages of the
pure pipeline (unit and property tests hold them there); here each runs through the production
engine on a simulated market, and its effect is read from what the bot quoted, placed and got
filled. The profile is the demo's without what would blur the reading: no volatility widening,
no inventory skew (the centre is the mid), no schedule, no kill switch.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kasmm.config.schema import Profile
from kasmm.core.quoting import exclude_own
from kasmm.core.types import Book, BookLevel, BookUpdated, Side
from tests.backtest_trace import Step, Trace, trace_backtest
from tests.support import demo_profile, kill_switch_only

D = Decimal
TICK = D("0.000001")
BPS = D(10_000)


def profile(mode: dict[str, Any], **overrides: Any) -> Profile:
    passive = {"spread_bps": 20, "size": 1000, "levels": 1, "level_step_bps": 6, **mode}
    return demo_profile(
        modes={"passive": passive},
        schedule=[],
        strategy={"type": "fixed_spread", "volatility": None},
        inventory={"skew_strength": 0, "min_share": 0.05, "max_share": 0.95},
        kill_switch=kill_switch_only(),
        **overrides,
    )


def quoted(trace: Trace) -> list[Step]:
    """Steps whose decision (taken on a book event) quoted both sides."""
    return [
        s
        for s in trace.steps
        if isinstance(s.event, BookUpdated)
        and s.decision is not None
        and s.decision.quotes.bids
        and s.decision.quotes.asks
        and s.decision.mid is not None
    ]


def distance_bps(step: Step, side: Side, level: int = 0) -> Decimal:
    """How far the side's level sits from the own mid the decision saw, in bps."""
    assert step.decision is not None and step.decision.mid is not None
    mid = step.decision.mid
    quotes = step.decision.quotes
    price = (quotes.bids if side is Side.BUY else quotes.asks)[level].price
    return abs(price - mid) / mid * BPS


def tick_bps(step: Step) -> Decimal:
    assert step.decision is not None and step.decision.mid is not None
    return TICK / step.decision.mid * BPS


def test_per_side_spreads_put_each_side_at_its_own_distance() -> None:
    trace = trace_backtest(
        profile({"spread_bps": None, "bid_spread_bps": 10, "ask_spread_bps": 30}), 600
    )
    steps = quoted(trace)
    assert len(steps) > 1000
    for s in steps:  # rounding moves a price at most one tick away from the mid
        assert D(10) <= distance_bps(s, Side.BUY) <= D(10) + tick_bps(s)
        assert D(30) <= distance_bps(s, Side.SELL) <= D(30) + tick_bps(s)
    # The bid sits behind fewer of the market's levels than the ask: it fills more.
    buys, sells = len(trace.fills_of(Side.BUY)), len(trace.fills_of(Side.SELL))
    assert buys > 2 * sells > 0


def test_level_sizes_grow_by_a_percentage_or_an_amount() -> None:
    for step, sizes in (
        ("50%", ("1000.00", "1500.00", "2250.00")),
        (250, ("1000", "1250", "1500")),
    ):
        trace = trace_backtest(profile({"levels": 3, "level_size_step": step}), 300)
        expected = tuple(D(x) for x in sizes)
        full = [s for s in quoted(trace) if len(s.decision.quotes.bids) == 3]  # type: ignore[union-attr]
        assert len(full) > 500
        for s in full:
            assert s.decision is not None
            assert tuple(i.size for i in s.decision.quotes.bids) == expected
            assert tuple(i.size for i in s.decision.quotes.asks) == expected
        # what the venue got: every level's size, and nothing else
        assert {p.size for p in trace.placed} == set(expected)
        filled = {f.client_id for _, f in trace.fills}
        assert {p.size for p in trace.placed if p.client_id in filled} >= set(expected[:2])


def test_added_fees_make_every_quoted_round_trip_cover_both_fees() -> None:
    fee = D("0.001")  # 10 bps maker fee, twice the half spread
    plain = trace_backtest(profile({"spread_bps": 10}, venue={"fees": {"maker_bps": 10}}), 300)
    added = trace_backtest(
        profile({"spread_bps": 10}, venue={"fees": {"maker_bps": 10}}, pricing={"add_fees": True}),
        300,
    )

    def net(step: Step) -> Decimal:
        assert step.decision is not None
        bid, ask = step.decision.quotes.bids[0].price, step.decision.quotes.asks[0].price
        return ask * (1 - fee) - bid * (1 + fee)  # sell at the ask, buy at the bid, both fees

    assert all(net(s) < 0 for s in quoted(plain))  # 10 bps of spread against 20 of fees
    steps = quoted(added)
    assert len(steps) > 500 and all(net(s) > 0 for s in steps)
    for s in steps:  # each side moved out by the fee: 5 bps + 10 bps * (1 -+ 5 bps)
        assert D("14.99") <= distance_bps(s, Side.BUY) <= D("15.0") + tick_bps(s)
        assert D("15.0") <= distance_bps(s, Side.SELL) <= D("15.01") + tick_bps(s)
    assert added.fills  # it still trades


def test_a_maker_rebate_tightens_the_quotes() -> None:
    trace = trace_backtest(
        profile({"spread_bps": 10}, venue={"fees": {"maker_bps": -4}}, pricing={"add_fees": True}),
        300,
    )
    steps = quoted(trace)
    assert len(steps) > 500
    for s in steps:  # 5 bps - 4 bps of rebate, and never through the own book
        assert D("0.99") <= distance_bps(s, Side.BUY) <= D("1.01") + tick_bps(s)
        assert D("0.99") <= distance_bps(s, Side.SELL) <= D("1.01") + tick_bps(s)


def joined_price(book: Book, side: Side, depth: Decimal) -> Decimal | None:
    """One tick inside the first competing level with more than ``depth`` ahead of it."""
    levels: tuple[BookLevel, ...] = book.bids if side is Side.BUY else book.asks
    ahead = D(0)
    for level in levels:
        ahead += level.size
        if ahead > depth:
            return level.price + TICK if side is Side.BUY else level.price - TICK
    return None


def join_steps(trace: Trace) -> list[tuple[Step, Book]]:
    """Quoting steps with the other traders' book their decision saw (the event's book without
    the open orders of the step before: the decision came before its own actions)."""
    both = {id(s) for s in quoted(trace)}
    return [
        (step, exclude_own(step.book, before.open_orders))
        for before, step in zip(trace.steps, trace.steps[1:], strict=False)
        if id(step) in both and step.book is not None
    ]


def test_joining_backs_off_to_one_tick_inside_the_size_beyond_the_dust() -> None:
    # The model quotes 2 bps from the mid, inside the market's 10 bps spread; the join moves
    # each side back to one tick inside the first level with more than 1,500 KAS ahead of it
    # (each market level holds 1,000): ahead of the second level, never tighter than the model.
    depth = D(1500)
    trace = trace_backtest(profile({"spread_bps": 4}, pricing={"join_depth": 1500}), 300)
    steps = join_steps(trace)
    assert len(steps) > 500
    backed_off = 0
    for step, others in steps:
        assert step.decision is not None and step.decision.mid is not None
        mid = step.decision.mid
        bid, ask = step.decision.quotes.bids[0].price, step.decision.quotes.asks[0].price
        assert bid <= mid * (1 - D(2) / BPS) and ask >= mid * (1 + D(2) / BPS)
        target_bid, target_ask = (
            joined_price(others, Side.BUY, depth),
            joined_price(others, Side.SELL, depth),
        )
        if target_bid is not None and target_bid < mid * (1 - D(2) / BPS):
            assert bid == target_bid
            backed_off += 1
        if target_ask is not None and target_ask > mid * (1 + D(2) / BPS):
            assert ask == target_ask
    assert backed_off > len(steps) // 2


def test_joining_with_a_minimum_spread_tightens_a_wide_quote_to_the_book() -> None:
    depth = D(1500)
    wide = profile({"spread_bps": 40})
    plain = trace_backtest(wide, 300)
    trace = trace_backtest(
        profile({"spread_bps": 40}, pricing={"join_depth": 1500, "join_min_spread_bps": 2}), 300
    )
    steps = join_steps(trace)
    assert len(steps) > 500
    for step, others in steps:
        assert step.decision is not None and step.decision.mid is not None
        mid = step.decision.mid
        bid = step.decision.quotes.bids[0].price
        assert bid <= mid * (1 - D(1) / BPS)  # never inside half the minimum spread
        target = joined_price(others, Side.BUY, depth)
        if target is not None and target <= mid * (1 - D(1) / BPS):
            assert bid == target
    # 20 bps from the mid, the wide quotes rarely fill; joined ~7 bps out, they fill often.
    assert len(trace.fills) > 3 * max(1, len(plain.fills))
