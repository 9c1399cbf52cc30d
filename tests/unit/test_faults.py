"""FaultyVenue: every injected fault does what it says, is counted, and is reproducible; and the
bot never turns hostile market data (NaN prices, negative sizes, empty, crossed, stale-ordered
or absurdly jumped books) into an order."""

from __future__ import annotations

import contextlib
import itertools
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import replace
from decimal import Decimal
from typing import TypeVar

import anyio
import pytest

from kasmm.bot import Bot
from kasmm.clock import VirtualClock
from kasmm.config.schema import Profile, SimVenueConfig
from kasmm.core.types import (
    Balances,
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
    TradeId,
    VenueEvent,
)
from kasmm.errors import (
    InsufficientFunds,
    OrderNotFound,
    RateLimited,
    RequestTimedOut,
    TransientVenueError,
)
from kasmm.venues.decorator import VenueDecorator
from kasmm.venues.sim import SimVenue
from tests.faults import SPLIT_SEP, FaultCounters, FaultPlan, FaultyVenue, base_trade_id
from tests.support import make_profile

pytestmark = pytest.mark.anyio
D = Decimal
T0 = 1_000_000.0
T = TypeVar("T")


def sim_profile(**kill_switch: object) -> Profile:
    return make_profile(
        name="faulty",
        venue={"seed": 3},
        modes={
            "aggressive": {"spread_bps": 20, "size": 1000, "levels": 2},
            "passive": {"spread_bps": 20, "size": 1000, "levels": 2},
        },
        kill_switch=kill_switch,
    )


def sim(clock: VirtualClock) -> SimVenue:
    profile = sim_profile()
    assert isinstance(profile.venue, SimVenueConfig)
    return SimVenue(profile.venue, profile.symbol, clock)


def faulty(plan: FaultPlan, clock: VirtualClock, seed: int = 1) -> tuple[FaultyVenue, SimVenue]:
    inner = sim(clock)
    return FaultyVenue(inner, plan, random.Random(seed), clock), inner


async def first_book(venue: FaultyVenue | SimVenue) -> Book:
    async with aclosing(venue.events()) as events:
        async for event in events:
            if isinstance(event, BookUpdated):
                return event.book
    raise AssertionError("no book")


async def bid_request(venue: SimVenue, cid: str) -> OrderRequest:
    book = await first_book(venue)
    assert book.best_bid is not None
    return OrderRequest(ClientOrderId(cid), Side.BUY, book.best_bid - D("0.0001"), D(100))


# --- the plan ---------------------------------------------------------------------------------


def test_plan_refuses_bad_numbers() -> None:
    with pytest.raises(ValueError, match="probability"):
        FaultPlan(network=1.5)
    with pytest.raises(ValueError, match="probability"):
        FaultPlan(stale=float("nan"))
    with pytest.raises(ValueError, match="more than 1"):
        FaultPlan(network=0.6, rate_limited=0.6)
    with pytest.raises(ValueError, match="absurd_factor"):
        FaultPlan(absurd_factor=1.0)
    with pytest.raises(ValueError, match="latency_spike_s"):
        FaultPlan(latency_spike_s=(2.0, 1.0))


def test_uniform_plan_faults_about_the_rate_asked() -> None:
    plan = FaultPlan.uniform(0.1)
    for method in ("place_order", "cancel_order"):
        assert 0.09 <= plan.request_fault_rate(method) + plan.latency_spike <= 0.12
    assert plan.request_fault_rate("fetch_balances") < plan.request_fault_rate("place_order")


# --- requests ---------------------------------------------------------------------------------


async def test_lost_answer_on_place_means_the_order_rests() -> None:
    clock = VirtualClock(T0)
    venue, inner = faulty(FaultPlan(timeout_lost=1.0), clock)
    await venue.connect()
    request = await bid_request(inner, "kab1")
    with pytest.raises(RequestTimedOut, match="answer lost"):
        await venue.place_order(request)
    assert [o.client_id for o in await inner.fetch_open_orders()] == ["kab1"]
    assert venue.counters.faults["timeout_lost"] == 1
    assert venue.counters.faulted_calls == 1 and venue.counters.calls["place_order"] == 1


