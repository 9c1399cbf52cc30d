"""The ``Venue`` contract: behaviour every venue implementation must share.

Prices and sizes are derived from the venue's own rules and current book, so the same tests run
against the simulator and (later) a sandbox exchange. Resting test orders sit far from the touch
so that nothing fills unless a test asks the driver to cross them.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, TypeVar

import pytest

from kasmm.core.types import (
    Book,
    BookLevel,
    BookUpdated,
    ClientOrderId,
    Fill,
    MarketRules,
    OpenOrder,
    OrderFilled,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.errors import (
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    PostOnlyWouldCross,
)
from kasmm.venues.base import CancelOutcome, PlaceOutcome, Venue

from .harness import Harness

pytestmark = pytest.mark.anyio

T = TypeVar("T")

#: Most events to read while waiting for a fill the driver caused.
MAX_EVENTS = 1_000


def to_tick(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    """``price`` rounded to a multiple of ``tick``."""
    return (price / tick).to_integral_value(rounding=rounding) * tick


def cid(h: Harness, name: str, *, foreign: bool = False) -> ClientOrderId:
    """A client order id under the suite's (or the foreign) prefix."""
    return ClientOrderId((h.driver.foreign_prefix if foreign else h.driver.prefix) + name)


def far_price(rules: MarketRules, book: Book, side: Side) -> Decimal:
    """A passive price 5% away from the touch: rests without filling."""
    if side is Side.BUY:
        assert book.best_bid is not None
        return to_tick(book.best_bid * Decimal("0.95"), rules.tick, ROUND_FLOOR)
    assert book.best_ask is not None
    return to_tick(book.best_ask * Decimal("1.05"), rules.tick, ROUND_CEILING)


def small_size(rules: MarketRules, price: Decimal) -> Decimal:
    """A size comfortably above the minimums (twice the min notional, at least 10 lots)."""
    lots = max(10, math.ceil(2 * rules.min_notional / (price * rules.lot)))
    return lots * rules.lot


async def first_book(venue: Venue) -> tuple[AsyncIterator[VenueEvent], Book]:
    """Open the event stream and return it with its first event, which must be a book."""
    events = venue.events()
    first = await anext(events)
    assert isinstance(first, BookUpdated)
    return events, first.book


async def aclose(events: AsyncIterator[VenueEvent]) -> None:
    """Close an event iterator if it is a generator (the protocol only promises iteration)."""
    closer: Any = getattr(events, "aclose", None)
    if closer is not None:
        await closer()


async def fills_until(
    events: AsyncIterator[VenueEvent], client_id: ClientOrderId, size: Decimal
) -> list[Fill]:
    """Read events until ``client_id`` has fills totalling ``size``; return those fills."""
    fills: list[Fill] = []
    for _ in range(MAX_EVENTS):
        event = await anext(events)
        if isinstance(event, OrderFilled) and event.fill.client_id == client_id:
            fills.append(event.fill)
            if sum(f.size for f in fills) >= size:
                return fills
    raise AssertionError(f"{client_id} not filled within {MAX_EVENTS} events: {fills}")


@pytest.fixture
async def book(harness: Harness) -> AsyncIterator[Book]:
    """The venue's first published book (its event stream is closed again afterwards)."""
    events, first = await first_book(harness.venue)
    await aclose(events)
    yield first


async def test_connect_returns_rules(harness: Harness) -> None:
    rules = await harness.venue.connect()
    assert rules.symbol == f"{rules.base}/{rules.quote}"
    assert rules.tick > 0 and rules.lot > 0
    assert rules.min_notional >= 0
    assert rules.maker_fee < 1 and rules.taker_fee < 1  # fractions, not bps


