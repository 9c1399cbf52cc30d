"""Price-time priority of the simulated venue's combined book (pure functions, no venue)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from kasmm.core.types import BookLevel, ClientOrderId, Side, VenueOrderId
from kasmm.venues.sim.matching import (
    Execution,
    OwnOrders,
    RestingOrder,
    SyntheticBook,
    SyntheticLevel,
    aggregate,
    combined_best,
    crossed_by,
    crossed_orders,
    merge_own,
    merged_book,
    sweep,
)

D = Decimal


def book(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> SyntheticBook:
    """A synthetic book from (price, size) strings, best first."""
    return SyntheticBook(
        [SyntheticLevel(D(p), D(s)) for p, s in bids],
        [SyntheticLevel(D(p), D(s)) for p, s in asks],
    )


def own(*orders: tuple[str, Side, str, str]) -> OwnOrders:
    """Bot orders (client id, side, price, size) placed in the given order."""
    result = OwnOrders()
    for seq, (cid, side, price, size) in enumerate(orders, start=1):
        result.add(
            RestingOrder(
                client_id=ClientOrderId(cid),
                venue_id=VenueOrderId(str(seq)),
                side=side,
                price=D(price),
                size=D(size),
                remaining=D(size),
                created_at=0.0,
                seq=seq,
            )
        )
    return result


def executed(executions: list[Execution]) -> list[tuple[str, Decimal, Decimal]]:
    """Executions as comparable (client id, price, size) tuples."""
    return [(e.order.client_id, e.price, e.size) for e in executions]


def test_better_price_first() -> None:
    synthetic = book([], [("100", "5")])
    orders = own(("me", Side.SELL, "99", "3"))
    executions, traded = sweep(synthetic, orders, Side.BUY, D(4))
    assert executed(executions) == [("me", D(99), D(3))]
    assert traded == 4
    assert synthetic.asks == [SyntheticLevel(D(100), D(4))]


def test_synthetic_is_ahead_of_the_bot_at_equal_price() -> None:
    synthetic = book([("100", "5")], [])
    orders = own(("me", Side.BUY, "100", "3"))
    executions, _ = sweep(synthetic, orders, Side.SELL, D(6))
    assert executed(executions) == [("me", D(100), D(1))]
    assert synthetic.bids == []  # the level was exhausted before the bot traded


def test_bot_orders_at_one_price_fill_first_in_first_out() -> None:
    synthetic = book([], [])
    orders = own(
        ("first", Side.SELL, "100", "2"),
        ("worse", Side.SELL, "101", "5"),
        ("second", Side.SELL, "100", "2"),
    )
    executions, traded = sweep(synthetic, orders, Side.BUY, D(3))
    assert executed(executions) == [("first", D(100), D(2)), ("second", D(100), D(1))]
    assert traded == 3


def test_partial_fill_leaves_the_order_untouched_for_the_caller() -> None:
    orders = own(("me", Side.BUY, "10", "5"))
    executions, _ = sweep(book([], []), orders, Side.SELL, D(2))
    assert executed(executions) == [("me", D(10), D(2))]
    order = orders.get(ClientOrderId("me"))
    assert order is not None and order.remaining == 5  # settlement is the caller's job


def test_sweep_walks_levels_and_stops_when_the_side_runs_out() -> None:
    synthetic = book([], [("100", "1"), ("101", "1")])
    orders = own(("me", Side.SELL, "100.5", "1"))
    executions, traded = sweep(synthetic, orders, Side.BUY, D(10))
    assert executed(executions) == [("me", D("100.5"), D(1))]
    assert traded == 3
    assert synthetic.asks == []


def test_crossed_orders_are_those_at_or_through_the_opposite_best() -> None:
    synthetic = book([("99", "1")], [("101", "1")])
    orders = own(
        ("bid-through", Side.BUY, "102", "1"),
        ("bid-at", Side.BUY, "101", "1"),
        ("bid-ok", Side.BUY, "100", "1"),
        ("ask-at", Side.SELL, "99", "1"),
        ("ask-ok", Side.SELL, "100", "1"),
    )
    assert [o.client_id for o in crossed_orders(synthetic, orders)] == [
        "bid-through",
        "bid-at",
        "ask-at",
    ]


def test_merged_book_aggregates_per_price_and_sorts() -> None:
    synthetic = book([("99", "1"), ("98", "1")], [("101", "1")])
    orders = own(
        ("a", Side.BUY, "98", "2"),
        ("b", Side.BUY, "99.5", "3"),
        ("c", Side.BUY, "98", "4"),
        ("d", Side.SELL, "100.5", "1"),
    )
    merged = merged_book(synthetic, orders, ts=5.0)
    assert merged.bids == (
        BookLevel(D("99.5"), D(3)),
        BookLevel(D(99), D(1)),
        BookLevel(D(98), D(7)),
    )
    assert merged.asks == (BookLevel(D("100.5"), D(1)), BookLevel(D(101), D(1)))
    assert merged.ts == 5.0
    assert combined_best(synthetic.best(Side.SELL), orders, Side.SELL) == D("100.5")
    assert combined_best(None, OwnOrders(), Side.BUY) is None


def reference_merge(
    levels: list[tuple[Decimal, Decimal]], orders: OwnOrders, side: Side
) -> tuple[BookLevel, ...]:
    """The merged side as a dict per price, sorted: what merge_own must equal."""
    sizes: dict[Decimal, Decimal] = {}
    for price, size in levels:
        sizes[price] = sizes.get(price, D(0)) + size
    for order in orders.side(side):
        sizes[order.price] = sizes.get(order.price, D(0)) + order.remaining
    return tuple(BookLevel(p, sizes[p]) for p in sorted(sizes, reverse=side is Side.BUY))


@settings(max_examples=300, deadline=None)
@given(
    side=st.sampled_from([Side.BUY, Side.SELL]),
    synthetic=st.lists(st.integers(90, 110), unique=True, max_size=8),
    mine=st.lists(st.tuples(st.integers(85, 115), st.integers(1, 5)), max_size=6),
)
def test_merge_own_equals_the_per_price_sum(
    side: Side, synthetic: list[int], mine: list[tuple[int, int]]
) -> None:
    prices = sorted(synthetic, reverse=side is Side.BUY)
    levels = [(D(p), D(10)) for p in prices]
    orders = own(*((f"o{i}", side, str(p), str(s)) for i, (p, s) in enumerate(mine)))
    rendered = tuple(BookLevel(p, s) for p, s in levels)
    merged = merge_own(rendered, orders.side(side), side)
    assert merged == reference_merge(levels, orders, side)
    # Synthetic levels at a price without a bot order are passed through as the same objects.
    own_prices = {D(p) for p, _ in mine}
    kept = [level for level in rendered if level.price not in own_prices]
    assert all(any(level is m for m in merged) for level in kept)


@settings(max_examples=300, deadline=None)
@given(
    bids=st.lists(st.integers(95, 105), max_size=5),
    asks=st.lists(st.integers(95, 105), max_size=5),
    best_bid=st.none() | st.integers(95, 105),
    best_ask=st.none() | st.integers(95, 105),
)
def test_crossed_by_is_the_filter_in_priority_order(
    bids: list[int], asks: list[int], best_bid: int | None, best_ask: int | None
) -> None:
    orders = own(
        *[(f"b{i}", Side.BUY, str(p), "1") for i, p in enumerate(bids)],
        *[(f"a{i}", Side.SELL, str(p), "1") for i, p in enumerate(asks)],
    )
    bb = None if best_bid is None else D(best_bid)
    ba = None if best_ask is None else D(best_ask)
    want = [o for o in orders.side(Side.BUY) if ba is not None and o.price >= ba]
    want += [o for o in orders.side(Side.SELL) if bb is not None and o.price <= bb]
    assert crossed_by(orders, bb, ba) == want


def test_own_orders_priority_order_follows_adds_and_removals() -> None:
    orders = own(("a", Side.BUY, "10", "1"), ("b", Side.BUY, "11", "1"))
    first = orders.side(Side.BUY)
    assert [o.client_id for o in first] == ["b", "a"]
    first.clear()  # a caller's copy: the venue's order is untouched
    assert [o.client_id for o in orders.side(Side.BUY)] == ["b", "a"]
    orders.add(
        RestingOrder(ClientOrderId("c"), VenueOrderId("3"), Side.BUY, D(11), D(1), D(1), 0.0, 3)
    )
    assert [o.client_id for o in orders.side(Side.BUY)] == ["b", "c", "a"]  # FIFO at 11
    assert orders.best(Side.BUY) == D(11)
    orders.pop(ClientOrderId("b"))
    orders.pop(ClientOrderId("c"))
    assert [o.client_id for o in orders.side(Side.BUY)] == ["a"]
    assert orders.best(Side.BUY) == D(10) and orders.best(Side.SELL) is None


def test_own_levels_are_cached_until_the_side_changes() -> None:
    orders = own(
        ("a", Side.BUY, "10", "1"), ("b", Side.BUY, "10", "2"), ("c", Side.SELL, "12", "1")
    )
    bids = orders.levels(Side.BUY)
    assert bids == (BookLevel(D(10), D(3)),) == aggregate(orders.side(Side.BUY))
    asks = orders.levels(Side.SELL)
    assert orders.levels(Side.BUY) is bids  # unchanged: the same tuple
    a = orders.get(ClientOrderId("a"))
    assert a is not None
    orders.shrink(a, D("0.5"))  # a fill changes the levels, not the priority order
    assert a.remaining == D("0.5")
    assert orders.levels(Side.BUY) == (BookLevel(D(10), D("2.5")),)
    assert orders.levels(Side.SELL) is asks  # the other side is untouched
    orders.pop(ClientOrderId("c"))
    assert orders.levels(Side.SELL) == ()
    orders.add(
        RestingOrder(ClientOrderId("d"), VenueOrderId("4"), Side.BUY, D(11), D(1), D(1), 0.0, 4)
    )
    assert orders.levels(Side.BUY) == (BookLevel(D(11), D(1)), BookLevel(D(10), D("2.5")))