async def test_lost_answer_on_an_ioc_means_it_executed_and_its_fills_still_arrive() -> None:
    clock = VirtualClock(T0)
    venue, inner = faulty(FaultPlan(timeout_lost=1.0), clock)
    await venue.connect()
    book = await first_book(inner)
    assert book.best_ask is not None
    request = OrderRequest.ioc(ClientOrderId("kah1"), Side.BUY, book.best_ask, D(100))
    with pytest.raises(RequestTimedOut, match="place_ioc: injected timeout"):
        await venue.place_ioc(request)
    async with aclosing(inner.events()) as events:
        fill = await anext(events)
    assert isinstance(fill, OrderFilled) and fill.fill.client_id == "kah1"
    assert not fill.fill.is_maker and fill.fill.size == D(100)
    assert venue.counters.calls["place_ioc"] == 1 and venue.counters.faults["timeout_lost"] == 1


async def test_lost_answer_on_cancel_means_the_order_is_gone() -> None:
    clock = VirtualClock(T0)
    venue, inner = faulty(FaultPlan(timeout_lost=1.0), clock)
    await venue.connect()
    await inner.place_order(await bid_request(inner, "kab1"))
    with pytest.raises(RequestTimedOut):
        await venue.cancel_order(ClientOrderId("kab1"))
    assert await inner.fetch_open_orders() == []
    await inner.place_order(await bid_request(inner, "kab2"))
    with pytest.raises(RequestTimedOut):
        await venue.cancel_all("kab")
    assert await inner.fetch_open_orders() == []


async def test_unsent_timeout_changes_nothing_and_can_take_time() -> None:
    clock = VirtualClock(T0)
    venue, inner = faulty(FaultPlan(timeout_unsent=1.0, timeout_delay_s=5.0), clock)
    await venue.connect()
    request = await bid_request(inner, "kab1")
    before = clock.now()
    with pytest.raises(RequestTimedOut, match="never sent"):
        await venue.place_order(request)
    assert clock.now() - before == pytest.approx(5.0)
    assert await inner.fetch_open_orders() == []


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("rate_limited", RateLimited),
        ("network", TransientVenueError),
        ("maintenance", TransientVenueError),
        ("insufficient_funds", InsufficientFunds),
    ],
)
async def test_refusals_change_nothing(kind: str, error: type[Exception]) -> None:
    clock = VirtualClock(T0)
    venue, inner = faulty(FaultPlan(**{kind: 1.0}), clock)  # type: ignore[arg-type]
    await venue.connect()
    with pytest.raises(error):
        await venue.place_order(await bid_request(inner, "kab1"))
    assert await inner.fetch_open_orders() == []
    assert venue.counters.faults[kind] == 1


async def test_cancel_not_found_after_cancelling_or_while_still_open() -> None:
    clock = VirtualClock(T0)
    done, inner = faulty(FaultPlan(cancel_not_found_done=1.0), clock)
    await done.connect()
    await inner.place_order(await bid_request(inner, "kab1"))
    with pytest.raises(OrderNotFound, match="was cancelled"):
        await done.cancel_order(ClientOrderId("kab1"))
    assert await inner.fetch_open_orders() == []

    kept, inner = faulty(FaultPlan(cancel_not_found_kept=1.0), clock)
    await kept.connect()
    await inner.place_order(await bid_request(inner, "kab2"))
    with pytest.raises(OrderNotFound, match="still open"):
        await kept.cancel_order(ClientOrderId("kab2"))
    assert [o.client_id for o in await inner.fetch_open_orders()] == ["kab2"]


async def test_latency_spike_sleeps_on_the_clock_then_the_request_goes_through() -> None:
    clock = VirtualClock(T0)
    venue, _inner = faulty(FaultPlan(latency_spike=1.0, latency_spike_s=(2.0, 2.0)), clock)
    await venue.connect()
    before = clock.now()
    assert await venue.fetch_open_orders() == []
    assert clock.now() - before == pytest.approx(2.0)
    assert venue.counters.faults["latency_spike"] == 1 and venue.counters.faulted_calls == 1


