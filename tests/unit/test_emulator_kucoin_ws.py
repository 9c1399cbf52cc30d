"""Unmodified ``ccxt.pro.kucoin`` against the KuCoin emulator's websockets.

ccxt's KuCoin book sync (``ccxt/pro/kucoin.py`` 4.5.90, ``handle_order_book``): it caches level2
deltas, fetches the REST snapshot once ``snapshotDelay`` (5) deltas are cached, then applies the
deltas whose ``sequenceEnd`` is past the snapshot's ``sequence``. Each test therefore makes a few
book changes before the first book resolves (:func:`synced`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from ccxt.base import errors as ccxt_errors

from tests.emulators.kucoin import KucoinEmulator
from tests.emulators.kucoin_ws import LEVEL2, ORDERS_V1, ORDERS_V2

pytestmark = pytest.mark.anyio
SYMBOL = "KAS/USDT"
MARKET = "KAS-USDT"
BOOK_TOPIC = f"{LEVEL2}:{MARKET}"
SNAPSHOT_DELAY = 5  # ccxt's watchOrderBook.snapshotDelay


@asynccontextmanager
async def kucoin_pro(**emu_kwargs: Any) -> AsyncIterator[tuple[KucoinEmulator, Any]]:
    """A started emulator (book around 0.1) and a ccxt.pro kucoin with its websockets there."""
    emu_kwargs.setdefault("ping_interval_ms", 200)
    emu_kwargs.setdefault("ping_timeout_ms", 400)
    async with KucoinEmulator(**emu_kwargs) as emu:
        emu.set_mid("0.1", spread_bps=20, levels=5, size=1000)
        pro = emu.ccxt_pro()
        try:
            await pro.load_markets()
            yield emu, pro
        finally:
            await pro.close()
        assert emu.internal_errors == []


async def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait until ``condition()`` holds (polled), failing after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def move_book(emu: KucoinEmulator, steps: int) -> None:
    """``steps`` changes of the outside book (one level2 message each)."""
    for i in range(steps):
        emu.set_mid("0.1" if i % 2 else "0.1002")


async def synced(emu: KucoinEmulator, pro: Any) -> Any:
    """Subscribe ``watch_order_book`` and feed it until ccxt has synced with the snapshot."""
    task = asyncio.ensure_future(pro.watch_order_book(SYMBOL))
    await emu.ws.wait_subscribed(BOOK_TOPIC)
    move_book(emu, SNAPSHOT_DELAY + 1)
    await asyncio.wait_for(task, 5)
    return await book_at(pro, emu.engine.book(MARKET).seq)


async def book_at(pro: Any, seq: int) -> Any:
    """ccxt's book once its nonce reached ``seq`` (each watch call waits for an update)."""
    async with asyncio.timeout(5):
        while True:
            book = pro.orderbooks.get(SYMBOL)
            if book is not None and book["nonce"] is not None and book["nonce"] >= seq:
                return book
            await pro.watch_order_book(SYMBOL)


def engine_levels(emu: KucoinEmulator) -> tuple[list[list[float]], list[list[float]]]:
    snap = emu.engine.book(MARKET)
    return (
        [[float(p), float(s)] for p, s in snap.bids],
        [[float(p), float(s)] for p, s in snap.asks],
    )


def ccxt_levels(book: Any) -> tuple[list[list[float]], list[list[float]]]:
    return [list(lv[:2]) for lv in book["bids"]], [list(lv[:2]) for lv in book["asks"]]


def full_snapshots(emu: KucoinEmulator) -> int:
    return sum(r.path == "/api/v3/market/orderbook/level2" for r in emu.requests)


# ---------------------------------------------------------------------- handshake and book


async def test_bullet_tokens_send_ccxt_to_the_emulators_endpoint() -> None:
    async with kucoin_pro() as (emu, pro):
        await synced(emu, pro)
        task = asyncio.ensure_future(pro.watch_orders(SYMBOL))
        await emu.ws.wait_subscribed(f"{ORDERS_V1}#{emu.api_key}")
        bullets = [(r.path, r.signed) for r in emu.requests if "bullet" in r.path]
        assert bullets == [("/api/v1/bullet-public", False), ("/api/v1/bullet-private", True)]
        assert all(url.startswith(emu.ws_url + "?token=") for url in pro.clients)
        assert {c.state["api_key"] for c in emu.ws.connections.values()} == {None, emu.api_key}
        task.cancel()


