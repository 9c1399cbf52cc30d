"""Live exchanges through ccxt: ``CcxtVenue`` and the per-exchange flavours it is built from."""

from kasmm.venues.ccxt.exchanges import FLAVOURS, Flavour, RateBudget, default_rate_budget
from kasmm.venues.ccxt.stream import StreamSettings
from kasmm.venues.ccxt.venue import CcxtVenue

__all__ = [
    "FLAVOURS",
    "CcxtVenue",
    "Flavour",
    "RateBudget",
    "StreamSettings",
    "default_rate_budget",
]
