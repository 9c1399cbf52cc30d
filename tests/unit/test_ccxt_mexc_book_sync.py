"""kasmm's repair of ccxt's MEXC depth sync (``kasmm.venues.ccxt.mexc_book``), on the emulator.

The same scenario as ``test_ccxt_skips_the_aggregated_push_that_spans_its_snapshot`` (which pins
ccxt's own behaviour): an aggregated push spans the REST snapshot's version; with the repair
installed, ccxt's book ends equal to the exchange's.
"""

from __future__ import annotations

import asyncio

import pytest

from kasmm.venues.ccxt.mexc_book import repair_mexc_book_sync, straddles
from tests.emulators.mexc import MexcEmulator
from tests.unit.test_emulator_mexc_ws import (
    DEPTH,
    KEY,
    SECRET,
    SNAPSHOT_DELAY,
    SYMBOL,
    book_at,
    client_book,
    engine_book,
    pro,
    version,
    watch_until,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("delta", "nonce", "expected"),
    [
        ({"fromVersion": "5", "toVersion": "7"}, 6, True),
        ({"fromVersion": "5", "toVersion": "7"}, 5, True),
        ({"fromVersion": "5", "toVersion": "7"}, 7, False),  # all in the snapshot
        ({"fromVersion": "8", "toVersion": "9"}, 7, False),  # after it: ccxt applies it
        ({"fromVersion": "5", "toVersion": "7"}, None, False),
        ({"toVersion": "7"}, 6, False),
        ("not a delta", 6, False),
    ],
)
def test_straddles(delta: object, nonce: int | None, expected: bool) -> None:
    assert straddles(delta, nonce) is expected


async def test_a_push_straddling_the_snapshot_is_applied() -> None:
    options = {"depth_window_s": 3600.0}  # windows the test ends by hand
    async with MexcEmulator(KEY, SECRET, ws_options=options) as emu, pro(emu) as ex:
        repair_mexc_book_sync(ex)
        emu.set_mid("0.05", size=1000)
        first = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
        await emu.ws.wait_subscribed(DEPTH)
        emu.inject_fault("GET", "/api/v3/depth", status=200, delay_s=0.3)  # a slow snapshot
        for i in range(SNAPSHOT_DELAY + 1):
            emu.set_mid("0.05", size=1001 + i)
            emu.ws_protocol.flush_depth()
        asked = lambda: "/api/v3/depth" in [r.path for r in emu.requests]  # noqa: E731
        await watch_until(lambda: asyncio.sleep(0.01), asked)
        emu.place_foreign("buy", "0.0498", 50)  # the open window, before the snapshot
        emu.place_foreign("buy", "0.0497", 100)
        await asyncio.wait_for(first, 5)
        emu.place_foreign("buy", "0.0496", 100)  # same window, after the snapshot
        emu.ws_protocol.flush_depth()
        emu.place_foreign("sell", "0.0503", 100)
        emu.ws_protocol.flush_depth()
        await book_at(ex, version(emu))
        assert client_book(ex) == engine_book(emu)