async def test_connect_error_and_disabled_injection() -> None:
    clock = VirtualClock(T0)
    venue, _ = faulty(FaultPlan(connect_error=1.0, network=1.0), clock)
    with pytest.raises(TransientVenueError, match="connect"):
        await venue.connect()
    venue.enabled = False
    await venue.connect()
    assert await venue.fetch_open_orders() == []
    assert venue.counters.calls["connect"] == 2 and venue.counters.faulted_calls == 1


async def test_same_seed_same_faults() -> None:
    async def run(seed: int) -> list[str]:
        clock = VirtualClock(T0)
        venue, _ = faulty(FaultPlan.uniform(0.5), clock, seed=seed)
        await venue.connect()
        out = []
        for _ in range(200):
            try:
                await venue.fetch_open_orders()
                out.append("ok")
            except Exception as exc:
                out.append(type(exc).__name__)
        return out

    assert await run(5) == await run(5)
    assert await run(5) != await run(6)


# --- batch calls ------------------------------------------------------------------------------


async def two_bids(inner: SimVenue) -> list[OrderRequest]:
    first = await bid_request(inner, "kab1")
    return [first, OrderRequest(ClientOrderId("kab2"), Side.BUY, first.price - D("0.0001"), D(100))]


async def test_a_lost_batch_answer_carries_every_order_out() -> None:
    clock = VirtualClock(T0)
    venue, inner = faulty(FaultPlan(timeout_lost=1.0), clock)
    await venue.connect()
    with pytest.raises(RequestTimedOut, match="place_orders: injected timeout"):
        await venue.place_orders(await two_bids(inner))
    assert [o.client_id for o in await inner.fetch_open_orders()] == ["kab1", "kab2"]
    with pytest.raises(RequestTimedOut, match="cancel_orders"):
        await venue.cancel_orders([ClientOrderId("kab1"), ClientOrderId("kab2")])
    assert await inner.fetch_open_orders() == []
    # Two orders each: two requests (concurrent singles), both faulted; two injections.
    assert venue.counters.calls["place_orders"] == venue.counters.calls["cancel_orders"] == 2
    assert venue.counters.faults["timeout_lost"] == 2 and venue.counters.faulted_calls == 4
    assert await venue.place_orders([]) == [] and venue.counters.calls["place_orders"] == 2


async def test_an_unsent_batch_changes_nothing() -> None:
    clock = VirtualClock(T0)
    venue, inner = faulty(FaultPlan(timeout_unsent=1.0, insufficient_funds=1.0), clock)
    await venue.connect()
    with pytest.raises(RequestTimedOut, match="never sent"):
        await venue.place_orders(await two_bids(inner))
    assert await inner.fetch_open_orders() == []
    # Its orders' faults were never applied: only the whole call's is counted.
    assert dict(venue.counters.faults) == {"timeout_unsent": 1}


async def test_refused_funds_are_one_order_s_outcome_in_a_batch() -> None:
    clock = VirtualClock(T0)
    venue, inner = faulty(FaultPlan(insufficient_funds=0.5), clock, seed=10)
    await venue.connect()
    requests = await two_bids(inner)
    outcomes = await venue.place_orders(requests)
    refused = [isinstance(o, InsufficientFunds) for o in outcomes]
    assert refused == [False, True]  # seed 10: the second order's draw refuses it
    assert [o.client_id for o in await inner.fetch_open_orders()] == ["kab1"]
    assert venue.counters.faults["insufficient_funds"] == 1
    assert venue.counters.calls["place_orders"] == 2 and venue.counters.faulted_calls == 1


