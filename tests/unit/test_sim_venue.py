"""The simulated venue with the random-walk market: matching, balances, determinism, volatility."""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
import time
from decimal import Decimal
from typing import Any

import pytest

from kasmm.clock import RealClock, VirtualClock
from kasmm.config.schema import RandomWalkMarket, SimFees, SimVenueConfig
from kasmm.core.grid import grid_of
from kasmm.core.types import (
    BookUpdated,
    ClientOrderId,
    Fill,
    MarketRules,
    OrderFilled,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.errors import (
    FatalVenueError,
    InsufficientFunds,
    OrderRejected,
    PostOnlyWouldCross,
)
from kasmm.venues.base import Venue
from kasmm.venues.sim import SimStats, SimVenue
from kasmm.venues.sim.matching import OwnOrders
from kasmm.venues.sim.orders import on_grid, validate_request

pytestmark = pytest.mark.anyio
D = Decimal


def make_venue(
    seed: int = 1, *, trade_id_tag: str | None = None, **overrides: Any
) -> tuple[SimVenue, VirtualClock]:
    """A random-walk venue on a virtual clock; ``market=`` and other config keys override."""
    clock = VirtualClock()
    # Pin the market these tests were calibrated on, independent of the schema's defaults.
    overrides.setdefault(
        "market",
        RandomWalkMarket(
            book_update="regenerate",  # the model version whose numbers these tests pin
            book_spread_bps=12,
            book_level_size=Decimal(20000),
            taker_rate_per_s=3,
            taker_size_mean=Decimal(3000),
        ),
    )
    config = SimVenueConfig(type="sim", seed=seed, **overrides)
    return SimVenue(config, "KAS/USDT", clock, trade_id_tag=trade_id_tag), clock


def req(
    cid: str, side: Side, price: Decimal, size: Decimal, post_only: bool = True
) -> OrderRequest:
    """A limit order request (post-only unless told)."""
    return OrderRequest(ClientOrderId(cid), side, price, size, post_only)


QUOTE_SIZE = D(500)


class InsideQuoter:
    """A tiny deterministic bot: keeps one order per side one tick inside the touch."""

    def __init__(self, venue: SimVenue, size: Decimal = QUOTE_SIZE) -> None:
        self.venue = venue
        self.size = size
        self.n = 0

    async def on_event(self, event: VenueEvent) -> None:
        """On each book, place the missing side(s) one tick inside the touch."""
        if not isinstance(event, BookUpdated):
            return
        book = event.book
        tick = self.venue.rules.tick
        sides = {o.side for o in await self.venue.fetch_open_orders()}
        for side, price in ((Side.BUY, book.best_bid), (Side.SELL, book.best_ask)):
            if side in sides or price is None:
                continue
            self.n += 1
            inside = price + tick if side is Side.BUY else price - tick
            # A one-tick spread or an empty wallet side: skip this side this round.
            with contextlib.suppress(PostOnlyWouldCross, InsufficientFunds):
                await self.venue.place_order(req(f"q{self.n}", side, inside, self.size))


async def run(venue: SimVenue, clock: VirtualClock, seconds: float, bot: Any = None) -> list[Any]:
    """Connect and drive the venue for ``seconds`` of virtual time; return every event."""
    await venue.connect()
    events: list[VenueEvent] = []
    stream = venue.events()
    try:
        async for event in stream:
            events.append(event)
            if bot is not None:
                await bot.on_event(event)
            if clock.now() >= seconds:
                break
    finally:
        await stream.aclose()
    return events


def fills_of(events: list[VenueEvent]) -> list[Fill]:
    """The fills among ``events``."""
    return [e.fill for e in events if isinstance(e, OrderFilled)]


# --- rules, validation, bookkeeping ---------------------------------------------------------


async def test_rules_come_from_config_with_fees_as_fractions() -> None:
    venue, _ = make_venue(fees=SimFees(maker_bps=2.5, taker_bps=7))
    rules = await venue.connect()
    assert (rules.base, rules.quote) == ("KAS", "USDT")
    assert (rules.tick, rules.lot, rules.min_notional) == (D("0.000001"), D("0.01"), D(1))
    assert rules.maker_fee == D("0.00025") and rules.taker_fee == D("0.0007")
    assert venue.rules is rules


def test_symbol_must_be_base_slash_quote() -> None:
    with pytest.raises(ValueError):
        SimVenue(SimVenueConfig(type="sim"), "KASUSDT", VirtualClock())


async def test_requests_need_a_connection_and_events_end_on_close() -> None:
    venue, clock = make_venue()
    with pytest.raises(FatalVenueError):
        await venue.fetch_balances()
    await venue.connect()
    stream = venue.events()
    await anext(stream)
    await venue.close()
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    with pytest.raises(FatalVenueError):
        await venue.place_order(req("a", Side.BUY, D("0.07"), D(100)))
    # Reconnecting resumes the same market where it stopped.
    t = clock.now()
    await venue.connect()
    event = await anext(venue.events())
    assert clock.now() > t and isinstance(event, BookUpdated | OrderFilled)


async def test_first_book_matches_the_configured_geometry() -> None:
    # Version 1's geometry (every level at its bps offset from the mid); version 2's grid is
    # checked in test_sim_book.py.
    market = RandomWalkMarket(
        book_update="regenerate",
        book_levels=5,
        book_spread_bps=10,
        book_step_bps=3,
        book_level_size=Decimal(20000),
    )
    venue, _ = make_venue(market=market)
    await venue.connect()
    book = venue.book
    tick, mid = venue.rules.tick, venue.mid
    assert len(book.bids) == len(book.asks) == 5
    for i, (bid, ask) in enumerate(zip(book.bids, book.asks, strict=True)):
        off = (5 + 3 * i) / 1e4
        assert bid.price == math.floor(mid * (1 - off) / float(tick)) * tick
        assert ask.price == math.ceil(mid * (1 + off) / float(tick)) * tick
        for level in (bid, ask):
            assert D("16000") <= level.size <= D("24000") and level.size % D("0.01") == 0


async def test_non_post_only_crossing_order_is_rejected_not_executed() -> None:
    venue, _ = make_venue()
    await venue.connect()
    ask = venue.book.best_ask
    assert ask is not None
    with pytest.raises(OrderRejected) as info:
        await venue.place_order(req("t", Side.BUY, ask, D(100), post_only=False))
    assert not isinstance(info.value, PostOnlyWouldCross)


async def test_post_only_checks_the_bots_own_orders_too() -> None:
    venue, _ = make_venue()
    await venue.connect()
    ask = venue.book.best_ask
    assert ask is not None
    inside = ask - venue.rules.tick
    await venue.place_order(req("ask", Side.SELL, inside, D(100)))
    with pytest.raises(PostOnlyWouldCross):
        await venue.place_order(req("bid", Side.BUY, inside, D(100)))


async def test_buy_locks_notional_plus_fee_and_cancel_unlocks() -> None:
    venue, _ = make_venue(fees=SimFees(maker_bps=10), balances={"USDT": D(100), "KAS": D(0)})
    await venue.connect()
    await venue.place_order(req("b", Side.BUY, D("0.07"), D(1000)))
    balances = await venue.fetch_balances()
    assert balances.get("USDT").locked == D(70) * D("1.001")
    assert balances.free("USDT") == D(100) - D(70) * D("1.001")
    with pytest.raises(InsufficientFunds):
        await venue.place_order(req("b2", Side.BUY, D("0.07"), D(429)))  # 30.03 > 29.93 free
    await venue.cancel_order(ClientOrderId("b"))
    balances = await venue.fetch_balances()
    assert balances.get("USDT").free == D(100) and balances.get("USDT").locked == 0


async def test_counters_and_introspection() -> None:
    venue, _ = make_venue()
    await venue.connect()
    await venue.place_order(req("a1", Side.BUY, D("0.07"), D(100)))
    await venue.place_order(req("a2", Side.BUY, D("0.07"), D(100)))
    with pytest.raises(OrderRejected):
        await venue.place_order(req("a3", Side.BUY, D("0.0700001"), D(100)))
    assert venue.open_order_count == 2
    await venue.cancel_order(ClientOrderId("a1"))
    assert await venue.cancel_all("a") == 1
    assert venue.stats == SimStats(places=3, cancels=2, rejects=1, fills=0)
    assert venue.open_order_count == 0 and venue.fills_total == 0


async def test_latency_is_spent_on_the_clock_per_request() -> None:
    venue, clock = make_venue(latency_ms=50)
    await venue.connect()
    t = clock.now()
    await venue.place_order(req("a", Side.BUY, D("0.07"), D(100)))
    await venue.fetch_open_orders()
    assert clock.now() == pytest.approx(t + 0.1)


async def test_a_batch_costs_one_latency_and_books_its_orders_in_request_order() -> None:
    venue, clock = make_venue(latency_ms=25)
    await venue.connect()
    book = venue.book
    assert book.best_bid is not None and book.best_ask is not None
    bid = book.best_bid - D("0.0001")
    t = clock.now()
    outcomes = await venue.place_orders(
        [
            req("b1", Side.BUY, bid, D(100)),
            req("x1", Side.BUY, book.best_ask, D(100)),  # post-only through the ask
            req("b2", Side.BUY, bid - D("0.0001"), D(100)),
            req("b1", Side.BUY, bid, D(100)),  # the first order of this batch is open now
        ]
    )
    # Concurrent single requests overlap: one round trip for all (not 4 x 25 ms), in virtual
    # time as in real time.
    assert clock.now() == pytest.approx(t + 0.025)
    assert [type(o).__name__ for o in outcomes] == [
        "OpenOrder",
        "PostOnlyWouldCross",
        "OpenOrder",
        "OrderRejected",
    ]
    assert [o.client_id for o in await venue.fetch_open_orders()] == ["b1", "b2"]
    t = clock.now()
    cancelled = await venue.cancel_orders(
        [ClientOrderId("b2"), ClientOrderId("zz"), ClientOrderId("b1")]
    )
    assert clock.now() == pytest.approx(t + 0.025)
    assert cancelled[0] is None and cancelled[2] is None
    assert type(cancelled[1]).__name__ == "OrderNotFound"
    assert venue.stats == SimStats(places=4, cancels=3, rejects=2, fills=0)
    assert await venue.place_orders([]) == [] and clock.now() == pytest.approx(t + 0.025)


async def test_a_batch_on_a_real_clock_takes_one_latency() -> None:
    config = SimVenueConfig(type="sim", seed=1, latency_ms=100)
    venue = SimVenue(config, "KAS/USDT", RealClock())
    await venue.connect()
    bid = venue.book.best_bid
    assert bid is not None
    began = time.perf_counter()
    outcomes = await venue.place_orders(
        [req(f"r{i}", Side.BUY, bid - i * D("0.0001"), D(100)) for i in range(1, 6)]
    )
    elapsed = time.perf_counter() - began
    assert all(type(o).__name__ == "OpenOrder" for o in outcomes)
    assert 0.09 <= elapsed < 0.4, elapsed  # ~100 ms, not 500


async def test_a_batch_is_deterministic_for_a_seed() -> None:
    async def run() -> list[object]:
        venue, clock = make_venue(seed=3, latency_ms=10, trade_id_tag="t")
        await venue.connect()
        stream = venue.events()
        seen: list[object] = []
        for n in range(60):
            event = await anext(stream)
            seen.append((clock.now(), event))
            if isinstance(event, BookUpdated) and n % 5 == 0:
                bid, ask = event.book.best_bid, event.book.best_ask
                assert bid is not None and ask is not None
                placed = await venue.place_orders(
                    [req(f"b{n}", Side.BUY, bid, D(100)), req(f"s{n}", Side.SELL, ask, D(100))]
                )
                cancelled = await venue.cancel_orders([ClientOrderId(f"b{n - 5}")])
                seen += [repr(o) for o in [*placed, *cancelled]]  # errors compare by repr
        return seen

    assert await run() == await run()


# --- fills ------------------------------------------------------------------------------------


async def test_partial_fills_then_complete() -> None:
    venue, _ = make_venue(fees=SimFees(maker_bps=10), trade_id_tag="t")
    await venue.connect()
    stream = venue.events()
    await anext(stream)
    ask = venue.book.asks[0]
    await venue.place_order(req("s", Side.SELL, ask.price, D(1000)))  # behind the level
    venue.submit_taker(Side.BUY, ask.size + D(400))
    first = await anext(stream)
    assert isinstance(first, OrderFilled)
    assert (first.fill.size, first.fill.remaining, first.fill.price) == (D(400), D(600), ask.price)
    assert first.fill.fee == ask.price * 400 * D("0.001") and first.fill.fee_asset == "USDT"
    assert first.fill.is_maker and first.fill.trade_id == "sim-t-1"
    (order,) = await venue.fetch_open_orders()
    assert order.remaining == D(600) and order.filled == D(400)
    assert isinstance(await anext(stream), BookUpdated)  # the taker changed the book

    venue.submit_taker(Side.BUY, D(10_000))
    second = await anext(stream)
    assert isinstance(second, OrderFilled)
    assert (second.fill.size, second.fill.remaining, second.fill.trade_id) == (
        D(600),
        D(0),
        "sim-t-2",
    )
    assert await venue.fetch_open_orders() == []
    await stream.aclose()


@pytest.mark.parametrize("maker_bps", [0.0, 10.0, -2.5])
async def test_balances_conserve_value_minus_fees(maker_bps: float) -> None:
    venue, clock = make_venue(seed=3, fees=SimFees(maker_bps=maker_bps))
    await venue.connect()
    before = await venue.fetch_balances()
    events = await run(venue, clock, 300.0, InsideQuoter(venue))
    await venue.cancel_all("")
    after = await venue.fetch_balances()
    fills = fills_of(events)
    assert len(fills) > 50 and any(f.remaining > 0 for f in fills)  # partial fills happened
    d_base = after.total("KAS") - before.total("KAS")
    d_quote = after.total("USDT") - before.total("USDT")
    fees = sum((f.fee for f in fills), D(0))
    assert d_base == sum((f.side.sign * f.size for f in fills), D(0))
    # Exact: the value of the traded base at its trade prices plus the cash change is -fees.
    assert sum((f.side.sign * f.size * f.price for f in fills), D(0)) + d_quote == -fees
    assert after.get("KAS").locked == 0 and after.get("USDT").locked == 0
    assert after.free("KAS") >= 0 and after.free("USDT") >= 0
    assert venue.fills_total == len(fills) == venue.stats.fills
    assert len({f.trade_id for f in fills}) == len(fills)


async def test_orders_crossed_by_the_mid_fill_at_their_own_price() -> None:
    # No takers: every fill comes from the book regenerating through the bot's orders.
    market = RandomWalkMarket(taker_rate_per_s=1e-9, sigma_bps=50, book_spread_bps=4)
    venue, _ = make_venue(seed=5, market=market)
    await venue.connect()
    bot = InsideQuoter(venue, size=D(100))
    placed: dict[str, Decimal] = {}
    events = []
    stream = venue.events()
    async for event in stream:
        events.append(event)
        if isinstance(event, BookUpdated):
            assert not event.book.is_crossed
        await bot.on_event(event)
        placed.update({o.client_id: o.price for o in await venue.fetch_open_orders()})
        if len(fills_of(events)) >= 20:
            break
    await stream.aclose()
    for fill in fills_of(events):
        assert fill.price == placed[fill.client_id]
        assert fill.size == D(100) and fill.remaining == 0 and fill.is_maker
    assert {f.side for f in fills_of(events)} == {Side.BUY, Side.SELL}


# --- restarts on one ledger -----------------------------------------------------------------


async def test_two_instances_with_one_seed_never_share_a_trade_id() -> None:
    # A restart rebuilds the venue with the same seed: same market, same fills, but the ledger
    # stores a fill once per trade id for its whole life, so the ids must differ.
    runs = []
    for _ in range(2):
        venue, clock = make_venue(seed=11)
        runs.append(fills_of(await run(venue, clock, 60.0, InsideQuoter(venue))))
    first, second = runs
    assert len(first) > 5 and [f.size for f in first] == [f.size for f in second]
    ids = [f.trade_id for f in first + second]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("sim-") for i in ids)


