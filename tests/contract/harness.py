"""What a contract-suite harness is: a connected venue, its clock and its venue-specific driver.

In its own module (not ``conftest``) so that the harness modules, which ``conftest`` imports to
register them, can import it without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from kasmm.clock import Clock
from kasmm.core.types import Side
from kasmm.venues.base import Venue


class VenueDriver(Protocol):
    """Venue-specific hooks of the contract suite."""

    #: Client id prefix the suite's own orders use.
    prefix: str
    #: A different prefix standing for orders someone else placed on the same account.
    foreign_prefix: str

    async def make_cross(self, venue: Venue, side: Side, price: Decimal) -> None:
        """Make the market trade through ``price`` so that the resting ``side`` order there
        fills completely; its fills then arrive through ``venue.events()``."""
        ...


@dataclass
class Harness:
    """A connected venue under test, its clock and its driver."""

    venue: Venue
    clock: Clock
    driver: VenueDriver


HarnessFactory = Callable[[], AbstractAsyncContextManager[Harness]]
