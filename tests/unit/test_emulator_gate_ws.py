"""Unmodified ``ccxt.pro.gate`` against the Gate emulator's spot v4 websockets (``gate_ws``).

Order books are watched both ways ccxt 4.5.90 does it: ``spot.order_book_update`` synced with the
REST snapshot's ``id`` (ccxt's path when the websocket URL contains ``gateeu``: ``emu.ws_url_eu``)
and ``spot.obu`` (its default, ``emu.ws_url``). Each wire fault is shown by what ccxt does with it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.pro as ccxt_pro
import pytest
from ccxt.base import errors as ccxt_errors

from tests.emulators.gate import GateEmulator, configure_ccxt_pro
from tests.emulators.gate_ws import ws_signature
from tests.support import eventually

pytestmark = pytest.mark.anyio
D = Decimal
SYMBOL = "KAS/USDT"
PAIR = "KAS_USDT"
UPDATES = f"spot.order_book_update:{PAIR}"
OBU = f"spot.obu:ob.{PAIR}.50"
#: ccxt caches this many spot updates before it fetches the REST snapshot (snapshotDelay).
SNAPSHOT_DELAY = 10


@asynccontextmanager
async def gate_pro(
    *, eu: bool = True, secret: str | None = None, api_key: str | None = None, **emu_kwargs: Any
) -> AsyncIterator[tuple[GateEmulator, Any]]:
    """A started emulator (book around 0.1) and a ccxt.pro gate on it; both closed after."""
    emu_kwargs.setdefault("api_key", "key-1")
    emu_kwargs.setdefault("secret", "secret-1")
    async with GateEmulator(**emu_kwargs) as emu:
        emu.set_mid("0.1", spread_bps=20, levels=5, size=1000)
        ex = ccxt_pro.gate(
            {
                "apiKey": api_key or emu.api_key,
                "secret": secret or emu.secret,
                "enableRateLimit": False,
            }
        )
        configure_ccxt_pro(ex, emu.base_url, emu.ws_url_eu if eu else emu.ws_url)
        ex.timeout_on_exit = 0
        try:
            await ex.load_markets()
            yield emu, ex
        finally:
            await ex.close()


class Nudger:
    """Book changes from outside: each call resizes the synthetic book (one update id each)."""

    def __init__(self, emu: GateEmulator) -> None:
        self.emu = emu
        self.size = 1000

    def __call__(self, count: int = 1) -> None:
        for _ in range(count):
            self.size += 1
            self.emu.set_mid("0.1", spread_bps=20, levels=5, size=self.size)


def engine_book(emu: GateEmulator, depth: int | None = None) -> dict[str, list[list[float]]]:
    """The engine's merged book as ccxt floats, best first."""
    bids, asks = emu.engine.merged_levels(PAIR)
    rows = {
        "bids": [[float(p), float(s)] for p, s in sorted(bids.items(), reverse=True)],
        "asks": [[float(p), float(s)] for p, s in sorted(asks.items())],
    }
    return {k: v[:depth] for k, v in rows.items()} if depth else rows


def client_book(book: Any) -> dict[str, list[list[float]]]:
    return {"bids": [list(x) for x in book["bids"]], "asks": [list(x) for x in book["asks"]]}


async def synced_book(emu: GateEmulator, ex: Any, nudge: Nudger) -> Any:
    """Subscribe ``spot.order_book_update`` and sync: ccxt caches ``SNAPSHOT_DELAY`` updates,
    then fetches the REST snapshot on the next one and resolves the book."""
    before = subscribes(emu, "spot.order_book_update")
    watch = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
    await emu.ws.wait_for(lambda _: subscribes(emu, "spot.order_book_update") > before)
    nudge(SNAPSHOT_DELAY + 1)
    await asyncio.wait_for(watch, 5)
    return await current(emu, ex)