async def test_balances_are_restored_before_the_first_order_only() -> None:
    venue, _ = make_venue(balances={"KAS": D(1000), "USDT": D(100), "BTC": D(1)})
    assert venue.starting_balances() == {"KAS": D(1000), "USDT": D(100), "BTC": D(1)}
    venue.restore_balances({"KAS": D("1200.5"), "USDT": D("83.9")})
    await venue.connect()
    balances = await venue.fetch_balances()
    assert {a: (b.free, b.locked) for a, b in balances.assets.items()} == {
        "KAS": (D("1200.5"), D(0)),
        "USDT": (D("83.9"), D(0)),
    }
    stream = venue.events()
    await anext(stream)
    await venue.place_order(req("b", Side.BUY, venue.book.bids[0].price, D(100)))
    assert venue.starting_balances() is None  # it has traded: its balances are its own
    with pytest.raises(RuntimeError):
        venue.restore_balances({"KAS": D(1), "USDT": D(1)})
    await stream.aclose()


# --- determinism and statistics -----------------------------------------------------------


async def traced_run(seed: int) -> list[VenueEvent]:
    """Every event of a 60 s run with the inside quoter (trade ids pinned: they are the one
    thing a seed does not decide)."""
    venue, clock = make_venue(seed=seed, trade_id_tag="det")
    return await run(venue, clock, 60.0, InsideQuoter(venue))


