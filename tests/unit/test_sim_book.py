"""The random-walk market's synthetic book: both model versions against plain references.

* version 1 (``regenerate``): the books equal a plain ``Decimal`` implementation of the
  documented formulas, draw for draw (the seeded paths of every earlier kasmm);
* version 2 (``incremental``): after any sequence of mid moves the book equals a full
  regeneration on the grid with the same sizes, keeps the sizes and the level objects of the
  prices that stayed, and draws once per entering level;
* both: never crossed, strictly monotonic, on tick; consumed liquidity comes back at the next
  update and not before.
"""

from __future__ import annotations

import itertools
import math
import random
from decimal import Decimal
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kasmm.clock import VirtualClock
from kasmm.config.schema import RandomWalkMarket, SimVenueConfig
from kasmm.core.types import (
    Book,
    BookLevel,
    BookUpdated,
    ClientOrderId,
    OrderRequest,
    Side,
    VenueOrderId,
)
from kasmm.venues.sim import SimVenue
from kasmm.venues.sim.grid_ladder import GridLadder, grid_spacing
from kasmm.venues.sim.matching import OwnOrders, RestingOrder, crossed_by, merge_levels, merge_own
from kasmm.venues.sim.random_walk import RandomWalkModel, expovariate, gauss
from kasmm.venues.sim.tick_book import TickBook, TickSide

D = Decimal
SETTINGS = settings(max_examples=200, deadline=None)
BookUpdate = Literal["regenerate", "incremental"]


def venue(
    market: RandomWalkMarket, *, seed: int = 1, tick: str = "0.000001", lot: str = "0.01"
) -> tuple[SimVenue, VirtualClock]:
    """A connected random-walk venue on a virtual clock."""
    clock = VirtualClock()
    config = SimVenueConfig(type="sim", seed=seed, tick=D(tick), lot=D(lot), market=market)
    sim = SimVenue(config, "KAS/USDT", clock, trade_id_tag="t")
    sim.exchange.connect_now()
    return sim, clock


def books(sim: SimVenue, clock: VirtualClock, count: int) -> list[Book]:
    """The next ``count`` published books, driving the market in virtual time."""
    out: list[Book] = []
    while len(out) < count:
        nxt = sim.exchange.poll()
        if isinstance(nxt, float):
            clock.advance_to(nxt)
            sim.exchange.step()
        elif isinstance(nxt, BookUpdated):
            out.append(nxt.book)
    return out


# --- version 1: the documented formulas, plainly ------------------------------------------------


Levels = list[tuple[D, D]]


def reference_v1_books(
    market: RandomWalkMarket, seed: int, tick: D, lot: D, count: int
) -> list[tuple[Levels, Levels]]:
    """Version 1 with no takers, written plainly from the module docstring (``Decimal`` sizes,
    ``rng.uniform``): the implementation kasmm shipped before the book moved to ticks."""
    rng = random.Random(seed)
    mid = float(market.s0)
    half = market.book_spread_bps / 2
    offsets = [(half + i * market.book_step_bps) / 1e4 for i in range(market.book_levels)]

    def size() -> D:
        noisy = float(market.book_level_size) * rng.uniform(0.8, 1.2)
        return max(1, math.floor(noisy / float(lot))) * lot

    def regenerate() -> tuple[list[tuple[D, D]], list[tuple[D, D]]]:
        bids: list[tuple[D, D]] = []
        prev: int | None = None
        for off in offsets:
            n = math.floor(mid * (1 - off) / float(tick))
            if prev is not None:
                n = min(n, prev - 1)
            if n < 1:
                break
            bids.append((n * tick, size()))
            prev = n
        asks: list[tuple[D, D]] = []
        prev = math.floor(bids[0][0] / tick) if bids else None
        for off in offsets:
            n = math.ceil(mid * (1 + off) / float(tick))
            if prev is not None:
                n = max(n, prev + 1)
            asks.append((n * tick, size()))
            prev = n
        return bids, asks

    out = [regenerate()]
    rng.expovariate(market.taker_rate_per_s)  # the first taker's arrival, drawn at start
    sigma = market.sigma_bps / 1e4 * math.sqrt(market.book_interval_s)
    while len(out) < count:
        mid *= math.exp(sigma * rng.gauss(0.0, 1.0))
        out.append(regenerate())
    return out


def as_pairs(levels: tuple[BookLevel, ...]) -> list[tuple[D, D]]:
    return [(level.price, level.size) for level in levels]