def subscribes(emu: GateEmulator, channel: str) -> int:
    """Subscribe requests to ``channel`` the emulator accepted so far."""
    return sum(
        1
        for r in emu.ws_protocol.requests
        if r.error_code is None
        and isinstance(r.message, dict)
        and r.message.get("channel") == channel
        and r.message.get("event") == "subscribe"
    )


async def current(emu: GateEmulator, ex: Any) -> Any:
    """The client's book once it holds the engine's current update id.

    ccxt applies each message as it arrives, watched or not, but resolves a watch only if one
    is waiting at that moment: several updates arriving together resolve it once. So this
    waits on the stored book rather than on a chain of watches.
    """

    def synced() -> bool:
        book = ex.orderbooks.get(SYMBOL)
        return book is not None and book["nonce"] == emu.engine.book_ids[PAIR]

    await eventually(synced, within_s=5)
    return ex.orderbooks[SYMBOL]


# ---------------------------------------------------------------------- order books


async def test_order_book_update_syncs_with_the_rest_snapshot_id() -> None:
    async with gate_pro() as (emu, ex):
        nudge = Nudger(emu)
        book = await synced_book(emu, ex, nudge)
        (snapshot,) = emu.requests_to("/spot/order_book", "GET")
        assert snapshot.query["with_id"] == "true" and snapshot.query["limit"] == "50"
        assert client_book(book) == engine_book(emu)
        # own orders and fills move the same sequence
        await ex.create_order(SYMBOL, "limit", "sell", 30, 0.1, {"postOnly": True})
        book = await current(emu, ex)
        assert book["asks"][0] == [0.1, 30.0] and client_book(book) == engine_book(emu)
        emu.trade("buy", "0.1", 10)
        book = await current(emu, ex)
        assert book["asks"][0] == [0.1, 20.0] and client_book(book) == engine_book(emu)
        nudge()
        assert client_book(await current(emu, ex)) == engine_book(emu)
        assert len(emu.requests_to("/spot/order_book", "GET")) == 1


async def test_updates_cached_after_the_snapshot_are_merged_by_its_id() -> None:
    """The REST snapshot is older than some cached updates: ccxt applies those from the one
    whose ``U - 1`` is the snapshot's ``id``. The instance's ``fetch_order_book`` is wrapped
    (not ccxt's code) only to make the book move between the snapshot and its use."""
    async with gate_pro() as (emu, ex):
        nudge = Nudger(emu)
        fetch = ex.fetch_order_book
        snapshots: list[Any] = []

        async def fetch_then_move(*args: Any, **kwargs: Any) -> Any:
            snapshot = await fetch(*args, **kwargs)
            cached = len(ex.orderbooks[SYMBOL].cache)
            emu.set_book([("0.0995", "7")], [("0.1005", "9")])
            await eventually(lambda: len(ex.orderbooks[SYMBOL].cache) > cached, within_s=5)
            snapshots.append(snapshot)
            return snapshot

        ex.fetch_order_book = fetch_then_move
        book = await synced_book(emu, ex, nudge)
        (snapshot,) = snapshots
        assert snapshot["nonce"] == emu.engine.book_ids[PAIR] - 1
        assert book["nonce"] == emu.engine.book_ids[PAIR]
        assert client_book(book) == engine_book(emu)
        assert book["bids"] == [[0.0995, 7.0]] and book["asks"] == [[0.1005, 9.0]]


