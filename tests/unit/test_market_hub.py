"""The market hub: one feed per key shared by its readers, ages, trades, restarts; the
venue decorators that publish a simulator's books and deliver referenced books."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import anyio
import pytest
import structlog.testing

from kasmm.clock import RealClock, VirtualClock
from kasmm.config.schema import RandomWalkMarket, SimVenueConfig
from kasmm.core.types import Book, BookLevel, BookUpdated, MarketRules, ReferenceUpdated, Side
from kasmm.market import MarketBook, MarketHub, market_key, split_key
from kasmm.market.book import BookSource
from kasmm.market.hub import MarketFeed
from kasmm.market.paper import HubPublicFeed
from kasmm.market.publish import PublishingVenue
from kasmm.market.references import ReferenceVenue
from kasmm.venues.public_data import FeedItem, PublicTrade
from kasmm.venues.sim import SimVenue
from tests.support import eventually

pytestmark = pytest.mark.anyio
D = Decimal
KEY = "gate:KAS/USDT"
RULES = MarketRules(
    symbol="KAS/USDT",
    base="KAS",
    quote="USDT",
    tick=D("0.00001"),
    lot=D("0.01"),
    min_size=D("0.01"),
    min_notional=D("1"),
    maker_fee=D("0.001"),
    taker_fee=D("0.001"),
)


def book(mid: str, ts: float = 0.0) -> Book:
    m = D(mid)
    return Book((BookLevel(m - D("0.0001"), D(1000)),), (BookLevel(m + D("0.0001"), D(1000)),), ts)


class ScriptedFeed:
    """A :class:`MarketFeed` fed by the test: items are sent into it; counts its sessions."""

    def __init__(self) -> None:
        self.sessions: list[bool] = []  # ``trades`` of every watch() started
        self.closes = 0
        self.loads = 0
        self.fail_next: Exception | None = None
        self._items: deque[FeedItem] = deque()
        self._arrived = anyio.Event()
        self.running = anyio.Event()

    @property
    def book_source(self) -> BookSource:
        return "websocket"

    async def load_market(self) -> MarketRules:
        self.loads += 1
        return RULES

    async def watch(self, *, trades: bool = True) -> AsyncGenerator[FeedItem, None]:
        self.sessions.append(trades)
        self.running.set()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        while True:
            while not self._items:
                self._arrived = anyio.Event()
                await self._arrived.wait()
            item = self._items.popleft()
            if isinstance(item, PublicTrade) and not trades:
                continue
            yield item

    async def close(self) -> None:
        self.closes += 1
        self.running = anyio.Event()

    async def put(self, item: FeedItem) -> None:
        self._items.append(item)
        self._arrived.set()
        await anyio.wait_all_tasks_blocked()  # let the hub take it


class Feeds:
    """A feed factory that remembers what it built."""

    def __init__(self) -> None:
        self.built: dict[str, ScriptedFeed] = {}

    def __call__(self, key: str) -> MarketFeed | None:
        if key.startswith("sim:"):
            return None
        feed = ScriptedFeed()
        self.built[key] = feed
        return feed


@asynccontextmanager
async def running_hub(
    clock: RealClock | VirtualClock | None = None,
) -> AsyncIterator[tuple[MarketHub, Feeds]]:
    feeds = Feeds()
    hub = MarketHub(clock or RealClock(), feed_factory=feeds, retry_s=(0.01, 0.02))
    async with anyio.create_task_group() as tg:
        await tg.start(hub.run)
        yield hub, feeds
        tg.cancel_scope.cancel()


def test_keys_are_exchange_colon_symbol() -> None:
    assert market_key("mexc", "KAS/USDT") == "mexc:KAS/USDT"
    assert split_key("gate:KAS/USDC") == ("gate", "KAS/USDC")
    for bad in ("KAS/USDT", "gate:KASUSDT", ":KAS/USDT", "gate:KAS/"):
        with pytest.raises(ValueError):
            split_key(bad)


async def test_one_feed_serves_every_reader_and_stops_with_the_last() -> None:
    async with running_hub() as (hub, feeds):
        async with hub.subscribe(KEY) as first, hub.subscribe(KEY) as second:
            feed = feeds.built[KEY]
            with anyio.fail_after(5):
                await feed.running.wait()
            await feed.put(book("0.1"))
            with anyio.fail_after(5):
                a, b = await first.next_book(), await second.next_book()
            assert a is b and a.book == book("0.1") and a.source == "websocket"
            async with hub.subscribe(KEY) as third:
                assert (await third.next_book()) is a  # the newest, at once
            assert hub.status(hub.clock.now())[KEY]["subscribers"] == 2
            # One reader left: the feed goes on for the others.
            await feed.put(book("0.2"))
            with anyio.fail_after(5):
                assert (await first.next_book()).book == book("0.2")
            assert feed.sessions == [False] and feed.closes == 0
            assert feed.loads == 1  # its own market loading, before the first watch
            assert list(feeds.built) == [KEY]  # one feed object per key
        await eventually(lambda: feed.closes == 1)
        status = hub.status(hub.clock.now())[KEY]
        assert status["feed"] == "stopped" and status["subscribers"] == 0
        # A new reader starts it again (after the old session closed).
        async with hub.subscribe(KEY):
            with anyio.fail_after(5):
                await feeds.built[KEY].running.wait()
        assert feed.sessions == [False, False]


async def test_age_grows_while_the_feed_is_silent() -> None:
    clock = VirtualClock(100.0)
    hub = MarketHub(clock)
    assert hub.latest("sim:KAS/USDT") is None
    assert hub.age_s("sim:KAS/USDT", clock.now()) == math.inf
    published = hub.publish("sim:KAS/USDT", book("0.1"))
    assert published == MarketBook(book("0.1"), 100.0, "venue")
    clock.advance_to(112.5)
    assert hub.age_s("sim:KAS/USDT", clock.now()) == 12.5
    row = hub.status(clock.now())["sim:KAS/USDT"]
    assert row == {
        "source": "venue",
        "age_s": 12.5,
        "subscribers": 0,
        "feed": "venue",
        "books": 1,
        "failures": 0,
        "last_error": None,
    }


async def test_waiting_for_a_change_wakes_on_a_publication_of_the_keys_asked() -> None:
    hub = MarketHub(VirtualClock())
    seen = hub.versions(["sim:A/B", "sim:C/D"])
    woke: list[list[str]] = []

    async def waiter() -> None:
        woke.append(await hub.wait_changed(seen))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        hub.publish("sim:E/F", book("1"))  # not asked for: still waiting
        await anyio.wait_all_tasks_blocked()
        assert woke == []
        hub.publish("sim:C/D", book("1"))
    assert woke == [["sim:C/D"]]


async def test_a_trades_reader_restarts_the_feed_with_trades_and_gets_every_trade() -> None:
    trade = PublicTrade(D("0.1"), D("5"), Side.BUY, 1.0, "t1")
    async with running_hub() as (hub, feeds), hub.subscribe(KEY):
        feed = feeds.built[KEY]
        with anyio.fail_after(5):
            await feed.running.wait()
        paper = HubPublicFeed(hub, KEY)
        assert await paper.load_market() == RULES
        assert await paper.load_market() == RULES and feed.loads == 1  # loaded once
        items = paper.watch()
        pulled = anyio.Event()
        got: list[FeedItem] = []

        async def pull() -> None:
            async for item in items:
                got.append(item)
                if len(got) == 3:
                    pulled.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(pull)
            await eventually(lambda: feed.sessions == [False, True] and feed.running.is_set())
            await feed.put(book("0.1"))
            await feed.put(book("0.11"))  # coalesced with the one before if unread
            await feed.put(trade)
            await feed.put(book("0.12"))
            with anyio.fail_after(5):
                await pulled.wait()
            await paper.close()
        assert trade in got and got[-1] == book("0.12")
        assert [g for g in got if isinstance(g, Book)][-1] == book("0.12")


async def test_a_failing_feed_is_restarted_and_the_error_shown() -> None:
    built: list[ScriptedFeed] = []

    def failing_first(key: str) -> MarketFeed | None:
        feed = ScriptedFeed()
        feed.fail_next = ConnectionError("reset by peer")
        built.append(feed)
        return feed

    hub = MarketHub(RealClock(), feed_factory=failing_first, retry_s=(0.01, 0.02))
    async with anyio.create_task_group() as tg:
        await tg.start(hub.run)
        async with hub.subscribe(KEY) as sub:
            [feed] = built
            await eventually(lambda: len(feed.sessions) == 2)
            await feed.put(book("0.3"))
            with anyio.fail_after(5):
                assert (await sub.next_book()).book == book("0.3")
            row = hub.status(hub.clock.now())[KEY]
            assert row["failures"] == 1 and "reset by peer" in row["last_error"]
        tg.cancel_scope.cancel()


def sim(seed: int, clock: VirtualClock) -> SimVenue:
    market = RandomWalkMarket(book_update="regenerate", taker_rate_per_s=3)
    return SimVenue(SimVenueConfig(type="sim", seed=seed, market=market), "KAS/USDT", clock)


async def test_a_simulated_venue_publishes_its_books() -> None:
    clock = VirtualClock()
    hub = MarketHub(clock)
    venue = PublishingVenue(sim(1, clock), hub, "sim:KAS/USDT")
    await venue.connect()
    books = 0
    async for event in venue.events():
        if isinstance(event, BookUpdated):
            books += 1
            latest = hub.latest("sim:KAS/USDT")
            assert latest is not None and latest.book is event.book
            assert latest.received_at == clock.now() and latest.source == "venue"
        if clock.now() >= 5:
            break
    assert books > 3 and hub.version("sim:KAS/USDT") == books


async def reference_run(seed: int) -> list[tuple[str, float, str]]:
    """A thin sim venue referencing ``deep:KAS/USDT``; the test publishes a deep book at every
    whole second of virtual time, three at a time at t >= 4 (coalesced into one)."""
    clock = VirtualClock()
    hub = MarketHub(clock)
    venue = ReferenceVenue(sim(seed, clock), hub, ["deep:KAS/USDT", "deep:KAS/USDT"], clock)
    await venue.connect()
    out: list[tuple[str, float, str]] = []
    next_publish = 1.0
    n = 0
    stream = venue.events()
    async for event in stream:
        if isinstance(event, ReferenceUpdated):
            out.append(("ref", clock.now(), f"{event.book.mid:f}".rstrip("0")))
            assert event.key == "deep:KAS/USDT" and event.received_at <= clock.now()
        else:
            out.append((type(event).__name__, clock.now(), ""))
        if clock.now() >= next_publish:
            for _ in range(3 if next_publish >= 4 else 1):
                n += 1
                hub.publish("deep:KAS/USDT", book(f"0.{100 + n}", clock.wall()))
            next_publish += 1
        if clock.now() >= 8:
            break
    await stream.aclose()
    assert hub.status(clock.now())["deep:KAS/USDT"]["subscribers"] == 0
    return out


async def test_references_interleave_deterministically_without_running_the_venue_ahead() -> None:
    first = await reference_run(7)
    assert first == await reference_run(7)
    refs = [i for i, e in enumerate(first) if e[0] == "ref"]
    assert len(refs) == 7  # one per publication round, the rounds of three coalesced
    for i in refs:
        # Delivered right after the event during which it was published, at that event's
        # time: the venue was not pulled further to deliver it.
        assert first[i - 1][0] != "ref" and first[i][1] == first[i - 1][1]
    # The three books of a round arrive as the newest one only.
    mids = [e[2] for e in first if e[0] == "ref"]
    assert mids[:4] == ["0.101", "0.102", "0.103", "0.106"]


async def test_references_reach_a_real_time_bot_while_its_venue_is_quiet() -> None:
    clock = RealClock()
    hub = MarketHub(clock)
    inner = sim(3, VirtualClock())  # a venue that never yields without being asked
    venue = ReferenceVenue(QuietVenue(inner), hub, ["deep:KAS/USDT"], clock)
    stream = venue.events()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_publish_later, hub)
            event = await anext(stream)
    assert isinstance(event, ReferenceUpdated) and event.book == book("0.2")
    await stream.aclose()
    assert hub.status(clock.now())["deep:KAS/USDT"]["subscribers"] == 0


async def _publish_later(hub: MarketHub) -> None:
    await anyio.wait_all_tasks_blocked()
    hub.publish("deep:KAS/USDT", book("0.2"))


class QuietVenue(PublishingVenue):
    """A venue whose event stream waits forever (a live market with nothing happening)."""

    def __init__(self, inner: SimVenue) -> None:
        super().__init__(inner, MarketHub(VirtualClock()), "sim:X/Y")

    async def events(self) -> AsyncGenerator[BookUpdated, None]:
        await anyio.sleep_forever()
        yield BookUpdated(book("1"))


async def test_a_cancelled_reader_closes_the_venue_stream_and_leaves_the_hub() -> None:
    hub = MarketHub(RealClock())
    inner = ClosingVenue(sim(3, VirtualClock()))
    venue = ReferenceVenue(inner, hub, ["deep:KAS/USDT"], RealClock())
    got: list[object] = []

    async def read() -> None:
        async for event in venue.events():
            got.append(event)

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await anyio.wait_all_tasks_blocked()
        hub.publish("deep:KAS/USDT", book("0.2"))
        await eventually(lambda: len(got) == 1)
        tg.cancel_scope.cancel()  # while the venue's pull is pending
    assert inner.closed and isinstance(got[0], ReferenceUpdated)
    assert hub.status(0.0)["deep:KAS/USDT"]["subscribers"] == 0


class ClosingVenue(PublishingVenue):
    """A quiet venue whose stream notes that it was closed."""

    def __init__(self, inner: SimVenue) -> None:
        super().__init__(inner, MarketHub(VirtualClock()), "sim:X/Y")
        self.closed = False

    async def events(self) -> AsyncGenerator[BookUpdated, None]:
        try:
            await anyio.sleep_forever()
            yield BookUpdated(book("1"))
        finally:
            self.closed = True


async def test_only_the_first_simulated_venue_of_a_key_publishes_it() -> None:
    clock = VirtualClock()
    hub = MarketHub(clock)
    first = PublishingVenue(sim(1, clock), hub, "sim:KAS/USDT")
    second = PublishingVenue(sim(2, clock), hub, "sim:KAS/USDT")
    for venue in (first, second):
        await venue.connect()
    one, two = first.events(), second.events()
    own = await anext(one)
    with structlog.testing.capture_logs() as logs:
        other = await anext(two)
    assert isinstance(own, BookUpdated) and isinstance(other, BookUpdated)
    latest = hub.latest("sim:KAS/USDT")
    assert latest is not None and latest.book is own.book and hub.version("sim:KAS/USDT") == 1
    assert [e["event"] for e in logs] == ["market_publisher_taken"]
    await one.aclose()  # the publisher stops: the key is free for the next venue's stream
    await two.aclose()
    three = second.events()
    book = await anext(three)
    assert isinstance(book, BookUpdated) and hub.latest("sim:KAS/USDT").book is book.book  # type: ignore[union-attr]
    await three.aclose()