async def test_first_event_is_a_valid_uncrossed_book(harness: Harness) -> None:
    rules = await harness.venue.connect()
    events, book = await first_book(harness.venue)
    await aclose(events)
    assert book.bids and book.asks
    assert not book.is_crossed
    bid_prices = [lv.price for lv in book.bids]
    ask_prices = [lv.price for lv in book.asks]
    assert bid_prices == sorted(bid_prices, reverse=True) and len(set(bid_prices)) == len(
        bid_prices
    )
    assert ask_prices == sorted(ask_prices) and len(set(ask_prices)) == len(ask_prices)
    for level in book.bids + book.asks:
        assert level.price % rules.tick == 0
        assert level.size > 0


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_place_then_listed_then_cancel(harness: Harness, book: Book, side: Side) -> None:
    venue = harness.venue
    rules = await venue.connect()
    price = far_price(rules, book, side)
    size = small_size(rules, price)
    placed = await venue.place_order(OrderRequest(cid(harness, "a1"), side, price, size))
    assert (placed.client_id, placed.side, placed.price, placed.size) == (
        cid(harness, "a1"),
        side,
        price,
        size,
    )
    listed = {o.client_id: o for o in await venue.fetch_open_orders()}
    order = listed[cid(harness, "a1")]
    assert (order.side, order.price, order.size, order.remaining) == (side, price, size, size)

    await venue.cancel_order(cid(harness, "a1"))
    assert cid(harness, "a1") not in {o.client_id for o in await venue.fetch_open_orders()}


async def test_cancel_unknown_raises(harness: Harness) -> None:
    with pytest.raises(OrderNotFound):
        await harness.venue.cancel_order(cid(harness, "never-placed"))


async def test_cancel_twice_raises_the_second_time(harness: Harness, book: Book) -> None:
    venue = harness.venue
    rules = await venue.connect()
    price = far_price(rules, book, Side.BUY)
    await venue.place_order(
        OrderRequest(cid(harness, "c1"), Side.BUY, price, small_size(rules, price))
    )
    await venue.cancel_order(cid(harness, "c1"))
    with pytest.raises(OrderNotFound):
        await venue.cancel_order(cid(harness, "c1"))


async def test_cancel_all_spares_foreign_orders(harness: Harness, book: Book) -> None:
    venue = harness.venue
    rules = await venue.connect()
    bid = far_price(rules, book, Side.BUY)
    ask = far_price(rules, book, Side.SELL)
    mine = [
        OrderRequest(cid(harness, "b1"), Side.BUY, bid, small_size(rules, bid)),
        OrderRequest(cid(harness, "b2"), Side.BUY, bid - rules.tick, small_size(rules, bid)),
        OrderRequest(cid(harness, "s1"), Side.SELL, ask, small_size(rules, ask)),
    ]
    foreign = OrderRequest(cid(harness, "f1", foreign=True), Side.BUY, bid, small_size(rules, bid))
    for request in [*mine, foreign]:
        await venue.place_order(request)

    assert await venue.cancel_all(harness.driver.prefix) == len(mine)

    open_ids = [o.client_id for o in await venue.fetch_open_orders()]
    assert open_ids == [foreign.client_id]
    assert await venue.cancel_all(harness.driver.prefix) == 0
    await venue.cancel_order(foreign.client_id)


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_post_only_crossing_is_refused(harness: Harness, book: Book, side: Side) -> None:
    venue = harness.venue
    rules = await venue.connect()
    price = book.best_ask if side is Side.BUY else book.best_bid
    assert price is not None
    with pytest.raises(PostOnlyWouldCross):
        await venue.place_order(
            OrderRequest(cid(harness, "x1"), side, price, small_size(rules, price))
        )
    assert await venue.fetch_open_orders() == []


async def test_rule_violations_are_rejected_not_fixed(harness: Harness, book: Book) -> None:
    venue = harness.venue
    rules = await venue.connect()
    price = far_price(rules, book, Side.BUY)
    size = small_size(rules, price)
    bad = {
        "off-tick": (price + rules.tick / 2, size),
        "off-lot": (price, size + rules.lot / 2),
        "zero size": (price, Decimal(0)),
        "negative price": (-price, size),
        "nan price": (Decimal("NaN"), size),
    }
    if rules.min_notional > 0:
        lots = math.ceil(rules.min_notional / (price * rules.lot)) - 1
        if lots >= 1:
            bad["below min notional"] = (price, lots * rules.lot)
    for i, (what, (p, s)) in enumerate(bad.items()):
        with pytest.raises(OrderRejected):
            await venue.place_order(OrderRequest(cid(harness, f"r{i}"), Side.BUY, p, s))
            pytest.fail(f"{what} accepted")
    assert await venue.fetch_open_orders() == []


