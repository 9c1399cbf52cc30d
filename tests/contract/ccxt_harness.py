"""Contract harnesses of ``CcxtVenue``: unmodified ccxt against the loopback exchange emulators.

The venue is built as production builds it (``build_exchange`` from a ``CcxtVenueConfig``), with
``rest_url`` (and ``ws_url``) pointing at the emulator, so the URL overrides are exercised too.
Each exchange runs twice: over REST polling (``use_websocket=False``) and over ``ccxt.pro``
websockets speaking the exchange's protocol (``-ws``); polls are fast so that fills arrive
quickly, and the emulators' own rate limits are off (rate limiting is not part of the contract).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, Protocol

from pydantic import SecretStr

from kasmm.clock import RealClock
from kasmm.config.schema import CcxtVenueConfig, Credentials
from kasmm.config.secrets import ResolvedCredentials
from kasmm.core.types import Side
from kasmm.limiter import TokenBucket
from kasmm.venues.base import Venue
from kasmm.venues.ccxt import CcxtVenue, StreamSettings
from kasmm.venues.ccxt.client import build_exchange
from kasmm.venues.ccxt.exchanges import flavour_for
from kasmm.venues.ccxt.shared_book import BookFeed
from tests.emulators.gate import GateEmulator
from tests.emulators.mexc import MexcEmulator

from .harness import Harness

API_KEY = "contract-key"
SECRET = "contract-secret-0123456789"
FAST = StreamSettings(book_interval_s=0.05, orders_interval_s=0.05, trades_safety_s=0.5)


class _Emulator(Protocol):
    def trade(self, side: str, price: object, size: object) -> Any: ...


class EmulatorDriver:
    """Driver of an emulated exchange: an outside taker trades through the resting order."""

    prefix = "ct"
    foreign_prefix = "zz"

    def __init__(self, emulator: _Emulator) -> None:
        self.emulator = emulator

    async def make_cross(self, venue: Venue, side: Side, price: Decimal) -> None:
        """Trade (as the other side) everything the account rests at ``price`` on ``side``."""
        size = sum(
            (o.remaining for o in await venue.fetch_open_orders() if o.side is side),
            Decimal(0),
        )
        assert size > 0, f"no {side} order of the account rests at {price}"
        self.emulator.trade(side.opposite.value, price, size)


def ccxt_venue(
    exchange: str,
    rest_url: str,
    *,
    dead_man_switch_s: float | None,
    ws_url: str | None = None,
    websocket: bool | None = None,
    password: str | None = None,
    book_feed: BookFeed | None = None,
) -> CcxtVenue:
    """A ``CcxtVenue`` as ``build_venue`` makes it, pointed at ``rest_url`` (and, with
    ``ws_url``, streaming books and fills from ``ccxt.pro`` websockets there).

    :param websocket: stream over websockets (default: when ``ws_url`` is given; KuCoin's
        endpoint comes from the bullet answer of ``rest_url``, so it streams without one).
    :param password: the API passphrase (KuCoin).
    :param book_feed: take the public book from this shared feed (a market hub's).
    """
    if websocket is None:
        websocket = ws_url is not None
    config = CcxtVenueConfig(
        type="ccxt",
        exchange=exchange,
        credentials=Credentials(
            api_key="${EMU_KEY}",
            secret="${EMU_SECRET}",
            password=None if password is None else "${EMU_PASSPHRASE}",
        ),
        rest_url=rest_url,
        ws_url=ws_url,
        use_websocket=websocket,
        timeout_s=5.0,
    )
    credentials = ResolvedCredentials(
        SecretStr(API_KEY), SecretStr(SECRET), None if password is None else SecretStr(password)
    )
    clock = RealClock()

    def factory() -> Any:
        instance = build_exchange(config, credentials, flavour_for(exchange), websocket=websocket)
        instance.timeout_on_exit = 0  # no 250 ms grace sleep on close (no TLS to shut down)
        return instance

    return CcxtVenue(
        config,
        "KAS/USDT",
        clock,
        TokenBucket(1_000, 1_000, clock, name="contract"),
        credentials=credentials,
        exchange_factory=factory,
        use_websocket=websocket,
        stream=FAST,
        dead_man_switch_s=dead_man_switch_s,
        book_feed=book_feed,
    )


@asynccontextmanager
async def _connected(venue: CcxtVenue, driver: EmulatorDriver) -> AsyncIterator[Harness]:
    await venue.connect()
    try:
        yield Harness(venue, venue.clock, driver)
    finally:
        try:
            await venue.cancel_all("")
        finally:
            await venue.close()


@asynccontextmanager
async def ccxt_mexc_harness(*, websocket: bool = False) -> AsyncIterator[Harness]:
    """``CcxtVenue`` on the MEXC emulator (no dead man's switch on MEXC spot), over REST
    polling or, with ``websocket``, over its protobuf websockets."""
    async with MexcEmulator(api_key=API_KEY, secret=SECRET, weight_limit=None) as emu:
        emu.set_mid("0.1", spread_bps=20)
        ws_url = emu.ws_url if websocket else None
        venue = ccxt_venue("mexc", emu.base_url, dead_man_switch_s=60.0, ws_url=ws_url)
        async with _connected(venue, EmulatorDriver(emu)) as harness:
            yield harness
        assert emu.internal_errors == []


@asynccontextmanager
async def ccxt_gate_harness(*, websocket: bool = False) -> AsyncIterator[Harness]:
    """``CcxtVenue`` on the Gate emulator, dead man's switch armed while events run, over REST
    polling or, with ``websocket``, over its websockets (``spot.obu``, as ccxt uses on gate.io)."""
    async with GateEmulator(api_key=API_KEY, secret=SECRET, limit=None) as emu:
        emu.set_mid("0.1", spread_bps=20)
        ws_url = emu.ws_url if websocket else None
        venue = ccxt_venue("gate", emu.base_url, dead_man_switch_s=60.0, ws_url=ws_url)
        async with _connected(venue, EmulatorDriver(emu)) as harness:
            yield harness
        assert emu.countdowns == {}, "close() must disarm the dead man's switch"
