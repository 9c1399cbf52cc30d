"""The ccxt venue's websocket feed against exchange emulators speaking the real protocols.

Each test runs ``CcxtVenue`` as production builds it (``ws_url`` and ``rest_url`` at a loopback
emulator, unmodified ``ccxt.pro``), injects one wire fault, and reads what the venue's event
stream did with it: the book the bot receives must end up equal to the exchange's, never built
on a book that missed an update. Gate runs on ``spot.obu``, MEXC on its protobuf depth and
KuCoin on level 2, the channels ccxt 4.5.90 does not sequence-check
(``kasmm/venues/ccxt/sequence.py``); BingX's depth channel sends whole snapshots.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
import structlog.testing

from kasmm.core.types import (
    Book,
    BookUpdated,
    ClientOrderId,
    Fill,
    OrderFilled,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.venues.ccxt import CcxtVenue
from tests.contract.ccxt_harness import API_KEY, SECRET, ccxt_venue
from tests.contract.kucoin_harness import PASSPHRASE, kucoin_venue
from tests.emulators.bingx import BingxEmulator
from tests.emulators.bingx_ws import depth_topic
from tests.emulators.gate import GateEmulator
from tests.emulators.kucoin import KucoinEmulator
from tests.emulators.mexc import MexcEmulator
from tests.emulators.mexc_ws import depth_channel
from tests.emulators.wire import WsHub
from tests.support import eventually

pytestmark = pytest.mark.anyio

GATE_BOOK = "spot.obu:ob.KAS_USDT.50"
MEXC_BOOK = depth_channel("KASUSDT")
KUCOIN_BOOK = "/market/level2:KAS-USDT"
BINGX_BOOK = depth_topic("KAS-USDT")


@dataclass
class Feed:
    """A connected venue whose events are collected by a background task."""

    venue: CcxtVenue
    events: list[VenueEvent] = field(default_factory=list)
    logs: list[MutableMapping[str, Any]] = field(default_factory=list)

    def books(self) -> list[Book]:
        return [e.book for e in self.events if isinstance(e, BookUpdated)]

    def logged(self, event: str) -> int:
        return sum(1 for entry in self.logs if entry["event"] == event)


@asynccontextmanager
async def feed_of(venue: CcxtVenue) -> AsyncIterator[Feed]:
    feed = Feed(venue)
    await venue.connect()
    stream = venue.events()

    async def collect() -> None:
        async for event in stream:
            feed.events.append(event)

    with structlog.testing.capture_logs() as logs:
        feed.logs = logs
        task = asyncio.ensure_future(collect())
        try:
            yield feed
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await stream.aclose()
            await venue.close()


Levels = tuple[list[tuple[str, str]], list[tuple[str, str]]]


def levels(book: Book) -> Levels:
    """A book's levels as strings (exponents aside: ``0.10`` and ``0.1`` are one price)."""
    return (
        [(f"{lv.price.normalize()}", f"{lv.size.normalize()}") for lv in book.bids],
        [(f"{lv.price.normalize()}", f"{lv.size.normalize()}") for lv in book.asks],
    )


def gate_levels(emu: GateEmulator) -> Levels:
    bids, asks = emu.engine.merged_levels("KAS_USDT")
    return (
        [(f"{p.normalize()}", f"{q.normalize()}") for p, q in sorted(bids.items(), reverse=True)],
        [(f"{p.normalize()}", f"{q.normalize()}") for p, q in sorted(asks.items())],
    )


def mexc_levels(emu: MexcEmulator) -> Levels:
    depth = emu.engine.depth("KASUSDT", 20)
    return tuple(  # type: ignore[return-value]
        [(f"{Decimal(p).normalize()}", f"{Decimal(q).normalize()}") for p, q in depth[side]]
        for side in ("bids", "asks")
    )


