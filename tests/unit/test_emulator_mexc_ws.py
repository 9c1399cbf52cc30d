"""Unmodified ccxt.pro (``ccxt.pro.mexc``, 4.5.90) against the MEXC emulator's spot websockets.

Protobuf pushes decoded by ccxt itself, listen keys, and every wire and protocol fault with what
the client sees. Findings about ccxt 4.5.90 that these tests pin (so an upgrade that fixes them
shows up here):

* ``watch_order_book`` fetches the REST snapshot only after 25 cached pushes
  (``options['watchOrderBook']['snapshotDelay']``), then applies every cached push whose
  ``fromVersion`` is at least the snapshot's ``lastUpdateId``;
* it never checks ``fromVersion == previous toVersion + 1``: a lost push (a gap) or two swapped
  pushes leave a wrong book silently;
* with aggregated pushes (MEXC's 100 ms windows) it drops the push whose version range holds
  the snapshot's ``lastUpdateId`` (MEXC says: apply it), losing the changes after the snapshot
  in that window;
* its subscription-ack handler takes the market id from the wrong part of the new channel name
  (``100ms``), so a re-subscription after a reconnect does not reset the book: new pushes are
  merged into the stale one;
* ``privateDeals`` are parsed as ``taker`` always (it reads ``m``; protobuf sends ``isMaker``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import ccxt.pro as ccxtpro
import pytest

from kasmm.venues.ccxt.ws_trades import repaired
from tests.emulators.mexc import MarketSpec, MexcEmulator
from tests.emulators.mexc_ws import (
    PRIVATE_DEALS,
    PRIVATE_ORDERS,
    deals_channel,
    depth_channel,
)
from tests.emulators.wire import WsConnection

pytestmark = pytest.mark.anyio
KEY, SECRET = "test-key", "test-secret"
SYMBOL, MARKET_ID = "KAS/USDT", "KASUSDT"
DEPTH, DEALS = depth_channel(MARKET_ID), deals_channel(MARKET_ID)
SNAPSHOT_DELAY = 25  # ccxt's options['watchOrderBook']['snapshotDelay']
Book = tuple[list[list[float]], list[list[float]]]


class Clock:
    """The emulator's clock: real time plus an offset a test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def emu(anyio_backend: str, clock: Clock) -> AsyncIterator[MexcEmulator]:
    # Timestamps are not checked: tests move the clock by an hour to expire listen keys.
    async with MexcEmulator(KEY, SECRET, clock=clock, check_timestamp=False) as emulator:
        emulator.set_mid("0.05", spread_bps=20, levels=5, size=1000)  # 0.04995 / 0.05005
        yield emulator
        assert emulator.internal_errors == []


@asynccontextmanager
async def pro(emu: MexcEmulator, **config: Any) -> AsyncIterator[Any]:
    """An unmodified ccxt.pro mexc on ``emu`` (REST and websockets), closed on exit."""
    ex = emu.ccxt_pro(timeout_on_exit=0, **config)
    try:
        yield ex
    finally:
        await ex.close()


@pytest.fixture
async def ex(emu: MexcEmulator) -> AsyncIterator[Any]:
    async with pro(emu) as exchange:
        yield exchange


def engine_book(emu: MexcEmulator) -> Book:
    depth = emu.engine.depth(MARKET_ID, 1000)
    return (
        [[float(p), float(q)] for p, q in depth["bids"]],
        [[float(p), float(q)] for p, q in depth["asks"]],
    )


def client_book(ex: Any) -> Book:
    book = ex.orderbooks[SYMBOL]
    return [list(level) for level in book["bids"]], [list(level) for level in book["asks"]]


def version(emu: MexcEmulator) -> int:
    return emu.engine.depth_versions[MARKET_ID]


def the_connection(emu: MexcEmulator, topic: str) -> WsConnection:
    [conn] = emu.ws.subscribed(topic)
    return conn


