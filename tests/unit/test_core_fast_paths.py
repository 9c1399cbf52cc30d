"""Differential tests: the core's fast paths give exactly what the plain versions give.

The references (``core_reference.py``) are the implementations before issue 15. "Exactly" is
equality *and* the same ``repr``: a Decimal of the same value with another exponent would
print differently (``1E+2`` for ``100``) and reach the venue as another string.
"""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kasmm.bot.engine import _well_formed
from kasmm.core.grid import Grid
from kasmm.core.held import Held
from kasmm.core.join import join_target
from kasmm.core.levels import side_intents
from kasmm.core.pairing import (
    all_on_grid,
    augmenting_match,
    candidates_on_grid,
    closest_on_grid,
    maximum_matching,
    tolerance_of,
    tolerance_ratio,
)
from kasmm.core.params import QuotingParams, RefreshParams
from kasmm.core.prepared import isfinite, prepared, sizing
from kasmm.core.quoting import (
    QUOTING_DEPTH,
    MarketState,
    as_spread,
    compute_quotes,
    exclude_own,
)
from kasmm.core.reconcile import (
    _Bounds,
    _by_level,
    _candidates,
    _usable,
    reconcile,
    safety_reason,
)
from kasmm.core.risk import (
    CountLimit,
    DrawdownLimit,
    InventoryDeviationLimit,
    MidJumpLimit,
    RiskInputs,
    RiskLimits,
    RiskState,
    StaleBookLimit,
    evaluate,
)
from kasmm.core.rules import round_price, round_prices, round_size
from kasmm.core.skew import Excess, effective_target_base, inventory_at, inventory_of
from kasmm.core.types import (
    Balance,
    Balances,
    Book,
    BookLevel,
    CancelOrder,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderIntent,
    Quotes,
    Side,
)
from tests.unit import core_reference as ref
from tests.unit.test_quoting_properties import ANY_FLOAT, Case, case_st

D = Decimal
SETTINGS = settings(max_examples=400, deadline=None)
QUOTING = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = 10_000.0

#: The same values written several ways (trailing zeros, exponents), as venues send them.
spellings = st.sampled_from([lambda d: d, lambda d: d.quantize(D("1.000000")), lambda d: +d])
ticks = st.sampled_from([D("0.01"), D("0.00001"), D("0.5"), D("1"), D("0.0025")])


@st.composite
def price_st(draw: st.DrawFn, tick: Decimal) -> Decimal:
    n = draw(st.integers(1, 400))
    price = n * tick
    if draw(st.booleans()):
        price = draw(spellings)(price)
    return price


size_st = st.sampled_from(
    [D(0), D(-1), D("0.5"), D(1), D("1.0"), D(2), D(5), D("4000"), D("1E+3"), D("0.333")]
)


@st.composite
def book_and_orders(draw: st.DrawFn) -> tuple[Book, list[OpenOrder]]:
    tick = draw(ticks)
    bids = [BookLevel(draw(price_st(tick)), draw(size_st)) for _ in range(draw(st.integers(0, 8)))]
    asks = [BookLevel(draw(price_st(tick)), draw(size_st)) for _ in range(draw(st.integers(0, 8)))]
    bids.sort(key=lambda lv: -lv.price)
    asks.sort(key=lambda lv: lv.price)
    book = Book(bids=tuple(bids), asks=tuple(asks), ts=1.0)
    orders = []
    for i in range(draw(st.integers(0, 8))):
        side = draw(st.sampled_from(Side))
        levels = bids if side is Side.BUY else asks
        resting = draw(st.booleans())
        if levels and resting:
            price = draw(spellings)(draw(st.sampled_from(levels)).price)  # resting in the book
        else:
            price = draw(price_st(tick))
        remaining = draw(size_st)
        orders.append(OpenOrder(ClientOrderId(f"o{i}"), side, price, abs(remaining), remaining, 0))
    return book, orders


def same(a: object, b: object) -> None:
    assert a == b
    assert repr(a) == repr(b)


# --- the book -----------------------------------------------------------------------------


@SETTINGS
@given(book_and_orders())
def test_exclude_own_is_the_plain_strip(case: tuple[Book, list[OpenOrder]]) -> None:
    book, orders = case
    full = ref.exclude_own(book, orders)
    same(exclude_own(book, orders), full)
    for depth in (0, QUOTING_DEPTH, 2, 3):
        cut = Book(bids=full.bids[:depth], asks=full.asks[:depth], ts=full.ts)
        same(exclude_own(book, iter(orders), depth=depth), cut)


