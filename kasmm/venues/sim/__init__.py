"""The simulated exchange (``venue.type: sim``): strict order rules, seeded market models."""

from kasmm.venues.sim.state import SimStats
from kasmm.venues.sim.venue import SimVenue

__all__ = ["SimStats", "SimVenue"]