async def synced(ex: Any, emu: MexcEmulator) -> None:
    """Subscribe ccxt to the depth stream and push enough changes for it to fetch the snapshot."""
    first = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
    await emu.ws.wait_subscribed(DEPTH)
    for i in range(SNAPSHOT_DELAY + 1):
        emu.set_mid("0.05", size=1001 + i)
    await asyncio.wait_for(first, 5)
    assert ex.orderbooks[SYMBOL]["nonce"] == version(emu)
    assert client_book(ex) == engine_book(emu)


async def watch_until(watch: Callable[[], Awaitable[Any]], done: Callable[[], bool]) -> None:
    """Call ``watch`` until ``done()`` holds (checked first: what arrived already counts)."""

    async def follow() -> None:
        while not done():
            await watch()

    await asyncio.wait_for(follow(), 5)


async def book_at(ex: Any, target: int) -> None:
    """Watch until ccxt's book has applied a push of depth version ``target`` (or later)."""
    await watch_until(
        lambda: ex.watch_order_book(SYMBOL),
        lambda: (ex.orderbooks[SYMBOL]["nonce"] or 0) >= target,
    )


def latest(ex: Any, order_id: str) -> Any:
    """ccxt's latest view of an order (from ``watch_orders``)."""
    return next(o for o in ex.orders if o["id"] == order_id)


# ------------------------------------------------------------------ public channels
async def test_order_book_follows_the_engine(ex: Any, emu: MexcEmulator) -> None:
    await synced(ex, emu)
    [snapshot] = [r for r in emu.requests if r.path == "/api/v3/depth"]
    assert snapshot.params == {"symbol": MARKET_ID}
    # Our own order, an outside fill of it, a cancel and a moved market: each is one push.
    order = await ex.create_order(
        SYMBOL, "limit", "buy", 100, 0.0499, {"postOnly": True, "clientOrderId": "b-1"}
    )
    emu.trade("sell", "0.0499", 40)
    emu.place_foreign("sell", "0.0503", 300)
    await ex.cancel_order(order["id"], SYMBOL)
    emu.set_mid("0.051", levels=3)
    await book_at(ex, version(emu))
    assert client_book(ex) == engine_book(emu)
    assert ex.orderbooks[SYMBOL]["nonce"] == emu.engine.depth(MARKET_ID, 1)["lastUpdateId"]


async def test_trades_show_each_match_with_the_taker_side(ex: Any, emu: MexcEmulator) -> None:
    first = asyncio.ensure_future(ex.watch_trades(SYMBOL))
    await emu.ws.wait_subscribed(DEALS)
    emu.place_foreign("sell", "0.0501", 200)
    emu.trade("buy", "0.0501", 150)  # an outside taker lifts the resting sell
    assert len(await asyncio.wait_for(first, 5)) == 1
    await ex.create_order(SYMBOL, "market", "sell", 100)  # we hit the synthetic best bid
    await watch_until(lambda: ex.watch_trades(SYMBOL), lambda: len(ex.trades[SYMBOL]) == 2)
    trades = ex.trades[SYMBOL]
    assert [(t["side"], t["price"], t["amount"]) for t in trades] == [
        ("buy", 0.0501, 150.0),
        ("sell", 0.04995, 100.0),
    ]
    assert all(t["id"] is None and t["timestamp"] for t in trades)  # MEXC sends no deal id


