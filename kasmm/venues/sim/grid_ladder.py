"""The geometry of the random-walk market's incremental book (``book_update: incremental``).

Model version 2 of the synthetic book (version 1, ``regenerate``, is in :mod:`.random_walk`).
Levels sit on a fixed price grid: every ``spacing`` ticks, where ``spacing`` is
``book_step_bps`` at the initial mid ``s0`` rounded to whole ticks (at least one), fixed for the
run. The best bid is the highest grid price at or below ``mid * (1 - book_spread_bps / 2e4)``,
the best ask the lowest at or above ``mid * (1 + book_spread_bps / 2e4)``; each side shows
``book_levels`` consecutive grid prices from there (bids stop above zero). So the synthetic
spread is ``book_spread_bps`` plus between zero and two steps (one on average), and the book is
never crossed.

A level keeps its size for as long as its price stays in the book. When the mid moves, only the
levels it moved past change: those leaving are dropped, those entering draw a size (best first,
bids before asks, one ``draw_lots`` call per contiguous run). When the best bid and ask stay on
the same grid prices, which is most updates, nothing is drawn or rebuilt: the update only gives
back the liquidity takers consumed since the last one.

Compared with version 1, the seeded paths differ: the mid step and the takers draw as before,
but the book draws sizes only for entering levels, and its prices move in grid steps rather than
with the mid tick by tick.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from kasmm.core.types import BookLevel
from kasmm.venues.sim.tick_book import TickBook, TickSide


def grid_spacing(s0: float, step_bps: float, tick: float) -> int:
    """The grid spacing in ticks: ``step_bps`` of ``s0``, rounded, at least one tick."""
    return max(1, round(s0 * step_bps / 1e4 / tick))


class GridLadder:
    """Keeps a :class:`~.tick_book.TickBook` on the grid around the mid (module docstring)."""

    def __init__(
        self,
        book: TickBook,
        *,
        levels: int,
        spacing: int,
        spread_bps: float,
        tick: float,
        draw_lots: Callable[[int], list[int]],
    ) -> None:
        """:param draw_lots: ``n`` fresh level sizes in lots, in the order they are placed."""
        self._book = book
        self._levels = levels
        self._spacing = spacing
        self._grid = tick * spacing  # price of one grid step
        self._bid_factor = 1 - spread_bps / 2e4
        self._ask_factor = 1 + spread_bps / 2e4
        self._draw_lots = draw_lots
        # Grid index of the best bid and ask the book shows (None before the first move).
        self._best_bid: int | None = None
        self._best_ask: int | None = None

    def best_indices(self, mid: float) -> tuple[int, int]:
        """Grid indices (price = index * spacing ticks) of the best bid and ask at ``mid``."""
        bid = math.floor(mid * self._bid_factor / self._grid)
        ask = math.ceil(mid * self._ask_factor / self._grid)
        # Only float rounding with a vanishing spread could put both on one grid price.
        return bid, max(ask, bid + 1)

    def move(self, mid: float) -> None:
        """Bring the book to ``mid``: drop and add the levels it moved past, keep the others,
        and give back all consumed liquidity."""
        bid, ask = self.best_indices(mid)
        book = self._book
        if bid == self._best_bid:
            book.bids.restore()
        else:
            self._place(book.bids, bid, self._best_bid, -1, min(self._levels, bid))
            self._best_bid = bid
        if ask == self._best_ask:
            book.asks.restore()
        else:
            self._place(book.asks, ask, self._best_ask, 1, self._levels)
            self._best_ask = ask

    def _place(
        self, side: TickSide, best: int, old_best: int | None, direction: int, count: int
    ) -> None:
        """Set ``side`` to ``count`` levels from grid index ``best`` on, in ``direction`` (-1
        bids, +1 asks), reusing the levels it shares with the one from ``old_best``."""
        count = max(0, count)
        spacing = self._spacing
        old_lots = side.lots
        # New level i is old level i + shift when both are in their books.
        shift = 0 if old_best is None else direction * (best - old_best)
        if old_best is not None and count == len(old_lots) and 0 < abs(shift) < count:
            # The usual move, by a step or a few: the general case below with the same draws
            # (none at the end that keeps its levels), shifting the side's lists in place
            # rather than building them anew (a list and an int object per level).
            n = abs(shift)
            first = best + direction * (count - n) if shift > 0 else best  # first entering
            step = direction * spacing  # (a comprehension: compiled, ``range`` is a call)
            entering = [(first * spacing) + i * step for i in range(n)]
            side.shift_levels(shift, entering, self._draw_lots(n))
            return
        # ``[(best + direction * i) * spacing for i in range(count)]``, built by range in C.
        ticks = list(
            range(best * spacing, (best + direction * count) * spacing, direction * spacing)
        )
        lo = max(0, -shift)
        hi = min(count, len(old_lots) - shift)
        if old_best is None or hi <= lo:
            side.set_levels(ticks, self._draw_lots(count))
            return
        old_levels = side.cached_levels()
        lots = self._draw_lots(lo) + old_lots[lo + shift : hi + shift]
        lots += self._draw_lots(count - hi)
        kept: list[BookLevel | None] = [None] * lo
        kept += old_levels[lo + shift : hi + shift]
        kept += [None] * (count - hi)
        side.set_levels(ticks, lots, kept)