@SETTINGS
@given(book_and_orders(), st.sampled_from([D(0), D("0.5"), D(3), D(12), D(10) ** 6]))
def test_stripping_until_a_joins_depth_keeps_what_the_join_reads(
    case: tuple[Book, list[OpenOrder]], until: Decimal
) -> None:
    # The stripped side is the full one up to the first level whose kept size exceeds
    # ``until``, so the join finds the same level in it.
    book, orders = case
    full = exclude_own(book, orders, depth=50)
    cut = exclude_own(book, orders, depth=50, until=until)
    for side, whole, part in ((Side.BUY, full.bids, cut.bids), (Side.SELL, full.asks, cut.asks)):
        assert whole[: len(part)] == part
        sizes = [lvl.size for lvl in part]
        assert all(sum(sizes[:i], D(0)) <= until for i in range(1, len(part)))
        if len(part) < len(whole):
            assert sum(sizes, D(0)) > until
        assert join_target(side, part, until, D("0.01")) == join_target(
            side, whole, until, D("0.01")
        )


def test_exclude_own_at_quoting_depth_keeps_what_quoting_reads() -> None:
    book = Book(
        bids=(BookLevel(D(99), D(3)), BookLevel(D(98), D(5)), BookLevel(D(97), D(5))),
        asks=(BookLevel(D(101), D(10)),),
        ts=3.0,
    )
    mine = [OpenOrder(ClientOrderId("a"), Side.BUY, D("99.0"), D(3), D(3), 0.0)]
    top = exclude_own(book, mine, depth=QUOTING_DEPTH)
    assert (top.best_bid, top.best_ask) == (D(98), D(101))
    assert top.bids == (BookLevel(D(98), D(5)),)


level_values = st.sampled_from(
    [D(1), D("0.08"), D("1E+5"), D(0), D(-1), D("-0"), D("NaN"), D("sNaN"), D("Infinity")]
)


@SETTINGS
@given(
    st.lists(st.tuples(level_values, level_values), max_size=5),
    st.lists(st.tuples(level_values, level_values), max_size=5),
)
def test_well_formed_is_the_plain_check(
    bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]]
) -> None:
    book = Book(
        bids=tuple(BookLevel(p, s) for p, s in bids),
        asks=tuple(BookLevel(p, s) for p, s in asks),
        ts=0.0,
    )
    assert _well_formed(book) is ref.well_formed(book)


# --- reconciliation ------------------------------------------------------------------------


@st.composite
def intents_st(draw: st.DrawFn, side: Side) -> tuple[OrderIntent, ...]:
    out = []
    for level in range(draw(st.integers(0, 4))):
        # Mostly the side's own intents; now and then a malformed one of the other side.
        s = side.opposite if draw(st.integers(0, 9)) == 0 else side
        price = D(draw(st.integers(9_990, 10_010))) / 100
        out.append(OrderIntent(s, draw(spellings)(price), draw(size_st.map(abs)), level))
    return tuple(out)


@st.composite
def open_orders_st(draw: st.DrawFn, near: tuple[OrderIntent, ...]) -> list[OpenOrder]:
    """Open orders, many close to the ``near`` intents (the cases where matching has choices:
    several orders within tolerance of one intent, remaining sizes at the band's edges)."""
    orders = []
    for i in range(draw(st.integers(0, 9))):
        close = draw(st.integers(0, 3)) > 0
        if near and close:
            intent = draw(st.sampled_from(near))
            side = intent.side
            price = intent.price + D(draw(st.integers(-3, 3))) / 100
            size = intent.size or D(1)
            factor = draw(st.sampled_from(["0.5", "0.49", "1", "1.5", "1.51", "0"]))
            remaining = intent.size * D(factor)
        else:
            side = draw(st.sampled_from(Side))
            price = D(draw(st.integers(9_850, 10_150))) / 100
            size = abs(draw(size_st)) or D(1)
            remaining = size * D(draw(st.sampled_from(["0", "0.3", "0.5", "0.8", "1", "1.6"])))
        age = draw(st.sampled_from([0.0, 1.0, 59.999, 60.0, 299.0, 300.0, 600.0, math.nan]))
        cid = f"o{draw(st.integers(0, 3))}" if draw(st.booleans()) else f"o{i}"  # duplicates
        orders.append(
            OpenOrder(
                ClientOrderId(cid),
                side,
                draw(spellings)(price),
                size,
                remaining,
                created_at=NOW - age,
            )
        )
    return orders


