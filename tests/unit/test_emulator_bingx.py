"""Unmodified ``ccxt.async_support.bingx`` and ``ccxt.pro.bingx`` against the BingX emulator.

Pins what the emulator serves (BingX's shapes, codes, gzip frames, heartbeats, listen keys) and
what ccxt 4.5.90 does with it (parsed fields, exception classes), so a ccxt upgrade that changes
either shows up here. Every wire and protocol fault is shown by what the client sees.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from kasmm.venues.ccxt.ws_trades import repaired
from tests.emulators.bingx import BingxEmulator, load_spot_markets
from tests.emulators.bingx_ws import EXECUTION_REPORT, depth_topic, gunzip_json
from tests.support import eventually

pytestmark = pytest.mark.anyio
KEY, SECRET = "test-key", "test-secret"
SYMBOL, MARKET_ID = "KAS/USDT", "KAS-USDT"
DEPTH = depth_topic(MARKET_ID)
SPOT = "/openApi/spot/v1"


class Clock:
    """Wall time plus an offset the test moves (ccxt signs with the real time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@asynccontextmanager
async def venue(pro: bool = False, **emu_kwargs: Any) -> AsyncIterator[tuple[BingxEmulator, Any]]:
    """A started emulator (book around 0.1: best 0.0999 / 0.1001) and a configured ccxt client
    with the spot markets loaded as kasmm loads them; both closed afterwards."""
    async with BingxEmulator(KEY, SECRET, **emu_kwargs) as emu:
        emu.set_mid("0.1", spread_bps=20, levels=5, size=1000)
        ex = emu.ccxt_pro(timeout_on_exit=0) if pro else emu.ccxt(timeout_on_exit=0)
        try:
            await load_spot_markets(ex)
            yield emu, ex
        finally:
            await ex.close()
        assert emu.internal_errors == []


def engine_book(emu: BingxEmulator, depth: int = 100) -> tuple[list[list[float]], ...]:
    snap = emu.engine.book(MARKET_ID, depth)
    return (
        [[float(p), float(s)] for p, s in snap.bids],
        [[float(p), float(s)] for p, s in snap.asks],
    )


def client_book(book: Any) -> tuple[list[list[float]], ...]:
    return [list(x) for x in book["bids"]], [list(x) for x in book["asks"]]


async def watch_until(watch: Callable[[], Awaitable[Any]], done: Callable[[Any], bool]) -> Any:
    """Call ``watch`` until ``done(result)`` (5 s at most)."""
    async with asyncio.timeout(5):
        while True:
            result = await watch()
            if done(result):
                return result


async def place(
    ex: Any, cid: str, side: str = "buy", price: float = 0.0999, size: float = 100
) -> Any:
    return await ex.create_order(SYMBOL, "limit", side, size, price, {"clientOrderId": cid})


# --------------------------------------------------------------------------- REST
async def test_markets_load_the_kasmm_way_and_the_load_markets_way() -> None:
    async with venue() as (emu, ex):
        market = ex.market(SYMBOL)
        assert market["id"] == MARKET_ID and market["spot"] and market["active"]
        assert market["precision"] == {"amount": 0.01, "price": 0.000001}
        assert market["limits"]["cost"]["min"] == 1.0
        plain = emu.ccxt(timeout_on_exit=0)
        try:
            await plain.load_markets()  # swaps (empty) and currencies (empty) are served too
            assert plain.symbols == [SYMBOL]
        finally:
            await plain.close()


async def test_signature_is_hmac_of_the_decoded_parameters_in_the_order_sent() -> None:
    """BingX signs the parameters as sent, values not URL-encoded (its signature docs; BingX's
    own example digest there does not match its example, so the rule is checked, not it)."""
    async with BingxEmulator(KEY, SECRET, check_timestamp=False) as emu:
        emu.set_mid("0.1")
        signed = "orderIds=1,2&recvWindow=0&symbol=KAS-USDT&timestamp=1696751141337"
        sent = signed.replace(",", "%2C")

        def sign(text: str) -> str:
            return hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()

        url = f"{emu.base_url}{SPOT}/trade/cancelOrders?{sent}&signature="
        async with aiohttp.ClientSession(headers={"X-BX-APIKEY": KEY}) as http:
            for signature, code in ((sign(signed), 0), (sign(sent), 100001)):
                async with http.post(url + signature) as answer:
                    assert answer.status == 200 and (await answer.json())["code"] == code
        assert [r.signed_ok for r in emu.requests] == [True, False]
        assert emu.requests[0].params["orderIds"] == "1,2"


async def test_auth_failures_answer_bingx_codes_and_ccxt_raises() -> None:
    async with venue(clock=(clock := Clock())) as (emu, ex):
        ex.secret = "wrong"
        with pytest.raises(ccxt.AuthenticationError, match="100001"):
            await ex.fetch_balance()
        ex.secret, ex.apiKey = SECRET, "nobody"
        with pytest.raises(ccxt.AuthenticationError, match="100413"):
            await ex.fetch_balance()
        ex.apiKey = KEY
        clock.offset = 30.0  # the client's timestamp is now 30 s old for the server
        with pytest.raises(ccxt.BadSymbol, match="100421"):  # ccxt's mapping of 100421
            await ex.fetch_balance()
        assert [r.code for r in emu.requests[-3:]] == [100001, 100413, 100421]
        request = emu.requests[-1]
        assert request.headers["X-SOURCE-KEY"] == "CCXT" and request.signed_ok is False


async def test_order_lifecycle_by_client_id() -> None:
    async with venue() as (emu, ex):
        placed = await ex.create_order(
            SYMBOL, "limit", "buy", 100, 0.0999, {"clientOrderId": "ct_1", "postOnly": True}
        )
        assert (placed["clientOrderId"], placed["status"], placed["amount"]) == (
            "ct_1",
            "open",
            100,
        )
        request = [r for r in emu.requests if r.path == SPOT + "/trade/order"][-1]
        assert request.params["timeInForce"] == "PostOnly"
        assert request.params["newClientOrderId"] == "ct_1"
        (listed,) = await ex.fetch_open_orders(SYMBOL)
        assert (listed["id"], listed["clientOrderId"], listed["price"]) == (
            placed["id"],
            "ct_1",
            0.0999,
        )
        assert (await ex.fetch_balance())["USDT"]["used"] == 9.99
        cancelled = await ex.cancel_order(None, SYMBOL, {"clientOrderId": "ct_1"})
        assert cancelled["status"] == "canceled"
        assert [r.params.get("clientOrderID") for r in emu.requests if "cancel" in r.path] == [
            "ct_1"
        ]
        assert (await ex.fetch_order(placed["id"], SYMBOL))["status"] == "canceled"
        assert await ex.fetch_open_orders(SYMBOL) == []


async def test_business_errors_and_what_ccxt_raises() -> None:
    async with venue() as (_emu, ex):
        with pytest.raises(ccxt.InsufficientFunds, match="100202"):
            await place(ex, "big", size=1_000_000)
        with pytest.raises(ccxt.BadRequest, match="entrust volume too low"):
            await place(ex, "tiny", size=5)  # 0.4995 USDT < minNotional 1
        with pytest.raises(ccxt.BadRequest, match="FILLED or CANCELLED already"):
            await ex.cancel_order(None, SYMBOL, {"clientOrderId": "never"})
        await place(ex, "dup")
        with pytest.raises(ccxt.DuplicateOrderId):
            await place(ex, "dup")
        with pytest.raises(ccxt.BadRequest, match="timeOut"):
            await ex.cancel_all_orders_after(5000, {"type": "spot"})  # below BingX's 10 s


async def test_off_step_price_and_quantity_are_truncated_as_bingx_documents() -> None:
    async with venue() as (_emu, ex):
        raw = await ex.spotV1PrivatePostTradeOrder(
            {
                "symbol": MARKET_ID,
                "side": "BUY",
                "type": "LIMIT",
                "price": "0.09990099",
                "quantity": "100.019",
                "newClientOrderId": "tr_1",
            }
        )
        assert (raw["data"]["price"], raw["data"]["origQty"]) == ("0.0999", "100.01")


async def test_post_only_crossing_is_cancelled_or_rejected() -> None:
    async with venue() as (_emu, ex):
        crossing = await ex.create_order(SYMBOL, "limit", "buy", 100, 0.1001, {"postOnly": True})
        assert crossing["status"] == "canceled" and crossing["filled"] == 0
    async with venue(post_only_cross="reject") as (_emu, ex):
        with pytest.raises(ccxt.BadRequest, match="PostOnly"):
            await ex.create_order(SYMBOL, "limit", "buy", 100, 0.1001, {"postOnly": True})


async def test_fill_moves_balances_and_shows_in_my_trades_and_the_order() -> None:
    async with venue() as (emu, ex):
        order = await place(ex, "f_1")
        (fill,) = emu.trade("sell", "0.0999", 40)
        assert fill.role == "maker"
        (trade,) = await ex.fetch_my_trades(SYMBOL)
        assert (trade["order"], trade["side"], trade["amount"], trade["price"]) == (
            order["id"],
            "buy",
            40,
            0.0999,
        )
        assert trade["takerOrMaker"] == "maker" and trade["fee"] == {
            "cost": 0.04,
            "currency": "KAS",
        }
        balance = await ex.fetch_balance()
        assert balance["KAS"]["total"] == 100000 + 40 - 0.04
        fetched = await ex.fetch_order(order["id"], SYMBOL)
        assert (fetched["status"], fetched["filled"], fetched["remaining"]) == ("open", 40, 60)
        emu.trade("sell", "0.0999", 60)
        assert (await ex.fetch_order(order["id"], SYMBOL))["status"] == "closed"
        assert len(await ex.fetch_my_trades(SYMBOL, int(time.time() * 1000) - 60_000, 1)) == 1


async def test_cancel_orders_and_cancel_open_orders() -> None:
    async with venue() as (_emu, ex):
        ids = [(await place(ex, f"b_{i}", price=0.0990 - i * 0.0001))["id"] for i in range(3)]
        done = await ex.cancel_orders([ids[0], "1900000000000999999", ids[1]], SYMBOL)
        assert [o["id"] for o in done] == [ids[0], ids[1]]  # the unknown id is left out
        await place(ex, "b_9", price=0.0980)
        assert {o["clientOrderId"] for o in await ex.cancel_all_orders(SYMBOL)} == {"b_2", "b_9"}
        assert await ex.fetch_open_orders(SYMBOL) == []


async def test_dead_mans_switch_fires_on_the_emulator_clock_and_close_disarms() -> None:
    clock = Clock()
    async with venue(clock=clock, check_timestamp=False) as (emu, ex):
        await place(ex, "d_1")
        answer = await ex.cancel_all_orders_after(10_000, {"type": "spot"})
        assert answer["data"]["status"] == "ACTIVATED"
        assert emu.requests[-1].params | {"timestamp": ""} == {
            "type": "ACTIVATE",
            "timeOut": "10",
            "timestamp": "",
        }
        clock.offset = 9.0
        assert emu.check_timers() == 0
        clock.offset = 10.5
        await eventually(lambda: not emu.engine.orders_of(KEY, None, True), 5)  # the sweeper
        (order,) = emu.engine.orders_of(KEY)
        assert order.cancel_reason == "timer"
        await place(ex, "d_2")
        await ex.cancel_all_orders_after(20_000, {"type": "spot"})
        closed = await ex.cancel_all_orders_after(0, {"type": "spot"})
        assert closed["data"]["status"] == "CLOSED" and emu.engine.timers == {}
        clock.offset = 100.0
        assert emu.check_timers() == 0 and len(await ex.fetch_open_orders(SYMBOL)) == 1


async def test_rate_limit_answers_100410_which_ccxt_raises_as_operation_failed() -> None:
    async with venue(rate_limits={("GET", SPOT + "/account/balance"): (2, 60.0)}) as (_emu, ex):
        await ex.fetch_balance()
        await ex.fetch_balance()
        with pytest.raises(ccxt.OperationFailed, match="100410") as raised:
            await ex.fetch_balance()
        assert not isinstance(raised.value, ccxt.RateLimitExceeded)


async def test_injected_http_faults_before_and_after_processing() -> None:
    async with venue() as (emu, ex):
        emu.inject_fault("POST", SPOT + "/trade/order", status=503)
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await place(ex, "x_1")
        assert await ex.fetch_open_orders(SYMBOL) == []
        emu.inject_fault("POST", SPOT + "/trade/order", status=504, after=True)
        with pytest.raises(ccxt.RequestTimeout):  # the order was placed, the answer lost
            await place(ex, "x_2")
        assert [o["clientOrderId"] for o in await ex.fetch_open_orders(SYMBOL)] == ["x_2"]


async def test_listen_key_rest_lives_sixty_minutes_on_the_emulator_clock() -> None:
    clock = Clock()
    async with venue(clock=clock, check_timestamp=False) as (emu, ex):
        key = (await ex.userAuthPrivatePostUserDataStream())["listenKey"]
        assert len(key) == 64 and emu.requests[-1].path == "/openApi/user/auth/userDataStream"
        clock.offset = 3000.0
        assert await ex.userAuthPrivatePutUserDataStream({"listenKey": key}) == {}
        clock.offset = 3000.0 + 3599.0
        assert emu.listen_keys.account_of(key) == KEY  # extended at 3000 s
        clock.offset = 3000.0 + 3601.0
        with pytest.raises(ccxt.BaseError):
            await ex.userAuthPrivatePutUserDataStream({"listenKey": key})
        assert emu.requests[-1].status == 404
        fresh = (await ex.userAuthPrivatePostUserDataStream())["listenKey"]
        assert await ex.userAuthPrivateDeleteUserDataStream({"listenKey": fresh}) == {}
        assert emu.listen_keys.account_of(fresh) is None


async def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "bingx.json"
    async with venue(state_path=state) as (_emu, ex):
        await place(ex, "s_1")
    async with venue(state_path=state) as (_emu, ex):
        assert [o["clientOrderId"] for o in await ex.fetch_open_orders(SYMBOL)] == ["s_1"]


# --------------------------------------------------------------------- websockets
async def test_frames_are_gzip_binary_and_depth_is_a_full_snapshot() -> None:
    async with venue() as (emu, _ex), aiohttp.ClientSession() as http:
        ws = await http.ws_connect(emu.ws_url)
        try:
            await ws.send_str(json.dumps({"id": "a1", "dataType": DEPTH}))
            ack, first = await ws.receive(), await ws.receive()
            assert ack.type == first.type == aiohttp.WSMsgType.BINARY
            assert gunzip_json(ack.data) == {
                "id": "a1",
                "code": 0,
                "msg": "",
                "timestamp": gunzip_json(ack.data)["timestamp"],
            }
            snapshot = gunzip_json(first.data)
            assert snapshot["dataType"] == DEPTH and snapshot["success"] is True
            asks = [float(p) for p, _ in snapshot["data"]["asks"]]
            assert asks == sorted(asks, reverse=True) and len(asks) == 5  # highest first
            assert snapshot["data"]["lastUpdateId"] == emu.engine.book(MARKET_ID).seq
            await ws.send_str(json.dumps({"id": "a2", "reqType": "sub", "dataType": "KAS-USDT@x"}))
            assert gunzip_json((await ws.receive()).data)["code"] == 100400
        finally:
            await ws.close()


async def test_book_stream_equals_the_engine_book_after_every_change() -> None:
    async with venue(pro=True) as (emu, ex):
        book = await ex.watch_order_book(SYMBOL)
        assert client_book(book) == engine_book(emu)
        emu.set_mid("0.2", spread_bps=30, levels=3, size=7)
        await place(ex, "w_1", price=0.1990)
        seq = emu.engine.book(MARKET_ID).seq
        book = await watch_until(lambda: ex.watch_order_book(SYMBOL), lambda b: b["nonce"] == seq)
        assert client_book(book) == engine_book(emu) and [0.199, 100] in book["bids"]


async def test_trades_stream_one_trade_per_match() -> None:
    async with venue(pro=True) as (emu, ex):
        pending = asyncio.ensure_future(ex.watch_trades(SYMBOL))
        await emu.ws.wait_subscribed(f"{MARKET_ID}@trade")
        await place(ex, "t_1", side="buy", price=0.1001, size=10)  # takes the outside ask
        (trade,) = await asyncio.wait_for(pending, 5)
        assert (trade["side"], trade["price"], trade["amount"]) == ("buy", 0.1001, 10)


async def test_orders_and_my_trades_stream_over_the_listen_key() -> None:
    async with venue(pro=True) as (emu, ex):
        orders = asyncio.ensure_future(ex.watch_orders(SYMBOL))
        await emu.ws.wait_subscribed(EXECUTION_REPORT)
        (conn,) = emu.ws.subscribed(EXECUTION_REPORT)
        assert conn.request.query["listenKey"] == ex.options["listenKey"]
        placed = await place(ex, "o_1")
        (new,) = await asyncio.wait_for(orders, 5)
        assert (new["id"], new["clientOrderId"], new["status"]) == (placed["id"], "o_1", "open")
        trades = asyncio.ensure_future(ex.watch_my_trades(SYMBOL))
        # The private stream is subscribed already (same subscription as the orders): ccxt sends
        # nothing more, it only waits on the trades' message hash. Waiting for a second message
        # from the client waited for its first pong, 5 s away.
        hash_ = f"spot:mytrades:{SYMBOL}"
        await eventually(lambda: any(hash_ in c.futures for c in ex.clients.values()), poll_s=0)
        sent = [text for _, text in emu.ws_protocol.received if '"pong"' not in text]
        assert len(sent) == 1  # the one subscribe, shared by the orders and the trades
        emu.trade("sell", "0.0999", 40)
        (trade,) = await asyncio.wait_for(trades, 5)
        assert (trade["order"], trade["side"], trade["takerOrMaker"]) == (
            placed["id"],
            "buy",
            "maker",
        )
        assert trade["fee"] == {"cost": 0.04, "currency": "KAS"}
        # ccxt 4.5.90 reads a spot fill's amount from ``q`` (the order's quantity), not ``l``.
        assert trade["amount"] == 100 and trade["info"]["l"] == "40"
        # kasmm repairs it at its boundary (kasmm/venues/ccxt/ws_trades.py).
        fixed = repaired("bingx", trade)
        assert (fixed["amount"], fixed["price"], fixed["cost"]) == ("40", "0.0999", "3.9960")
        (order,) = [o for o in ex.orders if o["id"] == placed["id"]]  # the same push, as an order
        assert (order["status"], order["filled"], order["remaining"]) == ("open", 40, 60)
        cancelled = asyncio.ensure_future(ex.watch_orders(SYMBOL))
        await ex.cancel_order(placed["id"], SYMBOL)
        (gone,) = await asyncio.wait_for(cancelled, 5)
        assert (gone["status"], gone["filled"], gone["info"]["x"]) == ("canceled", 40, "CANCELED")


@pytest.mark.parametrize("heartbeat", ["json", "text"])
async def test_server_pings_are_answered_by_ccxt(heartbeat: str) -> None:
    """``json``: BingX's spot ``{"ping", "time"}``; ``text``: its swap ``Ping``."""
    async with venue(pro=True, heartbeat=heartbeat, ping_interval_s=0.05) as (emu, ex):
        await ex.watch_order_book(SYMBOL)
        (conn,) = emu.ws.connections.values()
        await eventually(lambda: emu.ws_protocol.pongs_received.get(conn.id, 0) >= 3, 5)
        assert not conn.closed and emu.ws_protocol.closed_for_silence == []
        pong = next(t for _, t in emu.ws_protocol.received if "ong" in t)
        if heartbeat == "text":
            assert pong == "Pong"
        else:
            assert json.loads(pong).keys() == {"pong", "time"}


async def test_a_client_that_does_not_answer_pings_is_disconnected() -> None:
    async with venue(ping_interval_s=0.05, pong_timeout_s=0.2) as (emu, _ex):
        async with aiohttp.ClientSession() as http, http.ws_connect(emu.ws_url) as ws:
            ping = gunzip_json((await ws.receive()).data)
            assert set(ping) == {"ping", "time"} and ping["time"].endswith("+0800")
            async with asyncio.timeout(5):
                while (await ws.receive()).type is not aiohttp.WSMsgType.CLOSE:
                    pass  # more pings, unanswered
        assert len(emu.ws_protocol.closed_for_silence) == 1


async def test_listen_key_expiry_closes_the_stream_and_the_cached_key_is_refused() -> None:
    async with venue(pro=True) as (emu, ex):
        orders = asyncio.ensure_future(ex.watch_orders(SYMBOL))
        await emu.ws.wait_subscribed(EXECUTION_REPORT)
        assert emu.expire_listen_key() == 1
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(orders, 5)
        # ccxt keeps the key for 59 minutes: the reconnect presents the dead key.
        with pytest.raises(ccxt.BadRequest, match="listenKey is invalid"):
            await asyncio.wait_for(ex.watch_orders(SYMBOL), 5)


async def test_listen_key_expiry_on_the_clock_closes_the_stream() -> None:
    clock = Clock()
    async with venue(pro=True, clock=clock, check_timestamp=False) as (emu, ex):
        orders = asyncio.ensure_future(ex.watch_orders(SYMBOL))
        await emu.ws.wait_subscribed(EXECUTION_REPORT)
        clock.offset = 3601.0
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(orders, 5)


async def test_reconnect_after_close_gets_a_fresh_snapshot_of_the_moved_book() -> None:
    async with venue(pro=True) as (emu, ex):
        await ex.watch_order_book(SYMBOL)
        pending = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
        moved = await emu.ws_protocol.disconnect_and_move(lambda: emu.set_mid("0.3"))
        assert moved == 1
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(pending, 5)
        book = await ex.watch_order_book(SYMBOL)
        assert emu.ws.accepted == 2 and client_book(book) == engine_book(emu)


# --------------------------------------------------------------------- wire faults
async def subscribed_book(emu: BingxEmulator, ex: Any) -> Any:
    book = await ex.watch_order_book(SYMBOL)
    await emu.ws.wait_subscribed(DEPTH)
    return book


async def test_stall_then_resume_the_book_is_stale_until_the_next_change() -> None:
    async with venue(pro=True) as (emu, ex):
        stale = (await subscribed_book(emu, ex))["nonce"]
        (conn,) = emu.ws.subscribed(DEPTH)
        emu.ws.stall(DEPTH)
        pending = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
        emu.set_mid("0.11")
        assert conn.published > conn.delivered and not pending.done()
        assert ex.orderbooks[SYMBOL]["nonce"] == stale
        emu.ws.resume(DEPTH)
        emu.set_mid("0.12")
        book = await asyncio.wait_for(pending, 5)
        assert client_book(book) == engine_book(emu)  # full snapshots heal a stall at once


async def test_drop_skips_a_snapshot_the_nonce_jumps() -> None:
    async with venue(pro=True) as (emu, ex):
        before = (await subscribed_book(emu, ex))["nonce"]
        emu.ws.inject(DEPTH, drop=1)
        emu.set_mid("0.11")
        emu.set_mid("0.12")
        book = await watch_until(lambda: ex.watch_order_book(SYMBOL), lambda b: b["nonce"] > before)
        assert book["nonce"] == emu.engine.book(MARKET_ID).seq  # the first change never arrived
        assert client_book(book) == engine_book(emu)


async def test_duplicate_repeats_a_snapshot_with_the_same_nonce() -> None:
    async with venue(pro=True) as (emu, ex):
        await subscribed_book(emu, ex)
        emu.ws.inject(DEPTH, duplicate=1)
        emu.set_mid("0.11")
        first = (await ex.watch_order_book(SYMBOL))["nonce"]
        second = (await ex.watch_order_book(SYMBOL))["nonce"]
        assert first == second == emu.engine.book(MARKET_ID).seq


async def test_reorder_leaves_the_client_on_the_older_snapshot() -> None:
    async with venue(pro=True) as (emu, ex):
        await subscribed_book(emu, ex)
        emu.ws.inject(DEPTH, reorder=1)
        emu.set_mid("0.11")
        newer_seq = emu.engine.book(MARKET_ID).seq
        emu.set_mid("0.12")
        nonces = [(await ex.watch_order_book(SYMBOL))["nonce"] for _ in range(2)]
        assert nonces == [emu.engine.book(MARKET_ID).seq, newer_seq]  # went backwards
        assert client_book(ex.orderbooks[SYMBOL]) != engine_book(emu)


async def test_latency_and_burst_delay_the_snapshots() -> None:
    async with venue(pro=True) as (emu, ex):
        await subscribed_book(emu, ex)
        emu.ws.inject(DEPTH, burst_s=0.3)
        started = time.monotonic()
        emu.set_mid("0.11")
        await ex.watch_order_book(SYMBOL)
        assert time.monotonic() - started >= 0.25


async def test_server_close_fails_the_pending_watch_with_a_network_error() -> None:
    async with venue(pro=True) as (emu, ex):
        await subscribed_book(emu, ex)
        pending = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
        assert await emu.ws.close_all() == 1
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(pending, 5)


async def test_an_ioc_on_the_wire_takes_the_book_and_cancels_the_rest_everywhere() -> None:
    """``timeInForce=IOC`` on ``trade/order`` (what ccxt sends for ``timeInForce: 'IOC'``):
    1000 at the best ask taken, the rest cancelled in the answer, the order query, the trade
    history (a taker fill) and the private stream."""
    async with venue(pro=True) as (emu, ex):
        orders = asyncio.ensure_future(ex.watch_orders(SYMBOL))
        await emu.ws.wait_subscribed(EXECUTION_REPORT)
        placed = await ex.create_order(
            SYMBOL, "limit", "buy", 1500, 0.1001, {"clientOrderId": "i_1", "timeInForce": "IOC"}
        )
        request = [r for r in emu.requests if r.path.endswith("/trade/order")][-1]
        assert (request.params["timeInForce"], request.params["type"]) == ("IOC", "LIMIT")
        assert (placed["status"], placed["filled"]) == ("canceled", 1000)
        fetched = await ex.fetch_order(placed["id"], SYMBOL)
        assert (fetched["status"], fetched["filled"], fetched["remaining"]) == (
            "canceled",
            1000,
            500,
        )
        (trade,) = await ex.fetch_my_trades(SYMBOL)
        assert (trade["order"], trade["takerOrMaker"], trade["amount"]) == (
            placed["id"],
            "taker",
            1000,
        )
        assert await ex.fetch_open_orders(SYMBOL) == []
        await asyncio.wait_for(orders, 5)  # the first push; the rest are in ccxt's cache

        def final() -> list[Any]:
            return [o for o in ex.orders if o["id"] == placed["id"] and o["status"] == "canceled"]

        await eventually(lambda: bool(final()))
        (done,) = final()
        assert (done["clientOrderId"], done["filled"], done["info"]["x"]) == (
            "i_1",
            1000,
            "CANCELED",
        )
