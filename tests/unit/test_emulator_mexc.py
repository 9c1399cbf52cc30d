"""Unmodified ccxt (``ccxt.async_support.mexc``) against the loopback MEXC emulator.

Pins both what the emulator serves and what ccxt 4.5.90 does with it (request shapes, parsed
fields, exception classes), so a ccxt upgrade that changes either shows up here.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from tests.emulators.mexc import MexcEmulator, RequestRecord, configure_ccxt

pytestmark = pytest.mark.anyio
D = Decimal
KEY, SECRET = "test-key", "test-secret"
SYMBOL = "KAS/USDT"
REPO = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def client(emu: MexcEmulator, **config: Any) -> AsyncIterator[Any]:
    """An unmodified ccxt mexc pointed at ``emu``, closed on exit (no 250 ms exit sleep)."""
    ex = emu.ccxt(timeout_on_exit=0, **config)
    try:
        yield ex
    finally:
        await ex.close()


@pytest.fixture
async def emu(anyio_backend: str) -> AsyncIterator[MexcEmulator]:
    async with MexcEmulator(KEY, SECRET) as emulator:
        emulator.set_mid("0.05", spread_bps=20, levels=5, size=1000)  # best 0.04995 / 0.05005
        yield emulator
        assert emulator.internal_errors == []


@pytest.fixture
async def ex(emu: MexcEmulator) -> AsyncIterator[Any]:
    async with client(emu) as exchange:
        await exchange.load_markets()
        yield exchange


def last(emu: MexcEmulator, method: str, path: str) -> RequestRecord:
    return [r for r in emu.requests if r.method == method and r.path == path][-1]


async def test_load_markets_parses_precision_limits_and_makes_the_hidden_calls(
    ex: Any, emu: MexcEmulator
) -> None:
    assert ex.symbols == [SYMBOL]  # the (empty) swap list was fetched and merged
    market = ex.market(SYMBOL)
    assert market["id"] == "KASUSDT"
    assert market["precision"] == {"amount": 0.01, "price": 0.000001}
    assert market["limits"]["amount"]["min"] == 0.01
    assert market["limits"]["cost"]["min"] == 1.0
    assert (market["maker"], market["taker"]) == (0.0, 0.0005)
    assert {"KAS", "USDT"} <= set(ex.currencies)
    calls = {(r.method, r.path): r for r in emu.requests}
    assert ("GET", "/api/v1/contract/detail") in calls
    currencies = calls[("GET", "/api/v3/capital/config/getall")]
    assert currencies.signed and currencies.signed_ok and currencies.api_key == KEY


async def test_order_book_shows_synthetic_levels_and_resting_orders(
    ex: Any, emu: MexcEmulator
) -> None:
    emu.set_book(bids=[("0.0499", 500), ("0.0498", 700)], asks=[("0.0501", 300)])
    emu.place_foreign("buy", "0.0499", 100)
    book = await ex.fetch_order_book(SYMBOL)
    assert book["bids"] == [[0.0499, 600.0], [0.0498, 700.0]]
    assert book["asks"] == [[0.0501, 300.0]]
    assert isinstance(book["nonce"], int)


async def test_fetch_balance(ex: Any) -> None:
    balance = await ex.fetch_balance()
    assert balance["KAS"] == {"free": 100000.0, "used": 0.0, "total": 100000.0}
    assert balance["USDT"]["free"] == 10000.0


async def test_post_only_with_client_id_becomes_limit_maker(ex: Any, emu: MexcEmulator) -> None:
    order = await ex.create_order(
        SYMBOL, "limit", "buy", 100, 0.0499, {"postOnly": True, "clientOrderId": "kmm-b-1"}
    )
    sent = last(emu, "POST", "/api/v3/order")
    assert sent.signed_ok is True
    assert sent.headers["X-MEXC-APIKEY"] == KEY
    assert {
        k: sent.params[k]
        for k in ("symbol", "side", "type", "quantity", "price", "newClientOrderId")
    } == {
        "symbol": "KASUSDT",
        "side": "BUY",
        "type": "LIMIT_MAKER",
        "quantity": "100",
        "price": "0.0499",
        "newClientOrderId": "kmm-b-1",
    }
    assert "postOnly" not in sent.params and "recvWindow" in sent.params
    # MEXC's acknowledgement carries neither the client id nor a status.
    assert order["id"].startswith("C02__")
    assert order["clientOrderId"] is None and order["status"] is None
    assert emu.balances()["USDT"] == (D("9995.01"), D("4.99"))

    [open_order] = await ex.fetch_open_orders(SYMBOL)
    assert open_order["id"] == order["id"]
    assert open_order["clientOrderId"] == "kmm-b-1"
    assert open_order["status"] == "open"
    # ccxt passes MEXC's type through as a non-unified timeInForce; its postOnly flag stays False.
    assert (open_order["timeInForce"], open_order["postOnly"]) == ("POST_ONLY", False)
    assert open_order["info"]["type"] == "LIMIT_MAKER"


async def test_cancel_and_cancel_unknown(ex: Any, emu: MexcEmulator) -> None:
    order = await ex.create_order(
        SYMBOL, "limit", "sell", 100, 0.0502, {"postOnly": True, "clientOrderId": "c-1"}
    )
    cancelled = await ex.cancel_order(order["id"], SYMBOL)
    assert cancelled["status"] == "canceled" and cancelled["clientOrderId"] == "c-1"
    assert emu.balances()["KAS"] == (D(100000), D(0))
    # -2011: ccxt raises BadRequest, not OrderNotFound, for an already-cancelled or unknown order.
    for order_id in (order["id"], "C02__1"):
        with pytest.raises(ccxt.BadRequest) as info:
            await ex.cancel_order(order_id, SYMBOL)
        assert not isinstance(info.value, ccxt.OrderNotFound)
        assert '"code": -2011' in str(info.value)
    # Cancel by client id (origClientOrderId).
    await ex.create_order(
        SYMBOL, "limit", "sell", 100, 0.0502, {"postOnly": True, "clientOrderId": "c-2"}
    )
    await ex.cancel_order(None, SYMBOL, {"clientOrderId": "c-2"})
    assert last(emu, "DELETE", "/api/v3/order").params["origClientOrderId"] == "c-2"
    assert emu.orders(open_only=True) == []


async def test_fetch_unknown_order_is_a_plain_exchange_error(ex: Any) -> None:
    with pytest.raises(ccxt.ExchangeError) as info:
        await ex.fetch_order("C02__1", SYMBOL)
    assert type(info.value) is ccxt.ExchangeError and '"code": -2013' in str(info.value)


async def test_outside_taker_fills_resting_order(ex: Any, emu: MexcEmulator) -> None:
    order = await ex.create_order(
        SYMBOL, "limit", "sell", 200, 0.0501, {"postOnly": True, "clientOrderId": "s-1"}
    )
    [fill] = emu.trade("buy", "0.0502", 150)
    assert (fill.price, fill.qty, fill.is_maker) == (D("0.0501"), D(150), True)

    partial = await ex.fetch_order(order["id"], SYMBOL)
    assert (partial["status"], partial["filled"], partial["remaining"]) == ("open", 150.0, 50.0)
    [trade] = await ex.fetch_my_trades(SYMBOL)
    assert trade["order"] == order["id"]
    assert (trade["side"], trade["takerOrMaker"], trade["price"], trade["amount"]) == (
        "sell",
        "maker",
        0.0501,
        150.0,
    )
    assert trade["fee"] == {"currency": "USDT", "cost": 0.0}
    assert trade["info"]["clientOrderId"] == "s-1"
    assert emu.balances()["KAS"] == (D(99800), D(50))
    assert emu.balances()["USDT"] == (D("10007.515"), D(0))

    emu.trade("buy", "0.0501", 500)  # only 50 left to take
    done = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "s-1"})
    assert (done["status"], done["filled"]) == ("closed", 200.0)
    assert emu.balances()["KAS"] == (D(99800), D(0))
    assert emu.orders()[0]["status"] == "FILLED"


async def test_outside_taker_respects_price_time_priority(ex: Any, emu: MexcEmulator) -> None:
    first = await ex.create_order(
        SYMBOL, "limit", "buy", 100, 0.0499, {"postOnly": True, "clientOrderId": "p-1"}
    )
    second = await ex.create_order(
        SYMBOL, "limit", "buy", 100, 0.0499, {"postOnly": True, "clientOrderId": "p-2"}
    )
    better = await ex.create_order(
        SYMBOL, "limit", "buy", 100, 0.04992, {"postOnly": True, "clientOrderId": "p-3"}
    )
    fills = emu.trade("sell", "0.0499", 150)
    assert [(f.order_id, f.qty) for f in fills] == [(better["id"], D(100)), (first["id"], D(50))]
    assert second["id"] not in {f.order_id for f in fills}


async def test_limit_maker_that_would_cross_is_accepted_then_cancelled(
    ex: Any, emu: MexcEmulator
) -> None:
    order = await ex.create_order(
        SYMBOL, "limit", "buy", 100, 0.0501, {"postOnly": True, "clientOrderId": "x-1"}
    )
    assert order["id"]  # no error: MEXC accepts it
    fetched = await ex.fetch_order(order["id"], SYMBOL)
    assert (fetched["status"], fetched["filled"]) == ("canceled", 0.0)
    assert emu.fills() == []
    assert emu.balances()["USDT"] == (D(10000), D(0))


async def test_crossing_limit_order_takes_liquidity_with_taker_fee(
    ex: Any, emu: MexcEmulator
) -> None:
    order = await ex.create_order(SYMBOL, "limit", "buy", 1500, 0.0501, {"clientOrderId": "t-1"})
    fetched = await ex.fetch_order(order["id"], SYMBOL)
    assert (fetched["status"], fetched["filled"]) == ("closed", 1500.0)
    trades = await ex.fetch_my_trades(SYMBOL)
    assert [(t["price"], t["amount"], t["takerOrMaker"]) for t in trades] == [
        (0.05005, 1000.0, "taker"),
        (0.0501, 500.0, "taker"),
    ]
    assert trades[0]["fee"] == {"currency": "KAS", "cost": 0.5}
    assert emu.balances()["KAS"] == (D(100000) + D(1500) - D("0.75"), D(0))
    assert emu.balances()["USDT"] == (D(10000) - D("50.05") - D("25.05"), D(0))


async def test_wrong_secret_is_authentication_error(emu: MexcEmulator) -> None:
    async with client(emu, secret="not-the-secret") as ex:
        with pytest.raises(ccxt.AuthenticationError, match="700002"):
            await ex.load_markets()  # the signed currencies call fails first
    rejected = last(emu, "GET", "/api/v3/capital/config/getall")
    assert (rejected.signed_ok, rejected.code) == (False, 700002)


async def test_unknown_api_key_is_bad_request(emu: MexcEmulator) -> None:
    async with client(emu, apiKey="no-such-key") as ex:
        with pytest.raises(ccxt.BadRequest, match="10072"):  # ccxt maps MEXC's 10072 to BadRequest
            await ex.load_markets()


async def test_timestamp_outside_recv_window_is_invalid_nonce(anyio_backend: str) -> None:
    now = [1_800_000_000.0]
    async with MexcEmulator(KEY, SECRET, clock=lambda: now[0]) as emu, client(emu) as ex:
        with pytest.raises(ccxt.InvalidNonce, match="700003"):
            await ex.load_markets()


async def test_weight_limit_raises_rate_limit_exceeded(anyio_backend: str) -> None:
    offset = [0.0]
    async with (
        MexcEmulator(
            KEY, SECRET, weight_limit=30, window_s=10, clock=lambda: time.time() + offset[0]
        ) as emu,
        client(emu) as ex,
    ):
        await ex.load_markets()  # getall 10 + exchangeInfo 10 (+ contract detail, not counted)
        await ex.fetch_balance()  # account 10 → 30
        with pytest.raises(ccxt.RateLimitExceeded) as info:
            await ex.fetch_balance()
        assert not isinstance(info.value, ccxt.DDoSProtection)  # a sibling: catch both
        rejected = emu.requests[-1]
        assert (rejected.status, rejected.code, rejected.weight) == (429, 429, 0)
        offset[0] = 11.0  # the window slides past
        ex.options["timeDifference"] = -11000  # keep ccxt's timestamps inside recvWindow
        assert (await ex.fetch_balance())["KAS"]["free"] == 100000.0


async def test_below_min_notional_is_invalid_order(ex: Any, emu: MexcEmulator) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="30002"):
        await ex.create_order(SYMBOL, "limit", "buy", 10, 0.05, {"postOnly": True})
    assert last(emu, "POST", "/api/v3/order").code == 30002  # the venue, not ccxt, refused it


async def test_insufficient_balance_is_insufficient_funds(ex: Any) -> None:
    with pytest.raises(ccxt.InsufficientFunds, match="30004"):
        await ex.create_order(SYMBOL, "limit", "buy", 300000, 0.0499, {"postOnly": True})


async def test_duplicate_client_id_is_rejected(ex: Any) -> None:
    params = {"postOnly": True, "clientOrderId": "dup-1"}
    await ex.create_order(SYMBOL, "limit", "buy", 100, 0.0499, params)
    with pytest.raises(ccxt.ExchangeError) as info:
        await ex.create_order(SYMBOL, "limit", "buy", 100, 0.0498, params)
    assert type(info.value) is ccxt.ExchangeError and "-2010" in str(info.value)


async def test_off_tick_or_lot_is_bad_request(ex: Any) -> None:
    # ccxt rounds to precision itself; only a raw call can send an off-tick price.
    base = {"symbol": "KASUSDT", "side": "BUY", "type": "LIMIT_MAKER"}
    with pytest.raises(ccxt.BadRequest, match="price scale is invalid"):
        await ex.spotPrivatePostOrder({**base, "quantity": "100", "price": "0.0499001"})
    with pytest.raises(ccxt.BadRequest, match="quantity scale is invalid"):
        await ex.spotPrivatePostOrder({**base, "quantity": "100.001", "price": "0.0499"})


async def test_create_orders_uses_batch_orders(ex: Any, emu: MexcEmulator) -> None:
    result = await ex.create_orders(
        [
            {"symbol": SYMBOL, "type": "limit", "side": "sell", "amount": 100, "price": 0.0502,
             "params": {"postOnly": True, "clientOrderId": "b-1"}},
            {"symbol": SYMBOL, "type": "limit", "side": "sell", "amount": 1, "price": 0.0502,
             "params": {"postOnly": True, "clientOrderId": "b-2"}},
        ]
    )  # fmt: skip
    sent = json.loads(last(emu, "POST", "/api/v3/batchOrders").params["batchOrders"])
    assert [o["type"] for o in sent] == ["LIMIT_MAKER", "LIMIT_MAKER"]
    assert result[0]["id"] and result[0]["status"] is None
    assert (result[1]["status"], result[1]["clientOrderId"]) == ("rejected", "b-2")
    assert [o["clientOrderId"] for o in emu.orders(open_only=True)] == ["b-1"]


async def test_cancel_all_orders_for_symbol(ex: Any, emu: MexcEmulator) -> None:
    for i, price in enumerate((0.0498, 0.0499)):
        await ex.create_order(
            SYMBOL, "limit", "buy", 100, price, {"postOnly": True, "clientOrderId": f"a-{i}"}
        )
    cancelled = await ex.cancel_all_orders(SYMBOL)
    assert sorted(o["status"] for o in cancelled) == ["canceled", "canceled"]
    assert await ex.fetch_open_orders(SYMBOL) == []
    assert emu.balances()["USDT"] == (D(10000), D(0))


async def test_foreign_order_is_visible_with_its_own_client_id(ex: Any, emu: MexcEmulator) -> None:
    await ex.create_order(
        SYMBOL, "limit", "buy", 100, 0.0499, {"postOnly": True, "clientOrderId": "kmm-1"}
    )
    emu.place_foreign("sell", "0.0505", 200, client_order_id="web_human_1")
    orders = await ex.fetch_open_orders(SYMBOL)
    assert sorted(o["clientOrderId"] for o in orders) == ["kmm-1", "web_human_1"]
    other_key = "other-key"
    emu.add_account(other_key, "other-secret")
    emu.place_foreign("sell", "0.0506", 200, account=other_key)
    assert len(await ex.fetch_open_orders(SYMBOL)) == 2  # another account's orders stay private
    assert len((await ex.fetch_order_book(SYMBOL))["asks"]) == 7


async def test_state_survives_an_emulator_restart(anyio_backend: str, tmp_path: Path) -> None:
    state = tmp_path / "mexc.json"
    async with MexcEmulator(KEY, SECRET, state_path=state) as emu, client(emu) as ex:
        await ex.load_markets()
        order = await ex.create_order(
            SYMBOL, "limit", "sell", 200, 0.0501, {"postOnly": True, "clientOrderId": "r-1"}
        )
        emu.trade("buy", "0.0501", 50)
        before = (emu.orders(), emu.fills(), emu.balances())
    async with MexcEmulator(KEY, SECRET, state_path=state) as emu, client(emu) as ex:
        assert (emu.orders(), emu.fills(), emu.balances()) == before
        fetched = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "r-1"})
        assert (fetched["id"], fetched["status"], fetched["filled"]) == (order["id"], "open", 50.0)
        again = await ex.create_order(SYMBOL, "limit", "sell", 100, 0.0502, {"postOnly": True})
        assert again["id"] != order["id"]


async def test_runs_as_its_own_process(anyio_backend: str, tmp_path: Path) -> None:
    args = ["--port", "0", "--api-key", KEY, "--secret", SECRET, "--mid", "0.05"]
    args += ["--state", str(tmp_path / "state.json")]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.emulators.mexc",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
        assert line["url"].startswith("http://127.0.0.1:") and line["pid"] == proc.pid
        foreign = {"side": "buy", "price": "0.0499", "qty": 100}
        async with (
            aiohttp.ClientSession() as session,
            session.post(line["url"] + "/_emu/foreign", json=foreign) as answer,
        ):
            assert answer.status == 200
        ex = ccxt.mexc(
            {"apiKey": KEY, "secret": SECRET, "enableRateLimit": False, "timeout_on_exit": 0}
        )
        configure_ccxt(ex, line["url"])
        try:
            assert [o["price"] for o in await ex.fetch_open_orders(SYMBOL)] == [0.0499]
        finally:
            await ex.close()
    finally:
        proc.terminate()
        await proc.communicate()
    assert proc.returncode == 0
    assert json.loads((tmp_path / "state.json").read_text())["orders"][0]["price"] == "0.0499"


async def test_lost_answer_leaves_the_order_placed(ex: Any, emu: MexcEmulator) -> None:
    emu.inject_fault("POST", "/api/v3/order", status=504, after=True)  # processed, answer lost
    with pytest.raises(ccxt.RequestTimeout):  # MEXC code 504 → RequestTimeout
        await ex.create_order(SYMBOL, "limit", "buy", 100, 0.0499, {"clientOrderId": "lost-1"})
    found = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "lost-1"})
    assert found["status"] == "open"
    emu.inject_fault("DELETE", "/api/v3/order", status=503)  # refused before processing
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await ex.cancel_order(found["id"], SYMBOL)
    assert len(emu.orders(open_only=True)) == 1


async def test_ioc_and_market_orders_take_synthetic_liquidity(ex: Any, emu: MexcEmulator) -> None:
    ioc = await ex.create_order(SYMBOL, "limit", "buy", 1500, 0.05005, {"timeInForce": "IOC"})
    assert last(emu, "POST", "/api/v3/order").params["type"] == "IMMEDIATE_OR_CANCEL"
    fetched = await ex.fetch_order(ioc["id"], SYMBOL)
    assert (fetched["status"], fetched["filled"]) == ("canceled", 1000.0)  # PARTIALLY_CANCELED
    market = await ex.create_order(SYMBOL, "market", "sell", 100)
    fetched = await ex.fetch_order(market["id"], SYMBOL)
    assert (fetched["status"], fetched["filled"], fetched["cost"]) == ("closed", 100.0, 4.995)
    assert emu.balances()["KAS"][1] == 0 and emu.balances()["USDT"][1] == 0


async def test_batch_orders_weigh_one_and_are_limited_to_two_per_second(
    anyio_backend: str,
) -> None:
    now = [time.time()]
    async with (
        MexcEmulator(KEY, SECRET, clock=lambda: now[0], check_timestamp=False) as emu,
        client(emu) as ex,
    ):
        await ex.load_markets()

        def orders(tag: str) -> list[dict[str, Any]]:
            return [
                {"symbol": SYMBOL, "type": "limit", "side": side, "amount": 100, "price": price,
                 "params": {"postOnly": True, "clientOrderId": f"{tag}{side}"}}
                for side, price in (("buy", 0.049), ("sell", 0.051))
            ]  # fmt: skip

        await ex.create_orders(orders("a"))
        await ex.create_orders(orders("b"))
        with pytest.raises(ccxt.RateLimitExceeded):
            await ex.create_orders(orders("c"))  # MEXC: "rate limit: 2 times/s"
        now[0] += 1.0
        await ex.create_orders(orders("d"))
        batches = [r for r in emu.requests if r.path == "/api/v3/batchOrders"]
        assert [(r.status, r.weight) for r in batches] == [(200, 1), (200, 1), (429, 0), (200, 1)]
        assert len(emu.orders(open_only=True)) == 6