async def test_order_book_update_messages_carry_gates_fields() -> None:
    async with gate_pro() as (emu, _ex), raw_ws(emu.ws_url) as ws:
        await ws.send_json(request("spot.order_book_update", [PAIR, "100ms"], id=7))
        ack = await ws.receive_json(timeout=5)
        assert ack["id"] == 7 and ack["event"] == "subscribe" and ack["payload"] == [PAIR, "100ms"]
        assert ack["result"] == {"status": "success"} and "error" not in ack
        before = emu.engine.book_ids[PAIR]
        emu.set_book([("0.0999", "5")], [("0.1001", "7")])
        push = await ws.receive_json(timeout=5)
        assert push["channel"] == "spot.order_book_update" and push["event"] == "update"
        result = push["result"]
        assert result["s"] == PAIR and result["U"] == result["u"] == before + 1
        assert {"t", "e", "E"} <= set(result)
        assert ["0.0999", "5"] in result["b"] and ["0.099899", "0"] in result["b"]
        assert ["0.1001", "7"] in result["a"] and ["0.100101", "0"] in result["a"]


async def test_paced_updates_span_several_ids_and_ccxt_still_syncs() -> None:
    async with gate_pro(ws_book_interval_s=0.02) as (emu, ex):
        nudge = Nudger(emu)
        async with raw_ws(emu.ws_url) as ws:
            await ws.send_json(request("spot.order_book_update", [PAIR, "100ms"]))
            await ws.receive_json(timeout=5)
            before = emu.engine.book_ids[PAIR]
            nudge(3)
            result = (await ws.receive_json(timeout=5))["result"]
            assert (result["U"], result["u"]) == (before + 1, before + 3)
            assert ["0.0999", "1003"] in result["b"]  # each level at its latest size
        watch = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
        await emu.ws.wait_subscribed(UPDATES)
        (conn,) = emu.ws.subscribed(UPDATES)
        for window in range(1, SNAPSHOT_DELAY + 2):  # a window each: ccxt counts messages
            nudge(2)
            # (the lambda is awaited before the loop variable moves on)
            await eventually(lambda: conn.published >= window, within_s=5)  # noqa: B023
        await asyncio.wait_for(watch, 5)
        nudge(2)
        assert client_book(await current(emu, ex)) == engine_book(emu)


async def test_obu_full_snapshot_then_incremental_updates() -> None:
    async with gate_pro(eu=False) as (emu, ex):
        nudge = Nudger(emu)
        book = await asyncio.wait_for(ex.watch_order_book(SYMBOL), 5)
        assert book["nonce"] == emu.engine.book_ids[PAIR]
        assert client_book(book) == engine_book(emu, 50)
        assert emu.requests_to("/spot/order_book") == []  # no REST snapshot on this channel
        await ex.create_order(SYMBOL, "limit", "buy", 40, 0.0999, {"postOnly": True})
        nudge()
        assert client_book(await current(emu, ex)) == engine_book(emu, 50)
        emu.ws_protocol.push_obu_full(PAIR)  # Gate "may resend full depth": ccxt resets to it
        assert client_book(await current(emu, ex)) == engine_book(emu, 50)


async def test_order_book_snapshot_channel_shares_the_update_id() -> None:
    async with gate_pro() as (emu, ex), raw_ws(emu.ws_url) as ws:
        await ws.send_json(request("spot.order_book", [PAIR, "5", "100ms"]))
        assert (await ws.receive_json(timeout=5))["result"] == {"status": "success"}
        first = (await ws.receive_json(timeout=5))["result"]
        rest = await ex.fetch_order_book(SYMBOL, 5)
        assert first["lastUpdateId"] == rest["nonce"] and first["l"] == "5"
        assert first["bids"][0] == ["0.0999", "1000"] and len(first["asks"]) == 5
        Nudger(emu)()
        second = (await ws.receive_json(timeout=5))["result"]
        assert second["lastUpdateId"] == first["lastUpdateId"] + 1
        assert second["bids"][0] == ["0.0999", "1001"]


# ---------------------------------------------------------------------- wire faults


