"""Property tests: whatever the book, balances and parameters, quotes are safe to send."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kasmm.core.params import QuotingParams, SizeUnit, StrategyKind, VolatilityParams
from kasmm.core.quoting import MarketState, compute_quotes
from kasmm.core.types import Balance, Balances, Book, BookLevel, MarketRules, Quotes

D = Decimal
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Case:
    params: QuotingParams
    state: MarketState


# Amounts are drawn relative to a price scale (1e-3 .. 1e4) so that most examples actually quote
# on both sides; absolute ranges would leave most of them empty and the properties untested.


@st.composite
def case_st(draw: st.DrawFn, *, exact: bool = False) -> Case:
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
    )
    return Case(draw(params_st(mid, exact=exact)), state)


@st.composite
def book_st(draw: st.DrawFn, tick: Decimal, scale: Decimal) -> Book:
    bid_ticks = int(scale * D(draw(st.floats(1.0, 10.0))) / tick) + 1
    spread_ticks = draw(st.integers(1, 300))
    depth = draw(st.integers(1, 4))
    bids = tuple(BookLevel((bid_ticks - i) * tick, D(5)) for i in range(depth) if bid_ticks > i)
    asks = tuple(BookLevel((bid_ticks + spread_ticks + i) * tick, D(5)) for i in range(depth))
    return Book(bids=bids, asks=asks, ts=0.0)


@st.composite
def balances_st(draw: st.DrawFn, mid: Decimal) -> Balances:
    def amount(unit: Decimal) -> Decimal:
        value = draw(st.sampled_from([0, 10, 100, 1000, 10_000, 100_000]))
        return (D(value) * D(draw(st.floats(0.0, 1.0))) / unit).quantize(D("0.0001"))

    base = Balance(amount(mid), amount(mid))
    cash = Balance(amount(D(1)), amount(D(1)))
    return Balances(MappingProxyType({"ASSET": base, "CASH": cash}))


@st.composite
def params_st(draw: st.DrawFn, mid: Decimal, *, exact: bool = False) -> QuotingParams:
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
    return QuotingParams(
        strategy=strategy,
        spread_bps=draw(st.floats(0.1, 1000.0)),
        size=max(size, D("0.0001")),
        size_unit=unit,
        levels=draw(st.integers(1, 5)),
        level_step_bps=draw(st.floats(0.0, 50.0)),
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