async def test_cancel_not_found_per_order_in_a_batch() -> None:
    clock = VirtualClock(T0)
    done, inner = faulty(FaultPlan(cancel_not_found_done=1.0), clock)
    await done.connect()
    await inner.place_orders(await two_bids(inner))
    outcomes = await done.cancel_orders([ClientOrderId("kab1"), ClientOrderId("kab2")])
    assert all(isinstance(o, OrderNotFound) and "was cancelled" in str(o) for o in outcomes)
    assert await inner.fetch_open_orders() == []

    kept, inner = faulty(FaultPlan(cancel_not_found_kept=1.0), clock)
    await kept.connect()
    await inner.place_orders(await two_bids(inner))
    outcomes = await kept.cancel_orders([ClientOrderId("kab1")])
    assert isinstance(outcomes[0], OrderNotFound) and "still open" in str(outcomes[0])
    assert [o.client_id for o in await inner.fetch_open_orders()] == ["kab1", "kab2"]
    assert kept.counters.faults["cancel_not_found_kept"] == 1


# --- the stream -------------------------------------------------------------------------------


RULES = MarketRules("KAS/USDT", "KAS", "USDT", tick=D("0.00001"), lot=D("0.01"))
BOOK = Book((BookLevel(D("0.0799"), D(500)),), (BookLevel(D("0.0801"), D(500)),), T0)


def fill(n: int, size: str = "10", remaining: str = "0") -> OrderFilled:
    return OrderFilled(
        Fill(
            trade_id=TradeId(f"t{n}"),
            client_id=ClientOrderId("kab1"),
            side=Side.BUY,
            price=D("0.0799"),
            size=D(size),
            fee=D("0.003"),
            fee_asset="USDT",
            ts=T0 + n,
            remaining=D(remaining),
        )
    )


class Scripted:
    """A venue whose stream is a fixed list of events (requests unused)."""

    name = "scripted"

    def __init__(self, events: list[VenueEvent]) -> None:
        self.script = list(events)

    async def connect(self) -> MarketRules:
        return RULES

    async def close(self) -> None:
        return None

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        while self.script:
            yield self.script.pop(0)

    async def fetch_balances(self) -> Balances:
        return Balances()

    async def fetch_open_orders(self) -> list[OpenOrder]:
        return []

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        raise NotImplementedError

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        raise NotImplementedError

    async def cancel_all(self, prefix: str) -> int:
        return 0


async def collect(venue: FaultyVenue, limit: int = 1000) -> list[VenueEvent]:
    out: list[VenueEvent] = []
    async with aclosing(venue.events()) as events:
        async for event in events:
            out.append(event)
            if len(out) >= limit:
                break
    return out


def scripted(events: list[VenueEvent], seed: int = 1, **plan: float) -> FaultyVenue:
    clock = VirtualClock(T0)
    # Scripted is a stream-only fake (no batch methods), and ``plan`` holds only the float
    # probabilities of FaultPlan (none of its tuple fields).
    return FaultyVenue(Scripted(events), FaultPlan(**plan), random.Random(seed), clock)  # type: ignore[arg-type]


def trade_ids(events: list[VenueEvent]) -> list[str]:
    return [str(e.fill.trade_id) for e in events if isinstance(e, OrderFilled)]


async def test_duplicate_fills_repeat_the_same_trade_id() -> None:
    venue = scripted([fill(1), fill(2)], fill_duplicate=1.0)
    assert trade_ids(await collect(venue)) == ["t1", "t1", "t2", "t2"]
    assert venue.counters.faults["fill_duplicate"] == 2


async def test_out_of_order_fill_comes_after_the_next_event_and_is_never_lost() -> None:
    venue = scripted([fill(1), BookUpdated(BOOK), fill(2)], fill_out_of_order=1.0)
    events = await collect(venue)
    assert isinstance(events[0], BookUpdated)
    assert trade_ids(events) == ["t1", "t2"]  # t2 was held last: delivered at the end


