"""``MarketBook``: one market's latest book as the hub holds it, with when and how it arrived."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kasmm.core.types import Book

#: Where a book came from: a public websocket, a public REST snapshot, or the venue of a
#: profile of this supervisor that trades the market (a simulator or replay publishing it).
BookSource = Literal["websocket", "rest", "venue"]
#: Every :data:`BookSource` (a bounded metric label).
BOOK_SOURCES: tuple[BookSource, ...] = ("websocket", "rest", "venue")


@dataclass(frozen=True, slots=True)
class MarketBook:
    """A book and its arrival.

    :param book: the levels, stamped with the exchange's time (``book.ts``, wall clock).
    :param received_at: when it reached the hub, on the interval clock (``clock.now()``): its
        age is ``now - received_at``, immune to wall-clock steps.
    :param source: where it came from (:data:`BookSource`).
    """

    book: Book
    received_at: float
    source: BookSource

    def age_s(self, now: float) -> float:
        """Seconds since the book arrived (never negative)."""
        return max(0.0, now - self.received_at)
