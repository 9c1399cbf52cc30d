"""Shared market data on the Gate emulator: three live venues of one market read one public
book stream through the market hub; the feed's health rules hold; readers see its age.

Everything is loopback and unmodified ``ccxt.pro``: the venues are built as production builds
them (``ws_url``/``rest_url`` at the emulator, their private streams their own), the hub's feed
is the public ccxt feed the supervisor builds (:class:`~kasmm.market.feeds.PublicFeeds`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial

import anyio
import pytest
import structlog.testing

from kasmm.clock import RealClock
from kasmm.core.types import Book
from kasmm.market import MarketHub
from kasmm.market.feeds import Endpoints, PublicFeeds
from kasmm.venues.ccxt import CcxtVenue
from tests.contract.ccxt_harness import API_KEY, SECRET, ccxt_venue
from tests.emulators.gate import GateEmulator
from tests.integration.test_ws_feed_health import GATE_BOOK, Feed, feed_of, gate_levels, levels
from tests.support import eventually

pytestmark = pytest.mark.anyio
KEY = "gate:KAS/USDT"
PRIVATE_TRADES = "spot.usertrades:KAS_USDT"


@asynccontextmanager
async def gate_hub(*, stall_s: float = 5.0) -> AsyncIterator[tuple[GateEmulator, MarketHub]]:
    """The Gate emulator with a book around 0.1, and a running hub whose Gate feeds read it."""
    async with GateEmulator(api_key=API_KEY, secret=SECRET, limit=None) as gate:
        gate.set_mid("0.1", spread_bps=20, levels=5, size=1000)
        clock = RealClock()
        feeds = PublicFeeds(clock, poll_interval_s=0.05, stall_s=stall_s, ws_backoff_s=(0.2, 0.2))
        feeds.set_endpoints("gate", Endpoints(rest_url=gate.base_url, ws_url=gate.ws_url))
        hub = MarketHub(clock, feed_factory=feeds, retry_s=(0.1, 0.2))
        async with anyio.create_task_group() as tg:
            await tg.start(hub.run)
            yield gate, hub
            tg.cancel_scope.cancel()


def shared_venue(gate: GateEmulator, hub: MarketHub) -> CcxtVenue:
    return ccxt_venue(
        "gate",
        gate.base_url,
        dead_man_switch_s=None,
        ws_url=gate.ws_url,
        book_feed=partial(hub.subscribe, KEY),
    )


def move(gate: GateEmulator, size: int) -> None:
    gate.set_mid("0.1", spread_bps=20, levels=5, size=size)


async def all_synced(gate: GateEmulator, feeds: list[Feed]) -> None:
    await eventually(
        lambda: all(f.books() and levels(f.books()[-1]) == gate_levels(gate) for f in feeds),
        within_s=15,
    )


async def test_three_venues_of_one_market_read_one_public_book_stream() -> None:
    async with gate_hub() as (gate, hub), AsyncExitStack() as stack, AsyncExitStack() as first:
        feeds = [await first.enter_async_context(feed_of(shared_venue(gate, hub)))]
        feeds += [await stack.enter_async_context(feed_of(shared_venue(gate, hub))) for _ in "bc"]
        await all_synced(gate, feeds)
        await gate.ws.wait_subscribed(PRIVATE_TRADES, 3)  # each account's own fills stream
        assert len(gate.ws.subscribed(GATE_BOOK)) == 1  # ...and one public book stream
        assert gate.requests_to("/api/v4/spot/order_book") == []  # no venue polls the book
        assert hub.status(hub.clock.now())[KEY]["subscribers"] == 3
        for size in (1001, 1002):
            move(gate, size)
            await all_synced(gate, feeds)
        shared = hub.latest(KEY)
        assert shared is not None and shared.source == "websocket"
        for feed in feeds:  # aged from the book's arrival at the hub
            assert 0 <= feed.venue.book_age_s < 5

        # One reader leaves: the feed goes on for the others.
        await first.aclose()
        feeds.pop(0)
        assert hub.status(hub.clock.now())[KEY]["subscribers"] == 2
        move(gate, 1003)
        await all_synced(gate, feeds)
        assert len(gate.ws.subscribed(GATE_BOOK)) == 1


async def test_the_last_reader_leaving_closes_the_stream_and_its_age_grows() -> None:
    async with gate_hub() as (gate, hub):
        async with feed_of(shared_venue(gate, hub)) as feed:
            await all_synced(gate, [feed])
            assert len(gate.ws.subscribed(GATE_BOOK)) == 1
        await eventually(lambda: gate.ws.subscribed(GATE_BOOK) == [], within_s=10)
        row = hub.status(hub.clock.now())[KEY]
        assert row["feed"] == "stopped" and row["subscribers"] == 0
        age = hub.age_s(KEY, hub.clock.now())
        await eventually(lambda: hub.age_s(KEY, hub.clock.now()) > age + 0.1)
        book = hub.latest(KEY)
        assert book is not None and levels(book.book) == gate_levels(gate)  # kept, aging


async def test_a_stalled_public_stream_falls_back_to_a_rest_snapshot_then_resubscribes() -> None:
    async with gate_hub(stall_s=0.3) as (gate, hub):
        with structlog.testing.capture_logs() as logs:
            async with hub.subscribe(KEY) as reader:
                with anyio.fail_after(15):
                    first = await reader.next_book()
                assert first.source == "websocket"
                gate.ws.stall(GATE_BOOK)  # connected, silent
                move(gate, 1500)
                await eventually(lambda: _is(hub, gate, "rest"), within_s=10)
                assert any(e["event"] == "feed_stalled" for e in logs)
                # The websocket is retried from a fresh snapshot, and serves again.
                await gate.ws.wait_subscribed(GATE_BOOK, 1)
                move(gate, 1501)
                await eventually(lambda: _is(hub, gate, "websocket"), within_s=10)


def _is(hub: MarketHub, gate: GateEmulator, source: str) -> bool:
    book = hub.latest(KEY)
    return book is not None and book.source == source and _same(book.book, gate)


def _same(book: Book, gate: GateEmulator) -> bool:
    ours = levels(book)
    theirs = gate_levels(gate)
    n = min(len(ours[0]), len(theirs[0]))
    return ours[0][:n] == theirs[0][:n] and ours[1][:n] == theirs[1][:n] and n > 0


async def test_a_sequence_gap_in_the_public_stream_resubscribes_from_a_fresh_snapshot() -> None:
    async with gate_hub() as (gate, hub):
        with structlog.testing.capture_logs() as logs:
            async with hub.subscribe(KEY) as reader:
                with anyio.fail_after(15):
                    await reader.next_book()
                assert gate.ws.inject(GATE_BOOK, drop=1) == 1
                for size in (1101, 1102, 1103):  # the first update is lost: a gap
                    move(gate, size)
                await eventually(lambda: any(e["event"] == "feed_gap" for e in logs))
                # A new session, subscribed afresh, serves the exchange's book again.
                await gate.ws.wait_subscribed(GATE_BOOK, 1)
                move(gate, 1104)
                await eventually(lambda: _is(hub, gate, "websocket"), within_s=10)
