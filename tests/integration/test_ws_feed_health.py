"""The ccxt venue's websocket feed against exchange emulators speaking the real protocols.

Each test runs ``CcxtVenue`` as production builds it (``ws_url`` and ``rest_url`` at a loopback
emulator, unmodified ``ccxt.pro``), injects one wire fault, and reads what the venue's event
stream did with it: the book the bot receives must end up equal to the exchange's, never built
on a book that missed an update. Gate runs on ``spot.obu`` and MEXC on its protobuf depth, the
two channels ccxt 4.5.90 does not sequence-check (``kasmm/venues/ccxt/sequence.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
import structlog.testing

from kasmm.core.types import Book, BookUpdated, VenueEvent
from kasmm.venues.ccxt import CcxtVenue
from tests.contract.ccxt_harness import API_KEY, SECRET, ccxt_venue
from tests.emulators.gate import GateEmulator
from tests.emulators.mexc import MexcEmulator
from tests.emulators.mexc_ws import depth_channel
from tests.support import eventually

pytestmark = pytest.mark.anyio

GATE_BOOK = "spot.obu:ob.KAS_USDT.50"
MEXC_BOOK = depth_channel("KASUSDT")


@dataclass
class Feed:
    """A connected venue whose events are collected by a background task."""

    venue: CcxtVenue
    events: list[VenueEvent] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)

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


async def synced(feed: Feed, exchange_levels: Callable[[], Levels]) -> None:
    """Wait until the last book the venue passed on is the exchange's book."""
    await eventually(
        lambda: bool(feed.books()) and levels(feed.books()[-1]) == exchange_levels(),
        within_s=15,
    )


@asynccontextmanager
async def gate_feed() -> AsyncIterator[tuple[GateEmulator, Feed, Callable[[int], None]]]:
    async with GateEmulator(api_key=API_KEY, secret=SECRET, limit=None) as emu:
        emu.set_mid("0.1", spread_bps=20, levels=5, size=1000)
        venue = ccxt_venue("gate", emu.base_url, dead_man_switch_s=None, ws_url=emu.ws_url)
        size = [1000]

        def move(count: int = 1) -> None:
            for _ in range(count):
                size[0] += 1
                emu.set_mid("0.1", spread_bps=20, levels=5, size=size[0])

        async with feed_of(venue) as feed:
            yield emu, feed, move


@asynccontextmanager
async def mexc_feed() -> AsyncIterator[tuple[MexcEmulator, Feed, Callable[[int], None]]]:
    async with MexcEmulator(api_key=API_KEY, secret=SECRET, weight_limit=None) as emu:
        emu.set_mid("0.1", spread_bps=20, levels=5, size=1000)
        venue = ccxt_venue("mexc", emu.base_url, dead_man_switch_s=None, ws_url=emu.ws_url)
        size = [1000]

        def move(count: int = 1) -> None:
            for _ in range(count):
                size[0] += 1
                emu.set_mid("0.1", spread_bps=20, levels=5, size=size[0])

        async with feed_of(venue) as feed:
            yield emu, feed, move


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


@pytest.mark.parametrize("exchange", ["gate", "mexc"])
async def test_a_sequence_gap_discards_the_book_and_resubscribes(exchange: str) -> None:
    harness = gate_feed() if exchange == "gate" else mexc_feed()
    topic = GATE_BOOK if exchange == "gate" else MEXC_BOOK
    async with harness as (emu, feed, move):
        exchange_levels = partial(gate_levels if exchange == "gate" else mexc_levels, emu)
        await _websocket_serving(feed, topic, emu, move)
        books_before = len(feed.books())
        assert emu.ws.inject(topic, drop=1) == 1
        move(3)  # the first update is lost: the second skips ahead
        await eventually(lambda: feed.logged("feed_gap") == 1)
        # A new session, subscribed afresh, serves the exchange's book.
        await eventually(lambda: feed.logged("websocket_started") >= 2 and emu.ws.subscribed(topic))
        move(1)
        await synced(feed, exchange_levels)
        # Nothing built on the update after the gap was passed on: every book after the gap
        # and before the resync is either the pre-gap book or a REST snapshot.
        assert len(feed.books()) > books_before


@pytest.mark.parametrize("exchange", ["gate", "mexc"])
async def test_a_reconnect_rebuilds_from_a_fresh_snapshot_never_the_stale_book(
    exchange: str,
) -> None:
    harness = gate_feed() if exchange == "gate" else mexc_feed()
    topic = GATE_BOOK if exchange == "gate" else MEXC_BOOK
    async with harness as (emu, feed, move):
        exchange_levels = partial(gate_levels if exchange == "gate" else mexc_levels, emu)
        await _websocket_serving(feed, topic, emu, move)
        await emu.ws.close_all(topic)
        move(2)  # the market moves while the client is away; update ids carry on
        await eventually(lambda: feed.logged("websocket_failed") >= 1)
        await eventually(lambda: feed.logged("websocket_started") >= 2 and emu.ws.subscribed(topic))
        move(1)
        await synced(feed, exchange_levels)


@pytest.mark.parametrize("exchange", ["gate", "mexc"])
async def test_duplicates_and_a_burst_leave_the_book_right_without_a_resubscription(
    exchange: str,
) -> None:
    harness = gate_feed() if exchange == "gate" else mexc_feed()
    topic = GATE_BOOK if exchange == "gate" else MEXC_BOOK
    async with harness as (emu, feed, move):
        exchange_levels = partial(gate_levels if exchange == "gate" else mexc_levels, emu)
        await _websocket_serving(feed, topic, emu, move)
        emu.ws.inject(topic, duplicate=2, burst_s=0.2)
        move(3)
        await synced(feed, exchange_levels)
        assert (feed.logged("feed_gap"), feed.logged("websocket_failed")) == (0, 0)
        assert feed.logged("websocket_started") == 1
