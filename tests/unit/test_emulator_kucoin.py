"""Unmodified ccxt ``async_support.kucoin`` (hf, no UTA) against the loopback KuCoin emulator.

The websocket side (bullet token, level2, order changes, wire and protocol faults) is tested
through ``ccxt.pro.kucoin`` in ``test_emulator_kucoin_ws.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ccxt.base import errors as ccxt_errors

from tests.emulators.kucoin import KucoinEmulator, sign_headers

pytestmark = pytest.mark.anyio
D = Decimal
SYMBOL = "KAS/USDT"
MID = "0.1"


class Clock:
    """A settable clock (seconds): the real time plus ``offset``."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@asynccontextmanager
async def kucoin(**emu_kwargs: Any) -> AsyncIterator[tuple[KucoinEmulator, Any]]:
    """A started emulator (book around 0.1, 5 levels of 1000) and a ccxt kucoin pointed at it."""
    async with KucoinEmulator(**emu_kwargs) as emu:
        emu.set_mid(MID, spread_bps=20, levels=5, size=1000)
        ex = emu.ccxt()
        try:
            yield emu, ex
        finally:
            await ex.close()
        assert emu.internal_errors == []


# ---------------------------------------------------------------------- markets and books


async def test_load_markets_reads_increments_minimums_and_fees() -> None:
    async with kucoin() as (emu, ex):
        markets = await ex.load_markets()
        assert list(markets) == [SYMBOL]
        market = markets[SYMBOL]
        assert (market["id"], market["spot"], market["active"]) == ("KAS-USDT", True, True)
        assert market["precision"] == {"amount": 0.0001, "price": 0.000001}
        assert market["limits"]["amount"]["min"] == 1.0 and market["limits"]["cost"]["min"] == 0.1
        assert market["maker"] == market["taker"] == 0.001
        assert {r.path for r in emu.requests} >= {"/api/v2/symbols", "/api/v3/currencies"}
        assert all(r.status == 200 for r in emu.requests)


async def test_books_carry_the_engine_sequence_and_own_orders() -> None:
    async with kucoin() as (emu, ex):
        full = await ex.fetch_order_book(SYMBOL)  # signed full book
        part = await ex.fetch_order_book(SYMBOL, 20)  # public level2_20
        seq = emu.engine.book("KAS-USDT").seq
        assert full["nonce"] == part["nonce"] == seq
        assert full["bids"][0] == [0.0999, 1000.0] and full["asks"][0] == [0.1001, 1000.0]
        await ex.create_order(SYMBOL, "limit", "sell", 30, 0.1, {"postOnly": True})
        book = await ex.fetch_order_book(SYMBOL, 20)
        assert book["asks"][0] == [0.1, 30.0] and book["nonce"] == seq + 1
        paths = [(r.path, r.signed) for r in emu.requests if "orderbook" in r.path]
        assert ("/api/v3/market/orderbook/level2", True) in paths
        assert ("/api/v1/market/orderbook/level2_20", False) in paths


async def test_balance_is_the_trade_hf_account() -> None:
    async with kucoin() as (emu, ex):
        balance = await ex.fetch_balance()
        assert balance["KAS"] == {"free": 100000.0, "used": 0.0, "total": 100000.0}
        assert balance["USDT"]["free"] == 10000.0
        assert [r.query for r in emu.requests if r.path == "/api/v1/accounts"] == ["type=trade_hf"]


# ---------------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    ("config", "error", "code", "status"),
    [
        # the v2 passphrase is an HMAC keyed by the secret: a wrong secret shows there first
        ({"secret": "wrong"}, ccxt_errors.AuthenticationError, "400004", 401),
        ({"password": "wrong"}, ccxt_errors.AuthenticationError, "400004", 401),
        ({"apiKey": "nobody"}, ccxt_errors.AuthenticationError, "400003", 401),
    ],
)
async def test_bad_credentials_are_refused_with_kucoins_codes(
    config: dict[str, str], error: type[Exception], code: str, status: int
) -> None:
    async with KucoinEmulator() as emu:
        ex = emu.ccxt(**config)
        try:
            with pytest.raises(error):
                await ex.fetch_balance()
        finally:
            await ex.close()
        first = next(r for r in emu.requests if r.signed)  # load_markets' margin list
        assert (first.status, first.code, first.signed_ok) == (status, code, False)