async def test_level2_book_follows_the_engine_book() -> None:
    async with kucoin_pro() as (emu, pro):
        book = await synced(emu, pro)
        assert ccxt_levels(book) == engine_levels(emu)
        assert full_snapshots(emu) == 1
        await pro.create_order(SYMBOL, "limit", "buy", 300, 0.1, {"postOnly": True})
        emu.trade("sell", "0.1", 100)  # partly fills the own bid
        await pro.create_order(SYMBOL, "limit", "sell", 5, 0.0999)  # takes 5 at 0.1
        book = await book_at(pro, emu.engine.book(MARKET).seq)
        assert book["nonce"] == emu.engine.book(MARKET).seq
        assert ccxt_levels(book) == engine_levels(emu)
        assert book["bids"][0][:2] == [0.1, 195.0]


# ---------------------------------------------------------------------- private streams


async def test_order_changes_open_match_filled_reach_watch_orders() -> None:
    async with kucoin_pro() as (emu, pro):
        task = asyncio.ensure_future(pro.watch_orders(SYMBOL))
        await emu.ws.wait_subscribed(f"{ORDERS_V1}#{emu.api_key}")
        placed = await pro.create_order(SYMBOL, "limit", "buy", 100, 0.1, {"clientOrderId": "o1"})
        first = await asyncio.wait_for(task, 5)
        assert [(o["id"], o["clientOrderId"], o["status"]) for o in first] == [
            (placed["id"], "o1", "open")
        ]
        emu.trade("sell", "0.1", 40)
        emu.trade("sell", "0.1", 60)
        await eventually(lambda: pro.orders.hashmap[SYMBOL][placed["id"]]["status"] == "closed")
        final = pro.orders.hashmap[SYMBOL][placed["id"]]
        assert (final["filled"], final["average"]) == (100.0, 0.1)
        sent = [(d["type"], d["status"]) for _, d in emu.ws_protocol.order_changes]
        assert sent == [("open", "open"), ("match", "open"), ("match", "open"), ("filled", "done")]


async def test_taker_fill_and_cancel_messages() -> None:
    async with kucoin_pro() as (emu, pro):
        task = asyncio.ensure_future(pro.watch_orders(SYMBOL))
        await emu.ws.wait_subscribed(f"{ORDERS_V1}#{emu.api_key}")
        taker = await pro.create_order(SYMBOL, "limit", "buy", 1500, 0.1001, {"timeInForce": "IOC"})
        resting = await pro.create_order(SYMBOL, "limit", "sell", 50, 0.2)
        await pro.cancel_order(resting["id"], SYMBOL)
        await asyncio.wait_for(task, 5)
        await eventually(lambda: len(emu.ws_protocol.order_changes) == 4)
        sent = [(d["orderId"], d["type"], d["status"]) for _, d in emu.ws_protocol.order_changes]
        assert sent == [
            (taker["id"], "match", "match"),  # the taker's match
            (taker["id"], "update", "done"),  # the IOC rest cancelled after a partial fill
            (resting["id"], "open", "open"),
            (resting["id"], "canceled", "done"),
        ]
        match = emu.ws_protocol.order_changes[0][1]
        assert (match["liquidity"], match["matchSize"], match["feeType"]) == (
            "taker",
            "1000",
            "takerFee",
        )
        await eventually(lambda: pro.orders.hashmap[SYMBOL][resting["id"]]["status"] == "canceled")


async def test_watch_my_trades_gets_each_fill_with_the_rest_trade_id() -> None:
    async with kucoin_pro() as (emu, pro):
        task = asyncio.ensure_future(pro.watch_my_trades(SYMBOL))
        await emu.ws.wait_subscribed(f"{ORDERS_V1}#{emu.api_key}")
        placed = await pro.create_order(SYMBOL, "limit", "sell", 80, 0.1005, {"postOnly": True})
        emu.trade("buy", "0.1005", 30)
        trades = await asyncio.wait_for(task, 5)
        rest = await pro.fetch_my_trades(SYMBOL)
        assert [
            (t["id"], t["order"], t["price"], t["amount"], t["takerOrMaker"]) for t in trades
        ] == [(rest[0]["id"], placed["id"], 0.1005, 30.0, "maker")]


