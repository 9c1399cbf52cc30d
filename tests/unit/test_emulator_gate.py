"""Unmodified ccxt ``async_support.gate`` against the loopback Gate.io spot emulator."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest
from ccxt.base import errors as ccxt_errors

from kasmm.clock import VirtualClock
from tests.emulators.gate import GateEmulator, configure_ccxt, sign_request

pytestmark = pytest.mark.anyio
D = Decimal
SYMBOL = "KAS/USDT"
REPO = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def gate(
    secret: str | None = None, api_key: str | None = None, **emu_kwargs: Any
) -> AsyncIterator[tuple[GateEmulator, Any]]:
    """A started emulator (book around 0.1) and a ccxt gate pointed at it; both closed after."""
    emu_kwargs.setdefault("api_key", "key-1")
    emu_kwargs.setdefault("secret", "secret-1")
    async with GateEmulator(**emu_kwargs) as emu:
        emu.set_mid("0.1", spread_bps=20, levels=5, size=1000)
        ex = ccxt_async.gate(
            {
                "apiKey": api_key or emu.api_key,
                "secret": secret or emu.secret,
                "enableRateLimit": False,
            }
        )
        configure_ccxt(ex, emu.base_url)
        ex.timeout_on_exit = 0  # ccxt sleeps 250 ms in close() for TLS; loopback is plain HTTP
        try:
            yield emu, ex
        finally:
            await ex.close()


async def test_load_markets_is_spot_only_with_gate_precision_and_limits() -> None:
    async with gate() as (emu, ex):
        markets = await ex.load_markets()
        assert list(markets) == [SYMBOL]
        market = markets[SYMBOL]
        assert market["id"] == "KAS_USDT" and market["spot"] is True
        assert market["precision"] == {"amount": 0.01, "price": 0.000001}
        assert market["limits"]["amount"]["min"] == 0.01
        assert market["limits"]["cost"]["min"] == 1.0
        assert market["maker"] == market["taker"] == 0.002
        paths = {r.path for r in emu.requests}
        assert paths == {"/spot/currency_pairs", "/margin/currency_pairs", "/spot/currencies"}
        assert all(r.status == 200 for r in emu.requests)


async def test_order_book_balance_and_own_orders_in_book() -> None:
    async with gate() as (_emu, ex):
        book = await ex.fetch_order_book(SYMBOL)
        assert book["bids"][0] == [0.0999, 1000.0] and book["asks"][0] == [0.1001, 1000.0]
        assert len(book["bids"]) == len(book["asks"]) == 5
        assert book["nonce"] is not None and book["timestamp"] is not None
        balance = await ex.fetch_balance()
        assert balance["KAS"] == {"free": 100000.0, "used": 0.0, "total": 100000.0}
        assert balance["USDT"]["free"] == 10000.0
        await ex.create_order(SYMBOL, "limit", "sell", 30, 0.1, {"postOnly": True})
        book = await ex.fetch_order_book(SYMBOL, 3)
        assert book["asks"][0] == [0.1, 30.0] and len(book["asks"]) == 3
        balance = await ex.fetch_balance()
        assert balance["KAS"]["used"] == 30.0 and balance["KAS"]["free"] == 99970.0


async def test_post_only_order_with_client_id_is_signed_poc_with_text() -> None:
    async with gate() as (emu, ex):
        order = await ex.create_order(
            SYMBOL, "limit", "buy", 100, 0.0995, {"postOnly": True, "clientOrderId": "mm-1.a_b"}
        )
        (request,) = emu.requests_to("/spot/orders", "POST")
        assert request.signed_ok is True and request.status == 201
        assert request.body["time_in_force"] == "poc"
        assert request.body["text"] == "t-mm-1.a_b"
        assert request.body["amount"] == "100" and request.body["price"] == "0.0995"
        assert {"KEY", "Timestamp", "SIGN"} <= set(request.headers)
        assert order["status"] == "open" and order["postOnly"] is True
        assert order["clientOrderId"] == "t-mm-1.a_b" and order["timeInForce"] == "PO"
        assert emu.balances()["USDT"] == {"available": D("9990.05"), "locked": D("9.95")}
        by_text = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "mm-1.a_b"})
        assert by_text["id"] == order["id"]
        assert emu.requests[-1].path == "/spot/orders/t-mm-1.a_b"


async def test_open_orders_cancel_and_unknown_cancel() -> None:
    async with gate() as (emu, ex):
        buy = await ex.create_order(SYMBOL, "limit", "buy", 50, 0.099, {"postOnly": True})
        await ex.create_order(SYMBOL, "limit", "sell", 50, 0.101, {"postOnly": True})
        open_orders = await ex.fetch_open_orders(SYMBOL)
        assert sorted(o["side"] for o in open_orders) == ["buy", "sell"]
        assert emu.requests[-1].path == "/spot/open_orders"
        cancelled = await ex.cancel_order(buy["id"], SYMBOL)
        assert cancelled["status"] == "canceled" and cancelled["remaining"] == 50.0
        assert emu.balances()["USDT"]["locked"] == 0
        assert [o["side"] for o in await ex.fetch_open_orders(SYMBOL)] == ["sell"]
        with pytest.raises(ccxt_errors.OrderNotFound):
            await ex.cancel_order("999999", SYMBOL)
        with pytest.raises(ccxt_errors.InvalidOrder):  # ORDER_CANCELLED
            await ex.cancel_order(buy["id"], SYMBOL)
        # a client id only finds open orders (Gate's rule), the order id always works
        with pytest.raises(ccxt_errors.OrderNotFound):
            await ex.fetch_order(None, SYMBOL, {"clientOrderId": buy["clientOrderId"]})
        assert (await ex.fetch_order(buy["id"], SYMBOL))["status"] == "canceled"
        remaining = await ex.cancel_all_orders(SYMBOL)
        assert [o["status"] for o in remaining] == ["canceled"]
        assert emu.orders(status="open") == []


async def test_outside_trade_fills_by_price_time_priority_with_maker_fee() -> None:
    async with gate() as (emu, ex):
        first = await ex.create_order(SYMBOL, "limit", "buy", 100, 0.0995, {"postOnly": True})
        second = await ex.create_order(SYMBOL, "limit", "buy", 100, 0.0995, {"postOnly": True})
        better = await ex.create_order(SYMBOL, "limit", "buy", 20, 0.0998, {"postOnly": True})
        fills = emu.trade("sell", "0.0995", 160)
        assert [(f["order_id"], f["amount"], f["price"]) for f in fills] == [
            (better["id"], "20", "0.0998"),
            (first["id"], "100", "0.0995"),
            (second["id"], "40", "0.0995"),
        ]
        trades = await ex.fetch_my_trades(SYMBOL)
        assert {t["order"] for t in trades} == {first["id"], second["id"], better["id"]}
        assert all(t["takerOrMaker"] == "maker" and t["side"] == "buy" for t in trades)
        fee = next(t for t in trades if t["order"] == first["id"])["fee"]
        assert fee == {"currency": "KAS", "cost": 0.2}  # 0.2 % of the base received
        assert (await ex.fetch_order(first["id"], SYMBOL))["status"] == "closed"
        partial = await ex.fetch_order(second["id"], SYMBOL)
        assert (partial["status"], partial["filled"], partial["remaining"]) == ("open", 40, 60)
        balances = emu.balances()
        assert balances["KAS"]["available"] == D("100000") + D("160") * D("0.998")
        assert balances["USDT"] == {
            "available": D("10000") - D("1.996") - D("13.93") - D("5.97"),
            "locked": D("5.97"),
        }


async def test_moving_the_outside_book_through_resting_orders_fills_them() -> None:
    async with gate() as (emu, ex):
        buy = await ex.create_order(SYMBOL, "limit", "buy", 100, 0.0995, {"postOnly": True})
        sell = await ex.create_order(SYMBOL, "limit", "sell", 100, 0.1005, {"postOnly": True})
        fills = emu.set_mid("0.099", spread_bps=20, levels=2, size=60)  # asks 0.099099, 0.0991
        assert [(f["order_id"], f["amount"], f["price"]) for f in fills] == [
            (buy["id"], "60", "0.0995"),
            (buy["id"], "40", "0.0995"),
        ]
        assert (await ex.fetch_order(buy["id"], SYMBOL))["status"] == "closed"
        assert (await ex.fetch_order(sell["id"], SYMBOL))["status"] == "open"
        book = await ex.fetch_order_book(SYMBOL)
        assert book["asks"][0] == [0.0991, 20.0] and book["asks"][-1] == [0.1005, 100.0]
        market_buy = await ex.create_order(SYMBOL, "market", "buy", 50, 0.1)  # cost 5 USDT
        assert emu.requests[-1].body["amount"] == "5"
        # 20 from the outside ask, then 30.02 from our own resting sell (a self-trade)
        assert market_buy["status"] == "closed" and market_buy["filled"] == 50.02
        assert (await ex.fetch_order(sell["id"], SYMBOL))["filled"] == 30.02


async def test_wrong_secret_and_wrong_key_are_authentication_errors() -> None:
    async with gate(secret="not-the-secret") as (emu, ex):
        await ex.load_markets()  # public: no signature needed
        with pytest.raises(ccxt_errors.AuthenticationError):
            await ex.fetch_balance()
        assert emu.requests[-1].signed_ok is False
        assert emu.requests[-1].label == "INVALID_SIGNATURE"
    async with gate(api_key="other-key") as (emu, ex):
        with pytest.raises(ccxt_errors.AuthenticationError):
            await ex.create_order(SYMBOL, "limit", "buy", 100, 0.099)
        assert emu.requests[-1].label == "INVALID_KEY"
        assert emu.orders() == []


async def test_request_limit_gives_429_rate_limit_exceeded() -> None:
    clock = VirtualClock(1_000.0)
    async with gate(limit=4, window_s=10, clock=clock.now) as (emu, ex):
        await ex.load_markets()  # 3 requests
        await ex.fetch_order_book(SYMBOL)
        with pytest.raises(ccxt_errors.RateLimitExceeded) as info:
            await ex.fetch_balance()
        assert not isinstance(info.value, ccxt_errors.DDoSProtection)
        assert (emu.requests[-1].status, emu.requests[-1].label) == (429, "TOO_MANY_REQUESTS")
        clock.advance_to(1_010.0)
        assert (await ex.fetch_balance())["USDT"]["free"] == 10000.0


async def test_crossing_post_only_is_rejected_or_cancelled() -> None:
    async with gate() as (emu, ex):
        with pytest.raises(ccxt_errors.OrderImmediatelyFillable):
            await ex.create_order(SYMBOL, "limit", "buy", 100, 0.1001, {"postOnly": True})
        assert emu.requests[-1].label == "POC_FILL_IMMEDIATELY"
        assert emu.orders() == [] and emu.balances()["USDT"]["locked"] == 0
    async with gate(poc_cross="cancel") as (emu, ex):
        order = await ex.create_order(SYMBOL, "limit", "sell", 100, 0.0999, {"postOnly": True})
        assert order["status"] == "poc"  # finish_as=poc, which ccxt's status map lacks
        assert emu.orders()[0]["status"] == "cancelled"


async def test_rejections_map_to_ccxt_classes() -> None:
    async with gate(balances={"KAS": "10", "USDT": "5"}) as (emu, ex):
        with pytest.raises(ccxt_errors.InsufficientFunds):
            await ex.create_order(SYMBOL, "limit", "buy", 100, 0.099, {"postOnly": True})
        with pytest.raises(ccxt_errors.InsufficientFunds):
            await ex.create_order(SYMBOL, "limit", "sell", 11, 0.11)
        assert [r.label for r in emu.requests[-2:]] == ["BALANCE_NOT_ENOUGH"] * 2
        raw = {"currency_pair": "KAS_USDT", "side": "buy", "type": "limit", "account": "spot"}
        with pytest.raises(ccxt_errors.InvalidOrder):  # INVALID_PRECISION
            await ex.privateSpotPostOrders({**raw, "amount": "20", "price": "0.0990001"})
        with pytest.raises(ccxt_errors.InvalidOrder):  # INVALID_PRECISION
            await ex.privateSpotPostOrders({**raw, "amount": "20.001", "price": "0.099"})
        # below min_quote_amount: Gate's INVALID_PARAM_VALUE, which ccxt maps to BadRequest
        with pytest.raises(ccxt_errors.BadRequest) as info:
            await ex.create_order(SYMBOL, "limit", "buy", 5, 0.099)
        assert "is too small" in str(info.value)
        with pytest.raises(ccxt_errors.BadRequest):  # text must start with t- once sent
            await ex.privateSpotPostOrders({**raw, "amount": "20", "price": "0.099", "text": "x"})
        with pytest.raises(ccxt_errors.BadSymbol):
            await ex.privateSpotPostOrders({**raw, "currency_pair": "BTC_USDT"})
        assert emu.orders() == []


async def test_create_orders_batch_reports_each_order() -> None:
    async with gate() as (emu, ex):
        results = await ex.create_orders(
            [
                {"symbol": SYMBOL, "type": "limit", "side": "sell", "amount": 50, "price": 0.11,
                 "params": {"postOnly": True, "clientOrderId": "b1"}},
                {"symbol": SYMBOL, "type": "limit", "side": "buy", "amount": 50, "price": 0.2,
                 "params": {"postOnly": True, "clientOrderId": "b2"}},
            ]
        )  # fmt: skip
        # ccxt's parse_orders sorts by timestamp: the rejection (no timestamp) comes first
        by_client_id = {o["clientOrderId"]: o["status"] for o in results}
        assert by_client_id == {"t-b1": "open", "t-b2": "rejected"}
        assert [o["text"] for o in emu.requests[-1].body] == ["t-b1", "t-b2"]
        assert emu.requests[-1].path == "/spot/batch_orders"
        assert emu.requests[-1].body[1]["time_in_force"] == "poc"
        assert len(emu.orders(status="open")) == 1


async def test_countdown_cancel_all_cancels_after_timeout_on_the_emulator_clock() -> None:
    clock = VirtualClock(5_000.0)
    async with gate(clock=clock.now) as (emu, ex):
        order = await ex.create_order(SYMBOL, "limit", "buy", 100, 0.099, {"postOnly": True})
        reply = await ex.privateSpotPostCountdownCancelAll(
            {"timeout": 30, "currency_pair": "KAS_USDT"}
        )
        assert reply == {"triggerTime": str(5_030_000)}
        assert emu.countdowns == {"KAS_USDT": 5_030.0}
        clock.advance_to(5_029.0)
        assert (await ex.fetch_order(order["id"], SYMBOL))["status"] == "open"
        clock.advance_to(5_030.0)  # the next request fires it
        assert (await ex.fetch_order(order["id"], SYMBOL))["status"] == "canceled"
        assert emu.countdowns == {} and emu.balances()["USDT"]["locked"] == 0

        # re-arming defers the deadline, 0 disarms, the background task fires without requests
        second = await ex.create_order(SYMBOL, "limit", "sell", 100, 0.11, {"postOnly": True})
        await ex.privateSpotPostCountdownCancelAll({"timeout": 10, "currency_pair": "KAS_USDT"})
        assert await ex.privateSpotPostCountdownCancelAll({"timeout": 0}) == {"triggerTime": "0"}
        assert "KAS_USDT" in emu.countdowns  # timeout 0 without a pair leaves the pair's timer
        await ex.privateSpotPostCountdownCancelAll({"timeout": 0, "currency_pair": "KAS_USDT"})
        clock.advance_to(5_100.0)
        emu.check_timers()
        assert emu.orders(status="open")[0]["id"] == second["id"]
        await ex.privateSpotPostCountdownCancelAll({"timeout": 5})  # every pair
        clock.advance_to(5_106.0)
        for _ in range(100):
            if not emu.orders(status="open"):
                break
            await asyncio.sleep(0.01)
        assert emu.orders(status="open") == []
        with pytest.raises(ccxt_errors.BadRequest):  # Gate: at least 5 seconds, or 0
            await ex.privateSpotPostCountdownCancelAll({"timeout": 3})


async def test_incoming_crossing_limit_order_takes_the_synthetic_book() -> None:
    async with gate() as (emu, ex):
        order = await ex.create_order(SYMBOL, "limit", "buy", 1500, 0.100101)
        assert order["status"] == "closed" and order["filled"] == 1500
        assert order["average"] == pytest.approx((1000 * 0.1001 + 500 * 0.100101) / 1500)
        trades = await ex.fetch_my_trades(SYMBOL)
        assert {t["takerOrMaker"] for t in trades} == {"taker"}
        book = await ex.fetch_order_book(SYMBOL)
        assert book["asks"][0] == [0.100101, 500.0]
        ioc = await ex.create_order(SYMBOL, "limit", "sell", 5000, 0.099898, {"timeInForce": "IOC"})
        assert ioc["status"] == "canceled" and ioc["filled"] == 3000
        assert emu.balances()["KAS"]["locked"] == 0


async def test_signature_helper_matches_gate_spec() -> None:
    async with GateEmulator(api_key="k", secret="s") as emu:
        ts = str(int(time.time()))
        query = "currency_pair=KAS_USDT&status=open"
        headers = {
            "KEY": "k",
            "Timestamp": ts,
            "SIGN": sign_request("s", "GET", "/spot/orders", query, "", ts),
        }
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{emu.base_url}/spot/orders?{query}", headers=headers) as resp:
                assert resp.status == 200 and await resp.json() == []
            headers["SIGN"] = "0" * 128
            async with session.get(f"{emu.base_url}/spot/orders?{query}", headers=headers) as resp:
                assert resp.status == 401
                assert (await resp.json())["label"] == "INVALID_SIGNATURE"


async def test_state_file_persists_orders_fills_and_balances(tmp_path: Path) -> None:
    state = tmp_path / "gate.json"
    async with gate(state_path=state) as (emu, ex):
        order = await ex.create_order(SYMBOL, "limit", "buy", 100, 0.099, {"postOnly": True})
        emu.trade("sell", "0.099", 30)
    saved = json.loads(state.read_text())
    assert [o["id"] for o in saved["orders"]] == [order["id"]] and len(saved["fills"]) == 1
    async with gate(state_path=state) as (emu, ex):
        again = await ex.fetch_order(order["id"], SYMBOL)
        assert (again["status"], again["filled"]) == ("open", 30)
        assert len(await ex.fetch_my_trades(SYMBOL)) == 1
        assert emu.balances()["USDT"]["locked"] == D("6.93")
        newer = await ex.create_order(SYMBOL, "limit", "buy", 100, 0.098, {"postOnly": True})
        assert int(newer["id"]) > int(order["id"])


async def test_main_prints_bound_url_as_one_json_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.emulators.gate", "--port", "0", "--api-key", "K",
        "--secret", "S", "--state", str(tmp_path / "s.json"), "--mid", "0.1",
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
        assert line["base_url"] == f"http://127.0.0.1:{line['port']}/api/v4"
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{line['base_url']}/spot/order_book?currency_pair=KAS_USDT") as resp,
        ):
            book = await resp.json()
        assert book["bids"][0] == ["0.0999", "1000"]
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_amend_keeps_id_and_text_and_follows_gates_queue_rules() -> None:
    async with gate(limit=None) as (emu, ex):
        params = {"postOnly": True}
        a = await ex.create_order(SYMBOL, "limit", "sell", 100, 0.11, {**params, "text": "t-a"})
        b = await ex.create_order(SYMBOL, "limit", "sell", 100, 0.11, {**params, "text": "t-b"})
        smaller = await ex.edit_order(
            a["id"], SYMBOL, "limit", "sell", 60, None, {"amend_text": "x"}
        )
        assert (smaller["id"], smaller["clientOrderId"], smaller["amount"]) == (a["id"], "t-a", 60)
        assert emu.requests[-1].method == "PATCH" and emu.requests[-1].body["amount"] == "60"
        assert emu.orders(status="open")[0]["amend_text"] == "x"
        # Reducing the amount keeps a's place in the queue ...
        assert [f["order_id"] for f in emu.trade("buy", "0.11", "10")] == [a["id"]]
        # ... a larger amount or a new price sends it to the back of its level.
        await ex.edit_order("t-a", SYMBOL, "limit", "sell", 100, None)  # by text while open
        assert [f["order_id"] for f in emu.trade("buy", "0.11", "10")] == [b["id"]]
        moved = await ex.edit_order(b["id"], SYMBOL, "limit", "sell", None, 0.111)
        assert (moved["id"], moved["price"], moved["remaining"]) == (b["id"], 0.111, 90)
        assert emu.balances()["KAS"]["locked"] == D(90 + 90)
        # An amount below what filled cancels the order (and frees its funds).
        gone = await ex.edit_order(a["id"], SYMBOL, "limit", "sell", 9.5, None)
        assert gone["status"] == "canceled" and gone["filled"] == 10
        assert emu.balances()["KAS"]["locked"] == D(90)
        with pytest.raises(ccxt_errors.InvalidOrder, match="ORDER_CANCELLED"):
            await ex.edit_order(a["id"], SYMBOL, "limit", "sell", 50, None)


async def test_amend_refusals_leave_the_order_unchanged() -> None:
    async with gate(limit=None) as (emu, ex):
        order = await ex.create_order(SYMBOL, "limit", "sell", 100, 0.11, {"postOnly": True})
        with pytest.raises(ccxt_errors.OrderImmediatelyFillable):  # POC_FILL_IMMEDIATELY
            await ex.edit_order(order["id"], SYMBOL, "limit", "sell", None, 0.0999)
        with pytest.raises(ccxt_errors.InsufficientFunds):
            await ex.edit_order(order["id"], SYMBOL, "limit", "sell", 200_000, None)
        with pytest.raises(ccxt_errors.InvalidOrder, match="INVALID_PRECISION"):
            await ex.privateSpotPatchOrdersOrderId(
                {"order_id": order["id"], "currency_pair": "KAS_USDT", "price": "0.1100001"}
            )
        with pytest.raises(ccxt_errors.ArgumentsRequired):  # MISSING_REQUIRED_PARAM
            await ex.privateSpotPatchOrdersOrderId(
                {"order_id": order["id"], "currency_pair": "KAS_USDT"}
            )
        (still,) = emu.orders(status="open")
        assert (still["id"], still["price"], still["amount"]) == (order["id"], "0.11", "100")
        assert emu.balances()["KAS"]["locked"] == D(100)


async def test_amended_post_only_crossing_is_cancelled_in_poc_cancel_mode() -> None:
    async with gate(limit=None, poc_cross="cancel") as (emu, ex):
        order = await ex.create_order(SYMBOL, "limit", "sell", 100, 0.11, {"postOnly": True})
        crossed = await ex.edit_order(order["id"], SYMBOL, "limit", "sell", None, 0.0999)
        assert crossed["id"] == order["id"] and crossed["filled"] == 0
        assert emu.orders()[0]["finish_as"] == "poc"
        assert emu.orders(status="open") == [] and emu.my_trades() == []


async def test_order_requests_are_limited_per_pair_and_a_batch_counts_once() -> None:
    clock = VirtualClock(5_000.0)
    async with gate(clock=clock.now) as (emu, ex):
        batch = [
            {"symbol": SYMBOL, "type": "limit", "side": "sell", "amount": 20,
             "price": 0.11 + i / 1000, "params": {"postOnly": True, "clientOrderId": f"b{i}"}}
            for i in range(10)
        ]  # fmt: skip
        placed = await ex.create_orders(batch)  # ten orders, one request
        for i in range(9):
            await ex.create_order(SYMBOL, "limit", "buy", 20, 0.09 - i / 1000, {"postOnly": True})
        with pytest.raises(ccxt_errors.RateLimitExceeded):  # the 11th order request this second
            await ex.edit_order(placed[0]["id"], SYMBOL, "limit", "sell", 15, None)
        await ex.fetch_open_orders(SYMBOL)  # not an order request: not limited
        clock.advance_to(5_001.0)
        await ex.edit_order(placed[0]["id"], SYMBOL, "limit", "sell", 15, None)
        assert len(emu.orders(status="open")) == 19


async def test_injected_error_after_handling_is_a_lost_answer() -> None:
    async with gate(limit=None) as (emu, ex):
        emu.inject_error("SERVER_ERROR", 502, path="/spot/orders", method="POST", after=True)
        with pytest.raises(ccxt_errors.ExchangeNotAvailable):
            await ex.create_order(SYMBOL, "limit", "buy", 100, 0.09, {"postOnly": True})
        assert len(emu.orders(status="open")) == 1  # placed, only the answer was lost