async def test_timestamp_outside_five_seconds_is_invalid_nonce() -> None:
    clock = Clock()
    async with kucoin(clock=clock) as (emu, ex):
        await ex.fetch_balance()
        clock.offset = 6.0
        with pytest.raises(ccxt_errors.InvalidNonce):
            await ex.fetch_balance()
        assert (emu.requests[-1].status, emu.requests[-1].code) == (400, "400002")


@pytest.mark.parametrize(
    ("headers", "code", "status"),
    [
        ({}, "400001", 401),  # no KC-API-* headers at all
        ({"KC-API-KEY-VERSION": "1"}, "400009", 401),  # the key is a version 2 key
        ({"KC-API-SIGN": "c2lnbmF0dXJl"}, "400005", 401),  # right passphrase, wrong signature
    ],
)
async def test_raw_requests_missing_headers_or_wrong_key_version(
    headers: dict[str, str], code: str, status: int
) -> None:
    async with KucoinEmulator() as emu:
        signed = sign_headers(emu.secret, emu.passphrase, emu.api_key, "GET", "/api/v1/accounts")
        sent = {**signed, **headers} if headers else {}
        async with (
            aiohttp.ClientSession() as session,
            session.get(emu.base_url + "/api/v1/accounts", headers=sent) as resp,
        ):
            assert resp.status == status
            assert (await resp.json())["code"] == code


async def test_version_1_key_signs_the_plain_passphrase() -> None:
    async with KucoinEmulator() as emu:
        emu.add_account("v1-key", "v1-secret", "v1-pass", version="1")
        headers = sign_headers("v1-secret", "v1-pass", "v1-key", "GET", "/api/v1/accounts")
        headers.update({"KC-API-KEY-VERSION": "1", "KC-API-PASSPHRASE": "v1-pass"})
        async with (
            aiohttp.ClientSession() as session,
            session.get(emu.base_url + "/api/v1/accounts", headers=headers) as resp,
        ):
            body = await resp.json()
        assert resp.status == 200 and body["code"] == "200000"
        assert {row["currency"] for row in body["data"]} == {"KAS", "USDT"}


# ---------------------------------------------------------------------- orders


async def test_order_lifecycle_by_id_and_by_client_oid() -> None:
    async with kucoin() as (emu, ex):
        placed = await ex.create_order(
            SYMBOL, "limit", "buy", 100, 0.09, {"clientOrderId": "life1", "postOnly": True}
        )
        assert placed["clientOrderId"] == "life1" and placed["status"] is None  # HF answer
        listed = await ex.fetch_open_orders(SYMBOL)
        assert [(o["id"], o["clientOrderId"], o["status"]) for o in listed] == [
            (placed["id"], "life1", "open")
        ]
        by_cid = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "life1"})
        assert (by_cid["id"], by_cid["amount"], by_cid["price"]) == (placed["id"], 100.0, 0.09)
        assert by_cid["postOnly"] is True
        assert emu.balances()["USDT"][1] == D(100) * D("0.09") * D("1.001")  # notional + fee
        await ex.cancel_order(None, SYMBOL, {"clientOrderId": "life1"})
        done = await ex.fetch_order(placed["id"], SYMBOL)
        assert done["status"] == "canceled" and done["info"]["cancelExist"] is True
        closed = await ex.fetch_closed_orders(SYMBOL)
        assert [o["id"] for o in closed] == [placed["id"]]
        assert emu.balances()["USDT"] == (D("10000"), D(0))


async def test_post_only_that_would_take_is_accepted_then_cancelled() -> None:
    async with kucoin() as (_emu, ex):
        placed = await ex.create_order(SYMBOL, "limit", "buy", 100, 0.1001, {"postOnly": True})
        assert await ex.fetch_open_orders(SYMBOL) == []
        order = await ex.fetch_order(placed["id"], SYMBOL)
        assert (order["status"], order["filled"]) == ("canceled", 0.0)