async def test_same_seed_same_events_and_different_seed_different_events() -> None:
    first = await traced_run(11)
    assert len(fills_of(first)) > 5
    assert await traced_run(11) == first
    assert await traced_run(12) != first


@pytest.mark.parametrize("sigma_bps", [2.0, 20.0])
async def test_realized_volatility_matches_sigma_bps(sigma_bps: float) -> None:
    market = RandomWalkMarket(sigma_bps=sigma_bps)
    venue, clock = make_venue(seed=2, market=market)
    await venue.connect()
    mids = [venue.mid]
    stream = venue.events()
    async for event in stream:
        # The mid only moves at book regenerations; taker events leave it unchanged.
        if isinstance(event, BookUpdated) and venue.mid != mids[-1]:
            mids.append(venue.mid)
        if clock.now() >= 600.0:
            break
    await stream.aclose()
    returns = [math.log(b / a) for a, b in itertools.pairwise(mids)]
    assert len(returns) == pytest.approx(6000, abs=2)
    realized = statistics.pstdev(returns) / math.sqrt(market.book_interval_s) * 1e4
    # Standard error of a standard deviation over n samples is about sigma / sqrt(2n) (~0.9%).
    assert realized == pytest.approx(sigma_bps, rel=0.04)


def test_venue_satisfies_the_protocol() -> None:
    venue, _ = make_venue()
    assert isinstance(venue, Venue)


