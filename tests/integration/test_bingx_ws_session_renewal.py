"""BingX through ``ccxt.pro``: a websocket session after a server close comes back whole.

Each websocket session drops ccxt's cached listen key (an expired one would be reused), but
ccxt's BingX asks for a new key only when its last one is older than ``listenKeyRefreshRate``
(an hour): the venue resets that time too, or every session after the first fails with
``AuthenticationError('... requires a websocket URL and a listen key')`` and books and fills go
REST-only for an hour.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import structlog.testing

from kasmm.core.types import VenueEvent
from kasmm.venues.ccxt import StreamSettings
from tests.contract.ccxt_harness import API_KEY, SECRET, ccxt_venue
from tests.emulators.bingx import BingxEmulator
from tests.emulators.bingx_ws import depth_topic
from tests.support import eventually

pytestmark = pytest.mark.anyio

PRIVATE = "spot.executionReport"


async def test_a_session_after_a_server_close_gets_a_new_listen_key_and_serves() -> None:
    async with BingxEmulator(api_key=API_KEY, secret=SECRET, rate_limits=None) as emu:
        emu.set_mid("0.1", spread_bps=20)
        venue = ccxt_venue("bingx", emu.base_url, dead_man_switch_s=None, ws_url=emu.ws_url)
        # Quick reconnects: the test is about what the next session does, not when.
        venue.settings = StreamSettings(ws_backoff_s=0.1, ws_backoff_max_s=0.1)
        await venue.connect()
        stream = venue.events()
        events: list[VenueEvent] = []

        async def collect() -> None:
            async for event in stream:
                events.append(event)

        with structlog.testing.capture_logs() as logs:
            task = asyncio.ensure_future(collect())
            try:
                book = depth_topic("KAS-USDT")
                await emu.ws.wait_subscribed(PRIVATE)
                await emu.ws.wait_subscribed(book)
                keys_before = len(
                    [r for r in emu.requests if r.path.endswith("/user/auth/userDataStream")]
                )
                await emu.ws.close_all()
                # The next session asks for a new listen key and subscribes both streams again.
                await emu.ws.wait_for(lambda hub: len(hub.subscribed(PRIVATE)) == 1)
                await emu.ws.wait_subscribed(book)
                keys = [r for r in emu.requests if r.path.endswith("/user/auth/userDataStream")]
                assert len(keys) == keys_before + 1
                await eventually(
                    lambda: sum(1 for e in logs if e["event"] == "websocket_started") == 2
                )
                failures = [e.get("error") for e in logs if e["event"] == "websocket_failed"]
                assert failures == ["NetworkError"]  # the close; no AuthenticationError after
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await stream.aclose()
                await venue.close()
        assert emu.internal_errors == []