async def test_market_orders_by_funds_and_by_size() -> None:
    async with kucoin() as (emu, ex):
        by_funds = await ex.create_order(SYMBOL, "market", "buy", None, None, {"cost": 20})
        order = await ex.fetch_order(by_funds["id"], SYMBOL)
        assert order["status"] == "closed" and order["info"]["funds"] == "20"
        assert order["filled"] == 199.6005  # whole 0.0001 lots at 0.1001 plus the 0.1 % fee
        sold = await ex.create_order(SYMBOL, "market", "sell", 1500)
        order = await ex.fetch_order(sold["id"], SYMBOL)
        assert (order["status"], order["filled"]) == ("closed", 1500.0)
        sent = [json.loads(r.body) for r in emu.requests if r.path == "/api/v1/hf/orders"]
        assert [("funds" in b, "size" in b) for b in sent] == [(True, False), (False, True)]


@pytest.mark.parametrize(
    ("body", "error", "code"),
    [
        ({"size": "1000000", "price": "0.09"}, ccxt_errors.InsufficientFunds, "200004"),
        ({"size": "0.5", "price": "0.09"}, ccxt_errors.InvalidOrder, "400100"),  # < baseMinSize
        ({"size": "1.00005", "price": "0.09"}, ccxt_errors.InvalidOrder, "400100"),  # increment
        ({"size": "1", "price": "0.09"}, ccxt_errors.InvalidOrder, "600101"),  # < quoteMinSize
        ({"size": "10", "price": "0.0900005"}, ccxt_errors.BadRequest, "400100"),  # price step
        ({"size": "10", "price": "0.09", "symbol": "BTC-USDT"}, ccxt_errors.BadSymbol, "400100"),
        ({"size": "10"}, ccxt_errors.BadRequest, "400100"),  # no price
    ],
)
async def test_refused_orders_raise_what_ccxt_maps_kucoins_codes_to(
    body: dict[str, str], error: type[Exception], code: str
) -> None:
    async with kucoin() as (emu, ex):
        await ex.load_markets()
        request = {"clientOid": "r1", "side": "buy", "symbol": "KAS-USDT", "type": "limit", **body}
        with pytest.raises(error):
            await ex.privatePostHfOrders(request)
        assert emu.requests[-1].code == code
        assert emu.orders() == []


async def test_duplicate_client_oid_of_an_open_order_is_refused() -> None:
    async with kucoin() as (emu, ex):
        params = {"clientOrderId": "dup"}
        await ex.create_order(SYMBOL, "limit", "buy", 100, 0.09, params)
        with pytest.raises(ccxt_errors.BadRequest):
            await ex.create_order(SYMBOL, "limit", "buy", 100, 0.09, params)
        assert len(emu.orders(open_only=True)) == 1


async def test_unknown_and_finished_orders_are_order_not_found() -> None:
    async with kucoin() as (_emu, ex):
        with pytest.raises(ccxt_errors.OrderNotFound):
            await ex.cancel_order("675200000000000000000abc", SYMBOL)
        with pytest.raises(ccxt_errors.OrderNotFound):
            await ex.fetch_order("675200000000000000000abc", SYMBOL)
        with pytest.raises(ccxt_errors.OrderNotFound):
            await ex.cancel_order(None, SYMBOL, {"clientOrderId": "never"})
        taken = await ex.create_order(SYMBOL, "limit", "buy", 100, 0.1001)
        with pytest.raises(ccxt_errors.OrderNotFound):  # already filled
            await ex.cancel_order(taken["id"], SYMBOL)


async def test_cancel_all_by_symbol_and_for_every_symbol() -> None:
    async with kucoin() as (emu, ex):
        assert abs(await ex.fetch_time() - time.time() * 1000) < 5000
        for price in (0.09, 0.091):
            await ex.create_order(SYMBOL, "limit", "buy", 100, price)
        await ex.cancel_all_orders(SYMBOL)
        assert await ex.fetch_open_orders(SYMBOL) == []
        await ex.create_order(SYMBOL, "limit", "sell", 100, 0.2)
        answer = await ex.cancel_all_orders()
        assert answer[0]["info"]["data"] == {"succeedSymbols": ["KAS-USDT"], "failedSymbols": []}
        assert emu.orders(open_only=True) == []
        paths = [(r.method, r.path, r.query) for r in emu.requests if r.method == "DELETE"]
        assert paths == [
            ("DELETE", "/api/v1/hf/orders", "symbol=KAS-USDT"),
            ("DELETE", "/api/v1/hf/orders/cancelAll", ""),
        ]