async def test_sequence_gap_raises_checksum_error_then_the_next_watch_resyncs() -> None:
    async with gate_pro() as (emu, ex):
        nudge = Nudger(emu)
        await synced_book(emu, ex, nudge)
        assert emu.ws.inject(UPDATES, drop=1) == 1
        nudge(2)  # the first is lost: the second's U is last u + 2
        with pytest.raises(ccxt_errors.ChecksumError):
            await asyncio.wait_for(ex.watch_order_book(SYMBOL), 5)
        # ccxt dropped its subscription and book; the next watch subscribes again and
        # rebuilds from a new REST snapshot
        book = await synced_book(emu, ex, nudge)
        assert client_book(book) == engine_book(emu)
        assert len(emu.requests_to("/spot/order_book", "GET")) == 2


async def test_sequence_gap_without_checksum_option_returns_an_unsynced_book() -> None:
    """With ``options.watchOrderBook.checksum`` False ccxt does not raise: the watch returns
    the book with ``nonce`` None (contents stale), and the next watch resyncs."""
    async with gate_pro() as (emu, ex):
        ex.options["watchOrderBook"]["checksum"] = False
        nudge = Nudger(emu)
        await synced_book(emu, ex, nudge)
        emu.ws.inject(UPDATES, drop=1)
        nudge(2)
        book = await asyncio.wait_for(ex.watch_order_book(SYMBOL), 5)
        assert book["nonce"] is None and client_book(book) != engine_book(emu)
        assert client_book(await synced_book(emu, ex, nudge)) == engine_book(emu)


async def test_obu_gap_goes_unnoticed_by_ccxt() -> None:
    """ccxt 4.5.90's ``handle_new_spot_order_book`` never checks ``U`` against its nonce."""
    async with gate_pro(eu=False) as (emu, ex):
        await asyncio.wait_for(ex.watch_order_book(SYMBOL), 5)
        emu.ws.inject(OBU, drop=1)
        emu.set_book([("0.0999", "1")], [("0.1001", "1000")])  # lost
        emu.set_book([("0.0999", "1")], [("0.1001", "2")])  # U = last u + 2: applied anyway
        book = await current(emu, ex)
        assert book["bids"][0] == [0.0999, 1000.0]  # stale: the lost update's level
        assert client_book(book) != engine_book(emu, 50)


async def test_duplicate_updates_are_ignored() -> None:
    async with gate_pro() as (emu, ex):
        nudge = Nudger(emu)
        await synced_book(emu, ex, nudge)
        (conn,) = emu.ws.connections.values()
        sent = conn.delivered
        emu.ws.inject(UPDATES, duplicate=1)
        nudge(2)
        book = await current(emu, ex)
        await emu.ws.wait_for(lambda _: conn.delivered == sent + 3)
        assert client_book(book) == engine_book(emu)


async def test_reordered_updates_look_like_a_gap() -> None:
    async with gate_pro() as (emu, ex):
        nudge = Nudger(emu)
        await synced_book(emu, ex, nudge)
        emu.ws.inject(UPDATES, reorder=1)
        nudge(2)
        with pytest.raises(ccxt_errors.ChecksumError):
            await asyncio.wait_for(ex.watch_order_book(SYMBOL), 5)


async def test_stall_loses_updates_and_the_resumed_stream_has_a_gap() -> None:
    async with gate_pro() as (emu, ex):
        nudge = Nudger(emu)
        book = await synced_book(emu, ex, nudge)
        stale = book["nonce"]
        (conn,) = emu.ws.connections.values()
        assert emu.ws.stall(UPDATES) == 1
        pending = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
        nudge(3)
        assert conn.published - conn.delivered >= 3 and not conn.closed
        assert not pending.done() and ex.orderbooks[SYMBOL]["nonce"] == stale
        emu.ws.resume(UPDATES)
        nudge()
        with pytest.raises(ccxt_errors.ChecksumError):
            await asyncio.wait_for(pending, 5)


