"""The emulators' shared websocket layer (``tests.emulators.wire``): topics and wire faults.

A plain aiohttp client talks to a hub whose protocol is "a text message subscribes to that topic";
each fault is checked by what the client receives, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from tests.emulators.wire import WsConnection, WsHub

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def _served() -> AsyncIterator[tuple[WsHub, aiohttp.ClientWebSocketResponse]]:
    async def on_message(conn: WsConnection, data: str | bytes) -> None:
        topic = data if isinstance(data, str) else data.decode()
        conn.topics.add(topic)
        conn.send_control(f"subscribed:{topic}")
        await hub.subscription_changed()

    hub = WsHub(on_message=on_message)
    app = web.Application()
    app.router.add_get("/ws", hub.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws,
        ):
            await ws.send_str("book")
            assert await ws.receive_str(timeout=5) == "subscribed:book"
            yield hub, ws
    finally:
        await hub.shutdown()
        await runner.cleanup()


async def _receive(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[str]:
    return [await ws.receive_str(timeout=5) for _ in range(n)]


async def test_publish_reaches_subscribers_only() -> None:
    async with _served() as (hub, ws):
        assert hub.publish("trades", "t1") == 0
        assert hub.publish("book", "b1") == 1
        assert await _receive(ws, 1) == ["b1"]


async def test_drop_duplicate_and_reorder_act_on_data_in_order() -> None:
    async with _served() as (hub, ws):
        hub.inject("book", drop=1, duplicate=1)
        for i in range(4):
            hub.publish("book", f"m{i}")
        hub.inject("book", reorder=1)
        for i in range(4, 7):
            hub.publish("book", f"m{i}")
        # m0 lost (a gap), m1 twice, then m4 and m5 swapped.
        assert await _receive(ws, 7) == ["m1", "m1", "m2", "m3", "m5", "m4", "m6"]
        (conn,) = hub.connections.values()
        assert (conn.published, conn.delivered) == (7, 7)


async def test_a_stall_keeps_the_socket_and_control_but_loses_data() -> None:
    async with _served() as (hub, ws):
        assert hub.stall("book") == 1
        hub.publish("book", "lost")
        await ws.send_str("trades")  # control still answers during the stall
        assert await _receive(ws, 1) == ["subscribed:trades"]
        hub.resume("book")
        hub.publish("book", "after")
        assert await _receive(ws, 1) == ["after"]


async def test_close_ends_the_client_socket() -> None:
    async with _served() as (hub, ws):
        assert await hub.close_all("book", code=4000) == 1
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        await hub.wait_for(lambda h: not h.connections)
        assert hub.accepted == 1


async def test_latency_delays_every_message_in_order() -> None:
    async with _served() as (hub, ws):
        hub.inject(None, latency_s=0.05)
        loop_time = asyncio.get_running_loop().time
        start = loop_time()
        hub.publish("book", "d1")
        await ws.send_str("x")
        assert await _receive(ws, 2) == ["d1", "subscribed:x"]
        assert loop_time() - start >= 0.05