# ---------------------------------------------------------------------- fills


async def test_taker_and_maker_fills_with_fees_in_quote() -> None:
    async with kucoin() as (emu, ex):
        taker = await ex.create_order(SYMBOL, "limit", "buy", 100, 0.1001)
        maker = await ex.create_order(SYMBOL, "limit", "sell", 50, 0.1, {"postOnly": True})
        emu.trade("buy", "0.1", 50)
        # ccxt sorts trades by time only: two in the same millisecond keep the exchange's order
        # (KuCoin lists newest first), so the order here is the orders' (a flaky test on a fast
        # run otherwise).
        trades = sorted(await ex.fetch_my_trades(SYMBOL), key=lambda t: str(t["order"]))
        assert [
            (t["order"], t["side"], t["takerOrMaker"], t["price"], t["amount"]) for t in trades
        ] == [
            (taker["id"], "buy", "taker", 0.1001, 100.0),
            (maker["id"], "sell", "maker", 0.1, 50.0),
        ]
        assert [t["fee"]["currency"] for t in trades] == ["USDT", "USDT"]
        assert trades[0]["fee"]["cost"] == pytest.approx(10.01 * 0.001)
        assert len({t["id"] for t in trades}) == 2
        kas, usdt = emu.balances()["KAS"], emu.balances()["USDT"]
        assert kas == (D("100000") + 100 - 50, D(0))
        assert usdt[0] == D("10000") - D("10.01") * D("1.001") + D("5") * D("0.999")
        one = await ex.fetch_my_trades(SYMBOL, None, None, {"orderId": maker["id"]})
        assert [t["order"] for t in one] == [maker["id"]]
        assert (await ex.fetch_order(maker["id"], SYMBOL))["status"] == "closed"


async def test_fills_page_newest_first_with_limit_and_start() -> None:
    async with kucoin() as (emu, ex):
        for _ in range(3):
            await ex.create_order(SYMBOL, "limit", "buy", 10, 0.1001)
        first = emu.engine.fills(emu.api_key)[0].time_ms
        recent = await ex.fetch_my_trades(SYMBOL, first, 2)
        assert len(recent) == 2
        raw = await ex.privateGetHfFills({"symbol": "KAS-USDT", "limit": 2})
        ids = [item["id"] for item in raw["data"]["items"]]
        assert ids == sorted(ids, reverse=True) and raw["data"]["lastId"] == ids[-1]


# ---------------------------------------------------------------------- batch


async def test_batch_answers_each_order_in_order() -> None:
    async with kucoin() as (emu, ex):
        await ex.load_markets()
        orders = [
            ex.create_spot_order_request(
                SYMBOL, "limit", "buy", 100, 0.09, {"clientOrderId": "b1"}
            ),
            ex.create_spot_order_request(
                SYMBOL, "limit", "buy", 10**6, 0.09, {"clientOrderId": "b2"}
            ),
            ex.create_spot_order_request(
                SYMBOL, "limit", "sell", 50, 0.11, {"clientOrderId": "b3"}
            ),
        ]
        answer = await ex.privatePostHfOrdersMulti({"symbol": "KAS-USDT", "orderList": orders})
        data = answer["data"]
        assert [(d["clientOid"], d["success"]) for d in data] == [
            ("b1", True),
            ("b2", False),
            ("b3", True),
        ]
        assert data[1]["failMsg"] == "Balance insufficient!" and "orderId" not in data[1]
        assert {o.client_id for o in emu.orders(open_only=True)} == {"b1", "b3"}
        with pytest.raises(ccxt_errors.BadRequest):
            await ex.privatePostHfOrdersMulti({"symbol": "KAS-USDT", "orderList": orders * 2})


# ---------------------------------------------------------------------- dead man's switch