async def test_close_then_reconnect_rebuilds_from_a_fresh_snapshot() -> None:
    async with gate_pro() as (emu, ex):
        nudge = Nudger(emu)
        stale = (await synced_book(emu, ex, nudge))["nonce"]
        pending = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
        assert await emu.ws.close_all() == 1
        with pytest.raises(ccxt_errors.NetworkError):
            await asyncio.wait_for(pending, 5)
        emu.set_book([("0.0995", "77")], [("0.1005", "88")])  # while the client is away
        assert emu.engine.book_ids[PAIR] == stale + 1  # ids keep counting
        book = await synced_book(emu, ex, nudge)
        assert emu.ws.accepted == 2 and len(emu.requests_to("/spot/order_book", "GET")) == 2
        assert client_book(book) == engine_book(emu)


async def test_update_ids_continue_across_connections() -> None:
    """A client that merged post-reconnect updates into its stale book would skip ids."""
    async with gate_pro() as (emu, _ex):
        async with raw_ws(emu.ws_url) as ws:
            await ws.send_json(request("spot.order_book_update", [PAIR, "100ms"]))
            await ws.receive_json(timeout=5)
            Nudger(emu)()
            last_seen = (await ws.receive_json(timeout=5))["result"]["u"]
        emu.set_book([("0.0995", "77")], [("0.1005", "88")])  # nobody is listening
        async with raw_ws(emu.ws_url) as ws:
            await ws.send_json(request("spot.order_book_update", [PAIR, "100ms"]))
            await ws.receive_json(timeout=5)
            emu.set_book([("0.0995", "78")], [("0.1005", "88")])
            first = (await ws.receive_json(timeout=5))["result"]
        assert first["U"] == last_seen + 2
        assert first["b"] == [["0.0995", "78"]]  # the ask change happened while away


async def test_burst_delivers_late_then_all_at_once() -> None:
    async with gate_pro() as (emu, ex):
        nudge = Nudger(emu)
        await synced_book(emu, ex, nudge)
        (conn,) = emu.ws.connections.values()
        emu.ws.inject(UPDATES, burst_s=0.2)
        sent = conn.delivered
        nudge(3)
        assert conn.delivered == sent  # held
        started = asyncio.get_running_loop().time()
        book = await current(emu, ex)
        assert asyncio.get_running_loop().time() - started >= 0.15
        assert client_book(book) == engine_book(emu) and conn.delivered == sent + 3


# ---------------------------------------------------------------------- private channels


async def test_orders_and_trades_stream_after_rest_order_and_outside_trade() -> None:
    async with gate_pro() as (emu, ex):
        orders_watch = asyncio.ensure_future(ex.watch_orders(SYMBOL))
        trades_watch = asyncio.ensure_future(ex.watch_my_trades(SYMBOL))
        await emu.ws.wait_subscribed(f"spot.orders:{PAIR}")
        await emu.ws.wait_subscribed(f"spot.usertrades:{PAIR}")
        placed = await ex.create_order(
            SYMBOL, "limit", "sell", 30, 0.1, {"postOnly": True, "clientOrderId": "mm-1"}
        )
        (put,) = await asyncio.wait_for(orders_watch, 5)
        assert put["id"] == placed["id"] and put["clientOrderId"] == "t-mm-1"
        assert put["status"] == "open" and put["info"]["event"] == "put"
        assert put["amount"] == 30.0 and put["remaining"] == 30.0 and put["price"] == 0.1
        assert put["timestamp"] == emu.orders()[0]["create_time_ms"]

        # a watch resolves only if it waits when the message comes: start them first
        orders_watch = asyncio.ensure_future(ex.watch_orders(SYMBOL))
        emu.trade("buy", "0.1", 10)
        (trade,) = await asyncio.wait_for(trades_watch, 5)
        assert trade["order"] == placed["id"] and trade["info"]["text"] == "t-mm-1"
        assert trade["side"] == "sell" and trade["takerOrMaker"] == "maker"
        assert (trade["price"], trade["amount"]) == (0.1, 10.0)
        assert trade["fee"] == {"cost": 0.002, "currency": "USDT"}
        assert trade["timestamp"] == int(float(emu.my_trades()[0]["create_time_ms"]))
        update = (await asyncio.wait_for(orders_watch, 5))[-1]
        assert update["status"] == "open" and update["filled"] == 10.0
        assert update["info"]["event"] == "update"

        orders_watch = asyncio.ensure_future(ex.watch_orders(SYMBOL))
        trades_watch = asyncio.ensure_future(ex.watch_my_trades(SYMBOL))
        emu.trade("buy", "0.1", 50)
        trades = await asyncio.wait_for(trades_watch, 5)
        assert [t["amount"] for t in trades][-1] == 20.0
        finish = (await asyncio.wait_for(orders_watch, 5))[-1]
        assert finish["status"] == "closed" and finish["remaining"] == 0.0
        assert finish["info"]["event"] == "finish" and finish["info"]["finish_as"] == "filled"
        assert len(ex.orders) == 1  # ccxt keeps the latest state of each order id


