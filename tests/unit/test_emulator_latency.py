"""The emulators' fixed emulated latency, as unmodified ccxt clients see it.

REST (``http_latency_s``, :mod:`tests.emulators.http_latency`): a request is handled one
latency after it was sent and its answer arrives one latency after that. Websockets
(``WsHub.latency_s``): every connection, a reconnect's too, gets the one-way latency, so a push
reaches ``ccxt.pro`` one latency after the book changed. Only lower bounds are asserted: a busy
machine can only add time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from tests.emulators.bingx import BingxEmulator
from tests.emulators.gate import GateEmulator, configure_ccxt_pro
from tests.emulators.kucoin import KucoinEmulator
from tests.emulators.mexc import MexcEmulator

pytestmark = pytest.mark.anyio

LATENCY_S = 0.1


@asynccontextmanager
async def emulator_and_client(
    exchange: str, *, http_latency_s: float = 0.0, pro: bool = False
) -> AsyncIterator[tuple[Any, Any]]:
    """A started emulator and an unmodified ccxt (or ccxt.pro) client pointed at it."""
    emu: Any
    if exchange == "mexc":
        emu = MexcEmulator(weight_limit=None, http_latency_s=http_latency_s)
    elif exchange == "gate":
        emu = GateEmulator(limit=None, http_latency_s=http_latency_s)
    elif exchange == "kucoin":
        emu = KucoinEmulator(spot_quota=None, public_quota=None, http_latency_s=http_latency_s)
    else:
        emu = BingxEmulator(rate_limits=None, http_latency_s=http_latency_s)
    async with emu:
        emu.set_mid("0.1", spread_bps=20)
        client: Any
        if exchange == "gate":
            options = {"apiKey": emu.api_key, "secret": emu.secret, "enableRateLimit": False}
            client = (ccxt_pro if pro else ccxt_async).gate(options)
            configure_ccxt_pro(client, emu.base_url, emu.ws_url)
        else:
            client = emu.ccxt_pro() if pro else emu.ccxt()
        try:
            yield emu, client
        finally:
            await client.close()


@pytest.mark.parametrize("exchange", ["mexc", "gate", "kucoin", "bingx"])
async def test_a_rest_request_arrives_one_latency_late_and_its_answer_one_more(
    exchange: str,
) -> None:
    async with emulator_and_client(exchange, http_latency_s=LATENCY_S) as (emu, client):
        await client.load_markets()
        sent = time.time()
        book = await client.fetch_order_book("KAS/USDT")
        answered = time.time()
        assert book["bids"] and book["asks"]
        arrival = emu.requests[-1]
        arrived = arrival.time if exchange == "gate" else arrival.time_ms / 1000
        assert arrived - sent >= LATENCY_S - 0.002  # the server's clock has ms resolution
        assert answered - sent >= 2 * LATENCY_S


async def test_without_the_option_no_request_waits() -> None:
    async with emulator_and_client("mexc") as (emu, _):
        assert emu.http_latency_s == 0.0


@pytest.mark.parametrize("exchange", ["gate", "bingx"])
async def test_every_websocket_connection_gets_the_hubs_latency(exchange: str) -> None:
    async with emulator_and_client(exchange, pro=True) as (emu, client):
        emu.ws.latency_s = LATENCY_S
        await client.watch_order_book("KAS/USDT")
        assert [c.faults.latency_s for c in emu.ws.connections.values()] == [LATENCY_S]
        moved = time.monotonic()
        emu.set_mid("0.1002", spread_bps=20)
        book = await client.watch_order_book("KAS/USDT")
        while book["bids"][0][0] < 0.1:  # an older push still in flight
            book = await client.watch_order_book("KAS/USDT")
        assert time.monotonic() - moved >= LATENCY_S
        # A connection made later (a reconnect is one) starts with the same latency.
        second = emu.ccxt_pro() if exchange == "bingx" else _gate_pro(emu)
        try:
            await second.watch_order_book("KAS/USDT")
            latencies = [c.faults.latency_s for c in emu.ws.connections.values()]
        finally:
            await second.close()
        assert emu.ws.accepted == 2 and latencies == [LATENCY_S, LATENCY_S]


def _gate_pro(emu: Any) -> Any:
    client = ccxt_pro.gate({"apiKey": emu.api_key, "secret": emu.secret})
    configure_ccxt_pro(client, emu.base_url, emu.ws_url)
    return client