async def test_tradeorders_v2_adds_received() -> None:
    async with kucoin_pro() as (emu, pro):
        task = asyncio.ensure_future(
            pro.watch_my_trades(SYMBOL, None, None, {"spotMethod": ORDERS_V2})
        )
        await emu.ws.wait_subscribed(f"{ORDERS_V2}#{emu.api_key}")
        taker = await pro.create_order(SYMBOL, "limit", "buy", 100, 0.1001)
        trades = await asyncio.wait_for(task, 5)
        assert [(t["order"], t["takerOrMaker"]) for t in trades] == [(taker["id"], "taker")]
        await eventually(lambda: len(emu.ws_protocol.order_changes) == 3)
        sent = [(topic, d["type"], d["status"]) for topic, d in emu.ws_protocol.order_changes]
        assert sent == [
            (ORDERS_V2, "received", "new"),
            (ORDERS_V2, "match", "match"),
            (ORDERS_V2, "filled", "done"),
        ]
        await eventually(lambda: pro.orders.hashmap[SYMBOL][taker["id"]]["status"] == "closed")


# ---------------------------------------------------------------------- pings


async def test_ccxt_pings_keep_the_connection_past_the_ping_timeout() -> None:
    async with kucoin_pro(ping_interval_ms=100, ping_timeout_ms=100) as (emu, pro):
        await synced(emu, pro)
        await eventually(lambda: emu.ws_protocol.pongs >= 5)  # > 2 x (interval + timeout)
        move_book(emu, 1)
        book = await book_at(pro, emu.engine.book(MARKET).seq)
        assert ccxt_levels(book) == engine_levels(emu)
        assert emu.ws_protocol.ping_timeouts == 0 and emu.ws.accepted == 1