async def test_split_fill_parts_add_up_on_the_lot_with_consistent_remaining() -> None:
    venue = scripted([fill(1, size="10", remaining="5")], fill_split=1.0)
    await venue.connect()
    events = [e for e in await collect(venue) if isinstance(e, OrderFilled)]
    parts = [e.fill for e in events]
    assert 2 <= len(parts) <= 3
    assert sum(p.size for p in parts) == D(10)
    assert sum(p.fee for p in parts) == D("0.003")
    assert all(p.size % RULES.lot == 0 and p.size > 0 for p in parts)
    assert [p.remaining for p in parts][-1] == D(5)
    assert all(a.remaining == b.remaining + b.size for a, b in itertools.pairwise(parts))
    assert {base_trade_id(p.trade_id) for p in parts} == {"t1"}
    assert all(SPLIT_SEP in p.trade_id for p in parts)


async def test_disconnect_delivers_held_fills_then_raises() -> None:
    venue = scripted(
        [fill(1), BookUpdated(BOOK), BookUpdated(BOOK)], fill_out_of_order=1.0, disconnect=1.0
    )
    got: list[VenueEvent] = []
    with pytest.raises(TransientVenueError, match="disconnect"):
        async with aclosing(venue.events()) as events:
            async for event in events:
                got.append(event)
    assert trade_ids(got) == ["t1"]
    assert venue.counters.faults["disconnect"] == 1


async def test_stream_end_and_stale() -> None:
    venue = scripted([BookUpdated(BOOK), BookUpdated(BOOK)], stream_end=1.0)
    assert len(await collect(venue)) == 1
    stale = scripted([BookUpdated(BOOK), BookUpdated(BOOK)], stale=1.0, stale_s=7.0)
    before = stale.clock.now()
    await collect(stale)
    assert stale.clock.now() - before == pytest.approx(14.0)


async def test_fills_held_when_the_consumer_closes_come_first_next_time() -> None:
    venue = scripted([fill(1), BookUpdated(BOOK), BookUpdated(BOOK)], fill_out_of_order=1.0)
    first = await collect(venue, limit=1)  # the book; t1 is still held back
    assert trade_ids(first) == []
    assert trade_ids(venue.pending_events()) == ["t1"]
    second = await collect(venue)
    assert trade_ids(second)[0] == "t1"


async def test_hostile_books() -> None:
    cases: dict[str, Callable[[Book], bool]] = {
        "nan_price": lambda b: any(not lv.price.is_finite() for lv in (*b.bids, *b.asks)),
        "negative_size": lambda b: b.bids[0].size < 0 and b.asks[0].size < 0,
        "empty_book": lambda b: not b.bids and not b.asks,
        "absurd_jump": lambda b: b.bids[0].price > BOOK.bids[0].price * 50,
        "book_crossed": lambda b: b.bids[0].price > b.asks[0].price,
    }
    for kind, check in cases.items():
        venue = scripted([BookUpdated(BOOK)], 1, **{kind: 1.0})
        books = [e.book for e in await collect(venue) if isinstance(e, BookUpdated)]
        assert len(books) == 1 and books[0] != BOOK, kind  # the hostile one replaces the real
        assert check(books[0]), kind
        assert venue.counters.faults[kind] == 1


async def test_older_book_resent_after_the_current_one() -> None:
    newer = replace(BOOK, ts=T0 + 1)
    venue = scripted([BookUpdated(BOOK), BookUpdated(newer)], book_out_of_order=1.0)
    books = [e.book for e in await collect(venue) if isinstance(e, BookUpdated)]
    assert books == [BOOK, newer, BOOK]


async def test_counters_can_be_shared_and_merged() -> None:
    shared = FaultCounters()
    for _ in range(2):
        clock = VirtualClock(T0)
        venue = FaultyVenue(
            sim(clock), FaultPlan(network=1.0), random.Random(1), clock, counters=shared
        )
        await venue.connect()
        with pytest.raises(TransientVenueError):
            await venue.fetch_balances()
    assert shared.faults["network"] == 2 and shared.calls["connect"] == 2
    total = FaultCounters()
    total.merge(shared)
    total.merge(shared)
    assert total.as_dict()["total_faults"] == 4


# --- the bot against hostile data ---------------------------------------------------------------


