"""Fixtures of the ``Venue`` contract suite: one harness per venue implementation.

Every test in ``test_venue_contract.py`` runs once per entry of :data:`VENUE_FACTORIES`. A factory
is an async context manager yielding a :class:`Harness`: a connected venue with funds on both
sides, its clock, and a :class:`VenueDriver` with the venue-specific hooks the suite cannot
express through the protocol (how to make the market fill a resting order). The factory cleans
up (cancels every order, closes the venue) on exit. To add a venue (the ccxt one against a
sandbox, say), write its driver and factory and register it in :data:`VENUE_FACTORIES`; a factory
may call ``pytest.skip`` when its environment (credentials, network) is missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest

from kasmm.clock import VirtualClock
from kasmm.config.schema import SimVenueConfig
from kasmm.core.types import Side
from kasmm.venues.base import Venue
from kasmm.venues.sim import SimVenue

from .harness import Harness, HarnessFactory, VenueDriver

__all__ = ["VENUE_FACTORIES", "Harness", "HarnessFactory", "VenueDriver", "harness"]


class SimDriver:
    """Driver of the simulated venue: an outside market order sweeps through the price."""

    prefix = "ct"
    foreign_prefix = "zz"

    async def make_cross(self, venue: Venue, side: Side, price: Decimal) -> None:
        """Submit a taker big enough to clear every level at ``price`` and better."""
        assert isinstance(venue, SimVenue)
        book = venue.book
        if side is Side.BUY:
            size = sum((lv.size for lv in book.bids if lv.price >= price), Decimal(0))
        else:
            size = sum((lv.size for lv in book.asks if lv.price <= price), Decimal(0))
        assert size > 0, f"nothing rests at {price} on the {side} side"
        venue.submit_taker(side.opposite, size)


@asynccontextmanager
async def sim_harness(latency_ms: float = 0.0) -> AsyncIterator[Harness]:
    """The random-walk simulated venue on a virtual clock, with default config and funds."""
    clock = VirtualClock(1_000.0)
    config = SimVenueConfig(type="sim", seed=7, latency_ms=latency_ms)
    venue = SimVenue(config, "KAS/USDT", clock)
    await venue.connect()
    try:
        yield Harness(venue, clock, SimDriver())
    finally:
        await venue.cancel_all("")
        await venue.close()


#: Venue implementations the contract suite runs against, by test id.
VENUE_FACTORIES: dict[str, HarnessFactory] = {
    "sim": sim_harness,
    # Same venue with request latency: requests advance the clock past market events.
    "sim-latency": lambda: sim_harness(latency_ms=25.0),
}


def _register_ccxt() -> None:
    """``CcxtVenue`` (unmodified ccxt) on the loopback exchange emulators, over REST polling
    and over websockets (``-ws``)."""
    from .bingx_harness import ccxt_bingx_harness
    from .ccxt_harness import ccxt_gate_harness, ccxt_mexc_harness
    from .kucoin_harness import ccxt_kucoin_harness

    VENUE_FACTORIES["ccxt-mexc"] = ccxt_mexc_harness
    VENUE_FACTORIES["ccxt-mexc-ws"] = lambda: ccxt_mexc_harness(websocket=True)
    VENUE_FACTORIES["ccxt-gate"] = ccxt_gate_harness
    VENUE_FACTORIES["ccxt-gate-ws"] = lambda: ccxt_gate_harness(websocket=True)
    VENUE_FACTORIES["ccxt-kucoin"] = ccxt_kucoin_harness
    VENUE_FACTORIES["ccxt-kucoin-ws"] = lambda: ccxt_kucoin_harness(websocket=True)
    VENUE_FACTORIES["ccxt-bingx"] = ccxt_bingx_harness
    VENUE_FACTORIES["ccxt-bingx-ws"] = lambda: ccxt_bingx_harness(websocket=True)


_register_ccxt()


def _register_paper() -> None:
    """``PaperVenue`` on a scripted public feed (local fills, no network)."""
    from .paper_harness import paper_harness

    VENUE_FACTORIES["paper"] = paper_harness


_register_paper()


@pytest.fixture(params=sorted(VENUE_FACTORIES))
async def harness(request: pytest.FixtureRequest, anyio_backend: str) -> AsyncIterator[Harness]:
    """A connected venue for one contract test, cleaned up afterwards."""
    async with VENUE_FACTORIES[request.param]() as h:
        yield h
