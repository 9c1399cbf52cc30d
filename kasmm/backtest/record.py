"""Recording a live market's public books and trades in the replay format (``kasmm record``,
whose command is :mod:`kasmm.commands.record`).

The data comes from the same :class:`~kasmm.venues.paper_feed.PublicFeed` the paper venue trades
on (:class:`~kasmm.venues.paper_feed.CcxtPublicFeed`: websockets, or REST polling), built from a
``paper`` or ``ccxt`` profile's venue settings: ``exchange``, ``rest_url``, ``use_websocket``,
and the REST poll interval (``poll_interval_s``, ``book_poll_s``). Only public endpoints are
called; a ccxt profile's credentials are never resolved.

Every item is written as it arrives, in arrival order, with the feed's timestamp (the
exchange's, when it sends one): a book as one snapshot of at most ``depth`` levels a side, a
trade as one row. The metadata line records the market's rules and the exchange, so that
``kasmm backtest --market replay --data FILE`` replays on the recorded market's grid.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass
from typing import TextIO

import anyio

from kasmm.config.schema import CcxtVenueConfig, PaperVenueConfig, Profile
from kasmm.errors import KasmmError
from kasmm.venues.paper_feed import CcxtPublicFeed
from kasmm.venues.public_data import PublicFeed

from .replay import ReplayWriter

#: Book levels per side written by default.
DEFAULT_DEPTH = 20
#: Rows between two flushes of the output file.
FLUSH_EVERY = 500


@dataclass(frozen=True)
class RecordStats:
    """What a recording wrote."""

    books: int
    trades: int
    rows: int
    symbol: str
    source: str


def feed_for_profile(profile: Profile) -> tuple[PublicFeed, str]:
    """The public feed of a paper or ccxt profile's market, and the exchange's name.

    :raises KasmmError: the profile's venue has no live market (the simulator).
    """
    venue = profile.venue
    if isinstance(venue, PaperVenueConfig):
        feed = CcxtPublicFeed(
            venue.exchange,
            profile.symbol,
            rest_url=venue.rest_url,
            use_websocket=venue.use_websocket,
            poll_interval_s=venue.poll_interval_s,
            timeout_s=venue.timeout_s,
        )
        return feed, venue.exchange
    if isinstance(venue, CcxtVenueConfig):
        feed = CcxtPublicFeed(
            venue.exchange,
            profile.symbol,
            rest_url=venue.rest_url,
            use_websocket=venue.use_websocket,
            poll_interval_s=venue.book_poll_s,
            timeout_s=venue.timeout_s,
        )
        return feed, venue.exchange
    raise KasmmError(
        f"profile {profile.name!r} trades on the simulator: record needs a paper or ccxt venue"
    )


async def record(
    feed: PublicFeed,
    out: TextIO,
    *,
    duration_s: float,
    depth: int | None = DEFAULT_DEPTH,
    source: str = "",
) -> RecordStats:
    """Write ``feed``'s market to ``out`` for ``duration_s`` seconds (wall clock), then close it.

    :raises VenueError: the market could not be loaded, or the feed failed for good.
    """
    writer = ReplayWriter(out, depth=depth)
    written = 0
    try:
        # Inside the try: a market that cannot be loaded still closes the feed's session.
        rules = await feed.load_market()
        writer.header(rules, source=source)
        with anyio.move_on_after(duration_s):
            async with aclosing(feed.watch()) as items:
                async for item in items:
                    writer.item(item)
                    if writer.rows - written >= FLUSH_EVERY:
                        written = writer.rows
                        writer.flush()
    finally:
        writer.flush()
        with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
            await feed.close()
    return RecordStats(writer.books, writer.trades, writer.rows, rules.symbol, source)