def test_v1_books_are_the_plain_formulas_draw_for_draw() -> None:
    cases = [
        ({}, "0.000001", "0.01"),
        ({"sigma_bps": 50.0, "book_levels": 7}, "0.000001", "0.01"),
        # A tick coarser than the level step: rounding collapses levels, the clamp separates.
        ({"sigma_bps": 20.0}, "0.0001", "1"),
        # A mid a few ticks above zero: the bids run out before book_levels.
        ({"s0": D("0.0005"), "sigma_bps": 300.0, "book_levels": 50}, "0.0001", "0.5"),
    ]
    for overrides, tick, lot in cases:
        market = RandomWalkMarket(  # type: ignore[arg-type]
            book_update="regenerate", taker_rate_per_s=1e-9, **overrides
        )
        sim, clock = venue(market, seed=7, tick=tick, lot=lot)
        got = books(sim, clock, 300)
        want = reference_v1_books(market, 7, D(tick), D(lot), 300)
        for book, (bids, asks) in zip(got, want, strict=True):
            # Equal values and the same Decimal exponents (reprs), as before.
            assert repr(as_pairs(book.bids)) == repr(bids)
            assert repr(as_pairs(book.asks)) == repr(asks)


# --- version 2: the grid ladder against a full regeneration -------------------------------------


def grid_reference(
    mid: float, levels: int, spacing: int, spread_bps: float, tick: float
) -> tuple[list[int], list[int]]:
    """The version 2 book's prices (ticks) at ``mid``, from scratch (grid_ladder docstring)."""
    grid = tick * spacing
    best_bid = math.floor(mid * (1 - spread_bps / 2e4) / grid)
    best_ask = max(math.ceil(mid * (1 + spread_bps / 2e4) / grid), best_bid + 1)
    bids = [(best_bid - i) * spacing for i in range(levels) if best_bid - i >= 1]
    asks = [(best_ask + i) * spacing for i in range(levels)]
    return bids, asks