async def test_orders_and_my_trades_after_create_order_and_an_outside_fill(
    ex: Any, emu: MexcEmulator
) -> None:
    orders_task = asyncio.ensure_future(ex.watch_orders(SYMBOL))
    trades_task = asyncio.ensure_future(ex.watch_my_trades(SYMBOL))
    await emu.ws.wait_subscribed(PRIVATE_ORDERS)
    await emu.ws.wait_subscribed(PRIVATE_DEALS)
    created = [r for r in emu.requests if r.path == "/api/v3/userDataStream"]
    assert [(r.method, r.signed_ok) for r in created] == [("POST", True)]  # one key, shared
    [conn] = emu.ws.connections.values()
    assert conn.request.query["listenKey"] == ex.options["listenKey"]

    order = await ex.create_order(
        SYMBOL, "limit", "sell", 200, 0.0502, {"postOnly": True, "clientOrderId": "ws-1"}
    )
    [placed] = await asyncio.wait_for(orders_task, 5)
    assert (placed["id"], placed["clientOrderId"], placed["status"]) == (
        order["id"],
        "ws-1",
        "open",
    )
    assert (placed["type"], placed["timeInForce"], placed["side"]) == ("limit", "PO", "sell")
    assert (placed["price"], placed["amount"], placed["filled"]) == (0.0502, 200.0, 0.0)

    emu.trade("buy", "0.0502", 150)  # an outside taker fills 150 of it
    [fill] = await asyncio.wait_for(trades_task, 5)
    assert (fill["order"], fill["side"], fill["price"], fill["amount"]) == (
        order["id"],
        "sell",
        0.0502,
        150.0,
    )
    assert fill["fee"] == {"cost": 0.0, "currency": "USDT"}
    assert fill["info"]["isMaker"] is True
    assert fill["takerOrMaker"] == "taker"  # ccxt 4.5.90 reads 'm', not protobuf's isMaker
    assert repaired("mexc", fill)["takerOrMaker"] == "maker"  # kasmm's repair at its boundary
    assert fill["id"] == emu.fills()[0]["id"]

    # The order's own update came before the deal (MEXC's order too): it is there already.
    partial = latest(ex, order["id"])
    assert (partial["status"], partial["filled"], partial["remaining"]) == ("open", 150.0, 50.0)
    emu.trade("buy", "0.0502", 100)
    await watch_until(
        lambda: ex.watch_orders(SYMBOL), lambda: latest(ex, order["id"])["status"] == "closed"
    )
    done = latest(ex, order["id"])
    assert (done["filled"], done["remaining"], done["average"]) == (200.0, 0.0, 0.0502)
    assert len(ex.orders) == 1  # one order, updated in place (by id)


async def test_a_self_trade_is_one_deal_and_two_own_trades_maker_first(
    ex: Any, emu: MexcEmulator
) -> None:
    orders_task = asyncio.ensure_future(ex.watch_orders(SYMBOL))
    trades_task = asyncio.ensure_future(ex.watch_my_trades(SYMBOL))
    deals_task = asyncio.ensure_future(ex.watch_trades(SYMBOL))
    for channel in (PRIVATE_ORDERS, PRIVATE_DEALS, DEALS):
        await emu.ws.wait_subscribed(channel)
    resting = emu.place_foreign("sell", "0.0500", 100)  # on ccxt's own account
    await asyncio.wait_for(orders_task, 5)
    taker = await ex.create_order(SYMBOL, "limit", "buy", 100, 0.05)  # a self-trade
    await asyncio.wait_for(asyncio.gather(trades_task, deals_task), 5)
    await watch_until(lambda: ex.watch_my_trades(SYMBOL), lambda: len(ex.myTrades) == 2)
    mine = list(ex.myTrades)
    makers = [(t["side"], t["info"].get("isMaker", False)) for t in mine]  # protobuf drops False
    assert makers == [("sell", True), ("buy", False)]
    assert [t["id"] for t in mine] == [f["id"] for f in emu.fills()]
    assert int(mine[0]["id"]) < int(mine[1]["id"])  # each side its own id, the maker's first
    # Both orders' updates: the maker's before the taker's (ccxt moves an updated order last).
    await watch_until(
        lambda: ex.watch_orders(SYMBOL),
        lambda: [o["status"] for o in ex.orders] == ["closed", "closed"],
    )
    assert [o["id"] for o in ex.orders] == [resting["orderId"], taker["id"]]
    # One public deal for the match: the next match is the second deal ccxt sees.
    emu.place_foreign("sell", "0.0501", 50)
    emu.trade("buy", "0.0501", 50)
    await watch_until(lambda: ex.watch_trades(SYMBOL), lambda: len(ex.trades[SYMBOL]) >= 2)
    assert [(t["side"], t["price"], t["amount"]) for t in ex.trades[SYMBOL]] == [
        ("buy", 0.05, 100.0),
        ("buy", 0.0501, 50.0),
    ]


