"""The paper venue on a scripted feed: admission, trade and book fills, queue position, ledger."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
import pytest

from kasmm.clock import VirtualClock
from kasmm.config.schema import PaperVenueConfig
from kasmm.core.types import (
    Book,
    BookLevel,
    BookUpdated,
    ClientOrderId,
    Fill,
    OpenOrder,
    OrderFilled,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.errors import (
    FatalVenueError,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    PostOnlyWouldCross,
    TransientVenueError,
)
from kasmm.venues.base import Venue
from kasmm.venues.paper import PaperVenue
from kasmm.venues.queue_matching import UNKNOWN_QUEUE, displayed_queue
from tests.paper_fakes import FakeFeed, make_book, make_trade

pytestmark = pytest.mark.anyio
D = Decimal
T0 = 1_000.0

#: The market every test starts from: 0.080000 bid (500 displayed) / 0.080100 ask (400).
BOOK_LEVELS = (
    [("0.080000", "500"), ("0.079990", "800"), ("0.079980", "900")],
    [("0.080100", "400"), ("0.080110", "700"), ("0.080120", "900")],
)
BOOK = make_book(*BOOK_LEVELS)


def config(**overrides: Any) -> PaperVenueConfig:
    return PaperVenueConfig.model_validate({"type": "paper", "exchange": "mexc", **overrides})


class Market:
    """A connected paper venue, its scripted feed, clock and open event stream."""

    def __init__(self, venue: PaperVenue, feed: FakeFeed, clock: VirtualClock) -> None:
        self.venue = venue
        self.feed = feed
        self.clock = clock
        self.events: AsyncGenerator[VenueEvent, None] = venue.events()

    async def next(self) -> VenueEvent:
        """The next event (failing instead of hanging when there is none)."""
        with anyio.fail_after(1):
            return await anext(self.events)

    async def book(self, book: Book = BOOK) -> Book:
        """Push a book and return it as the venue published it (no fill expected)."""
        self.feed.push(book)
        event = await self.next()
        assert isinstance(event, BookUpdated), event
        return event.book

    async def trade(self, price: str, size: str, taker: Side, tid: str = "") -> list[Fill]:
        """Push a trade then a book; return the fills the trade caused (before the book)."""
        self.clock.advance_to(self.clock.now() + 1)
        self.feed.push(make_trade(price, size, taker, self.clock.now(), tid), BOOK)
        return await self.fills_until_book()

    async def fills_until_book(self) -> list[Fill]:
        """Fills up to the next ``BookUpdated``."""
        fills: list[Fill] = []
        while not isinstance(event := await self.next(), BookUpdated):
            assert isinstance(event, OrderFilled), event
            fills.append(event.fill)
        return fills

    async def bid(self, cid: str, price: str, size: str, **kw: Any) -> OpenOrder:
        return await self.venue.place_order(
            OrderRequest(ClientOrderId(cid), Side.BUY, D(price), D(size), **kw)
        )

    async def ask(self, cid: str, price: str, size: str, **kw: Any) -> OpenOrder:
        return await self.venue.place_order(
            OrderRequest(ClientOrderId(cid), Side.SELL, D(price), D(size), **kw)
        )

    async def open_ids(self) -> list[str]:
        return [o.client_id for o in await self.venue.fetch_open_orders()]


@asynccontextmanager
async def open_market(**overrides: Any) -> AsyncIterator[Market]:
    """A connected venue (config ``overrides``) whose stream has published :data:`BOOK`."""
    clock = VirtualClock(T0)
    feed = FakeFeed()
    venue = PaperVenue(config(**overrides), "KAS/USDT", clock, feed=feed)
    await venue.connect()
    m = Market(venue, feed, clock)
    try:
        await m.book()
        yield m
    finally:
        await m.events.aclose()
        await venue.close()


@pytest.fixture
async def market(anyio_backend: str) -> AsyncIterator[Market]:
    """The default venue: queue position 'back'."""
    async with open_market() as m:
        yield m


@pytest.fixture
async def front(anyio_backend: str) -> AsyncIterator[Market]:
    """A venue whose orders join the front of the queue."""
    async with open_market(queue_position="front") as m:
        yield m


# --- connect, rules, lifecycle -------------------------------------------------------------


async def test_is_a_venue_and_connect_returns_the_feeds_rules(anyio_backend: str) -> None:
    feed = FakeFeed()
    venue = PaperVenue(config(), "KAS/USDT", VirtualClock(T0), feed=feed)
    assert isinstance(venue, Venue)
    assert venue.name == "paper-mexc"
    with pytest.raises(FatalVenueError):
        await venue.fetch_balances()
    rules = await venue.connect()
    assert rules == feed.rules
    assert await venue.connect() is rules and feed.loads == 1
    balances = await venue.fetch_balances()
    assert (balances.free("KAS"), balances.free("USDT")) == (D(50000), D(4000))
    await venue.close()
    assert feed.closed
    with pytest.raises(FatalVenueError):
        await venue.fetch_open_orders()


async def test_configured_fees_override_the_published_ones(anyio_backend: str) -> None:
    venue = PaperVenue(
        config(fees={"maker_bps": -1, "taker_bps": 5}), "KAS/USDT", VirtualClock(), feed=FakeFeed()
    )
    rules = await venue.connect()
    assert (rules.maker_fee, rules.taker_fee) == (D("-0.0001"), D("0.0005"))


async def test_placing_before_the_first_book_is_transient(anyio_backend: str) -> None:
    venue = PaperVenue(config(), "KAS/USDT", VirtualClock(), feed=FakeFeed())
    await venue.connect()
    with pytest.raises(TransientVenueError):
        await venue.place_order(OrderRequest(ClientOrderId("a"), Side.BUY, D("0.08"), D(100)))
    assert venue.stats.rejects == 1


async def test_books_are_published_in_order_and_stamped_with_the_clock(market: Market) -> None:
    moved = make_book([("0.080010", "50")], [("0.080090", "60")], ts=T0 + 5)
    published = await market.book(moved)
    # The virtual clock was driven to the item's time; the book carries the venue's time.
    assert market.clock.now() == T0 + 5 and published.ts == T0 + 5
    assert (published.bids, published.asks) == (moved.bids, moved.asks)
    assert market.venue.book == published


async def test_a_new_event_iterator_continues_the_same_feed(market: Market) -> None:
    await market.events.aclose()
    market.events = market.venue.events()  # closed by the fixture
    market.feed.push(make_book([("0.07", "1")], [("0.09", "1")]))
    event = await market.next()
    assert isinstance(event, BookUpdated) and event.book.best_bid == D("0.07")
    assert market.feed.watches == 1


async def test_close_ends_the_event_stream(market: Market) -> None:
    await market.venue.close()
    with pytest.raises(StopAsyncIteration):
        await market.next()


# --- admission ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "price"),
    [(Side.BUY, "0.080100"), (Side.BUY, "0.080200"), (Side.SELL, "0.080000"), (Side.SELL, "0.07")],
)
async def test_post_only_crossing_the_live_book_is_rejected(
    market: Market, side: Side, price: str
) -> None:
    request = OrderRequest(ClientOrderId("x"), side, D(price), D(100))
    with pytest.raises(PostOnlyWouldCross):
        await market.venue.place_order(request)
    with pytest.raises(OrderRejected) as info:  # not post-only: still refused, paper is maker-only
        await market.venue.place_order(
            OrderRequest(request.client_id, side, request.price, request.size, post_only=False)
        )
    assert not isinstance(info.value, PostOnlyWouldCross)
    assert await market.open_ids() == []


async def test_crossing_the_bots_own_order_is_rejected(market: Market) -> None:
    await market.ask("a", "0.080050", "100")  # inside the live spread
    with pytest.raises(PostOnlyWouldCross):
        await market.bid("b", "0.080050", "100")


@pytest.mark.parametrize(
    ("price", "size"),
    [("0.0800005", "100"), ("0.08", "100.001"), ("0.08", "0"), ("-0.08", "100"), ("0.08", "10")],
)
async def test_rule_violations_are_rejected(market: Market, price: str, size: str) -> None:
    with pytest.raises(OrderRejected):
        await market.bid("r", price, size)  # the last one is below the 1 USDT minimum notional
    assert market.venue.stats.rejects == 1


async def test_insufficient_funds_and_duplicate_ids(market: Market) -> None:
    with pytest.raises(InsufficientFunds):
        await market.ask("big", "0.09", "50000.01")
    await market.bid("d", "0.079", "100")
    with pytest.raises(OrderRejected):
        await market.bid("d", "0.078", "100")
    assert await market.open_ids() == ["d"]


# --- fills from trades ----------------------------------------------------------------------


async def test_a_bid_fills_exactly_when_a_sell_prints_at_or_below_it(front: Market) -> None:
    await front.bid("b1", "0.080000", "100")
    assert await front.trade("0.080010", "1000", Side.SELL) == []  # above the bid
    assert await front.trade("0.080000", "1000", Side.BUY) == []  # a buyer lifted an ask
    assert await front.open_ids() == ["b1"]

    fills = await front.trade("0.080000", "1000", Side.SELL, tid="hit")
    assert [(f.client_id, f.side, f.price, f.size, f.remaining) for f in fills] == [
        ("b1", Side.BUY, D("0.080000"), D(100), D(0))
    ]
    fill = fills[0]
    assert fill.is_maker and fill.fee == D("0.008") and fill.fee_asset == "USDT"
    assert fill.ts == front.clock.now() and fill.trade_id.startswith("paper-")
    assert await front.open_ids() == []


async def test_an_ask_fills_when_a_buy_prints_at_or_above_it(front: Market) -> None:
    await front.ask("s1", "0.080100", "100")
    assert await front.trade("0.080090", "500", Side.BUY) == []
    fills = await front.trade("0.080150", "500", Side.BUY)
    assert [(f.side, f.price, f.size) for f in fills] == [(Side.SELL, D("0.080100"), D(100))]


async def test_partial_fills_follow_the_trade_sizes(front: Market) -> None:
    await front.bid("b1", "0.080000", "100")
    first = await front.trade("0.080000", "30", Side.SELL)
    assert [(f.size, f.remaining) for f in first] == [(D(30), D(70))]
    (listed,) = await front.venue.fetch_open_orders()
    assert (listed.remaining, listed.filled) == (D(70), D(30))
    second = await front.trade("0.080000", "45.5", Side.SELL)
    third = await front.trade("0.080000", "1000", Side.SELL)
    assert [(f.size, f.remaining) for f in second + third] == [
        (D("45.5"), D("24.5")),
        (D("24.5"), D(0)),
    ]
    assert len({f.trade_id for f in first + second + third}) == 3


async def test_trades_printed_before_the_order_was_placed_do_not_fill_it(market: Market) -> None:
    market.clock.advance_to(T0 + 10)
    await market.bid("b1", "0.080000", "100")
    market.feed.push(make_trade("0.079", "1000", Side.SELL, ts=T0 + 9), BOOK)
    assert await market.fills_until_book() == []


@pytest.mark.parametrize("queue", ["back", "front"])
async def test_queue_position(anyio_backend: str, queue: str) -> None:
    """500 is displayed at the bid when the order joins: 'back' waits for it to trade."""
    async with open_market(queue_position=queue) as m:
        await m.bid("b1", "0.080000", "100")
        first = await m.trade("0.080000", "300", Side.SELL)
        second = await m.trade("0.080000", "250", Side.SELL)  # 550 traded: 50 past the queue
        third = await m.trade("0.080000", "80", Side.SELL)
    sizes = [[f.size for f in fills] for fills in (first, second, third)]
    if queue == "front":
        assert sizes == [[D(100)], [], []]
    else:
        assert sizes == [[], [D(50)], [D(50)]]


async def test_a_trade_through_the_price_ignores_the_queue(market: Market) -> None:
    await market.bid("b1", "0.080000", "100")  # 500 ahead
    fills = await market.trade("0.079990", "30", Side.SELL)
    assert [(f.price, f.size) for f in fills] == [(D("0.080000"), D(30))]
    # The level was consumed: the rest fills on the next trade at the price.
    fills = await market.trade("0.080000", "70", Side.SELL)
    assert [f.size for f in fills] == [D(70)]


async def test_the_displayed_level_caps_the_queue_ahead(market: Market) -> None:
    await market.bid("b1", "0.080000", "100")  # 500 ahead
    thinner = make_book([("0.080000", "120")], [("0.080100", "400")])
    await market.book(thinner)  # 380 cancelled: at most 120 can still be ahead
    market.clock.advance_to(T0 + 1)
    market.feed.push(make_trade("0.080000", "150", Side.SELL, market.clock.now()), thinner)
    assert [f.size for f in await market.fills_until_book()] == [D(30)]


def test_queue_ahead_is_what_the_book_displays_at_the_price() -> None:
    assert displayed_queue(BOOK, Side.BUY, D("0.080000")) == D(500)
    assert displayed_queue(BOOK, Side.BUY, D("0.079995")) == 0  # inside the depth, no level
    assert displayed_queue(BOOK, Side.BUY, D("0.080050")) == 0  # improves the best bid
    assert displayed_queue(BOOK, Side.BUY, D("0.07")) == UNKNOWN_QUEUE  # beyond the depth
    assert displayed_queue(BOOK, Side.SELL, D("0.080110")) == D(700)
    assert displayed_queue(BOOK, Side.SELL, D("0.09")) == UNKNOWN_QUEUE


async def test_an_order_beyond_the_depth_waits_until_its_level_is_shown(market: Market) -> None:
    await market.bid("deep", "0.079000", "100")
    assert await market.trade("0.079000", "1000", Side.SELL) == []  # queue unknown
    shown = make_book([("0.079010", "10"), ("0.079000", "40")], [("0.079100", "10")])
    await market.book(shown)
    market.clock.advance_to(T0 + 2)
    market.feed.push(make_trade("0.079000", "60", Side.SELL, market.clock.now()), shown)
    assert [f.size for f in await market.fills_until_book()] == [D(20)]


async def test_one_trade_fills_at_most_its_size_best_price_then_fifo(front: Market) -> None:
    await front.bid("b1", "0.080000", "100")
    await front.bid("b2", "0.080000", "100")
    await front.bid("better", "0.080050", "50")
    fills = await front.trade("0.080000", "180", Side.SELL)
    assert [(f.client_id, f.size) for f in fills] == [
        ("better", D(50)),
        ("b1", D(100)),
        ("b2", D(30)),
    ]


async def test_own_orders_at_one_price_queue_behind_each_other(market: Market) -> None:
    await market.bid("b1", "0.080000", "100")
    await market.bid("b2", "0.080000", "100")  # both placed behind the same 500
    fills = await market.trade("0.080000", "650", Side.SELL)  # 150 past the queue
    assert [(f.client_id, f.size) for f in fills] == [("b1", D(100)), ("b2", D(50))]


# --- fills from the book moving through the order -------------------------------------------


@pytest.mark.parametrize(
    ("side", "price", "moved"),
    [
        (Side.BUY, "0.080000", make_book([("0.079900", "10")], [("0.080000", "5")])),
        (Side.BUY, "0.080000", make_book([("0.079000", "10")], [("0.079500", "5")])),
        (Side.SELL, "0.080100", make_book([("0.080100", "5")], [("0.080200", "10")])),
    ],
)
async def test_the_book_moving_through_an_order_fills_it_in_full(
    market: Market, side: Side, price: str, moved: Book
) -> None:
    place = market.bid if side is Side.BUY else market.ask
    await place("m1", price, "100")
    market.feed.push(moved)
    event = await market.next()
    assert isinstance(event, OrderFilled)  # the fill comes before the book that caused it
    fill = event.fill
    assert (fill.side, fill.price, fill.size, fill.remaining, fill.is_maker) == (
        side,
        D(price),
        D(100),
        D(0),
        True,
    )
    assert isinstance(await market.next(), BookUpdated)
    assert await market.open_ids() == []


async def test_a_book_that_only_touches_the_other_side_does_not_fill(market: Market) -> None:
    await market.bid("b1", "0.080000", "100")
    await market.book(make_book([("0.080000", "900")], [("0.080010", "5")]))
    assert await market.open_ids() == ["b1"]


# --- balances ---------------------------------------------------------------------------------


async def test_balances_conserve_value_minus_fees(front: Market) -> None:
    venue = front.venue
    before = await venue.fetch_balances()
    await front.bid("b1", "0.080000", "1000")
    await front.ask("s1", "0.080100", "600")
    during = await venue.fetch_balances()
    # Buys lock notional plus the maker fee; sells lock base.
    assert during.get("USDT").locked == D("80.080") and during.get("KAS").locked == D(600)
    assert during.total("USDT") == before.total("USDT")

    fills = await front.trade("0.080000", "400", Side.SELL)  # partial buy
    fills += await front.trade("0.080100", "600", Side.BUY)  # full sell
    fills += await front.trade("0.079000", "5000", Side.SELL)  # rest of the buy
    await venue.cancel_all("")
    after = await venue.fetch_balances()

    bought = sum((f.size for f in fills if f.side is Side.BUY), D(0))
    sold = sum((f.size for f in fills if f.side is Side.SELL), D(0))
    cash = sum((f.side.sign * f.notional for f in fills), D(0))
    fees = sum((f.fee for f in fills), D(0))
    assert (bought, sold) == (D(1000), D(600))
    assert after.total("KAS") == before.total("KAS") + bought - sold
    assert after.total("USDT") == before.total("USDT") - cash - fees
    assert fees == (D(80) + D("48.06")) * D("0.001")
    assert after.get("KAS").locked == 0 and after.get("USDT").locked == 0
    # Valued at any price, the change is the trading gain minus the fees.
    for mark in (D("0.07"), D("0.08"), D("0.09")):
        value = after.total("USDT") + mark * after.total("KAS")
        start = before.total("USDT") + mark * before.total("KAS")
        gain = sum((f.side.sign * (mark - f.price) * f.size for f in fills), D(0))
        assert value - start == gain - fees


# --- cancellation -----------------------------------------------------------------------------


async def test_cancel_and_cancel_all(market: Market) -> None:
    venue = market.venue
    before = await venue.fetch_balances()
    await market.bid("k-b1", "0.079000", "100")
    await market.bid("k-b2", "0.079500", "100")
    await market.ask("k-s1", "0.081000", "100")
    await market.bid("other-1", "0.079000", "100")

    await venue.cancel_order(ClientOrderId("k-b2"))
    with pytest.raises(OrderNotFound):
        await venue.cancel_order(ClientOrderId("k-b2"))
    with pytest.raises(OrderNotFound):
        await venue.cancel_order(ClientOrderId("never"))
    assert await venue.cancel_all("k-") == 2
    assert await venue.cancel_all("k-") == 0
    assert await market.open_ids() == ["other-1"]
    await venue.cancel_order(ClientOrderId("other-1"))
    assert await venue.fetch_balances() == before
    assert venue.stats.cancels == 6

    # Cancelled orders never fill, even when the market trades through their prices.
    assert await market.trade("0.070000", "100000", Side.SELL) == []


# --- restarts on one ledger ----------------------------------------------------------------


async def test_trade_ids_are_unique_across_venue_instances(anyio_backend: str) -> None:
    # Each restart builds a new venue; the ledger stores a fill once per trade id for its whole
    # life, so a rebuilt venue numbering from "paper-1" again would have its fills dropped.
    ids: list[str] = []
    for _ in range(2):
        async with open_market(queue_position="front") as m:
            await m.bid("k-b1", "0.080000", "100")
            await m.bid("k-b2", "0.080000", "100")
            ids += [f.trade_id for f in await m.trade("0.080000", "1000", Side.SELL)]
    assert len(ids) == 4 and len(set(ids)) == 4
    assert all(i.startswith("paper-") for i in ids)


async def test_trade_id_tag_is_injectable(anyio_backend: str) -> None:
    clock, feed = VirtualClock(T0), FakeFeed()
    venue = PaperVenue(config(), "KAS/USDT", clock, feed=feed, trade_id_tag="t")
    await venue.connect()
    m = Market(venue, feed, clock)
    await m.book()
    await m.bid("k-b1", "0.080000", "100", post_only=True)
    await m.bid("k-b2", "0.079990", "100", post_only=True)
    fills = await m.trade("0.079990", "2000", Side.SELL)
    assert [f.trade_id for f in fills] == ["paper-t-1", "paper-t-2"]
    await m.events.aclose()
    await venue.close()


async def test_balances_are_restored_before_the_first_order_only(anyio_backend: str) -> None:
    venue = PaperVenue(config(), "KAS/USDT", VirtualClock(T0), feed=FakeFeed())
    with pytest.raises(RuntimeError):
        venue.restore_balances({"KAS": D(1)})  # not connected: no account yet
    assert venue.starting_balances() is None
    await venue.connect()
    assert venue.starting_balances() == {"KAS": D(50000), "USDT": D(4000)}
    venue.restore_balances({"KAS": D("51000.5"), "USDT": D("3919.96")})
    balances = await venue.fetch_balances()
    assert (balances.free("KAS"), balances.free("USDT")) == (D("51000.5"), D("3919.96"))
    assert balances.get("KAS").locked == balances.get("USDT").locked == 0
    await venue.close()


async def test_a_venue_that_traded_cannot_be_restored(market: Market) -> None:
    await market.bid("k-b1", "0.079000", "100")
    assert market.venue.starting_balances() is None
    with pytest.raises(RuntimeError):
        market.venue.restore_balances({"KAS": D(1), "USDT": D(1)})


class AheadClock:
    """Real time (not virtual) whose calendar runs ``ahead_s`` before the exchange's clock."""

    is_virtual = False

    def __init__(self, start: float, ahead_s: float) -> None:
        self.t = start
        self.ahead_s = ahead_s

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t + self.ahead_s

    async def sleep_until(self, deadline: float) -> None:
        self.t = max(self.t, deadline)
        await anyio.lowlevel.checkpoint()


