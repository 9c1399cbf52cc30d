"""The simulated exchange (``venue.type: sim``): strict order rules, seeded market models."""

from kasmm.venues.sim.state import SimStats
from kasmm.venues.sim.venue import SimVenue
from kasmm.venues.sim.world import SimWorlds, WorldConflict

__all__ = ["SimStats", "SimVenue", "SimWorlds", "WorldConflict"]
