"""Contract harness of ``CcxtVenue`` on the BingX emulator: unmodified ccxt over REST polling,
or ``ccxt.pro`` over BingX's gzip websockets.

Built like the MEXC and Gate harnesses (:mod:`.ccxt_harness`: ``build_exchange`` from a
``CcxtVenueConfig`` whose ``rest_url`` is the emulator, so kasmm's own override of
``urls['api']['spot']`` and ``['user']`` (the listen-key calls) with ``rest_url + '/openApi'`` is
what points ccxt at it, and ``ws_url`` at its websocket). The dead man's switch
(``cancelAllOrdersAfter``) stays armed while events run; ``close()`` must disarm it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.emulators.bingx import BingxEmulator

from .ccxt_harness import API_KEY, SECRET, EmulatorDriver, _connected, ccxt_venue
from .harness import Harness


@asynccontextmanager
async def ccxt_bingx_harness(*, websocket: bool = False) -> AsyncIterator[Harness]:
    """``CcxtVenue`` on the BingX emulator, dead man's switch armed."""
    async with BingxEmulator(api_key=API_KEY, secret=SECRET, rate_limits=None) as emu:
        emu.set_mid("0.1", spread_bps=20)
        ws_url = emu.ws_url if websocket else None
        venue = ccxt_venue("bingx", emu.base_url, dead_man_switch_s=60.0, ws_url=ws_url)
        async with _connected(venue, EmulatorDriver(emu)) as harness:
            yield harness
        assert emu.internal_errors == []
        assert emu.engine.timers == {}, "close() must disarm the dead man's switch"
