"""Contract harness of ``PaperVenue``: local fills on a scripted public feed (no network).

The feed publishes :data:`PAPER_BOOK` and repeats it while nothing else is scripted, like REST
polls of a quiet market. The driver fills a resting order the way a live market would: a public
trade prints one tick through its price, much bigger than the bot's orders.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

from kasmm.clock import VirtualClock
from kasmm.config.schema import PaperVenueConfig
from kasmm.core.types import Side
from kasmm.venues.base import Venue
from kasmm.venues.paper import PaperVenue
from kasmm.venues.public_data import PublicTrade
from tests.paper_fakes import FakeFeed, make_book

from .harness import Harness

#: The live-looking KAS/USDT book the scripted feed publishes.
PAPER_BOOK = make_book(
    [("0.080000", "5000"), ("0.079990", "8000"), ("0.079980", "9000")],
    [("0.080100", "4000"), ("0.080110", "7000"), ("0.080120", "9000")],
)


class PaperDriver:
    """Driver of the paper venue: a public trade prints through the price."""

    prefix = "ct"
    foreign_prefix = "zz"

    def __init__(self, feed: FakeFeed, clock: VirtualClock) -> None:
        self.feed = feed
        self.clock = clock
        self.trades = 0

    async def make_cross(self, venue: Venue, side: Side, price: Decimal) -> None:
        """A trade one tick through ``price`` (the taker on the other side), 10⁹ in size."""
        assert isinstance(venue, PaperVenue)
        tick = venue.rules.tick
        through = price - tick if side is Side.BUY else price + tick
        self.trades += 1
        trade = PublicTrade(
            through, Decimal(10**9), side.opposite, self.clock.now(), f"ct{self.trades}"
        )
        self.feed.push(trade)


@asynccontextmanager
async def paper_harness() -> AsyncIterator[Harness]:
    """The paper venue (default config: mexc, queue at the back) on a virtual clock."""
    clock = VirtualClock(1_000.0)
    feed = FakeFeed(repeat_last_book=True)
    feed.push(PAPER_BOOK)
    venue = PaperVenue(
        PaperVenueConfig(type="paper", exchange="mexc"), "KAS/USDT", clock, feed=feed
    )
    await venue.connect()
    try:
        yield Harness(venue, clock, PaperDriver(feed, clock))
    finally:
        await venue.cancel_all("")
        await venue.close()