def _grid_rules() -> MarketRules:
    return MarketRules(
        symbol="KAS/USDT", base="KAS", quote="USDT", tick=Decimal("0.000001"),
        lot=Decimal("0.01"), min_notional=Decimal(1),
    )  # fmt: skip


def test_a_request_spelled_on_the_grid_skips_only_the_general_form_of_the_checks() -> None:
    rules = _grid_rules()
    grid = grid_of(rules)
    orders = OwnOrders()

    def request(price: Decimal, size: Decimal, ticks: int, lots: int) -> OrderRequest:
        return OrderRequest(ClientOrderId("c1"), Side.BUY, price, size, True, ticks, lots)

    # The bot's own objects: on the grid, the ticks are kept.
    assert validate_request(rules, orders, request(grid.price(80000), grid.size(2000), 80000, 2000))
    # Equal values but other objects, ticks unknown or wrong: the general checks, same verdicts.
    assert not validate_request(rules, orders, request(Decimal("0.08"), Decimal("20"), 80000, 2000))
    assert not validate_request(rules, orders, request(grid.price(80000), grid.size(2000), -1, -1))
    assert not on_grid(rules, request(grid.price(80000), grid.size(2000), 80001, 2000))
    with pytest.raises(OrderRejected, match="not a multiple of tick"):
        validate_request(rules, orders, request(Decimal("0.0800005"), grid.size(2000), 80000, 2000))
    with pytest.raises(OrderRejected, match="positive and finite"):
        validate_request(rules, orders, request(Decimal("NaN"), grid.size(2000), 80000, 2000))
    # The minimums and the client id are checked on either path.
    with pytest.raises(OrderRejected, match="notional"):
        validate_request(rules, orders, request(grid.price(80000), grid.size(1), 80000, 1))
