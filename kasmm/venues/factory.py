"""Build the venue a profile asks for."""

from __future__ import annotations

from kasmm.clock import Clock
from kasmm.config.schema import Profile, SimVenueConfig
from kasmm.errors import FatalVenueError
from kasmm.venues.base import Venue


def build_venue(profile: Profile, clock: Clock) -> Venue:
    """Instantiate ``profile.venue``.

    :raises FatalVenueError: the venue type is not available in this build.
    """
    if isinstance(profile.venue, SimVenueConfig):
        from kasmm.venues.sim import SimVenue

        return SimVenue(profile.venue, profile.symbol, clock)
    raise FatalVenueError(
        f"venue type {profile.venue.type!r} ({profile.venue.exchange}) is not implemented yet; "
        "use venue.type: sim"
    )