class Draws:
    """A size source that numbers its draws (so each level's size says when it was drawn)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, n: int) -> list[int]:
        lots = list(range(self.count + 1, self.count + n + 1))
        self.count += n
        return lots


log_moves = st.lists(
    st.one_of(st.floats(-0.0005, 0.0005), st.floats(-0.05, 0.05), st.just(0.0)),
    min_size=1,
    max_size=60,
)


@SETTINGS
@given(
    moves=log_moves,
    levels=st.integers(1, 25),
    step_bps=st.sampled_from([0.5, 2.0, 7.0]),
    spread_bps=st.sampled_from([0.1, 4.0, 10.0, 60.0]),
    tick=st.sampled_from([D("0.000001"), D("0.0001")]),
    s0=st.sampled_from([0.08, 0.0009, 3.0]),
)
def test_v2_incremental_book_equals_a_full_regeneration(
    moves: list[float], levels: int, step_bps: float, spread_bps: float, tick: D, s0: float
) -> None:
    lot = D("0.01")
    spacing = grid_spacing(s0, step_bps, float(tick))
    book = TickBook(tick, lot)
    draws = Draws()
    ladder = GridLadder(
        book,
        levels=levels,
        spacing=spacing,
        spread_bps=spread_bps,
        tick=float(tick),
        draw_lots=draws,
    )
    mid = s0
    ladder.move(mid)
    for move in moves:
        before = {side: dict(zip(ts.ticks, ts.lots, strict=True)) for side, ts in _sides(book)}
        objects = {side: dict(zip(ts.ticks, ts.levels(), strict=True)) for side, ts in _sides(book)}
        drawn = draws.count
        mid *= math.exp(move)
        ladder.move(mid)
        want_bids, want_asks = grid_reference(mid, levels, spacing, spread_bps, float(tick))
        assert book.bids.ticks == want_bids
        assert book.asks.ticks == want_asks
        entering = 0
        for side, ts in _sides(book):
            for ticks, lots, level in zip(ts.ticks, ts.lots, ts.levels(), strict=True):
                assert level == BookLevel(ticks * tick, lots * lot)  # rendered = the ints
                if ticks in before[side]:
                    # A price that stayed keeps its size and its rendered object.
                    assert lots == before[side][ticks]
                    assert level is objects[side][ticks]
                else:
                    assert lots > drawn  # drawn by this move
                    entering += 1
        assert draws.count - drawn == entering  # one draw per entering level, none else
        # Draw order: best first within a side, bids before asks.
        fresh = [n for _, ts in _sides(book) for n in ts.lots if n > drawn]
        assert fresh == sorted(fresh)


def _sides(book: TickBook) -> tuple[tuple[Side, TickSide], ...]:
    return (Side.BUY, book.bids), (Side.SELL, book.asks)


# --- both versions: invariants and consumed liquidity ------------------------------------------


def assert_well_formed(book: Book, tick: D) -> None:
    bids = [level.price for level in book.bids]
    asks = [level.price for level in book.asks]
    assert all(a > b for a, b in itertools.pairwise(bids))
    assert all(a < b for a, b in itertools.pairwise(asks))
    assert not book.is_crossed
    for level in (*book.bids, *book.asks):
        assert level.price > 0 and level.size > 0
        assert level.price % tick == 0


@settings(max_examples=40, deadline=None)
@given(
    book_update=st.sampled_from(["regenerate", "incremental"]),
    seed=st.integers(0, 10_000),
    sigma_bps=st.sampled_from([0.5, 2.0, 80.0]),
    spread_bps=st.sampled_from([0.5, 10.0]),
    step_bps=st.sampled_from([0.3, 2.0]),
    tick=st.sampled_from(["0.000001", "0.0001"]),
)
def test_books_are_never_crossed_monotonic_and_on_tick(
    book_update: BookUpdate,
    seed: int,
    sigma_bps: float,
    spread_bps: float,
    step_bps: float,
    tick: str,
) -> None:
    market = RandomWalkMarket(
        book_update=book_update,
        sigma_bps=sigma_bps,
        book_spread_bps=spread_bps,
        book_step_bps=step_bps,
        taker_rate_per_s=5.0,
    )
    sim, clock = venue(market, seed=seed, tick=tick)
    for book in books(sim, clock, 150):
        assert_well_formed(book, D(tick))


def test_the_default_book_model_is_version_2() -> None:
    # Since issue 15 a profile without ``book_update`` gets the incremental book; version 1
    # stays available by name and gives different seeded books.
    default = books(*venue(RandomWalkMarket(taker_rate_per_s=1e-9), seed=3), 50)
    v2 = books(
        *venue(RandomWalkMarket(book_update="incremental", taker_rate_per_s=1e-9), seed=3), 50
    )
    v1 = books(
        *venue(RandomWalkMarket(book_update="regenerate", taker_rate_per_s=1e-9), seed=3), 50
    )
    assert [(b.bids, b.asks) for b in default] == [(b.bids, b.asks) for b in v2]
    assert [(b.bids, b.asks) for b in default] != [(b.bids, b.asks) for b in v1]


def test_v2_most_updates_move_no_level_and_reuse_the_rendered_sides() -> None:
    market = RandomWalkMarket(book_update="incremental", taker_rate_per_s=1e-9)
    sim, clock = venue(market)
    published = books(sim, clock, 400)
    same = sum(a.bids is b.bids and a.asks is b.asks for a, b in itertools.pairwise(published))
    # Default market: a 0.63 bps mid step against a 2 bps grid.
    assert same > len(published) / 3
    shared = sum(
        len({id(level) for level in a.bids} & {id(level) for level in b.bids})
        for a, b in itertools.pairwise(published)
    )
    assert shared > 0.8 * 20 * (len(published) - 1)


@pytest.mark.parametrize("book_update", ["regenerate", "incremental"])
@pytest.mark.parametrize("taker", [Side.BUY, Side.SELL])
def test_consumed_liquidity_stays_consumed_until_the_next_update(
    book_update: BookUpdate, taker: Side
) -> None:
    # A still mid: the update after the taker moves nothing (in version 2, no level).
    market = RandomWalkMarket(book_update=book_update, sigma_bps=1e-9, taker_rate_per_s=1e-9)
    sim, clock = venue(market)
    (first,) = books(sim, clock, 1)
    hit, other = (first.asks, first.bids) if taker is Side.BUY else (first.bids, first.asks)
    sim.submit_taker(taker, hit[0].size + hit[1].size / 2)
    (after,) = books(sim, clock, 1)  # the taker's book, at the same time
    assert clock.now() == 0.0
    hit_after, other_after = (
        (after.asks, after.bids) if taker is Side.BUY else (after.bids, after.asks)
    )
    assert hit_after[0] == BookLevel(hit[1].price, hit[1].size / 2)
    assert hit_after[1:] == hit[2:]
    assert other_after == other
    assert sim.book == Book(after.bids, after.asks, sim.book.ts)  # no update yet: still consumed
    (updated,) = books(sim, clock, 1)
    assert clock.now() > 0.0
    hit_updated = updated.asks if taker is Side.BUY else updated.bids
    if book_update == "incremental":
        assert updated.bids == first.bids and updated.asks == first.asks  # all given back
    else:
        # Rebuilt in full (new sizes; a price may round one tick the other way).
        assert len(hit_updated) == len(hit)
        assert abs(hit_updated[0].price - hit[0].price) <= D("0.000001")
        assert hit_updated[0].size >= D("0.8") * market.book_level_size


def test_the_price_cache_stays_small_over_a_long_walk() -> None:
    # A supervisor runs hundreds of sim venues: each one's tick -> Decimal cache is bounded
    # to what a book around the mid needs, not to everything a long random walk visited.
    from kasmm.venues.sim.tick_book import _PRICE_CACHE_MAX, TickBook

    book = TickBook(Decimal("0.000001"), Decimal("0.01"))
    for ticks in range(50_000, 60_000):
        assert book.price(ticks) == ticks * Decimal("0.000001")
    assert len(book._prices) <= _PRICE_CACHE_MAX <= 256


@settings(max_examples=25, deadline=None)
@given(
    book_update=st.sampled_from(["regenerate", "incremental"]),
    seed=st.integers(0, 10_000),
    offsets=st.lists(st.integers(-25, 25).filter(lambda n: n != 0), min_size=1, max_size=8),
)
def test_published_books_are_the_plain_merge_of_levels_and_orders(
    book_update: BookUpdate, seed: int, offsets: list[int]
) -> None:
    # The rendered book reuses its last merged sides while neither input changed: it must
    # always equal the plain merge of what takers left and the bot's orders now (fills, new
    # and cancelled orders, moves and consumed levels in between).
    market = RandomWalkMarket(book_update=book_update, sigma_bps=20.0, taker_rate_per_s=5.0)
    sim, clock = venue(market, seed=seed)
    exchange, model = sim.exchange, sim.exchange.model
    assert isinstance(model, RandomWalkModel)
    tick = D("0.000001")
    count = 0
    previous: Book | None = None
    quiet = False  # no request and no fill since the previous book
    for n in range(400):
        nxt = exchange.poll()
        if isinstance(nxt, float):
            clock.advance_to(nxt)
            exchange.step()
            continue
        if not isinstance(nxt, BookUpdated):
            quiet = False  # a fill
            continue
        book, orders, synthetic = nxt.book, exchange.state.orders, model.synthetic
        want_bids = merge_own(synthetic.bids.levels(), orders.side(Side.BUY), Side.BUY)
        want_asks = merge_own(synthetic.asks.levels(), orders.side(Side.SELL), Side.SELL)
        assert (book.bids, book.asks) == (want_bids, want_asks)
        if previous is not None and quiet and book_update == "incremental":
            # Unchanged sides are the same tuples (what the engine short-cuts on).
            if previous.bids == book.bids:
                assert previous.bids is book.bids
            if previous.asks == book.asks:
                assert previous.asks is book.asks
        previous, quiet = book, True
        if n % 7 == 0 and book.bids and book.asks:
            # Requote around the mid: cancel one order, place a few (some on synthetic prices).
            quiet = False
            for order in list(orders)[:1]:
                exchange.cancel_order_now(order.client_id)
            mid = (book.bids[0].price + book.asks[0].price) / 2
            for offset in offsets[: 1 + n % 3]:
                side = Side.BUY if offset < 0 else Side.SELL
                best = book.bids[0].price if side is Side.BUY else book.asks[0].price
                price = (best + offset * 20 * tick).quantize(tick)
                if (side is Side.BUY and price >= mid) or (side is Side.SELL and price <= mid):
                    continue
                count += 1
                request = OrderRequest(ClientOrderId(f"o{count}"), side, price, D(300))
                exchange.place_orders_now([request])  # errors (crossing) are outcomes


def test_a_side_shows_what_takers_left_after_each_take() -> None:
    book = TickBook(D("0.01"), D(1))
    side = book.asks
    side.set_levels([100, 101, 102], [5, 5, 5])
    full = side.levels()
    assert full == (
        BookLevel(D("1.00"), D(5)),
        BookLevel(D("1.01"), D(5)),
        BookLevel(D("1.02"), D(5)),
    )
    takes = [
        (D(2), [("1.00", 3), ("1.01", 5), ("1.02", 5)]),
        (D(3), [("1.01", 5), ("1.02", 5)]),
        (D(1), [("1.01", 4), ("1.02", 5)]),
        (D(4), [("1.02", 5)]),
    ]
    for size, left in takes:
        side.consume(size)
        shown = side.levels()
        assert shown == tuple(BookLevel(D(p), D(s)) for p, s in left)
        assert side.levels() is shown  # unchanged until the next take
        assert side.head() == (shown[0].price, shown[0].size)
        assert shown[-1] is full[-1]  # untouched levels are the rendered objects
    side.restore()
    assert side.levels() is full


@settings(max_examples=300, deadline=None)
@given(
    side=st.sampled_from([Side.BUY, Side.SELL]),
    synthetic=st.lists(st.integers(90, 110), unique=True, max_size=8),
    mine=st.lists(st.integers(85, 115), unique=True, max_size=5),
    taken=st.integers(0, 25),
    off_tick=st.booleans(),
)
def test_a_merged_side_is_merge_levels(
    side: Side, synthetic: list[int], mine: list[int], taken: int, off_tick: bool
) -> None:
    # The tick walk of TickSide.merged against the definition, with levels taken by takers,
    # shared prices, and a bot price off the tick (which falls back to the definition).
    book = TickBook(D("0.5"), D(1))
    tside = book.side(side)
    best_first = side is Side.BUY
    tside.set_levels(sorted(synthetic, reverse=best_first), [3] * len(synthetic))
    while taken and tside.head() is not None:
        size = min(D(taken), tside.head()[1])  # type: ignore[index]
        tside.consume(size)
        taken -= int(size)
    prices = [D(p) / 2 for p in sorted(mine, reverse=best_first)]
    if off_tick and prices:
        prices[-1] += D("0.25")
    levels = tuple(BookLevel(p, D(2)) for p in prices)
    assert tside.merged(levels) == merge_levels(tside.levels(), levels, side)


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_the_compiled_draws_are_randoms_own(seed: int) -> None:
    # gauss and expovariate are Random's bodies, to compile them: the same floats and the same
    # generator state, mixed in any order with the generator's own methods.
    ours, theirs = random.Random(seed), random.Random(seed)
    for i in range(2000):
        kind = i % 5
        if kind in (0, 1):
            assert gauss(ours) == theirs.gauss(0.0, 1.0)
        elif kind == 2:
            assert expovariate(ours, 2.0) == theirs.expovariate(2.0)
        elif kind == 3:
            assert ours.gauss(0.0, 1.0) == gauss(theirs)  # a pair begun by the other
        else:
            assert ours.random() == theirs.random()
        assert ours.getstate() == theirs.getstate()


@settings(max_examples=300, deadline=None)
@given(
    bids=st.lists(st.integers(90, 100), unique=True, max_size=6),
    asks=st.lists(st.integers(95, 110), unique=True, max_size=6),
    mine=st.lists(
        st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(85, 115), st.booleans()),
        max_size=8,
    ),
)
def test_crossed_orders_and_merged_sides_by_ticks_are_the_definitions(
    bids: list[int], asks: list[int], mine: list[tuple[Side, int, bool]]
) -> None:
    # Orders that carry their ticks are compared and merged in ticks; the others by price.
    book = TickBook(D("0.5"), D(1))
    book.bids.set_levels(sorted(bids, reverse=True), [3] * len(bids))
    book.asks.set_levels(sorted(asks), [3] * len(asks))
    orders = OwnOrders()
    for n, (side, ticks, known) in enumerate(mine):
        price = ticks * D("0.5")
        cid = ClientOrderId(f"o{n}")
        order = RestingOrder(cid, VenueOrderId(str(n)), side, price, D(2), D(2), 0.0, n)
        order.ticks = ticks if known else -1
        orders.add(order)
    want = crossed_by(orders, book.bids.best(), book.asks.best())
    assert [id(o) for o in book.crossed(orders)] == [id(o) for o in want]
    for side, tside in ((Side.BUY, book.bids), (Side.SELL, book.asks)):
        level_ticks = orders.level_ticks(side)
        levels = orders.levels(side)
        if level_ticks is not None:
            assert level_ticks == [int(level.price / D("0.5")) for level in levels]
        assert tside.merged(levels, level_ticks) == merge_levels(tside.levels(), levels, side)