@st.composite
def round_st(draw: st.DrawFn) -> tuple[Quotes, list[OpenOrder]]:
    desired = Quotes(bids=draw(intents_st(Side.BUY)), asks=draw(intents_st(Side.SELL)))
    return desired, draw(open_orders_st(desired.all))


refresh_st = st.builds(
    RefreshParams,
    tolerance_bps=st.sampled_from([0.0, 1.0, 2.0, 5.0, 20.0]),
    max_order_age_s=st.sampled_from([60.0, 300.0]),
    min_requote_interval_s=st.sampled_from([0.0, 1.0]),
    levels=st.integers(1, 5),
)


@SETTINGS
@given(round_st(), refresh_st, st.sampled_from([None, NOW - 0.5, NOW - 5.0]))
def test_reconcile_is_the_plain_matching(
    case: tuple[Quotes, list[OpenOrder]], params: RefreshParams, last_action_at: float | None
) -> None:
    desired, orders = case
    same(
        reconcile(desired, orders, NOW, last_action_at, params),
        ref.reconcile(desired, orders, NOW, last_action_at, params),
    )


def ref_match(candidates: list[list[int]]) -> list[int]:
    """Kuhn's augmenting paths as first written (a closure), intent -> order index or -1."""
    owner: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in candidates[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(candidates)):
        augment(i, set())
    return [next((j for j, o in owner.items() if o == i), -1) for i in range(len(candidates))]


def on_grid(grid: Grid, desired: Quotes, orders: list[OpenOrder]) -> tuple[Quotes, list[OpenOrder]]:
    """The same round with each value measured on ``grid``, as the engine measures them."""

    def intent(i: OrderIntent) -> OrderIntent:
        ticks, lots = grid.exact_ticks(i.price), grid.exact_lots(i.size)
        return OrderIntent(i.side, i.price, i.size, i.level, ticks, lots)

    measured = [
        replace(o, ticks=grid.exact_ticks(o.price), lots=grid.exact_lots(o.remaining), grid=grid)
        for o in orders
    ]
    return Quotes(tuple(map(intent, desired.bids)), tuple(map(intent, desired.asks))), measured


@SETTINGS
@given(
    round_st(),
    refresh_st,
    st.sampled_from([None, NOW - 0.5, NOW - 5.0]),
    st.sampled_from([D("0.01"), D("0.005"), D("0.03")]),
    st.sampled_from([D("0.001"), D("0.5"), D(1)]),
)
def test_reconcile_on_the_grid_is_the_plain_matching(
    case: tuple[Quotes, list[OpenOrder]],
    params: RefreshParams,
    last_action_at: float | None,
    tick: Decimal,
    lot: Decimal,
) -> None:
    """Intents and orders carrying ticks and lots are matched in integers: the same actions."""
    desired, orders = case
    grid = Grid(MarketRules("A/B", "A", "B", tick=tick, lot=lot))
    measured_desired, measured = on_grid(grid, desired, orders)
    same(
        reconcile(measured_desired, measured, NOW, last_action_at, params, grid),
        ref.reconcile(desired, orders, NOW, last_action_at, params),
    )
    bounds = _Bounds(desired.bids, desired.asks)
    tolerance = tolerance_of(params)
    for side in (Side.BUY, Side.SELL):
        intents = measured_desired.side(side)
        side_orders = [o for o in measured if o.side is side and o.remaining > 0]
        if all_on_grid(intents, side_orders, grid):
            ratio = tolerance_ratio(params)
            usable = _usable(side_orders, NOW, params, bounds, on_grid=True)
            plain = _candidates(side, intents, side_orders, NOW, params, bounds, tolerance)
            assert candidates_on_grid(side, intents, side_orders, usable, ratio) == plain
            if not intents or not side_orders:
                continue  # reconcile() matches nothing then
            # Each intent's closest candidate, unless two share theirs (then the lists decide).
            closest = closest_on_grid(side, intents, side_orders, usable, ratio)
            firsts = [c[0] for c in plain if c]
            if closest is None:
                assert len(set(firsts)) < len(firsts)
                assert augmenting_match(plain) == maximum_matching(plain) == ref_match(plain)
            else:
                assert closest == [c[0] if c else -1 for c in plain] == maximum_matching(plain)
    # The safety rules in ticks for orders on the grid, in Decimal for the others.
    measured_bounds = _Bounds(measured_desired.bids, measured_desired.asks, grid)
    for o, m in zip(orders, measured, strict=True):
        assert measured_bounds.safety_reason(m) == safety_reason(o, desired.bids, desired.asks)