async def test_duplicate_open_client_id_is_rejected(harness: Harness, book: Book) -> None:
    venue = harness.venue
    rules = await venue.connect()
    price = far_price(rules, book, Side.BUY)
    request = OrderRequest(cid(harness, "d1"), Side.BUY, price, small_size(rules, price))
    await venue.place_order(request)
    with pytest.raises(OrderRejected):
        await venue.place_order(request)
    assert len(await venue.fetch_open_orders()) == 1


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_insufficient_funds(harness: Harness, book: Book, side: Side) -> None:
    venue = harness.venue
    rules = await venue.connect()
    balances = await venue.fetch_balances()
    price = far_price(rules, book, side)
    # The most the free balance backs (in base units), doubled: clearly unaffordable.
    afford = balances.free(rules.quote) / price if side is Side.BUY else balances.free(rules.base)
    size = to_tick(afford * 2, rules.lot, ROUND_CEILING) + rules.lot
    with pytest.raises(InsufficientFunds):
        await venue.place_order(OrderRequest(cid(harness, "i1"), side, price, size))
    assert await venue.fetch_open_orders() == []


async def test_placing_locks_and_cancelling_unlocks(harness: Harness, book: Book) -> None:
    venue = harness.venue
    rules = await venue.connect()
    before = await venue.fetch_balances()
    price = far_price(rules, book, Side.SELL)
    size = small_size(rules, price)
    await venue.place_order(OrderRequest(cid(harness, "l1"), Side.SELL, price, size))
    during = await venue.fetch_balances()
    assert during.free(rules.base) == before.free(rules.base) - size
    assert during.total(rules.base) == before.total(rules.base)
    await venue.cancel_order(cid(harness, "l1"))
    assert await venue.fetch_balances() == before


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_crossed_resting_order_fills_and_moves_balances(harness: Harness, side: Side) -> None:
    venue = harness.venue
    rules = await venue.connect()
    events, book = await first_book(venue)
    try:
        before = await venue.fetch_balances()
        # Join the touch: the order rests (post-only is satisfied) and is next in line.
        price = book.best_bid if side is Side.BUY else book.best_ask
        assert price is not None
        size = small_size(rules, price)
        await venue.place_order(OrderRequest(cid(harness, "m1"), side, price, size))

        await harness.driver.make_cross(venue, side, price)
        fills = await fills_until(events, cid(harness, "m1"), size)
    finally:
        await aclose(events)

    assert all(f.side is side and f.price == price for f in fills)
    assert sum(f.size for f in fills) == size
    assert fills[-1].remaining == 0
    assert len({f.trade_id for f in fills}) == len(fills)
    assert cid(harness, "m1") not in {o.client_id for o in await venue.fetch_open_orders()}

    after = await venue.fetch_balances()
    fees = {
        asset: sum((f.fee for f in fills if f.fee_asset == asset), Decimal(0))
        for asset in (rules.base, rules.quote)
    }
    notional = sum((f.notional for f in fills), Decimal(0))
    sign = side.sign
    assert after.total(rules.base) == before.total(rules.base) + sign * size - fees[rules.base]
    assert after.total(rules.quote) == (
        before.total(rules.quote) - sign * notional - fees[rules.quote]
    )


# --- batch calls ------------------------------------------------------------------------------


async def test_batch_limits_are_sane(harness: Harness) -> None:
    limits = harness.venue.batch_limits
    assert limits.place >= 1 and limits.cancel >= 1
    assert await harness.venue.place_orders([]) == []
    assert await harness.venue.cancel_orders([]) == []


