"""Build the venue a profile asks for, with its rate limiting and request deadlines."""

from __future__ import annotations

from kasmm.clock import Clock
from kasmm.config.schema import Profile, SimVenueConfig
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

    :raises FatalVenueError: the venue type is not available in this build.
    """
    if isinstance(profile.venue, SimVenueConfig):
        from kasmm.venues.sim import SimVenue

        sim = SimVenue(profile.venue, profile.symbol, clock)
        return RateLimitedVenue(TimeoutVenue(sim, SIM_REQUEST_TIMEOUT_S), limiter)
    raise FatalVenueError(
        f"venue type {profile.venue.type!r} ({profile.venue.exchange}) is not implemented yet; "
        "use venue.type: sim"
    )