async def test_cancel_streams_a_finish_and_balance_follows_locks() -> None:
    async with gate_pro() as (emu, ex):
        balance_watch = asyncio.ensure_future(ex.watch_balance())
        await emu.ws.wait_subscribed("spot.balances")
        placed = await ex.create_order(SYMBOL, "limit", "buy", 100, 0.0995, {"postOnly": True})
        balance = await asyncio.wait_for(balance_watch, 5)
        assert balance["USDT"] == {"free": 9990.05, "used": 9.95, "total": 10000.0}
        assert balance["info"][0]["change_type"] == "order-create"
        orders_watch = asyncio.ensure_future(ex.watch_orders(SYMBOL))
        balance_watch = asyncio.ensure_future(ex.watch_balance())
        await emu.ws.wait_subscribed(f"spot.orders:{PAIR}")
        await ex.cancel_order(placed["id"], SYMBOL)
        (cancelled,) = await asyncio.wait_for(orders_watch, 5)
        assert cancelled["status"] == "canceled" and cancelled["info"]["event"] == "finish"
        balance = await asyncio.wait_for(balance_watch, 5)
        assert balance["USDT"] == {"free": 10000.0, "used": 0.0, "total": 10000.0}


@pytest.mark.parametrize(("secret", "api_key"), [("wrong", None), (None, "wrong")])
async def test_bad_auth_is_refused_with_code_4(secret: str | None, api_key: str | None) -> None:
    async with gate_pro(secret=secret, api_key=api_key) as (emu, ex):
        with pytest.raises(ccxt_errors.AuthenticationError):
            await asyncio.wait_for(ex.watch_orders(SYMBOL), 5)
        (record,) = emu.ws_protocol.requests
        assert record.error_code == 4 and emu.ws.subscribed(f"spot.orders:{PAIR}") == []


# ---------------------------------------------------------------------- protocol


