"""Property tests: whatever the book, balances and parameters, quotes are safe to send.

The strategies draw issue 19's settings too (per-side spreads, level size growth, fees, the
join, held orders), each off in about half the examples so the plain pipeline stays covered.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from types import MappingProxyType

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kasmm.core.held import Held
from kasmm.core.level_sizes import level_sizes
from kasmm.core.params import QuotingParams, SizeUnit, StrategyKind, VolatilityParams
from kasmm.core.quoting import MarketState, compute_quotes
from kasmm.core.types import Balance, Balances, Book, BookLevel, MarketRules, Quotes, Side

D = Decimal
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Case:
    params: QuotingParams
    state: MarketState


# Amounts are drawn relative to a price scale (1e-3 .. 1e4) so that most examples actually quote
# on both sides; absolute ranges would leave most of them empty and the properties untested.


@st.composite
def case_st(draw: st.DrawFn, *, exact: bool = False, pricing: bool | None = None) -> Case:
    """A market and parameters; ``pricing`` True draws issue 19's pricing settings on (fees
    and a join), False off, ``None`` either."""
    exponent = draw(st.integers(-3, 4))
    scale = D(10) ** exponent
    tick = scale * D(draw(st.sampled_from(["1", "2.5", "5"]))) / D(10) ** draw(st.integers(2, 6))
    lot = D(10) ** (-exponent - draw(st.integers(1, 3)))  # one lot is worth 1e-3 .. 1 cash
    rules = MarketRules(
        "ASSET/CASH",
        "ASSET",
        "CASH",
        tick=tick,
        lot=lot,
        min_notional=D(draw(st.sampled_from(["0", "1", "5", "100"]))),
        min_size=lot * draw(st.integers(0, 3)),
        maker_fee=D(draw(st.sampled_from(["0", "0.001", "0.0025", "0.02", "-0.0002", "-0.003"]))),
    )
    book = draw(book_st(tick, scale))
    mid = book.mid
    assert mid is not None
    fmid = float(mid)
    state = MarketState(
        now=draw(st.floats(0.0, 1e9)),
        book=book,
        rules=rules,
        balances=draw(balances_st(mid)),
        sigma=draw(st.none() | st.floats(0.0, 100.0).map(lambda bps: bps * fmid / 1e4)),
        time_left_s=draw(st.floats(0.0, 3600.0)),
        held=None if exact else draw(held_st(mid)),
    )
    return Case(draw(params_st(mid, exact=exact, pricing=pricing)), state)


@st.composite
def held_st(draw: st.DrawFn, mid: Decimal) -> Held | None:
    """Orders resting outside the quotes: often none, else a few levels and what they lock."""
    if draw(st.booleans()):
        return None
    return Held(
        bid_levels=draw(st.integers(0, 6)),
        ask_levels=draw(st.integers(0, 6)),
        bid_quote=D(draw(st.sampled_from([0, 1, 50, 1000, 10**6]))),
        ask_base=(D(draw(st.sampled_from([0, 1, 50, 1000, 10**6]))) / mid).quantize(D("0.0001")),
    )


@st.composite
def book_st(draw: st.DrawFn, tick: Decimal, scale: Decimal) -> Book:
    bid_ticks = int(scale * D(draw(st.floats(1.0, 10.0))) / tick) + 1
    spread_ticks = draw(st.integers(1, 300))
    depth = draw(st.integers(1, 6))
    sizes = st.sampled_from([D(5), D(5), D("0.001"), D(1), D(40)])  # dust to real size
    gaps = st.sampled_from([1, 1, 2, 7])
    bids, asks, below, above = [], [], bid_ticks, bid_ticks + spread_ticks
    for _ in range(depth):
        if below > 0:
            bids.append(BookLevel(below * tick, draw(sizes)))
        asks.append(BookLevel(above * tick, draw(sizes)))
        below, above = below - draw(gaps), above + draw(gaps)
    return Book(bids=tuple(bids), asks=tuple(asks), ts=0.0)


@st.composite
def balances_st(draw: st.DrawFn, mid: Decimal) -> Balances:
    def amount(unit: Decimal) -> Decimal:
        value = draw(st.sampled_from([0, 10, 100, 1000, 10_000, 100_000]))
        return (D(value) * D(draw(st.floats(0.0, 1.0))) / unit).quantize(D("0.0001"))

    base = Balance(amount(mid), amount(mid))
    cash = Balance(amount(D(1)), amount(D(1)))
    return Balances(MappingProxyType({"ASSET": base, "CASH": cash}))


@st.composite
def params_st(
    draw: st.DrawFn, mid: Decimal, *, exact: bool = False, pricing: bool | None = None
) -> QuotingParams:
    fmid = float(mid)
    strategy: StrategyKind = draw(st.sampled_from(["fixed_spread", "avellaneda_stoikov"]))
    lo = draw(st.none() | st.floats(0.0, 0.5))
    hi = draw(st.none() | st.floats(0.5, 1.0))
    vol = draw(
        st.none()
        | st.builds(
            VolatilityParams,
            halflife_s=st.just(60.0),
            horizon_s=st.floats(0.1, 100.0),
            multiplier=st.floats(0.0, 5.0),
            cap_bps=st.floats(1.0, 1000.0),
        )
    )
    unit: SizeUnit = draw(st.sampled_from(["base", "quote"]))
    notional = D(draw(st.floats(0.5, 5000.0))).quantize(D("0.001"))
    size = notional if unit == "quote" else (notional / mid).quantize(D("0.0001"))
    target_base = draw(st.none() | st.floats(0.0, 50_000.0).map(lambda v: D(int(v / fmid))))
    growth = draw(st.sampled_from(["none", "added", "compounded"]))
    pct = growth == "compounded"
    size_step = D(0)
    if growth == "added":
        size_step = (size * D(draw(st.sampled_from(["0.1", "0.5", "1", "3"])))).quantize(D("1E-4"))
    elif pct:
        size_step = D(draw(st.sampled_from(["5", "10", "50", "100"])))
    new = not exact and (draw(st.booleans()) if pricing is None else pricing)
    return QuotingParams(
        strategy=strategy,
        spread_bps=draw(st.floats(0.1, 1000.0)),
        size=max(size, D("0.0001")),
        size_unit=unit,
        levels=draw(st.integers(1, 5)),
        level_step_bps=draw(st.floats(0.0, 50.0)),
        bid_fraction=draw(st.just(0.5) | st.floats(0.0, 1.0)),
        level_size_step=size_step,
        level_size_step_pct=pct,
        add_fees=new and draw(st.booleans()),
        join_depth=draw(st.sampled_from([None, D(0), D(1), D(6), D(30)])) if new else None,
        join_min_spread_bps=draw(st.none() | st.floats(0.0, 100.0)) if new else None,
        volatility=vol,
        # AS constants scaled to the price so the model's spread lands between ~1 bp and ~20 %
        gamma=draw(st.floats(1e-4, 10.0)) / fmid,
        kappa=draw(st.floats(10.0, 1e5)) / fmid,
        sigma=draw(st.none() | st.floats(0.0, 50.0).map(lambda bps: bps * fmid / 1e4)),
        min_spread_bps=draw(st.floats(0.0, 100.0)),
        target_share=None if target_base is not None else draw(st.floats(0.0, 1.0)),
        target_base=target_base,
        min_share=lo,
        max_share=hi,
        skew_strength=draw(st.floats(0.0, 10.0)),
        min_base=draw(st.none() | st.floats(0.0, 50_000.0).map(lambda v: D(int(v / fmid)))),
        max_base=draw(st.none() | st.floats(1.0, 100_000.0).map(lambda v: D(int(v / fmid) + 1))),
        balances_known=not exact,
        post_only_guard=not exact,
        enforce_min_notional=not exact,
        allow_locked_book=exact,
    )


def assert_well_formed(q: Quotes, rules: MarketRules, levels: int) -> None:
    """Grid, ordering and minimums: what every venue would accept."""
    for side in (q.bids, q.asks):
        assert len(side) <= levels
        for o in side:
            assert o.price > 0 and o.price % rules.tick == 0
            assert o.size % rules.lot == 0 and o.size >= rules.lot and o.size >= rules.min_size
    assert all(a.price > b.price for a, b in zip(q.bids, q.bids[1:], strict=False))
    assert all(a.price < b.price for a, b in zip(q.asks, q.asks[1:], strict=False))
    if q.bids and q.asks:
        assert max(b.price for b in q.bids) < min(a.price for a in q.asks)


@SETTINGS
@given(case_st())
def test_quotes_are_safe(case: Case) -> None:
    params, state, rules = case.params, case.state, case.state.rules
    decision = compute_quotes(params, state)
    event(f"{params.strategy}: {decision.reason}")
    q = decision.quotes
    assert_well_formed(q, rules, params.levels)
    best_bid, best_ask = state.book.best_bid, state.book.best_ask
    assert best_bid is not None and best_ask is not None
    # post-only: never at or through the other traders' opposite touch
    assert all(b.price < best_ask for b in q.bids)
    assert all(a.price > best_bid for a in q.asks)
    for o in q.all:
        assert o.price * o.size >= rules.min_notional
    base = state.balances.total(rules.base)
    cash = state.balances.total(rules.quote)
    assert sum((b.price * b.size for b in q.bids), D(0)) <= cash
    assert sum((a.size for a in q.asks), D(0)) <= base
    if params.max_base is not None:
        assert sum((b.size for b in q.bids), D(0)) <= max(params.max_base - base, D(0))
    if params.min_base is not None:
        assert sum((a.size for a in q.asks), D(0)) <= max(base - params.min_base, D(0))
    # share caps make quoting one-sided
    share = decision.inventory_share
    if share is not None and params.max_share is not None and share > params.max_share:
        assert q.bids == ()
    if share is not None and params.min_share is not None and share < params.min_share:
        assert q.asks == ()


@SETTINGS
@given(case_st(exact=True))
def test_exact_model_quotes_are_well_formed(case: Case) -> None:
    decision = compute_quotes(case.params, case.state)
    event(f"{case.params.strategy}: {decision.reason}")
    assert_well_formed(decision.quotes, case.state.rules, case.params.levels)


ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=150, deadline=None)
@given(
    case_st(),
    st.one_of(st.none(), ANY_FLOAT),
    ANY_FLOAT,
    st.sampled_from(["NaN", "Infinity", "-1", "0", "5"]),
)
def test_garbage_never_raises(case: Case, sigma: float | None, tau: float, bad: str) -> None:
    rules = case.state.rules
    balances = Balances(MappingProxyType({"ASSET": Balance(D(bad)), "CASH": Balance(D(bad))}))
    state = MarketState(case.state.now, case.state.book, rules, balances, sigma, tau)
    decision = compute_quotes(case.params, state)
    assert_well_formed(decision.quotes, rules, case.params.levels)


# --- issue 19's settings -------------------------------------------------------------------


def _lots(x: Decimal, lot: Decimal) -> Decimal:
    return (x / lot).to_integral_value(ROUND_FLOOR) * lot


@SETTINGS
@given(case_st(pricing=True), st.sampled_from(["0", "0.0001", "0.001", "0.0025", "0.02", "0.1"]))
def test_fees_are_covered_by_every_quoted_pair(case: Case, fee_rate: str) -> None:
    """With a maker fee and ``add_fees``, a buy at any bid and a sell at any ask cover both
    fees: ``ask * (1 - fee) >= bid * (1 + fee)``, a join (whatever its minimum) included."""
    fee = D(fee_rate)
    params = replace(
        case.params,
        add_fees=True,
        min_share=None,
        max_share=None,
        balances_known=False,
        min_base=None,
        max_base=None,
    )
    state = replace(case.state, rules=replace(case.state.rules, maker_fee=fee), held=None)
    q = compute_quotes(params, state).quotes
    event(f"both sides quoted: {bool(q.bids and q.asks)}")
    for b in q.bids:
        for a in q.asks:
            assert a.price * (1 - fee) - b.price * (1 + fee) >= 0


@SETTINGS
@given(case_st(pricing=True), st.data())
def test_the_join_never_tightens_below_its_minimum_nor_crosses(
    case: Case, data: st.DataObject
) -> None:
    """A joined side never comes closer to its centre than half the minimum spread (half a
    tick at least), or, without a minimum, than the model put it; it never crosses the book."""
    params, state = case.params, case.state
    depth = data.draw(st.sampled_from([D(0), D("0.5"), D(6), D(30)]), label="join_depth")
    params = replace(params, join_depth=depth)
    decision = compute_quotes(params, state)
    q = decision.quotes
    best_bid, best_ask = state.book.best_bid, state.book.best_ask
    assert best_bid is not None and best_ask is not None
    assert all(b.price < best_ask for b in q.bids) and all(a.price > best_bid for a in q.asks)
    if params.join_min_spread_bps is None:
        # Per level, never closer than without the join (it only backs off).
        plain = compute_quotes(replace(params, join_depth=None), state).quotes
        for joined, alone, buy in ((q.bids, plain.bids, True), (q.asks, plain.asks, False)):
            at = {o.level: o.price for o in alone}
            for o in joined:
                if o.level in at:
                    assert o.price <= at[o.level] if buy else o.price >= at[o.level]
        return
    # The fixed-spread centre, measured as the pipeline measures it (fees off: the model's).
    params = replace(params, strategy="fixed_spread", add_fees=False)
    decision = compute_quotes(params, state)
    min_bps = params.join_min_spread_bps
    if decision.mid is None or min_bps is None:
        return
    tick = state.rules.tick
    mid_ticks = float(decision.mid / tick)
    centre = mid_ticks * (1.0 + decision.skew_bps / 1e4)
    min_half = max(mid_ticks * min_bps / 2e4, 0.5)
    tops = {o.side: o for o in decision.quotes.all if o.level == 0}
    event(f"joined tops: {sorted(s.value for s in tops if s not in decision.join_unmet)}")
    for side, o in tops.items():
        if side in decision.join_unmet:
            continue
        ticks = float(o.price / tick)
        if side is Side.BUY:
            assert ticks <= centre - min_half + 1e-6
        else:
            assert ticks >= centre + min_half - 1e-6


@SETTINGS
@given(case_st())
def test_held_orders_take_their_levels_and_budget(case: Case) -> None:
    params, state, rules = case.params, case.state, case.state.rules
    held = state.held
    q = compute_quotes(params, state).quotes
    if held is None:
        return
    event(f"held levels {held.bid_levels}/{held.ask_levels} of {params.levels}")
    assert len(q.bids) <= max(params.levels - held.bid_levels, 0)
    assert len(q.asks) <= max(params.levels - held.ask_levels, 0)
    assert all(o.level < params.levels - held.bid_levels for o in q.bids)
    assert all(o.level < params.levels - held.ask_levels for o in q.asks)
    cash, base = state.balances.total(rules.quote), state.balances.total(rules.base)
    spent = sum((b.price * b.size for b in q.bids), D(0))
    assert spent <= max(max(cash, D(0)) - held.bid_quote, D(0))
    assert sum((a.size for a in q.asks), D(0)) <= max(max(base, D(0)) - held.ask_base, D(0))


@SETTINGS
@given(case_st())
def test_level_sizes_grow_as_specified(case: Case) -> None:
    """No level rests more than its own size (level 0 ``size``, then the step added or
    compounded), floored to the lot; without budgets that binds, exactly that."""
    params, state, rules = case.params, case.state, case.state.rules
    unlimited = replace(params, balances_known=False, min_base=None, max_base=None)
    decision = compute_quotes(params, state)
    free = compute_quotes(unlimited, state)
    mid = decision.mid if state.reference is None else state.reference
    assert mid is not None
    sizes = level_sizes(
        params.size, params.level_size_step, params.level_size_step_pct, params.levels
    )
    if params.size_unit == "quote":
        sizes = tuple(s / mid for s in sizes)
    event(f"size step {params.level_size_step != 0}, pct {params.level_size_step_pct}")
    for o in decision.quotes.all:
        assert o.size <= _lots(sizes[o.level], rules.lot)
    for o in free.quotes.all:
        assert o.size == _lots(sizes[o.level], rules.lot)
    if params.level_size_step != 0 and not params.level_size_step_pct:
        for side in (free.quotes.bids, free.quotes.asks):
            assert all(a.size <= b.size for a, b in itertools.pairwise(side))