async def test_a_local_clock_ahead_of_the_exchange_does_not_hide_the_fills(
    anyio_backend: str,
) -> None:
    """Orders were booked at the local wall time and trades carry the exchange's: with the
    local clock 10 minutes ahead, every trade for 10 minutes after an order looked older than
    it, and the paper bot missed its fills."""
    clock, feed = AheadClock(T0, ahead_s=600.0), FakeFeed()
    venue = PaperVenue(config(queue_position="front"), "KAS/USDT", clock, feed=feed)
    await venue.connect()
    m = Market(venue, feed, clock)  # type: ignore[arg-type]
    try:
        await m.book(make_book(BOOK_LEVELS[0], BOOK_LEVELS[1], ts=T0))  # in exchange time
        await m.bid("b1", "0.080000", "100")
        clock.t += 1.0
        feed.push(make_trade("0.079", "1000", Side.SELL, ts=clock.t), BOOK)
        fills = await m.fills_until_book()
    finally:
        await m.events.aclose()
        await venue.close()
    assert [f.size for f in fills] == [D(100)]


# --- immediate-or-cancel orders -------------------------------------------------------------


async def test_an_ioc_takes_the_live_book_up_to_its_limit_with_the_taker_fee(
    market: Market,
) -> None:
    before = await market.venue.fetch_balances()
    request = OrderRequest.ioc(ClientOrderId("h1"), Side.BUY, D("0.080110"), D(1000))
    outcome = await market.venue.place_ioc(request)
    notional = D("0.080100") * 400 + D("0.080110") * 600
    assert (outcome.status, outcome.filled, outcome.average_price) == (
        "filled",
        D(1000),
        notional / 1000,
    )
    fills = await market.fills_until_book()
    assert [(f.price, f.size, f.remaining, f.is_maker) for f in fills] == [
        (D("0.080100"), D(400), D(600), False),
        (D("0.080110"), D(600), D(0), False),
    ]
    assert sum(f.fee for f in fills) == notional * D("0.002")  # the feed's taker fee
    assert market.venue.book is not None
    assert market.venue.book.asks[0] == BookLevel(D("0.080110"), D(100))  # until the next book
    after = await market.venue.fetch_balances()
    assert after.total("KAS") == before.total("KAS") + 1000
    assert after.total("USDT") == before.total("USDT") - notional * D("1.002")
    assert await market.open_ids() == []


async def test_an_ioc_partly_filled_expires_and_never_takes_an_own_order(market: Market) -> None:
    await market.bid("b1", "0.079990", "100")
    request = OrderRequest.ioc(ClientOrderId("h2"), Side.SELL, D("0.079980"), D(2000))
    outcome = await market.venue.place_ioc(request)
    assert (outcome.status, outcome.filled) == ("partial", D(500) + D(800))
    assert await market.open_ids() == ["b1"]
    nothing = await market.venue.place_ioc(
        OrderRequest.ioc(ClientOrderId("h3"), Side.SELL, D("0.079990"), D(100))
    )
    assert (nothing.status, nothing.filled, nothing.average_price) == ("expired", D(0), None)
