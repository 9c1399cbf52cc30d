"""Immediate-or-cancel orders on the simulated venues: the sweep, STP, fees, events, determinism.

The random-walk book is set by hand (``synthetic.bids`` / ``asks`` in ticks and lots) so that
every number below is exact; the replay venue and the backtest's synchronous face take the same
path (``SimExchange.place_ioc_now``).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from kasmm.clock import VirtualClock
from kasmm.config.schema import AS2008Market, RandomWalkMarket, SimFees, SimVenueConfig
from kasmm.core.types import (
    BookLevel,
    BookUpdated,
    ClientOrderId,
    OrderFilled,
    OrderRequest,
    Side,
    TimeInForce,
    VenueEvent,
    VenueOrderId,
)
from kasmm.errors import InsufficientFunds, OrderRejected
from kasmm.venues.base import IocOutcome
from kasmm.venues.sim import SimVenue
from kasmm.venues.sim.ioc import LevelsLiquidity, take_from_book, take_within
from kasmm.venues.sim.random_walk import RandomWalkModel
from tests.paper_fakes import make_book

pytestmark = pytest.mark.anyio
D = Decimal
TICK = D("0.000001")


def cid(name: str) -> ClientOrderId:
    return ClientOrderId(name)


def ioc(name: str, side: Side, price: str, size: str) -> OrderRequest:
    return OrderRequest.ioc(cid(name), side, D(price), D(size))


async def venue_with_book(**overrides: object) -> SimVenue:
    """A connected sim venue (10 bps taker fee, 0 maker) whose synthetic book is, in ticks of
    0.000001: bids 0.079990 x 1000, 0.079980 x 2000; asks 0.080010 x 1000, 0.080020 x 2000."""
    config = SimVenueConfig(
        type="sim",
        seed=3,
        fees=SimFees(maker_bps=0, taker_bps=10),
        market=RandomWalkMarket(book_update="regenerate", taker_rate_per_s=1e-9),
        **overrides,
    )
    venue = SimVenue(config, "KAS/USDT", VirtualClock(1_000.0), trade_id_tag="t")
    await venue.connect()
    model = venue.exchange.model
    assert isinstance(model, RandomWalkModel)
    model.synthetic.bids.set_levels([79_990, 79_980], [100_000, 200_000])
    model.synthetic.asks.set_levels([80_010, 80_020], [100_000, 200_000])
    return venue


async def drain(venue: SimVenue, count: int) -> list[VenueEvent]:
    """The next ``count`` events (each pulled at once: no market step is due in between)."""
    events = venue.events()
    out = [await anext(events) for _ in range(count)]
    await events.aclose()
    return out


async def test_a_buy_sweeps_levels_within_its_limit_pays_the_taker_fee_and_reports_fills() -> None:
    venue = await venue_with_book()
    await drain(venue, 1)  # the first book
    before = await venue.fetch_balances()

    outcome = await venue.place_ioc(ioc("h1", Side.BUY, "0.080020", "1500"))

    assert outcome == IocOutcome(
        cid("h1"),
        D(1500),
        (D("0.080010") * 1000 + D("0.080020") * 500) / 1500,
        "filled",
        VenueOrderId("1"),
    )
    fill1, fill2, book = await drain(venue, 3)
    assert isinstance(fill1, OrderFilled) and isinstance(fill2, OrderFilled)
    assert [(f.fill.price, f.fill.size, f.fill.remaining) for f in (fill1, fill2)] == [
        (D("0.080010"), D(1000), D(500)),
        (D("0.080020"), D(500), D(0)),
    ]
    assert all(not f.fill.is_maker and f.fill.venue_id == "1" for f in (fill1, fill2))
    assert [f.fill.trade_id for f in (fill1, fill2)] == ["sim-t-1", "sim-t-2"]
    assert isinstance(book, BookUpdated)
    assert book.book.asks == (BookLevel(D("0.080020"), D(1500)),)  # taken until the next update
    notional = D("0.080010") * 1000 + D("0.080020") * 500
    fee = notional * D("0.001")
    assert fill1.fill.fee + fill2.fill.fee == fee
    after = await venue.fetch_balances()
    assert after.total("KAS") == before.total("KAS") + 1500
    assert after.total("USDT") == before.total("USDT") - notional - fee
    assert await venue.fetch_open_orders() == []
    assert venue.stats.places == 1 and venue.stats.fills == 2


async def test_a_sell_takes_what_is_there_and_the_rest_expires() -> None:
    venue = await venue_with_book()
    outcome = await venue.place_ioc(ioc("h2", Side.SELL, "0.079980", "5000"))
    assert (outcome.status, outcome.filled) == ("partial", D(3000))
    assert outcome.average_price == (D("0.079990") * 1000 + D("0.079980") * 2000) / 3000
    assert await venue.fetch_open_orders() == []


async def test_nothing_within_the_limit_expires_with_nothing_filled_and_no_event() -> None:
    venue = await venue_with_book()
    await drain(venue, 1)
    before = await venue.fetch_balances()
    outcome = await venue.place_ioc(ioc("h3", Side.BUY, "0.080009", "100"))
    assert outcome == IocOutcome(cid("h3"), D(0), None, "expired", VenueOrderId("1"))
    assert await venue.fetch_balances() == before
    assert await venue.fetch_open_orders() == []
    assert venue.stats.fills == 0


async def test_self_trade_prevention_cancels_the_taker_before_an_own_order() -> None:
    venue = await venue_with_book()
    # Our own ask at 0.080015 sits between the two synthetic ask levels.
    await venue.place_order(OrderRequest(cid("a1"), Side.SELL, D("0.080015"), D(100)))
    outcome = await venue.place_ioc(ioc("h4", Side.BUY, "0.080020", "3000"))
    assert (outcome.status, outcome.filled) == ("partial", D(1000))  # the 0.080010 level only
    assert [o.remaining for o in await venue.fetch_open_orders()] == [D(100)]
    # An own order at the best price: nothing is taken at all.
    await venue.place_order(OrderRequest(cid("b1"), Side.BUY, D("0.079995"), D(100)))
    stopped = await venue.place_ioc(ioc("h5", Side.SELL, "0.079980", "100"))
    assert (stopped.status, stopped.filled) == ("expired", D(0))


async def test_other_traders_at_the_own_orders_price_are_taken_first() -> None:
    venue = await venue_with_book()
    await venue.place_order(OrderRequest(cid("b1"), Side.BUY, D("0.079990"), D(100)))
    outcome = await venue.place_ioc(ioc("h6", Side.SELL, "0.079980", "3000"))
    # The synthetic 1000 at 0.079990 is ahead of our bid there; then our bid is next: stop.
    assert (outcome.status, outcome.filled) == ("partial", D(1000))
    assert [o.remaining for o in await venue.fetch_open_orders()] == [D(100)]


async def test_funds_for_the_whole_order_at_its_limit_are_checked_first() -> None:
    venue = await venue_with_book(balances={"KAS": D(100), "USDT": D(80)})
    before = await venue.fetch_balances()
    with pytest.raises(InsufficientFunds):
        # 1000 * 0.08002 * 1.001 > 80 USDT, though the fill would cost less at 0.080010.
        await venue.place_ioc(ioc("h7", Side.BUY, "0.080020", "1000"))
    with pytest.raises(InsufficientFunds):
        await venue.place_ioc(ioc("h8", Side.SELL, "0.079990", "100.01"))
    assert await venue.fetch_balances() == before
    assert venue.stats.rejects == 2 and venue.stats.fills == 0


@pytest.mark.parametrize(
    "request_",
    [
        OrderRequest(cid("g1"), Side.BUY, D("0.08002"), D(10), False),  # GTC
        OrderRequest(cid("g2"), Side.BUY, D("0.08002"), D(10), True, -1, -1, TimeInForce.IOC),
        ioc("g3", Side.BUY, "0.0800105", "10"),  # off tick
        ioc("g4", Side.BUY, "0.080020", "1"),  # below the minimum notional
    ],
)
async def test_what_is_not_a_valid_ioc_is_rejected(request_: OrderRequest) -> None:
    venue = await venue_with_book()
    with pytest.raises(OrderRejected):
        await venue.place_ioc(request_)
    assert venue.stats.fills == 0


async def test_place_order_refuses_an_ioc_request() -> None:
    venue = await venue_with_book()
    with pytest.raises(OrderRejected, match="place_ioc"):
        await venue.place_order(ioc("g5", Side.BUY, "0.079000", "100"))
    assert await venue.fetch_open_orders() == []


async def test_the_as2008_market_has_no_book_to_take_from() -> None:
    config = SimVenueConfig(type="sim", market=AS2008Market(model="as2008"))
    venue = SimVenue(config, "X/Y", VirtualClock())
    await venue.connect()
    with pytest.raises(OrderRejected, match="as2008"):
        await venue.place_ioc(OrderRequest.ioc(cid("a"), Side.BUY, D(100), D(1)))


async def test_an_ioc_draws_nothing_from_the_market_generator() -> None:
    """The mid path after an IOC is the one without it: a run with IOCs changes only the book
    liquidity it took, and a run without any is the run it always was."""
    plain = await venue_with_book()
    taker = await venue_with_book()
    await taker.place_ioc(ioc("h9", Side.BUY, "0.080020", "1500"))
    paths = []
    for venue in (plain, taker):
        clock = venue.exchange.state.clock
        events = venue.events()
        path = []
        while clock.now() < 1_060.0:
            if isinstance(await anext(events), BookUpdated):
                path.append((clock.now(), venue.mid))
        await events.aclose()
        paths.append(path[-100:])
    assert paths[0] == paths[1] and len(paths[0]) == 100


async def test_the_synchronous_face_is_what_the_backtest_calls() -> None:
    venue = await venue_with_book()
    outcome = venue.exchange.place_ioc_now(ioc("s1", Side.SELL, "0.079990", "400"))
    assert (outcome.status, outcome.filled, outcome.average_price) == (
        "filled",
        D(400),
        D("0.079990"),
    )


def test_take_within_stops_at_the_limit_and_before_own_liquidity() -> None:
    book = make_book([("0.5", "1"), ("0.4", "2")], [("0.6", "1"), ("0.7", "2"), ("0.8", "5")])
    takes, left = take_from_book(book, None, Side.BUY, D("0.7"), D(10))
    assert takes == [(D("0.6"), D(1)), (D("0.7"), D(2))]
    assert left.asks == (BookLevel(D("0.8"), D(5)),) and left.bids == book.bids
    takes, left = take_from_book(book, D("0.65"), Side.BUY, D("0.8"), D(10))
    assert takes == [(D("0.6"), D(1))]  # our own ask at 0.65 is next
    assert take_from_book(book, None, Side.SELL, D("0.51"), D(1)) == ([], book)
    side = LevelsLiquidity(book.bids)
    assert take_within(side, D("0.4"), Side.SELL, D("0.1"), D("1.5")) == [
        (D("0.5"), D(1)),
        (D("0.4"), D("0.5")),  # equal to our own bid: other traders first
    ]
    assert side.left() == (BookLevel(D("0.4"), D("1.5")),)