@SETTINGS
@given(st.lists(st.tuples(st.integers(-1, 3), st.sampled_from(Side)), max_size=6))
def test_places_in_level_order_are_the_sorted_places(levels: list[tuple[int, Side]]) -> None:
    places = [OrderIntent(side, D(1), D(1), level) for level, side in levels]
    in_order = sorted(places, key=lambda i: (i.level, i.side is Side.SELL))
    assert _by_level(places) == (
        [(i.level, i.side) for i in in_order] == [(i.level, i.side) for i in places]
    )


@pytest.mark.parametrize(
    ("order_ticks", "kept", "shared"),
    [
        ((79896, 79848), 2, True),
        ((79896, 79848, 79831), 3, True),
        ((79860,), 1, True),
        ((79903, 79855), 2, True),  # the same distance to intent 1: the client id decides
        ((79925, 79880, 79830), 3, False),
    ],
)
def test_intents_sharing_their_closest_order_are_matched_as_the_plain_matching(
    order_ticks: tuple[int, ...], kept: int, shared: bool
) -> None:
    """The demo's common collision: orders drifted half a level, each the closest of two
    intents (5 bps tolerance, 6 bps levels): the augmenting pass decides, as it always did."""
    grid = Grid(MarketRules("KAS/USDT", "KAS", "USDT", tick=D("0.000001"), lot=D("0.01")))
    params = RefreshParams(
        tolerance_bps=5.0, max_order_age_s=300.0, min_requote_interval_s=0.0, levels=3
    )
    bids = tuple(
        OrderIntent(Side.BUY, grid.price(t), grid.size(150_000), k, t, 150_000)
        for k, t in enumerate((79927, 79879, 79831))
    )
    orders = [
        OpenOrder(ClientOrderId(f"o{i}"), Side.BUY, grid.price(t), D(1500), D(1500), NOW - 1.0,
                  None, i, t, 150_000, grid)
        for i, t in enumerate(order_ticks)
    ]  # fmt: skip
    desired = Quotes(bids=bids)
    actions = reconcile(desired, orders, NOW, None, params, grid)
    same(actions, ref.reconcile(desired, orders, NOW, None, params))
    assert len(orders) - sum(isinstance(a, CancelOrder) for a in actions) == kept
    usable = _usable(orders, NOW, params, _Bounds(bids, (), grid), on_grid=True)
    closest = closest_on_grid(Side.BUY, bids, orders, usable, tolerance_ratio(params))
    assert (closest is None) == shared


def test_reconcile_matches_on_the_grid_when_every_value_is_on_it() -> None:
    """The integer path is the one taken for the engine's own orders (and the same answer)."""
    grid = Grid(MarketRules("A/B", "A", "B", tick=D("0.01"), lot=D(1)))
    intent = OrderIntent(Side.BUY, D("99.98"), D(5), 0, 9998, 5)
    order = OpenOrder(
        ClientOrderId("o1"), Side.BUY, D("99.97"), D(5), D(3), NOW, None, 0, 9997, 3, grid
    )
    assert all_on_grid((intent,), [order], grid)
    assert not all_on_grid((intent,), [replace(order, grid=None)], grid)
    assert not all_on_grid((replace(intent, ticks=-1),), [order], grid)
    params = RefreshParams(
        tolerance_bps=2.0, max_order_age_s=60.0, min_requote_interval_s=0.0, levels=1
    )
    assert reconcile(Quotes(bids=(intent,)), [order], NOW, None, params, grid) == ()
    far = replace(order, price=D("99.95"), ticks=9995)  # 3 bps away: replaced
    assert len(reconcile(Quotes(bids=(intent,)), [far], NOW, None, params, grid)) == 2


# --- quoting -------------------------------------------------------------------------------


def same_decision(params: QuotingParams, state: MarketState) -> None:
    same(compute_quotes(params, state), ref.compute_quotes(params, state))


@QUOTING
@given(case_st())
def test_compute_quotes_is_the_plain_pipeline(case: Case) -> None:
    same_decision(case.params, case.state)


@QUOTING
@given(case_st(pricing=True))
def test_compute_quotes_is_the_plain_pipeline_with_the_pricing_settings(case: Case) -> None:
    """Fees and the join on (with per-side spreads, level size growth and held orders drawn
    as in every case): the fast path applies each stage as the Decimal stages do."""
    same_decision(case.params, case.state)


@QUOTING
@given(case_st(exact=True))
def test_compute_quotes_is_the_plain_pipeline_on_the_exact_model(case: Case) -> None:
    same_decision(case.params, case.state)


