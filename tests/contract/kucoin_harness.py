"""Contract harness of ``CcxtVenue`` on the KuCoin emulator: unmodified ccxt, REST or ccxt.pro.

Built like the MEXC and Gate harnesses (:mod:`.ccxt_harness`): ``build_exchange`` from a
``CcxtVenueConfig`` whose ``rest_url`` is the emulator, so kasmm's override of
``urls['api']['public'|'private']`` is what points ccxt at it, with the kucoin flavour's options
(``hf``, no UTA, spot markets only, no margin lists). KuCoin needs a passphrase
(``credentials.password``), which :func:`.ccxt_harness.ccxt_venue` does not pass, hence the
venue is built here. ``ccxt-kucoin`` polls REST (``use_websocket=False``); ``ccxt-kucoin-ws``
streams through ccxt.pro, whose bullet handshake (on ``rest_url``) names the emulator's
websocket, so kasmm needs no ``ws_url`` for KuCoin. The dead man's switch (HF ``dead-cancel-all``,
60 s for KAS-USDT) is armed after connecting, as ``events()`` arms it, and ``close()`` must
disarm it (``timeout: -1``). ``conftest._register_ccxt`` registers both.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kasmm.venues.ccxt import CcxtVenue
from tests.emulators.kucoin import KucoinEmulator

from .ccxt_harness import API_KEY, SECRET, EmulatorDriver, _connected, ccxt_venue
from .harness import Harness

PASSPHRASE = "contract-passphrase"


def kucoin_venue(
    rest_url: str, *, dead_man_switch_s: float | None, websocket: bool = False
) -> CcxtVenue:
    """A ``CcxtVenue`` on KuCoin as ``build_venue`` makes it, pointed at ``rest_url`` (with
    ``websocket``, streaming from ``ccxt.pro``: the bullet handshake on ``rest_url`` names the
    websocket endpoint, so no ``ws_url`` is needed)."""
    return ccxt_venue(
        "kucoin",
        rest_url,
        dead_man_switch_s=dead_man_switch_s,
        websocket=websocket,
        password=PASSPHRASE,
    )


@asynccontextmanager
async def ccxt_kucoin_harness(*, websocket: bool = False) -> AsyncIterator[Harness]:
    """``CcxtVenue`` on the KuCoin emulator over REST polling or, with ``websocket``, over
    ccxt.pro's level2 and order streams; dead man's switch armed."""
    async with KucoinEmulator(
        API_KEY, SECRET, PASSPHRASE, spot_quota=None, public_quota=None
    ) as emu:
        emu.set_mid("0.1", spread_bps=20)
        venue = kucoin_venue(emu.base_url, dead_man_switch_s=60.0, websocket=websocket)
        async with _connected(venue, EmulatorDriver(emu)) as harness:
            # Armed as events() arms it (the suite's short event reads end before its timer).
            assert await venue.refresh_dead_man_switch()
            assert set(emu.countdowns) == {(API_KEY, "KAS-USDT")}
            yield harness
        assert emu.internal_errors == []
        assert emu.countdowns == {}, "close() must disarm the dead man's switch"
        timeouts = [
            json.loads(r.body).get("timeout")
            for r in emu.requests
            if r.path == "/api/v1/hf/orders/dead-cancel-all" and r.status == 200
        ]
        assert timeouts[0] == 60 and timeouts[-1] == -1, timeouts