async def test_place_orders_gives_each_order_its_own_outcome_in_order(
    harness: Harness, book: Book
) -> None:
    venue = harness.venue
    rules = await venue.connect()
    bid = far_price(rules, book, Side.BUY)
    ask = far_price(rules, book, Side.SELL)
    cross = book.best_ask  # a post-only buy there would take liquidity
    assert cross is not None
    requests = [
        OrderRequest(cid(harness, "p1"), Side.BUY, bid, small_size(rules, bid)),
        OrderRequest(cid(harness, "p2"), Side.BUY, cross, small_size(rules, cross)),
        OrderRequest(cid(harness, "p3"), Side.SELL, ask, small_size(rules, ask)),
    ]
    outcomes: list[PlaceOutcome] = []
    for chunk in batches(requests, venue.batch_limits.place):
        outcomes += await venue.place_orders(chunk)

    assert len(outcomes) == len(requests)
    first, crossing, last = outcomes
    assert isinstance(crossing, PostOnlyWouldCross), crossing
    for request, outcome in ((requests[0], first), (requests[2], last)):
        assert isinstance(outcome, OpenOrder), outcome
        assert (outcome.client_id, outcome.side, outcome.price, outcome.size) == (
            request.client_id,
            request.side,
            request.price,
            request.size,
        )
    listed = {o.client_id: o for o in await venue.fetch_open_orders()}
    assert set(listed) == {requests[0].client_id, requests[2].client_id}
    assert listed[requests[2].client_id].remaining == requests[2].size


async def test_cancel_orders_gives_order_not_found_for_a_gone_order(
    harness: Harness, book: Book
) -> None:
    venue = harness.venue
    rules = await venue.connect()
    bid = far_price(rules, book, Side.BUY)
    size = small_size(rules, bid)
    for name, price in (("q1", bid), ("q2", bid - rules.tick), ("q3", bid - 2 * rules.tick)):
        await venue.place_order(OrderRequest(cid(harness, name), Side.BUY, price, size))
    await venue.cancel_order(cid(harness, "q3"))  # gone before the batch

    ids = [cid(harness, n) for n in ("q1", "never-placed", "q2", "q3")]
    outcomes: list[CancelOutcome] = []
    for chunk in batches(ids, venue.batch_limits.cancel):
        outcomes += await venue.cancel_orders(chunk)

    assert len(outcomes) == len(ids)
    assert outcomes[0] is None and outcomes[2] is None, outcomes
    assert isinstance(outcomes[1], OrderNotFound), outcomes[1]
    assert isinstance(outcomes[3], OrderNotFound), outcomes[3]
    assert await venue.fetch_open_orders() == []
    again = await venue.cancel_orders([cid(harness, "q1")])
    assert len(again) == 1 and isinstance(again[0], OrderNotFound)


def batches(items: list[T], per_request: int) -> list[list[T]]:
    """``items`` in batch calls a venue accepts: all at once without a batch endpoint (they go
    out as concurrent singles), else at most ``per_request`` per call."""
    if per_request <= 1:
        return [items]
    return [items[i : i + per_request] for i in range(0, len(items), per_request)]


# --- immediate-or-cancel orders ---------------------------------------------------------------


def touch(book: Book, side: Side) -> BookLevel:
    """The best level an order of ``side`` takes from (the best ask for a buy)."""
    levels = book.asks if side is Side.BUY else book.bids
    assert levels, f"no liquidity for a {side}"
    return levels[0]


def taker_fee_in_quote(fill: Fill, rules: MarketRules) -> Decimal:
    """``fill``'s fee in quote, whichever asset the venue charged it in."""
    if fill.fee_asset == rules.quote:
        return fill.fee
    assert fill.fee_asset == rules.base, fill
    return fill.fee * fill.price