@QUOTING
@given(
    case_st(),
    st.one_of(st.none(), ANY_FLOAT),
    ANY_FLOAT,
    st.sampled_from(["NaN", "Infinity", "-1", "0", "5"]),
    st.sampled_from(["tick", "lot", "min_notional", "size", "spread_bps", "level_step_bps", ""]),
    st.sampled_from([math.nan, math.inf, -1.0, 0.0, -0.0]),
)
def test_compute_quotes_is_the_plain_pipeline_on_garbage(
    case: Case, sigma: float | None, tau: float, balance: str, field: str, bad: float
) -> None:
    params, rules = case.params, case.state.rules
    dec: dict[str, Any] = {field: D(repr(bad))}
    if field in ("tick", "lot", "min_notional"):
        rules = replace(rules, **dec)
    elif field == "size":
        params = replace(params, **dec)
    elif field:
        params = replace(params, **{field: bad})  # type: ignore[arg-type]
    balances = Balances(MappingProxyType({"ASSET": Balance(D(balance)), "CASH": Balance(D(5))}))
    state = MarketState(case.state.now, case.state.book, rules, balances, sigma, tau)
    same_decision(params, state)
    same_decision(params, case.state)  # the same params object again: what it derived is kept


@pytest.mark.parametrize("levels", [1, 3])
def test_a_ladder_beyond_the_floats_resolution_is_rounded_as_the_stages_do(levels: int) -> None:
    """Regression (hypothesis found it): an AS reservation price 3e14 ticks away (a garbage
    time left of 3.5e13 s, an inventory 1,400 lots short) was rounded in float ticks, where a
    float's step is 1/16 of a tick, and asked one tick below the stages' Decimal rounding.
    Beyond FLOAT_TICKS_LIMIT the ladder is rounded in Decimal."""
    params = QuotingParams(
        strategy="avellaneda_stoikov",
        spread_bps=1.0,
        size=D("0.9985"),
        levels=levels,
        level_step_bps=0.0 if levels == 1 else 2.5,
        gamma=2.9955067398901645,
        kappa=9.98502246630055,
        sigma=0.0014021,
        target_base=D(1421),
        target_share=None,
        min_share=None,
        max_share=None,
        skew_strength=0.0,
    )
    rules = MarketRules("ASSET/CASH", "ASSET", "CASH", tick=D("0.001"), lot=D("0.1"))
    book = Book(bids=(BookLevel(D("1.001"), D(5)),), asks=(BookLevel(D("1.002"), D(5)),), ts=0.0)
    cash = Balances(MappingProxyType({"ASSET": Balance(D(5)), "CASH": Balance(D(5))}))
    state = MarketState(0.0, book, rules, cash, None, 35377293220716.0)
    asks = compute_quotes(params, state).quotes.asks
    assert len(asks) == levels and asks[0].price > 10**11  # far out indeed
    same_decision(params, state)
    # The fixed-spread model's Decimal ladder too: a spread of 1e9 bps, 5e7 ticks out.
    wide = replace(params, strategy="fixed_spread", spread_bps=1e9, skew_strength=0.7)
    wide_asks = compute_quotes(wide, state).quotes.asks
    assert len(wide_asks) == levels and wide_asks[0].price > 50_000
    same_decision(wide, state)
    # ... and the per-side stages on it: a split spread, fees, a join, grown sizes, held levels.
    fee_rules = replace(rules, maker_fee=D("0.001"))
    shaped = replace(
        wide,
        bid_fraction=0.3,
        add_fees=True,
        join_depth=D(1),  # no minimum: it only backs off, so the ladder stays far out
        level_size_step=D(10),
        level_size_step_pct=True,
    )
    for held in (None, Held(bid_levels=1, ask_levels=levels - 1, ask_base=D("0.5"))):
        shaped_state = replace(state, rules=fee_rules, held=held)
        shaped_asks = compute_quotes(shaped, shaped_state).quotes.asks
        assert shaped_asks and shaped_asks[0].price > 50_000
        same_decision(shaped, shaped_state)


@QUOTING
@given(case_st(), st.lists(st.integers(0, 40), min_size=1, max_size=4))
def test_one_params_object_over_many_markets(case: Case, moves: list[int]) -> None:
    """What a params object derives on its first decision holds for every later one."""
    tick = case.state.rules.tick
    for n in moves:
        book = case.state.book
        shifted = Book(
            bids=tuple(BookLevel(lv.price + n * tick, lv.size) for lv in book.bids),
            asks=tuple(BookLevel(lv.price + n * tick, lv.size) for lv in book.asks),
            ts=book.ts,
        )
        same_decision(case.params, replace(case.state, book=shifted))