async def test_a_client_that_stops_pinging_is_told_and_closed() -> None:
    async with (
        KucoinEmulator(ping_interval_ms=100, ping_timeout_ms=100) as emu,
        aiohttp.ClientSession() as session,
    ):
        async with session.post(emu.base_url + "/api/v1/bullet-public") as resp:
            data = (await resp.json())["data"]
        server = data["instanceServers"][0]
        assert (server["endpoint"], server["pingInterval"], server["pingTimeout"]) == (
            emu.ws_url,
            100,
            100,
        )
        url = f"{server['endpoint']}?token={data['token']}&connectId=silent"
        async with session.ws_connect(url, autoping=False) as ws:
            assert json.loads(await ws.receive_str(timeout=5)) == {
                "id": "silent",
                "type": "welcome",
            }
            error = json.loads(await ws.receive_str(timeout=5))
            assert (error["type"], error["code"], error["data"]) == ("error", 400, "ping timeout")
            closing = await ws.receive(timeout=5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert emu.ws_protocol.ping_timeouts == 1


# ---------------------------------------------------------------------- wire and protocol faults


async def test_sequence_gap_goes_unnoticed_by_ccxt() -> None:
    """A lost delta: ccxt 4.5.90 applies the next one without checking ``sequenceStart``
    against its nonce, so its book silently misses the lost change."""
    async with kucoin_pro() as (emu, pro):
        await synced(emu, pro)
        assert emu.ws.inject(BOOK_TOPIC, drop=1) == 1
        await pro.create_order(SYMBOL, "limit", "buy", 70, 0.0995, {"postOnly": True})  # lost
        move_book(emu, 1)
        book = await book_at(pro, emu.engine.book(MARKET).seq)
        bids, _ = ccxt_levels(book)
        engine_bids, _ = engine_levels(emu)
        assert [0.0995, 70.0] in engine_bids and [0.0995, 70.0] not in bids
        assert book["nonce"] == emu.engine.book(MARKET).seq


async def test_duplicated_delta_is_ignored_by_its_sequence() -> None:
    async with kucoin_pro() as (emu, pro):
        await synced(emu, pro)
        emu.ws.inject(BOOK_TOPIC, duplicate=1)
        await pro.create_order(SYMBOL, "limit", "buy", 70, 0.0995, {"postOnly": True})
        move_book(emu, 1)
        book = await book_at(pro, emu.engine.book(MARKET).seq)
        assert ccxt_levels(book) == engine_levels(emu)


async def test_reordered_delta_is_dropped_as_stale() -> None:
    """The older delta arrives after a newer one: ccxt discards it (nonce >= its end)."""
    async with kucoin_pro() as (emu, pro):
        await synced(emu, pro)
        emu.ws.inject(BOOK_TOPIC, reorder=1)
        await pro.create_order(SYMBOL, "limit", "buy", 70, 0.0995, {"postOnly": True})
        move_book(emu, 1)
        delivered = emu.ws.subscribed(BOOK_TOPIC)[0]
        await eventually(lambda: delivered.delivered == delivered.published)
        book = await book_at(pro, emu.engine.book(MARKET).seq)
        assert [0.0995, 70.0] not in ccxt_levels(book)[0]


async def test_stalled_feed_answers_pings_but_the_book_stops() -> None:
    async with kucoin_pro(ping_interval_ms=100, ping_timeout_ms=100) as (emu, pro):
        book = await synced(emu, pro)
        nonce = book["nonce"]
        emu.ws.stall(BOOK_TOPIC)
        move_book(emu, 2)
        pongs = emu.ws_protocol.pongs
        await eventually(lambda: emu.ws_protocol.pongs >= pongs + 3)
        assert pro.orderbooks[SYMBOL]["nonce"] == nonce and emu.ws.accepted == 1
        emu.ws.resume(BOOK_TOPIC)
        move_book(emu, 1)
        book = await book_at(pro, emu.engine.book(MARKET).seq)
        assert book["nonce"] == emu.engine.book(MARKET).seq


async def test_reconnect_syncs_from_a_fresh_snapshot_and_sequences_continue() -> None:
    async with kucoin_pro() as (emu, pro):
        book = await synced(emu, pro)
        before = book["nonce"]
        pending = asyncio.ensure_future(pro.watch_order_book(SYMBOL))
        await asyncio.sleep(0)
        assert await emu.ws.close_all() == 1
        with pytest.raises(ccxt_errors.NetworkError):
            await asyncio.wait_for(pending, 5)
        await pro.create_order(SYMBOL, "limit", "buy", 70, 0.0995, {"postOnly": True})
        book = await synced(emu, pro)
        assert emu.ws.accepted == 2 and full_snapshots(emu) == 2
        assert book["nonce"] > before
        assert ccxt_levels(book) == engine_levels(emu)


async def test_expired_token_is_refused_and_ccxt_asks_for_a_new_one() -> None:
    """What ccxt 4.5.90 does with KuCoin's ``token is expired``: it drops its cached URL, then
    raises ``AuthenticationError`` inside its receive callback (the event loop's exception
    handler gets it, the receive loop stops); the pending watch fails with a network error. The
    next watch asks for a new token and works."""
    loop = asyncio.get_running_loop()
    escaped: list[BaseException | None] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: escaped.append(context.get("exception")))
    try:
        async with kucoin_pro() as (emu, pro):
            await synced(emu, pro)
            emu.ws_protocol.expire_tokens()
            pending = asyncio.ensure_future(pro.watch_order_book(SYMBOL))
            await asyncio.sleep(0)
            await emu.ws.close_all()
            with pytest.raises(ccxt_errors.NetworkError):
                await asyncio.wait_for(pending, 5)
            with pytest.raises((ccxt_errors.BaseError, aiohttp.ClientError)):
                await asyncio.wait_for(pro.watch_order_book(SYMBOL), 5)  # the cached token
            assert emu.ws_protocol.refused == ["token is expired"]
            await eventually(lambda: bool(escaped))
            assert isinstance(escaped[0], ccxt_errors.AuthenticationError)
            assert "token is expired" in str(escaped[0])
            book = await synced(emu, pro)
            assert sum("bullet-public" in r.path for r in emu.requests) == 2
            assert ccxt_levels(book) == engine_levels(emu)
    finally:
        loop.set_exception_handler(previous)