async def ioc_never_rests(venue: Venue, client_id: ClientOrderId) -> None:
    assert client_id not in {o.client_id for o in await venue.fetch_open_orders()}


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_ioc_within_the_price_fills_in_full_as_a_taker(harness: Harness, side: Side) -> None:
    venue = harness.venue
    rules = await venue.connect()
    events, book = await first_book(venue)
    try:
        before = await venue.fetch_balances()
        level = touch(book, side)
        size = small_size(rules, level.price)
        assert size <= level.size, (size, level)
        client_id = cid(harness, "t1")
        outcome = await venue.place_ioc(OrderRequest.ioc(client_id, side, level.price, size))
        assert (outcome.client_id, outcome.status, outcome.filled) == (client_id, "filled", size)
        assert outcome.average_price == level.price
        fills = await fills_until(events, client_id, size)
    finally:
        await aclose(events)

    assert sum(f.size for f in fills) == size
    assert all(f.side is side and f.price == level.price and not f.is_maker for f in fills)
    assert len({f.trade_id for f in fills}) == len(fills) and all(f.trade_id for f in fills)
    assert fills[-1].remaining == 0
    await ioc_never_rests(venue, client_id)
    # The taker fee, at the rate the venue publishes, in whichever asset it charges it.
    notional = sum((f.notional for f in fills), Decimal(0))
    charged = sum((taker_fee_in_quote(f, rules) for f in fills), Decimal(0))
    assert charged == notional * rules.taker_fee
    after = await venue.fetch_balances()
    fees = {
        asset: sum((f.fee for f in fills if f.fee_asset == asset), Decimal(0))
        for asset in (rules.base, rules.quote)
    }
    assert after.total(rules.base) == before.total(rules.base) + side.sign * size - fees[rules.base]
    assert after.total(rules.quote) == (
        before.total(rules.quote) - side.sign * notional - fees[rules.quote]
    )


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_ioc_takes_what_is_within_the_price_and_the_rest_expires(
    harness: Harness, side: Side
) -> None:
    venue = harness.venue
    rules = await venue.connect()
    events, book = await first_book(venue)
    try:
        level = touch(book, side)
        size = level.size + small_size(rules, level.price)
        client_id = cid(harness, "t2")
        outcome = await venue.place_ioc(OrderRequest.ioc(client_id, side, level.price, size))
        assert (outcome.status, outcome.filled) == ("partial", level.size)
        assert outcome.average_price == level.price
        fills = await fills_until(events, client_id, level.size)
    finally:
        await aclose(events)
    assert sum(f.size for f in fills) == level.size
    assert all(f.price == level.price and not f.is_maker for f in fills)
    await ioc_never_rests(venue, client_id)


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_ioc_with_nothing_at_its_price_expires_unfilled(
    harness: Harness, book: Book, side: Side
) -> None:
    venue = harness.venue
    rules = await venue.connect()
    before = await venue.fetch_balances()
    # The own side's touch: the other side is at least a tick away, out of reach.
    price = touch(book, side.opposite).price
    client_id = cid(harness, "t3")
    outcome = await venue.place_ioc(
        OrderRequest.ioc(client_id, side, price, small_size(rules, price))
    )
    assert (outcome.client_id, outcome.status, outcome.filled) == (client_id, "expired", Decimal(0))
    assert outcome.average_price is None
    await ioc_never_rests(venue, client_id)
    assert await venue.fetch_open_orders() == []
    assert await venue.fetch_balances() == before


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_ioc_the_balance_cannot_back_is_refused_and_takes_nothing(
    harness: Harness, book: Book, side: Side
) -> None:
    venue = harness.venue
    rules = await venue.connect()
    before = await venue.fetch_balances()
    price = touch(book, side).price
    # Twice what the free balance backs at the order's own price: clearly unaffordable.
    afford = before.free(rules.quote) / price if side is Side.BUY else before.free(rules.base)
    size = to_tick(afford * 2, rules.lot, ROUND_CEILING) + rules.lot
    with pytest.raises(InsufficientFunds):
        await venue.place_ioc(OrderRequest.ioc(cid(harness, "t6"), side, price, size))
    assert await venue.fetch_open_orders() == []
    assert await venue.fetch_balances() == before


async def test_ioc_and_resting_orders_go_through_their_own_methods(
    harness: Harness, book: Book
) -> None:
    venue = harness.venue
    rules = await venue.connect()
    price = far_price(rules, book, Side.BUY)
    size = small_size(rules, price)
    with pytest.raises(OrderRejected):
        await venue.place_order(OrderRequest.ioc(cid(harness, "t4"), Side.BUY, price, size))
    with pytest.raises(OrderRejected):
        await venue.place_ioc(OrderRequest(cid(harness, "t5"), Side.BUY, price, size))
    assert await venue.fetch_open_orders() == []