@QUOTING
@given(case_st())
def test_inventory_is_the_plain_measure(case: Case) -> None:
    params, state = case.params, case.state
    mid = state.book.mid
    assert mid is not None
    same(
        inventory_at(params, state.balances, state.rules, mid),
        ref.inventory_at(params, state.balances, state.rules, mid),
    )
    for value in (D(0), D(-5), D("123.45")):
        same(
            effective_target_base(params, value, mid),
            ref.effective_target_base(params, value, mid),
        )


@SETTINGS
@given(
    st.sampled_from(Side),
    st.decimals(min_value=D("1e-9"), max_value=D("1e9"), allow_nan=False, places=12),
    ticks,
    st.sampled_from([D("0.001"), D(1), D("0.5"), D("1E+2")]),
)
def test_rounding_is_the_plain_rounding(
    side: Side, x: Decimal, tick: Decimal, lot: Decimal
) -> None:
    same(round_price(side, x, tick), ref.round_price(side, x, tick))
    same(round_size(x, lot), ref.round_size(x, lot))
    rules = MarketRules("A/B", "A", "B", tick=tick, lot=lot)
    raw = [x, x - tick / 3, x - 5 * tick, x + tick]
    same(round_prices(side, raw, rules), ref.round_prices(side, raw, rules))


@SETTINGS
@given(
    st.lists(st.tuples(level_values, level_values), max_size=4),
    st.lists(st.tuples(level_values, level_values), max_size=4),
    st.sampled_from(["bids", "asks", "both", "swapped", "none"]),
)
def test_well_formed_skips_only_the_sides_of_the_accepted_book(
    bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]], shared: str
) -> None:
    accepted = Book(
        bids=tuple(BookLevel(p, s) for p, s in bids),
        asks=tuple(BookLevel(p, s) for p, s in asks),
        ts=0.0,
    )
    if not ref.well_formed(accepted):
        return  # the engine only ever passes a book that passed
    fresh = (BookLevel(D("NaN"), D(1)),)  # a bad side that is not the accepted one
    sides = {
        "bids": (accepted.bids, fresh),
        "asks": (fresh, accepted.asks),
        "both": (accepted.bids, accepted.asks),
        "swapped": (accepted.asks, accepted.bids),
        "none": (fresh, fresh),
    }[shared]
    book = Book(bids=sides[0], asks=sides[1], ts=1.0)
    assert _well_formed(book, accepted) is ref.well_formed(book)


# --- the risk gate -------------------------------------------------------------------------


PAUSE = {"action": st.just("pause"), "pause_s": st.just(5.0)}
limits_st = st.builds(
    RiskLimits,
    max_drawdown=st.none() | st.builds(DrawdownLimit, action=st.just("halt"), quote=st.just(D(50))),
    stale_book=st.none() | st.builds(StaleBookLimit, seconds=st.just(2.0), **PAUSE),
    mid_jump=st.none() | st.builds(MidJumpLimit, pct=st.just(1.0), **PAUSE),
    max_inventory_deviation=st.none()
    | st.builds(InventoryDeviationLimit, action=st.just("reduce_only"), share=st.just(0.1)),
    max_consecutive_errors=st.none()
    | st.builds(CountLimit, action=st.just("reduce_only"), count=st.just(3)),
)

risk_state_st = st.builds(
    RiskState,
    paused_until=st.sampled_from([-math.inf, NOW - 1, NOW + 1]),
    reduce_only=st.sampled_from(
        [frozenset(), frozenset({"max_inventory_deviation"}), frozenset({"x"})]
    ),
)

risk_inputs_st = st.builds(
    RiskInputs,
    now=st.just(NOW),
    last_book_ts=st.sampled_from([None, NOW - 1, NOW - 3]),
    mid=st.sampled_from([None, D(100), D(102)]),
    previous_mid=st.sampled_from([None, D(100)]),
    book_crossed=st.booleans(),
    equity=st.sampled_from([None, D(900), D(1000)]),
    peak_equity=st.sampled_from([None, D(1000)]),
    inventory_excess=st.sampled_from([None, Excess(D(1), 0.05), Excess(D(-9), -0.3)]),
    consecutive_errors=st.integers(0, 5),
)