class Watch(VenueDecorator):
    """Sits on the sim venue (under the faults): checks every order that reaches it."""

    inner: SimVenue

    def __init__(self, inner: SimVenue) -> None:
        super().__init__(inner)
        self.placed = 0
        self.bad: list[tuple[OrderRequest, str]] = []

    async def _call(
        self,
        method: str,
        call: Callable[[], Awaitable[T]],
        *,
        weight: float = 1.0,
        arg: object = None,
    ) -> T:
        if method == "place_order":
            assert isinstance(arg, OrderRequest)
            self.check(arg)
        elif method == "place_orders":
            assert isinstance(arg, list | tuple)
            for request in arg:
                self.check(request)
        return await call()

    def check(self, request: OrderRequest) -> None:
        self.placed += 1
        mid = D(repr(self.inner.mid))
        real = self.inner.book
        price, size = request.price, request.size
        if not (price.is_finite() and size.is_finite() and price > 0 and size > 0):
            self.bad.append((request, "not a positive finite number"))
        elif abs(price / mid - 1) > D("0.02"):
            self.bad.append((request, f"{price} is far from the real mid {mid}"))
        elif request.side is Side.BUY and real.best_ask is not None and price >= real.best_ask:
            self.bad.append((request, "bid crosses the real book"))
        elif request.side is Side.SELL and real.best_bid is not None and price <= real.best_bid:
            self.bad.append((request, "ask crosses the real book"))


async def run_bot(
    plan: FaultPlan, profile: Profile, seconds: float = 300.0
) -> tuple[Bot, Watch, FaultyVenue]:
    clock = VirtualClock(T0)
    assert isinstance(profile.venue, SimVenueConfig)
    watch = Watch(SimVenue(profile.venue, profile.symbol, clock))
    venue = FaultyVenue(watch, plan, random.Random(7), clock)
    bot = Bot(profile, venue, clock=clock, stop_at=T0 + seconds)
    with anyio.fail_after(60):
        await bot.run()
    return bot, watch, venue


@pytest.mark.parametrize(
    ("kind", "kill_switch"),
    [
        ("negative_size", {}),
        ("empty_book", {}),
        ("book_crossed", {}),
        ("book_out_of_order", {}),
        ("book_crossed", {"mid_jump": {"pct": 5, "action": "pause", "pause_s": 1}}),
        # An absurd jump is a plausible book: only the mid_jump rule can tell (see the README).
        ("absurd_jump", {"mid_jump": {"pct": 5, "action": "pause", "pause_s": 1}}),
    ],
)
async def test_bot_never_orders_from_hostile_books(
    kind: str, kill_switch: dict[str, object]
) -> None:
    plan = FaultPlan(**{kind: 0.3})  # type: ignore[arg-type]
    bot, watch, venue = await run_bot(plan, sim_profile(**kill_switch))
    assert venue.counters.faults[kind] > 100  # the hostile data really came
    assert watch.placed > 20  # and the bot kept quoting from the real books
    assert watch.bad == []
    assert bot.orders_left == 0


async def test_bot_survives_nan_prices_and_never_orders_from_them() -> None:
    bot, watch, venue = await run_bot(FaultPlan(nan_price=0.3), sim_profile())
    assert venue.counters.faults["nan_price"] > 100
    assert watch.placed > 20 and watch.bad == []
    assert bot.orders_left == 0


async def test_nan_price_never_becomes_an_order_even_when_it_fails_the_bot() -> None:
    clock = VirtualClock(T0)
    profile = sim_profile()
    assert isinstance(profile.venue, SimVenueConfig)
    watch = Watch(SimVenue(profile.venue, profile.symbol, clock))
    venue = FaultyVenue(watch, FaultPlan(nan_price=0.3), random.Random(7), clock)
    bot = Bot(profile, venue, clock=clock, stop_at=T0 + 300)
    # A NaN price once failed the profile in on_book; now it runs to the end.
    with anyio.fail_after(60), contextlib.suppress(ArithmeticError):
        await bot.run()
    assert venue.counters.faults["nan_price"] >= 1
    assert watch.bad == []
    assert bot.orders_left == 0
