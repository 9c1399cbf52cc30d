"""Informed takers of a world venue: arbitrageurs who trade it toward the latent price.

On a real thin venue, quotes that lag the price discovered elsewhere do not stay stale for
long: someone who sees the deep venue buys the thin venue's asks that are now cheap (or sells
to its bids that are now rich). Without them a lagging simulated venue would let a market maker
quote off a stale mid for free, and reference pricing would have nothing to protect against.

Arbitrageurs arrive as a Poisson process (``rate_per_s``), drawing their arrival gaps from a
generator of their own (``random.Random("arbitrage-<venue seed>")``), so switching them on
changes neither the venue's noise nor its other takers. On arrival one looks at the world's
latent price *now* (``fair``: not lagged, without the venue's noise) and at the venue's combined
book (other traders' liquidity and the bot's orders):

* it buys every ask with ``ask * (1 + threshold_bps / 1e4) <= fair``, best first, up to
  ``max_size``; otherwise
* it sells to every bid with ``bid >= fair * (1 + threshold_bps / 1e4)``, likewise;
* otherwise it does nothing.

Its order is an ordinary taker's sweep of the combined book (:meth:`.tick_book.TickBook.sweep`,
the one implementation of the priority rules) for the size resting at or within its limit: the
sweep goes best price first, so it takes exactly the stale levels and nothing beyond them.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal

from kasmm.config.schema import ArbitrageConfig
from kasmm.core.types import ZERO, Side
from kasmm.venues.sim.matching import OwnOrders
from kasmm.venues.sim.random_walk import expovariate
from kasmm.venues.sim.tick_book import TickBook

__all__ = ["Arbitrageurs", "arbitrage_rng"]


def arbitrage_rng(venue_seed: int) -> random.Random:
    """The arbitrageurs' own generator for a venue seeded ``venue_seed``."""
    return random.Random(f"arbitrage-{venue_seed}")


class Arbitrageurs:
    """The informed takers of one venue (see the module docstring)."""

    __slots__ = ("_factor", "_rate", "_rng", "max_size")

    def __init__(self, config: ArbitrageConfig, lot: Decimal, rng: random.Random) -> None:
        """:param lot: the venue's size lot (``max_size`` is rounded down to it, at least one).
        :param rng: the arbitrageurs' own generator (:func:`arbitrage_rng`)."""
        self._rate = config.rate_per_s
        self._factor = 1.0 + config.threshold_bps / 1e4
        self._rng = rng
        #: The most one arbitrageur trades, in base (a whole number of lots).
        self.max_size = max(1, math.floor(config.max_size / lot)) * lot

    def gap(self) -> float:
        """Seconds to the next arrival (exponential, mean ``1 / rate_per_s``)."""
        return expovariate(self._rng, self._rate)

    def order(self, fair: float, book: TickBook, orders: OwnOrders) -> tuple[Side, Decimal] | None:
        """The market order an arbitrageur sends now, as ``(side, size)``; ``None`` when no
        price of the combined book is stale by the threshold.

        :param fair: the latent price now.
        :param book: other traders' liquidity (what takers left of it).
        :param orders: the bot's resting orders.
        """
        buy_limit = Decimal(fair / self._factor)  # exact: a float converts without rounding
        size = _within(book, orders, Side.SELL, buy_limit)
        if size > ZERO:
            return Side.BUY, min(size, self.max_size)
        sell_limit = Decimal(fair * self._factor)
        size = _within(book, orders, Side.BUY, sell_limit)
        if size > ZERO:
            return Side.SELL, min(size, self.max_size)
        return None


def _within(book: TickBook, orders: OwnOrders, resting: Side, limit: Decimal) -> Decimal:
    """Size resting on ``resting`` at ``limit`` or better (asks at or below it, bids at or
    above it): synthetic levels and the bot's orders."""

    def ok(price: Decimal) -> bool:
        return price <= limit if resting is Side.SELL else price >= limit

    synthetic = book.best(resting)
    own = orders.best(resting) if len(orders) else None
    if not ((synthetic is not None and ok(synthetic)) or (own is not None and ok(own))):
        return ZERO  # the usual arrival: nothing stale
    total = ZERO
    if synthetic is not None and ok(synthetic):
        for level in book.side(resting).levels():  # best first
            if not ok(level.price):
                break
            total += level.size
    if own is not None and ok(own):
        for order in orders.ranked(resting):  # best first
            if not ok(order.price):
                break
            total += order.remaining
    return total