@SETTINGS
@given(limits_st, risk_state_st, risk_inputs_st)
def test_evaluate_is_the_plain_evaluation(
    limits: RiskLimits, state: RiskState, inputs: RiskInputs
) -> None:
    same(evaluate(limits, state, inputs), ref.evaluate(limits, state, inputs))


# --- what quoting derives once per params object ------------------------------------------

#: Shares and portfolio values at full Decimal precision, where a product or a quotient rounds.
share_values = st.sampled_from([0.0, 1e-9, 0.1, 0.2, 0.3, 0.30000000000000004, 0.5, 0.9, 1.0])
precise = st.decimals(
    min_value=D("1e-6"), max_value=D("1e12"), allow_nan=False, allow_infinity=False, places=20
)


@SETTINGS
@given(share_values, share_values, share_values, precise, precise)
def test_share_target_within_the_caps_is_never_capped(
    a: float, b: float, c: float, value: Decimal, mid: Decimal
) -> None:
    """The caps are skipped for a share target between them: they could not have moved it."""
    low, target, high = sorted((a, b, c))
    params = QuotingParams(
        strategy="fixed_spread",
        spread_bps=10.0,
        size=D(1),
        target_share=target,
        min_share=low,
        max_share=high,
    )
    assert prepared(params).shares.target_within_caps
    same(effective_target_base(params, value, mid), ref.effective_target_base(params, value, mid))


def test_share_target_outside_the_caps_is_capped() -> None:
    params = QuotingParams(
        strategy="fixed_spread", spread_bps=10.0, size=D(1), target_share=0.95, max_share=0.9
    )
    assert not prepared(params).shares.target_within_caps
    assert effective_target_base(params, D(100), D(1)) == D(90)


@SETTINGS
@given(
    st.floats(1e-6, 10.0),
    st.floats(1e-6, 1e5),
    st.floats(0.0, 50.0),
    st.floats(0.0, 3600.0),
)
def test_as_intensity_is_the_constant_term_of_the_spread(
    gamma: float, kappa: float, sigma: float, tau: float
) -> None:
    params = QuotingParams(
        strategy="avellaneda_stoikov", spread_bps=1.0, size=D(1), gamma=gamma, kappa=kappa
    )
    intensity = prepared(params).as_intensity
    assert gamma * sigma * sigma * tau + intensity == as_spread(gamma, sigma, tau, kappa)


@pytest.mark.parametrize("x", [0.0, -0.0, 1.5, -1e308, 5e-324, math.inf, -math.inf, math.nan])
def test_isfinite_is_math_isfinite(x: float) -> None:
    assert isfinite(x) is math.isfinite(x)


@pytest.mark.parametrize(
    ("size", "levels", "lot", "full"),
    [
        (D(1500), 3, D("0.01"), D("4500.00")),
        (D("1500.009"), 2, D("0.01"), D("3000.00")),  # whole lots: what the levels get
        (D("9999999999999999999999999999"), 3, D("1"), None),  # beyond 28 digits: none
    ],
)
def test_sizing_in_lots(size: Decimal, levels: int, lot: Decimal, full: Decimal | None) -> None:
    params = QuotingParams(strategy="fixed_spread", spread_bps=10.0, size=size, levels=levels)
    grid = Grid(MarketRules("A/B", "A", "B", tick=D("0.01"), lot=lot))
    made = sizing(prepared(params), params, grid)
    assert made.size_lots == grid.floor_lots(size)
    assert made.full_base == full
    assert sizing(prepared(params), params, grid) is made  # kept for the grid
    quote = replace(params, size_unit="quote")
    assert sizing(prepared(quote), quote, grid).size_lots == -1


@pytest.mark.parametrize(
    ("step", "pct", "lots", "full"),
    [
        (D(0), False, None, D("4500.00")),  # no growth: one size for every level
        (D(250), False, (150000, 175000, 200000), D("5250.00")),
        (D(10), True, (150000, 165000, 181500), D("4965.00")),
        (D("0.006"), False, (150000, 150000, 150001), D("4500.01")),  # each floored to the lot
    ],
)
def test_sizing_with_level_size_growth(
    step: Decimal, pct: bool, lots: tuple[int, ...] | None, full: Decimal
) -> None:
    """Every budget shortcut counts the levels' real sizes (``full_base``, ``total_lots``)."""
    params = QuotingParams(
        strategy="fixed_spread",
        spread_bps=10.0,
        size=D(1500),
        levels=3,
        level_size_step=step,
        level_size_step_pct=pct,
    )
    grid = Grid(MarketRules("A/B", "A", "B", tick=D("0.01"), lot=D("0.01")))
    made = sizing(prepared(params), params, grid)
    assert made.level_lots == lots
    assert made.full_base == full
    assert made.total_lots == (3 * 150000 if lots is None else sum(lots))


