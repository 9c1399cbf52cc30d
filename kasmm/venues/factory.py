"""Build the venue a profile asks for, with its rate limiting and request deadlines."""

from __future__ import annotations

from pathlib import Path
from typing import assert_never

from kasmm.clock import Clock
from kasmm.config.schema import (
    CcxtVenueConfig,
    PaperVenueConfig,
    Profile,
    ReplayMarket,
    SimVenueConfig,
)
from kasmm.config.secrets import resolve_credentials
from kasmm.errors import FatalVenueError
from kasmm.limiter import TokenBucket
from kasmm.venues.base import Venue
from kasmm.venues.guard import TimeoutVenue
from kasmm.venues.limited import RateLimitedVenue

#: Deadline of a simulated venue request (they are instant unless latency is simulated).
SIM_REQUEST_TIMEOUT_S = 5.0


def build_venue(profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
    """Instantiate ``profile.venue``, its requests drawing from ``limiter``.

    The deadline sits inside the limiter: time spent waiting for tokens is not a timeout (a
    request that never left cannot have an unknown outcome).

    A ccxt venue takes ccxt's per-endpoint costs from ``limiter`` inside its request path and
    bounds each HTTP request with ccxt's own ``timeout`` (``venue.timeout_s``), which starts after
    the tokens were granted; its credentials are resolved here, from the environment or
    ``$CREDENTIALS_DIRECTORY``, and stay ``SecretStr`` until ccxt's constructor.

    :raises FatalVenueError: the venue type is not available in this build.
    :raises MissingSecret: a credential reference cannot be resolved.
    """
    if isinstance(profile.venue, SimVenueConfig):
        from kasmm.venues.sim import SimVenue

        market = profile.venue.market
        sim: Venue
        if isinstance(market, ReplayMarket):
            # Recorded data: on a real clock it plays from now at the recorded pace.
            from kasmm.backtest.replay import ReplayVenue

            sim = ReplayVenue(
                profile.venue,
                profile.symbol,
                clock,
                Path(market.path),
                queue_position=market.queue_position,
            )
        else:
            sim = SimVenue(profile.venue, profile.symbol, clock)
        return RateLimitedVenue(TimeoutVenue(sim, SIM_REQUEST_TIMEOUT_S), limiter)
    if isinstance(profile.venue, CcxtVenueConfig):
        from kasmm.venues.ccxt import FLAVOURS, CcxtVenue
        from kasmm.venues.ccxt.stream import StreamSettings

        if profile.venue.exchange not in FLAVOURS:
            raise FatalVenueError(
                f"exchange {profile.venue.exchange!r} is not supported through ccxt; "
                f"use one of {', '.join(sorted(FLAVOURS))}"
            )
        credentials = resolve_credentials(profile.venue.credentials)
        return CcxtVenue(
            profile.venue,
            profile.symbol,
            clock,
            limiter,
            credentials=credentials,
            use_websocket=profile.venue.use_websocket,
            stream=StreamSettings(book_interval_s=profile.venue.book_poll_s),
            dead_man_switch_s=profile.venue.dead_man_switch_s,
        )
    if isinstance(profile.venue, PaperVenueConfig):
        from kasmm.venues.paper import PaperVenue

        # Requests are local and instant (connect loads the market over the network, under
        # TimeoutVenue's connect deadline); the limiter paces the bot as it would be live.
        paper = PaperVenue(profile.venue, profile.symbol, clock)
        return RateLimitedVenue(TimeoutVenue(paper, SIM_REQUEST_TIMEOUT_S), limiter)
    assert_never(profile.venue)


def profile_rate_budget(profile: Profile) -> tuple[float, float]:
    """(capacity, refill per second) of the profile's own bucket.

    An explicit ``rate_limit`` wins. Otherwise a ccxt profile gets its exchange's published
    budget, in ccxt cost units (the schema's generic default is too small for REST polling).
    """
    if "rate_limit" not in profile.model_fields_set and isinstance(profile.venue, CcxtVenueConfig):
        from kasmm.venues.ccxt.exchanges import default_rate_budget

        budget = default_rate_budget(profile.venue.exchange)
        if budget is not None:
            return budget.capacity, budget.refill_per_s
    return profile.rate_limit.capacity, profile.rate_limit.refill_per_s