async def test_dead_cancel_all_fires_on_its_deadline_and_minus_one_disarms() -> None:
    clock = Clock()
    async with kucoin(clock=clock, check_timestamp=False) as (emu, ex):
        await ex.create_order(SYMBOL, "limit", "buy", 100, 0.09)
        armed = await ex.privatePostHfOrdersDeadCancelAll({"timeout": 5, "symbols": "KAS-USDT"})
        assert armed["data"]["triggerTime"] - armed["data"]["currentTime"] == 5
        query = await ex.privateGetHfOrdersDeadCancelAllQuery()
        assert query["data"]["symbols"] == "KAS-USDT"
        clock.offset = 4.0
        assert len(await ex.fetch_open_orders(SYMBOL)) == 1
        clock.offset = 5.5
        assert await ex.fetch_open_orders(SYMBOL) == []
        assert emu.countdowns == {}
        await ex.create_order(SYMBOL, "limit", "buy", 100, 0.09)
        await ex.privatePostHfOrdersDeadCancelAll({"timeout": 5, "symbols": "KAS-USDT"})
        await ex.privatePostHfOrdersDeadCancelAll({"timeout": -1})
        assert (await ex.privateGetHfOrdersDeadCancelAllQuery())["data"] is None
        clock.offset = 60.0
        assert len(await ex.fetch_open_orders(SYMBOL)) == 1
        with pytest.raises(ccxt_errors.BadRequest):
            await ex.privatePostHfOrdersDeadCancelAll({"timeout": 3, "symbols": "KAS-USDT"})


async def test_restart_on_the_same_state_file_keeps_orders_fills_and_sequence(
    tmp_path: Path,
) -> None:
    state = tmp_path / "kucoin.json"
    async with kucoin(state_path=state) as (emu, ex):
        resting = await ex.create_order(SYMBOL, "limit", "buy", 100, 0.09, {"clientOrderId": "k"})
        await ex.create_order(SYMBOL, "limit", "buy", 10, 0.1001)
        seq, balances = emu.engine.book("KAS-USDT").seq, emu.balances()
    async with KucoinEmulator(state_path=state) as again:
        ex = again.ccxt()
        try:
            found = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "k"})
            assert (found["id"], found["status"]) == (resting["id"], "open")
            assert len(await ex.fetch_my_trades(SYMBOL)) == 1
            assert (await ex.fetch_order_book(SYMBOL))["nonce"] == seq
            assert again.balances() == balances
        finally:
            await ex.close()


# ---------------------------------------------------------------------- limits and faults


async def test_spent_resource_pool_answers_429000_until_the_window_resets() -> None:
    clock = Clock()
    async with kucoin(clock=clock, check_timestamp=False) as (emu, ex):
        await ex.load_markets()
        emu.spot_quota = 12
        emu.reset_rate_limits()
        await ex.fetch_balance()  # weight 5
        await ex.fetch_balance()  # 10
        with pytest.raises(ccxt_errors.RateLimitExceeded):
            await ex.fetch_balance()
        last = emu.requests[-1]
        assert (last.status, last.code) == (429, "429000")
        clock.offset = 31.0
        await ex.fetch_balance()
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                emu.base_url + "/api/v1/accounts",
                headers=sign_headers(
                    emu.secret,
                    emu.passphrase,
                    emu.api_key,
                    "GET",
                    "/api/v1/accounts",
                    timestamp_ms=int(clock() * 1000),
                ),
            ) as resp,
        ):
            assert resp.headers["gw-ratelimit-limit"] == "12"
            assert resp.headers["gw-ratelimit-remaining"] == "2"
            assert 0 < int(resp.headers["gw-ratelimit-reset"]) <= 30_000


async def test_injected_faults_fail_before_or_after_processing() -> None:
    async with kucoin() as (emu, ex):
        await ex.load_markets()
        emu.inject_fault("POST", "/api/v1/hf/orders", status=503)
        with pytest.raises(ccxt_errors.ExchangeNotAvailable):
            await ex.create_order(SYMBOL, "limit", "buy", 100, 0.09)
        assert emu.orders() == []
        emu.inject_fault("POST", "/api/v1/hf/orders", status=500, after=True)
        with pytest.raises(ccxt_errors.ExchangeNotAvailable):
            await ex.create_order(SYMBOL, "limit", "buy", 100, 0.09, {"clientOrderId": "lost"})
        found = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "lost"})
        assert found["status"] == "open"


async def test_unknown_url_is_404000_not_supported() -> None:
    async with kucoin() as (emu, ex):
        with pytest.raises(ccxt_errors.NotSupported):
            await ex.publicGetMarkets()
        assert (emu.requests[-1].status, emu.requests[-1].code) == (404, "404000")
        assert json.loads(json.dumps(emu.engine.to_state()))["version"] == 1