@SETTINGS
@given(
    st.sampled_from(Side),
    st.integers(1, 4),
    st.integers(1, 1000),
    st.integers(0, 5000),
    st.booleans(),
)
def test_a_base_budget_for_every_level_at_full_size_never_binds(
    side: Side, levels: int, size_lots: int, extra: int, guard: bool
) -> None:
    grid = Grid(MarketRules("A/B", "A", "B", tick=D("0.01"), lot=D("0.001")))
    ladder = (10_000.0, 3.5, 2.25, levels)
    touch = (9_990, 10_010) if guard else None
    budget = levels * size_lots + extra
    assert side_intents(side, ladder, grid, touch, size_lots, budget, -1, True) == side_intents(
        side, ladder, grid, touch, size_lots, -1, -1, True
    )
    # Sizes per level: a budget for their sum never binds either.
    grown = tuple(size_lots + i * extra for i in range(levels))
    free = side_intents(side, ladder, grid, touch, size_lots, -1, -1, True, None, grown)
    assert [o.lots for o in free] == [grown[o.level] for o in free]
    assert free == side_intents(side, ladder, grid, touch, -5, sum(grown), -1, True, None, grown)


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=D(0), max_value=D("1e9"), allow_nan=False, places=9),
            st.integers(1, 10**15),
        ),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([D("0.01"), D("0.000001"), D("0.0025")]),
    st.sampled_from([D("0.01"), D(1), D("1E-8")]),
)
def test_quote_fits_only_when_the_budget_covers_the_units(
    calls: list[tuple[Decimal, int]], tick: Decimal, lot: Decimal
) -> None:
    params = QuotingParams(strategy="fixed_spread", spread_bps=10.0, size=D(1))
    grid = Grid(MarketRules("A/B", "A", "B", tick=tick, lot=lot))
    made = sizing(prepared(params), params, grid)
    for quote, units in calls:  # one Sizing, its bound kept from call to call
        if made.quote_fits(quote, units):
            assert grid.floor_units(quote) >= units


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 1000), st.integers(0, 10**6), st.integers(2, 500))
def test_a_quote_budget_for_every_bid_at_full_size_never_binds(
    levels: int, size_lots: int, extra: int, touch_ask: int
) -> None:
    grid = Grid(MarketRules("A/B", "A", "B", tick=D("0.01"), lot=D("0.001")))
    ladder = (float(touch_ask), 3.5, 2.25, levels)
    guard = (touch_ask - 7, touch_ask)  # bids at touch_ask - 1 ticks or below
    units = levels * size_lots * (touch_ask - 1) + extra
    assert side_intents(Side.BUY, ladder, grid, guard, size_lots, -1, units, True) == (
        side_intents(Side.BUY, ladder, grid, guard, size_lots, -1, -1, True)
    )


def test_grid_sizes_are_the_same_values_in_any_order() -> None:
    grid = Grid(MarketRules("A/B", "A", "B", tick=D("0.01"), lot=D("0.010")))
    for lots in (3, 3, 150000, 3, 0, 150000, 150000):
        same(grid.size(lots), D(lots) * D("0.010"))


@QUOTING
@given(case_st())
def test_inventory_without_the_target_share_is_the_same_otherwise(case: Case) -> None:
    params, state = case.params, case.state
    mid = state.book.mid
    assert mid is not None
    base, quote = state.balances.total("ASSET"), state.balances.total("CASH")
    shares = prepared(params).shares
    full = inventory_of(params, base, quote, mid, shares)
    lean = inventory_of(params, base, quote, mid, shares, False)
    same(lean, replace(full, target_share=lean.target_share))
    assert lean.target_share in (None, full.target_share)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, 20_000),
            st.integers(-(10**12), 10**12),
        ),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from(["0.01", "0.000001", "5", "1E+1", "0.10"]),
)
def test_grid_price_is_the_tick_times_the_ticks(ticks: list[int], tick: str) -> None:
    """Grid.price hands out ``tick * ticks`` exactly from its cache (the tick's
    exponent included), whatever the order of the ticks, and the same object for a price
    asked twice in a row."""
    grid = Grid(MarketRules("A/B", "A", "B", tick=D(tick), lot=D("0.01")))
    for t in ticks:
        p = grid.price(t)
        expected = D(tick) * t
        assert p == expected and str(p) == str(expected)
        assert grid.price(t) is p