def engine_levels(emu: KucoinEmulator | BingxEmulator, symbol: str) -> Levels:
    """The shared matching engine's merged book (KuCoin, BingX), top 20."""
    book = emu.engine.book(symbol, 20)
    return (
        [(f"{p.normalize()}", f"{q.normalize()}") for p, q in book.bids],
        [(f"{p.normalize()}", f"{q.normalize()}") for p, q in book.asks],
    )


async def synced(feed: Feed, exchange_levels: Callable[[], Levels]) -> None:
    """Wait until the last book the venue passed on is the exchange's book."""
    await eventually(
        lambda: bool(feed.books()) and levels(feed.books()[-1]) == exchange_levels(),
        within_s=15,
    )


@dataclass
class Exchange:
    """One emulated exchange under test: its websocket hub, book topic and book."""

    emu: Any
    feed: Feed
    move: Callable[[int], None]
    topic: str
    levels: Callable[[], Levels]

    @property
    def ws(self) -> WsHub:
        hub: WsHub = self.emu.ws
        return hub


@asynccontextmanager
async def emulator(name: str) -> AsyncIterator[tuple[Any, CcxtVenue, str, Callable[[], Levels]]]:
    """The ``name`` emulator with a book around 0.1, the venue on it over websockets, the
    book's websocket topic and the exchange's book."""
    if name == "gate":
        async with GateEmulator(api_key=API_KEY, secret=SECRET, limit=None) as gate:
            venue = ccxt_venue("gate", gate.base_url, dead_man_switch_s=None, ws_url=gate.ws_url)
            yield gate, venue, GATE_BOOK, partial(gate_levels, gate)
    elif name == "mexc":
        async with MexcEmulator(api_key=API_KEY, secret=SECRET, weight_limit=None) as mexc:
            venue = ccxt_venue("mexc", mexc.base_url, dead_man_switch_s=None, ws_url=mexc.ws_url)
            yield mexc, venue, MEXC_BOOK, partial(mexc_levels, mexc)
    elif name == "kucoin":
        async with KucoinEmulator(
            API_KEY, SECRET, PASSPHRASE, spot_quota=None, public_quota=None
        ) as kucoin:
            venue = kucoin_venue(kucoin.base_url, dead_man_switch_s=None, websocket=True)
            yield kucoin, venue, KUCOIN_BOOK, partial(engine_levels, kucoin, "KAS-USDT")
    else:
        async with BingxEmulator(API_KEY, SECRET, rate_limits=None) as bingx:
            venue = ccxt_venue("bingx", bingx.base_url, dead_man_switch_s=None, ws_url=bingx.ws_url)
            yield bingx, venue, BINGX_BOOK, partial(engine_levels, bingx, "KAS-USDT")


@asynccontextmanager
async def exchange_feed(name: str) -> AsyncIterator[Exchange]:
    """``CcxtVenue`` over websockets on the ``name`` emulator, consuming its events; ``move``
    changes the exchange's book (one update per call)."""
    async with emulator(name) as (emu, venue, topic, exchange_levels):
        size = [1000]

        def move(count: int = 1) -> None:
            for _ in range(count):
                size[0] += 1
                emu.set_mid("0.1", spread_bps=20, levels=5, size=size[0])

        emu.set_mid("0.1", spread_bps=20, levels=5, size=1000)
        async with feed_of(venue) as feed:
            yield Exchange(emu, feed, move, topic, exchange_levels)


def ccxt_synced(feed: Feed) -> bool:
    """ccxt's websocket book is synchronised (it has applied a snapshot)."""
    book = (feed.venue.exchange.orderbooks or {}).get("KAS/USDT")
    return book is not None and book["nonce"] is not None


async def _websocket_serving(feed: Feed, hub_topic: str, emu: Any, move: Any) -> None:
    """Drive the market until a websocket session's book follows it (ccxt's MEXC takes its
    snapshot only after 25 pushes)."""
    await eventually(lambda: feed.logged("websocket_started") >= 1 and emu.ws.subscribed(hub_topic))
    for _ in range(100):
        if ccxt_synced(feed):
            break
        move(1)
        await asyncio.sleep(0.01)  # let the push reach the client before the next move
    assert ccxt_synced(feed)
    move(1)
    await eventually(lambda: len(feed.books()) >= 2)


