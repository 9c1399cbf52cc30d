"""Orders resting outside the quotes: what they take from the quoting budget.

A hanging order (the other side of a filled pair, left on the book) or a post-only rebalance
order is not reconciled against the quotes, but it still occupies one of its side's levels and
locks balance: the quotes of that side get fewer levels and a smaller budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kasmm.core.types import ZERO


@dataclass(frozen=True, slots=True)
class Held:
    """What the held orders of each side take: levels, and the balance they lock."""

    bid_levels: int = 0
    ask_levels: int = 0
    #: quote locked by held bids (price times remaining size)
    bid_quote: Decimal = ZERO
    #: base locked by held asks (remaining size)
    ask_base: Decimal = ZERO


#: Nothing held (most decisions).
NOTHING_HELD = Held()