@asynccontextmanager
async def raw_ws(url: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        yield ws


def request(channel: str, payload: Any = None, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"time": int(time.time()), "channel": channel, "event": "subscribe"}
    if payload is not None:
        out["payload"] = payload
    out.update(fields)
    return out


async def test_ping_is_answered_with_pong() -> None:
    async with gate_pro() as (emu, _ex), raw_ws(emu.ws_url) as ws:
        await ws.send_json({"time": int(time.time()), "channel": "spot.ping"})
        pong = await ws.receive_json(timeout=5)
        assert pong["channel"] == "spot.pong" and pong["event"] == ""
        assert pong["error"] is None and pong["result"] is None


async def test_server_protocol_pings_when_heartbeat_is_set() -> None:
    async with (
        gate_pro(ws_heartbeat_s=0.05) as (emu, _ex),
        aiohttp.ClientSession() as session,
        session.ws_connect(emu.ws_url, autoping=False) as ws,
    ):
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.PING
        await ws.pong(msg.data)


async def test_heartbeat_closes_a_client_that_never_pongs_and_ccxt_answers() -> None:
    async with (
        gate_pro(eu=False, ws_heartbeat_s=0.1) as (emu, ex),
        aiohttp.ClientSession() as session,
    ):
        await asyncio.wait_for(ex.watch_order_book(SYMBOL), 5)
        async with session.ws_connect(emu.ws_url, autoping=False) as silent:
            while (msg := await silent.receive(timeout=5)).type is aiohttp.WSMsgType.PING:
                pass  # never answered: the server gives up on it
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        # ccxt's socket saw the same pings (answered by aiohttp's autoping) and still flows
        await ex.create_order(SYMBOL, "limit", "buy", 40, 0.0999, {"postOnly": True})
        assert client_book(await current(emu, ex)) == engine_book(emu, 50)
        assert emu.ws.accepted == 2 and len(emu.ws.connections) == 1


async def test_unwatch_order_book_unsubscribes() -> None:
    async with gate_pro(eu=False) as (emu, ex):
        await asyncio.wait_for(ex.watch_order_book(SYMBOL), 5)
        assert len(emu.ws.subscribed(OBU)) == 1
        await asyncio.wait_for(ex.un_watch_order_book(SYMBOL), 5)
        assert emu.ws.subscribed(OBU) == []
        (request,) = [
            r.message for r in emu.ws_protocol.requests if r.message["event"] == "unsubscribe"
        ]
        assert request["channel"] == "spot.obu" and request["payload"] == [f"ob.{PAIR}.50"]


@pytest.mark.parametrize(
    ("message", "code", "text"),
    [
        ("not json", 1, "Invalid request body format"),
        (request("spot.nothing", [PAIR]), 2, "unknown channel spot.nothing"),
        (request("spot.order_book_update", ["NOPE_USDT", "100ms"]), 2, "unknown currency pair"),
        (request("spot.order_book_update", [PAIR, "5s"]), 2, "invalid interval"),
        (request("spot.obu", ["ob.KAS_USDT.7"]), 2, "invalid stream"),
        (request("spot.orders", [PAIR]), 4, "MISSING_REQUIRED_HEADER"),
    ],
)
async def test_bad_requests_answer_gates_error(message: Any, code: int, text: str) -> None:
    async with gate_pro() as (emu, _ex), raw_ws(emu.ws_url) as ws:
        await ws.send_str(message if isinstance(message, str) else json.dumps(message))
        answer = await ws.receive_json(timeout=5)
        assert answer["error"]["code"] == code and text in answer["error"]["message"]
        assert answer["result"] == {"status": "fail"}


async def test_signed_private_subscribe_by_hand_and_expired_time() -> None:
    async with gate_pro() as (emu, _ex), raw_ws(emu.ws_url) as ws:
        now = int(time.time())
        sign = ws_signature(emu.secret, "spot.orders", "subscribe", now)
        auth = {"method": "api_key", "KEY": emu.api_key, "SIGN": sign}
        await ws.send_json(request("spot.orders", ["!all"], time=now, auth=auth, id=1))
        assert (await ws.receive_json(timeout=5))["result"] == {"status": "success"}
        old = now - 120
        sign = ws_signature(emu.secret, "spot.usertrades", "subscribe", old)
        auth = {"method": "api_key", "KEY": emu.api_key, "SIGN": sign}
        await ws.send_json(request("spot.usertrades", [PAIR], time=old, auth=auth, id=2))
        answer = await ws.receive_json(timeout=5)
        assert answer["id"] == 2 and answer["error"]["code"] == 4
        assert json.loads(answer["error"]["message"])["label"] == "REQUEST_EXPIRED"


async def test_stop_closes_websockets() -> None:
    emu = GateEmulator()
    await emu.start()
    async with raw_ws(emu.ws_url) as ws:
        await emu.ws.wait_for(lambda hub: len(hub.connections) == 1)
        await emu.stop()
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