#: Exchanges whose book channel is incremental (a lost update is a gap) and all four.
INCREMENTAL = ["gate", "mexc", "kucoin"]
ALL = ["gate", "mexc", "kucoin", "bingx"]


@pytest.mark.parametrize("exchange", INCREMENTAL)
async def test_a_sequence_gap_discards_the_book_and_resubscribes(exchange: str) -> None:
    async with exchange_feed(exchange) as ex:
        feed = ex.feed
        await _websocket_serving(feed, ex.topic, ex.emu, ex.move)
        assert ex.ws.inject(ex.topic, drop=1) == 1
        ex.move(3)  # the first update is lost: the second skips ahead
        await eventually(lambda: feed.logged("feed_gap") == 1)
        # A new session, subscribed afresh, serves the exchange's book.
        await eventually(
            lambda: feed.logged("websocket_started") >= 2 and ex.ws.subscribed(ex.topic)
        )
        await _websocket_serving(feed, ex.topic, ex.emu, ex.move)
        await synced(feed, ex.levels)


async def test_bingx_snapshots_recover_from_a_lost_one_by_themselves() -> None:
    async with exchange_feed("bingx") as ex:
        await _websocket_serving(ex.feed, ex.topic, ex.emu, ex.move)
        ex.ws.inject(ex.topic, drop=1)
        ex.move(2)  # the first snapshot is lost; the second is the whole book
        await synced(ex.feed, ex.levels)
        assert ex.feed.logged("feed_gap") == ex.feed.logged("websocket_failed") == 0


@pytest.mark.parametrize("exchange", ALL)
async def test_a_reconnect_rebuilds_from_a_fresh_snapshot_never_the_stale_book(
    exchange: str,
) -> None:
    async with exchange_feed(exchange) as ex:
        feed = ex.feed
        await _websocket_serving(feed, ex.topic, ex.emu, ex.move)
        await ex.ws.close_all(ex.topic)
        ex.move(2)  # the market moves while the client is away; update ids carry on
        await eventually(lambda: feed.logged("websocket_failed") >= 1)
        await eventually(
            lambda: feed.logged("websocket_started") >= 2 and ex.ws.subscribed(ex.topic)
        )
        await _websocket_serving(feed, ex.topic, ex.emu, ex.move)
        await synced(feed, ex.levels)


@pytest.mark.parametrize("exchange", ALL)
async def test_duplicates_and_a_burst_leave_the_book_right_without_a_resubscription(
    exchange: str,
) -> None:
    async with exchange_feed(exchange) as ex:
        feed = ex.feed
        await _websocket_serving(feed, ex.topic, ex.emu, ex.move)
        ex.ws.inject(ex.topic, duplicate=2, burst_s=0.2)
        ex.move(3)
        await synced(feed, ex.levels)
        assert (feed.logged("feed_gap"), feed.logged("websocket_failed")) == (0, 0)
        assert feed.logged("websocket_started") == 1


@pytest.mark.parametrize("exchange", ALL)
async def test_a_silent_stall_is_detected_and_the_feed_resubscribed(exchange: str) -> None:
    async with exchange_feed(exchange) as ex:
        feed = ex.feed
        feed.venue.settings = replace(feed.venue.settings, feed_stall_s=0.5)
        await _websocket_serving(feed, ex.topic, ex.emu, ex.move)
        assert ex.ws.stall(ex.topic) == 1  # the socket stays open and answers pings
        ex.move(1)  # the market moves; the stalled feed does not say so
        await eventually(lambda: feed.logged("feed_stalled") == 1)
        await synced(feed, ex.levels)  # the REST snapshot serves at once
        await eventually(
            lambda: feed.logged("websocket_started") >= 2 and ex.ws.subscribed(ex.topic)
        )
        await _websocket_serving(feed, ex.topic, ex.emu, ex.move)
        await synced(feed, ex.levels)