# ------------------------------------------------------------------ protocol answers
@asynccontextmanager
async def raw(url: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        yield ws


async def ask(ws: aiohttp.ClientWebSocketResponse, request: dict[str, Any]) -> Any:
    await ws.send_str(json.dumps(request))
    return json.loads(await ws.receive_str(timeout=5))


async def test_ping_subscription_answers_and_refusals(emu: MexcEmulator) -> None:
    async with raw(emu.ws_url) as ws:
        assert await ask(ws, {"method": "PING"}) == {"id": 0, "code": 0, "msg": "PONG"}
        assert await ask(ws, {"method": "ping"}) == {"id": 0, "code": 0, "msg": "PONG"}  # ccxt's
        subscribe = {"method": "SUBSCRIPTION", "params": [DEPTH, DEALS], "id": 7}
        assert await ask(ws, subscribe) == {"id": 7, "code": 0, "msg": f"{DEPTH},{DEALS}"}
        retired = "spot@public.increase.depth.v3.api@KASUSDT"  # the JSON channel before 2025-08
        for channel in (retired, PRIVATE_ORDERS, depth_channel("NOPEUSDT")):
            answer = await ask(ws, {"method": "SUBSCRIPTION", "params": [channel]})
            assert answer == {
                "id": 0,
                "code": 0,
                "msg": f"Not Subscribed successfully! [{channel}].  Reason： Blocked! ",
            }
        unsubscribe = {"method": "UNSUBSCRIPTION", "params": [DEALS]}
        assert await ask(ws, unsubscribe) == {"id": 0, "code": 0, "msg": DEALS}
        assert the_connection(emu, DEPTH).topics == {DEPTH}


async def test_thirty_subscriptions_per_connection(anyio_backend: str) -> None:
    markets = [MarketSpec(symbol=f"C{i}USDT", base=f"C{i}") for i in range(8)]
    channels = [
        channel(m.symbol, frequency)
        for m in markets
        for channel in (depth_channel, deals_channel)
        for frequency in ("100ms", "10ms")
    ]
    async with MexcEmulator(KEY, SECRET, markets=markets) as emu, raw(emu.ws_url) as ws:
        first = await ask(ws, {"method": "SUBSCRIPTION", "params": channels[:30]})
        assert first["msg"] == ",".join(channels[:30])
        over = await ask(ws, {"method": "SUBSCRIPTION", "params": channels[30:31]})
        assert over["msg"].startswith(f"Not Subscribed successfully! [{channels[30]}]")
        again = await ask(ws, {"method": "SUBSCRIPTION", "params": channels[:1]})
        assert again["msg"] == channels[0]  # already subscribed: still fits
        [conn] = emu.ws.connections.values()
        assert len(conn.topics) == 30


async def test_idle_connections_are_closed(anyio_backend: str) -> None:
    options = {"idle_unsubscribed_s": 0.2, "idle_silent_s": 0.4}
    async with MexcEmulator(KEY, SECRET, ws_options=options) as emu:
        async with raw(emu.ws_url) as ws:  # never subscribes: closed after 30 s (here 0.2)
            start = time.monotonic()
            assert (await ws.receive(timeout=5)).type is aiohttp.WSMsgType.CLOSE
            assert time.monotonic() - start >= 0.15  # the server's timer starts a bit earlier
        async with raw(emu.ws_url) as ws:  # subscribed, but nothing flows: 60 s (here 0.4)
            await ask(ws, {"method": "SUBSCRIPTION", "params": [DEPTH]})
            start = time.monotonic()
            assert (await ws.receive(timeout=5)).type is aiohttp.WSMsgType.CLOSE
            assert time.monotonic() - start >= 0.3


# ------------------------------------------------------------------ listen keys
async def test_listen_key_create_keep_alive_expiry_and_delete(
    emu: MexcEmulator, clock: Clock
) -> None:
    import ccxt.async_support as ccxt

    ex = emu.ccxt(timeout_on_exit=0)
    try:
        key = (await ex.spotPrivatePostUserDataStream())["listenKey"]
        assert len(key) == 64
        assert await ex.spotPrivateGetUserDataStream() == {"listenKey": [key]}
        clock.offset += 50 * 60
        assert await ex.spotPrivatePutUserDataStream({"listenKey": key}) == {"listenKey": key}
        clock.offset += 50 * 60  # 100 minutes after creation, 50 after the keep-alive
        assert await ex.spotPrivateGetUserDataStream() == {"listenKey": [key]}
        clock.offset += 11 * 60
        assert await ex.spotPrivateGetUserDataStream() == {"listenKey": []}
        with pytest.raises(ccxt.ExchangeError, match="730708"):
            await ex.spotPrivatePutUserDataStream({"listenKey": key})
        other = (await ex.spotPrivatePostUserDataStream())["listenKey"]
        assert await ex.spotPrivateDeleteUserDataStream({"listenKey": other}) == {
            "listenKey": other
        }
        with pytest.raises(ccxt.ExchangeError, match="730708"):
            await ex.spotPrivateDeleteUserDataStream({"listenKey": other})
        with pytest.raises(ccxt.BadRequest, match="700004"):
            await ex.spotPrivatePutUserDataStream()
    finally:
        await ex.close()


async def test_listen_key_expires_on_the_emulator_clock(
    ex: Any, emu: MexcEmulator, clock: Clock
) -> None:
    watching = asyncio.ensure_future(ex.watch_orders(SYMBOL))
    await emu.ws.wait_subscribed(PRIVATE_ORDERS)
    key = ex.options["listenKey"]
    clock.offset += 50 * 60
    await ex.keep_alive_listen_key(key)  # ccxt's own timer fires every 20 minutes
    clock.offset += 50 * 60
    emu.ws_protocol.sweep()
    assert emu.listen_keys.account_of(key) == KEY
    assert not the_connection(emu, PRIVATE_ORDERS).state.get("closing")
    clock.offset += 11 * 60  # 61 minutes after the keep-alive: expired, the socket closes
    with pytest.raises(ccxtpro.NetworkError, match="closed by remote server"):
        await asyncio.wait_for(watching, 5)


async def test_listen_key_expiry_fault_and_how_ccxt_recovers(ex: Any, emu: MexcEmulator) -> None:
    watching = asyncio.ensure_future(ex.watch_orders(SYMBOL))
    await emu.ws.wait_subscribed(PRIVATE_ORDERS)
    key = ex.options["listenKey"]
    assert emu.ws_protocol.expire_listen_key() == 1
    with pytest.raises(ccxtpro.NetworkError, match="closed by remote server"):
        await asyncio.wait_for(watching, 5)
    # ccxt reconnects with the key it cached: the emulator answers "Invalid listen key".
    with pytest.raises(ccxtpro.AuthenticationError, match="invalid listen key"):
        await asyncio.wait_for(ex.watch_orders(SYMBOL), 5)
    assert ex.options["listenKey"] == key
    # Only ccxt's keep-alive notices (code 730708): it drops the key and the connection.
    await ex.keep_alive_listen_key(key)
    assert ex.options["listenKey"] is None
    watching = asyncio.ensure_future(ex.watch_orders(SYMBOL))
    await emu.ws.wait_subscribed(PRIVATE_ORDERS)
    assert ex.options["listenKey"] != key
    posts = [r for r in emu.requests if r.path == "/api/v3/userDataStream" and r.method == "POST"]
    assert len(posts) == 2
    await ex.create_order(SYMBOL, "limit", "buy", 100, 0.0499, {"postOnly": True})
    [placed] = await asyncio.wait_for(watching, 5)
    assert placed["status"] == "open"


# ------------------------------------------------------------------ wire faults on depth
async def test_a_version_gap_leaves_ccxt_with_a_wrong_book(ex: Any, emu: MexcEmulator) -> None:
    await synced(ex, emu)
    before = version(emu)
    emu.ws.inject(DEPTH, drop=1)
    emu.place_foreign("buy", "0.0497", 100)  # version before+1: lost
    emu.place_foreign("sell", "0.0503", 100)  # version before+2
    await book_at(ex, before + 2)  # applied although before+1 never came: no gap check
    bids, asks = client_book(ex)
    assert [0.0497, 100.0] not in bids and [0.0503, 100.0] in asks
    assert [0.0497, 100.0] in engine_book(emu)[0]


async def test_a_duplicate_push_is_harmless_to_the_book(ex: Any, emu: MexcEmulator) -> None:
    await synced(ex, emu)
    emu.ws.inject(DEPTH, duplicate=1)
    emu.place_foreign("buy", "0.0497", 100)
    emu.place_foreign("sell", "0.0503", 100)
    await book_at(ex, version(emu))
    conn = the_connection(emu, DEPTH)
    assert conn.delivered == conn.published + 1
    assert client_book(ex) == engine_book(emu)  # quantities are absolute: re-applying is a no-op


async def test_a_duplicate_deal_shows_twice_in_trades(ex: Any, emu: MexcEmulator) -> None:
    first = asyncio.ensure_future(ex.watch_trades(SYMBOL))
    await emu.ws.wait_subscribed(DEALS)
    emu.ws.inject(DEALS, duplicate=1)
    await ex.create_order(SYMBOL, "market", "buy", 100)
    await asyncio.wait_for(first, 5)
    await watch_until(lambda: ex.watch_trades(SYMBOL), lambda: len(ex.trades[SYMBOL]) == 2)
    assert [(t["price"], t["amount"]) for t in ex.trades[SYMBOL]] == [(0.05005, 100.0)] * 2


async def test_swapped_pushes_make_ccxt_skip_the_older_one(ex: Any, emu: MexcEmulator) -> None:
    await synced(ex, emu)
    emu.ws.inject(DEPTH, reorder=1)
    emu.place_foreign("buy", "0.0497", 100)  # A
    emu.place_foreign("sell", "0.0503", 100)  # B: arrives before A; A then looks stale
    emu.place_foreign("sell", "0.0504", 100)  # C: once applied, A has been seen
    await book_at(ex, version(emu))
    bids, asks = client_book(ex)
    assert [0.0497, 100.0] not in bids and [0.0503, 100.0] in asks and [0.0504, 100.0] in asks
    assert client_book(ex) != engine_book(emu)


async def test_a_stall_loses_pushes_and_ccxt_does_not_notice(ex: Any, emu: MexcEmulator) -> None:
    await synced(ex, emu)
    assert emu.ws.stall(DEPTH) == 1
    emu.place_foreign("buy", "0.0497", 100)  # published while stalled: lost
    conn = the_connection(emu, DEPTH)
    assert (conn.published - conn.delivered, conn.closed) == (1, False)
    emu.ws.resume(DEPTH)
    emu.place_foreign("sell", "0.0503", 100)
    await book_at(ex, version(emu))
    bids, asks = client_book(ex)
    assert [0.0497, 100.0] not in bids and [0.0503, 100.0] in asks


async def test_a_burst_arrives_late_and_at_once(ex: Any, emu: MexcEmulator) -> None:
    await synced(ex, emu)
    emu.ws.inject(DEPTH, burst_s=0.3)
    start = time.monotonic()
    for price in ("0.0497", "0.0496", "0.0495"):
        emu.place_foreign("buy", price, 100)
    await book_at(ex, version(emu))
    assert time.monotonic() - start >= 0.3
    assert client_book(ex) == engine_book(emu)


async def test_a_server_close_fails_the_pending_watch(ex: Any, emu: MexcEmulator) -> None:
    await synced(ex, emu)
    pending = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
    client = ex.clients[emu.ws_url]
    while f"orderbook:{SYMBOL}" not in client.futures:  # the watch is waiting
        await asyncio.sleep(0)
    assert await emu.ws.close_all(DEPTH) == 1
    with pytest.raises(ccxtpro.NetworkError, match="closed by remote server"):
        await asyncio.wait_for(pending, 5)


async def test_after_a_reconnect_ccxt_merges_into_its_stale_book(
    ex: Any, emu: MexcEmulator
) -> None:
    await synced(ex, emu)
    stale = client_book(ex)
    # The book moves while ccxt is disconnected; the stream resumes at the current version.
    closed = await emu.ws_protocol.disconnect_and_move(lambda: emu.set_mid("0.06"), DEPTH)
    assert closed == 1 and emu.ws.accepted == 1
    resubscribed = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
    await emu.ws.wait_subscribed(DEPTH)
    assert emu.ws.accepted == 2
    emu.place_foreign("buy", "0.0555", 100)
    await asyncio.wait_for(resubscribed, 5)  # no new snapshot: resolved by the first push
    assert [r.path for r in emu.requests].count("/api/v3/depth") == 1
    bids, asks = client_book(ex)
    assert bids[0] == [0.0555, 100.0] and bids[1:] == stale[0]  # the old levels are still there
    assert asks == stale[1]  # a crossed book: best bid 0.0555 over best ask 0.05005
    assert "100ms" in ex.orderbooks  # the ack reset a book keyed by the frequency, not KAS/USDT
    assert client_book(ex) != engine_book(emu)


async def test_ccxt_skips_the_aggregated_push_that_spans_its_snapshot(anyio_backend: str) -> None:
    # Depth changes merge into windows (MEXC's 100ms aggregation) that the test ends by hand.
    options = {"depth_window_s": 3600.0}
    async with MexcEmulator(KEY, SECRET, ws_options=options) as emu, pro(emu) as ex:
        emu.set_mid("0.05", size=1000)
        first = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
        await emu.ws.wait_subscribed(DEPTH)
        emu.inject_fault("GET", "/api/v3/depth", status=200, delay_s=0.3)  # a slow snapshot
        for i in range(SNAPSHOT_DELAY + 1):
            emu.set_mid("0.05", size=1001 + i)
            emu.ws_protocol.flush_depth()
        asked = lambda: "/api/v3/depth" in [r.path for r in emu.requests]  # noqa: E731
        await watch_until(lambda: asyncio.sleep(0.01), asked)  # ccxt asked; the answer waits
        window_start = version(emu) + 1
        emu.place_foreign("buy", "0.0498", 50)  # the open window, before the snapshot
        emu.place_foreign("buy", "0.0497", 100)  # likewise
        await asyncio.wait_for(first, 5)
        assert ex.orderbooks[SYMBOL]["nonce"] == window_start + 1  # the snapshot has both
        emu.place_foreign("buy", "0.0496", 100)  # same window, after the snapshot
        emu.ws_protocol.flush_depth()  # one push: window_start .. window_start + 2
        emu.place_foreign("sell", "0.0503", 100)
        emu.ws_protocol.flush_depth()
        await book_at(ex, version(emu))
        # MEXC's rule: the push whose [fromVersion, toVersion] holds the snapshot's version is
        # the first to apply. ccxt applies only pushes with fromVersion >= the snapshot's, so it
        # dropped this one, and with it the change made after the snapshot.
        bids, asks = client_book(ex)
        assert [0.0497, 100.0] in bids and [0.0498, 1076.0] in bids and [0.0503, 100.0] in asks
        assert [0.0496, 100.0] not in bids and [0.0496, 100.0] in engine_book(emu)[0]
