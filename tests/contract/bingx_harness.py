"""Contract harness of ``CcxtVenue`` on the BingX emulator: unmodified ccxt over REST polling.

Built like the MEXC and Gate harnesses (:mod:`.ccxt_harness`: ``build_exchange`` from a
``CcxtVenueConfig`` whose ``rest_url`` is the emulator, so kasmm's own override of
``urls['api']['spot']`` with ``rest_url + '/openApi'`` is what points ccxt at it), with
``use_websocket=False``: kasmm's override leaves ``urls['api']['user']`` (the listen-key calls
ccxt.pro makes before any private stream) on open-api.bingx.com, so the websocket variant
cannot run through kasmm's settings alone. The dead man's switch (``cancelAllOrdersAfter``)
stays armed while events run; ``close()`` must disarm it. Importing this module registers the
harness as ``ccxt-bingx`` in :data:`.conftest.VENUE_FACTORIES`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.emulators.bingx import BingxEmulator

from .conftest import VENUE_FACTORIES, Harness


@asynccontextmanager
async def ccxt_bingx_harness() -> AsyncIterator[Harness]:
    """``CcxtVenue`` on the BingX emulator over REST polling, dead man's switch armed."""
    # Imported here: ``ccxt_harness`` imports ``conftest``, which imports this module.
    from .ccxt_harness import API_KEY, SECRET, EmulatorDriver, _connected, ccxt_venue

    async with BingxEmulator(api_key=API_KEY, secret=SECRET, rate_limits=None) as emu:
        emu.set_mid("0.1", spread_bps=20)
        venue = ccxt_venue("bingx", emu.base_url, dead_man_switch_s=60.0)
        async with _connected(venue, EmulatorDriver(emu)) as harness:
            yield harness
        assert emu.internal_errors == []
        assert emu.engine.timers == {}, "close() must disarm the dead man's switch"


VENUE_FACTORIES["ccxt-bingx"] = ccxt_bingx_harness