async def expire_private_credential(ex: Exchange, exchange: str) -> int:
    """The protocol fault of each exchange's private stream: the listen key (MEXC, BingX)
    expires and its sockets close, or the bullet tokens (KuCoin) expire, which only matters
    when connecting again: the server then closes the sockets. Returns how many it closed."""
    if exchange == "mexc":
        closed: int = ex.emu.ws_protocol.expire_listen_key()
    elif exchange == "bingx":
        closed = ex.emu.expire_listen_key()
    else:
        ex.emu.ws_protocol.expire_tokens()
        closed = await ex.ws.close_all()
    return closed


@pytest.mark.parametrize("exchange", ["mexc", "kucoin", "bingx"])
async def test_an_expired_private_stream_credential_is_renewed_and_no_fill_is_lost(
    exchange: str,
) -> None:
    with ccxt_callback_errors() as callback_errors:
        async with exchange_feed(exchange) as ex:
            await _expire_and_fill(ex, exchange)
    # ccxt 4.5.90 raises KuCoin's "token is expired" inside its receive callback (the loop's
    # exception handler sees it, the watch then fails as a closed connection): nothing else.
    expected = ["kucoin token is expired"] if exchange == "kucoin" else []
    assert sorted(set(callback_errors)) == expected


async def _expire_and_fill(ex: Exchange, exchange: str) -> None:
    """A resting order, the private credential expires, the order fills twice: once while the
    private stream is down, once after it came back; each fill is recorded once."""
    feed = ex.feed
    await _websocket_serving(feed, ex.topic, ex.emu, ex.move)
    request = OrderRequest(ClientOrderId("ctx1"), Side.BUY, Decimal("0.0995"), Decimal(100))
    await feed.venue.place_order(request)
    assert await expire_private_credential(ex, exchange) >= 1
    ex.emu.trade("sell", "0.0995", "40")  # filled while the private stream is down
    await eventually(lambda: len(fills_of(feed)) == 1)
    # The stream went on (no authentication failure ended it) and came back.
    await eventually(lambda: feed.logged("websocket_started") >= 2)
    ex.emu.trade("sell", "0.0995", "60")
    await eventually(lambda: len(fills_of(feed)) == 2)
    sizes = [(f.client_id, f.size) for f in fills_of(feed)]
    assert sizes == [("ctx1", Decimal(40)), ("ctx1", Decimal(60))]
    assert len({f.trade_id for f in fills_of(feed)}) == 2


@contextlib.contextmanager
def ccxt_callback_errors() -> Iterator[list[str]]:
    """Collect what reaches the event loop's exception handler (instead of failing the test
    run, as the anyio plugin does for anything that reaches it)."""
    loop = asyncio.get_running_loop()
    seen: list[str] = []
    previous = loop.get_exception_handler()

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        seen.append(str(exc) if exc is not None else str(context.get("message")))

    loop.set_exception_handler(handler)
    try:
        yield seen
    finally:
        loop.set_exception_handler(previous)


def fills_of(feed: Feed) -> list[Fill]:
    return [e.fill for e in feed.events if isinstance(e, OrderFilled)]


async def test_rest_serves_the_book_until_the_websocket_delivers_its_first() -> None:
    # ccxt's MEXC takes its snapshot only after 25 pushes: one move leaves it without a book.
    async with exchange_feed("mexc") as ex:
        feed = ex.feed
        await eventually(lambda: feed.logged("websocket_started") == 1)
        await ex.ws.wait_subscribed(ex.topic)
        ex.move(1)
        await eventually(
            lambda: bool(feed.books()) and levels(feed.books()[-1]) == ex.levels(), within_s=2
        )
        assert not ccxt_synced(feed)  # the book came by REST polling
        assert (feed.logged("feed_stalled"), feed.logged("websocket_failed")) == (0, 0)
