"""The ``random_walk`` market: a KAS/USDT-like book of other traders around a random-walk mid,
hit by Poisson-arriving market orders.

Two event streams, merged by time (a book update first on a tie):

* **Book updates** every ``book_interval_s`` (``t0 + n * interval``, so no float drift): the mid
  takes a log-normal step ``mid *= exp(sigma * sqrt(interval) * N(0, 1))`` with
  ``sigma = sigma_bps / 1e4`` per square-root second; the synthetic book is regenerated around
  it (``book_levels`` per side, best levels at ``mid * (1 -/+ book_spread_bps / 2e4)``, spaced
  ``book_step_bps``, bids rounded down and asks up to the tick, each level
  ``book_level_size * U(0.8, 1.2)`` rounded down to the lot). Bot orders the new book crosses
  (a bid at or above the new best ask, an ask at or below the new best bid) are filled in full at
  their own price, as maker fills: the other traders would have taken them. Then ``BookUpdated``.
* **Takers** arrive as a Poisson process (``taker_rate_per_s``), buy or sell with probability
  1/2, size exponential with mean ``taker_size_mean`` (rounded down to the lot, at least one
  lot). A taker sweeps the combined book with the priority of :mod:`.matching`; every execution
  of a bot order is an ``OrderFilled``, then a ``BookUpdated`` shows the consumed book. Consumed
  synthetic liquidity stays consumed until the next regeneration.

Random draws, all from the venue's one seeded generator, happen in a fixed order (the mid step,
then level sizes bids before asks; for a taker: the next arrival gap, side, size), so a seed and
the same sequence of bot requests reproduce the same events.
"""

from __future__ import annotations

import math
import random
from collections import deque
from decimal import Decimal

from kasmm.config.schema import RandomWalkMarket
from kasmm.core.types import Book, BookUpdated, Side, VenueEvent
from kasmm.venues.sim.matching import (
    SyntheticBook,
    SyntheticLevel,
    crossed_orders,
    merged_book,
    sweep,
)
from kasmm.venues.sim.state import SimState

#: Multiplicative noise range of synthetic level sizes.
_SIZE_NOISE = (0.8, 1.2)


class RandomWalkModel:
    """Random-walk mid, synthetic L2 book and Poisson takers (see the module docstring)."""

    enforces_post_only = True

    def __init__(
        self,
        market: RandomWalkMarket,
        state: SimState,
        rng: random.Random,
        *,
        phase: float = 0.0,
    ) -> None:
        self._market = market
        self._phase = phase
        self._state = state
        self._rng = rng
        self._mid = float(market.s0)
        self._interval = market.book_interval_s
        self._step_sigma = market.sigma_bps / 1e4 * math.sqrt(self._interval)
        half = market.book_spread_bps / 2
        self._offsets = [(half + i * market.book_step_bps) / 1e4 for i in range(market.book_levels)]
        self._tick = state.rules.tick
        self._tick_f = float(state.rules.tick)
        self._lot = state.rules.lot
        self._lot_f = float(state.rules.lot)
        self._level_size_f = float(market.book_level_size)
        self._taker_mean_f = float(market.taker_size_mean)
        self._book = SyntheticBook([], [])
        self._t0 = 0.0
        self._n_book = 0  # index of the next scheduled book update
        self._next_taker = math.inf
        self._external: deque[tuple[Side, Decimal]] = deque()
        # Events computed but not yet handed out; ``None`` = publish the book as it is then.
        self._pending: deque[VenueEvent | None] = deque()

    @property
    def mid(self) -> float:
        """The true (unrounded) mid."""
        return self._mid

    def start(self) -> None:
        """Build the first book at the current time; it is the first event."""
        now = self._state.clock.now()
        self._regenerate()
        self._pending.append(None)
        # Scheduled updates at t0 + n * interval; the phase (a fraction of the interval) keeps
        # venues started together from all ticking at the same instant.
        self._t0 = now + (self._phase - 1.0) * self._interval if self._phase else now
        self._n_book = 1
        self._next_taker = now + self._rng.expovariate(self._market.taker_rate_per_s)

    def best(self, side: Side) -> Decimal | None:
        """Best synthetic price on ``side``."""
        return self._book.best(side)

    def snapshot(self) -> Book:
        """Synthetic levels merged with the bot's orders, stamped with the clock time."""
        return merged_book(self._book, self._state.orders, self._state.clock.wall())

    def submit_taker(self, side: Side, size: Decimal) -> None:
        """Queue an outside market order. It executes once the events already produced have been
        handed out, before the next scheduled market event."""
        self._external.append((side, size))

    def poll(self) -> VenueEvent | float:
        """The next event if one is ready, else the time of the next market step.

        External takers take no time: they are swept here. The caller brings the clock to the
        returned time, then calls :meth:`step` (see :class:`~.state.MarketModel`).
        """
        while not self._pending:
            if not self._external:
                return min(self._t0 + self._n_book * self._interval, self._next_taker)
            side, size = self._external.popleft()
            self._take(side, size)
        item = self._pending.popleft()
        # The book is rendered when handed out so it includes the bot's latest requests.
        return BookUpdated(self.snapshot()) if item is None else item

    def step(self) -> None:
        """Process the market event :meth:`poll` timed (a book update or a Poisson taker)."""
        t_book = self._t0 + self._n_book * self._interval
        if t_book <= self._next_taker:
            self._n_book += 1
            self._mid *= math.exp(self._step_sigma * self._rng.gauss(0.0, 1.0))
            self._regenerate()
            for order in crossed_orders(self._book, self._state.orders):
                self._pending.append(self._state.fill(order, order.price, order.remaining))
            self._pending.append(None)
        else:
            self._next_taker += self._rng.expovariate(self._market.taker_rate_per_s)
            side = Side.BUY if self._rng.random() < 0.5 else Side.SELL
            lots = math.floor(self._rng.expovariate(1.0 / self._taker_mean_f) / self._lot_f)
            self._take(side, Decimal(max(1, lots)) * self._lot)

    def _take(self, side: Side, size: Decimal) -> None:
        """Sweep a market order through the combined book and queue the resulting events."""
        executions, traded = sweep(self._book, self._state.orders, side, size)
        for ex in executions:
            self._pending.append(self._state.fill(ex.order, ex.price, ex.size))
        if traded > 0:
            self._pending.append(None)

    def _regenerate(self) -> None:
        """Rebuild the synthetic book around the current mid."""
        # Prices in integer ticks: exact on-tick Decimals, and levels kept strictly monotonic
        # (and the book uncrossed) even when rounding would collapse two of them.
        bids: list[SyntheticLevel] = []
        prev: int | None = None
        for off in self._offsets:
            n = math.floor(self._mid * (1 - off) / self._tick_f)
            if prev is not None:
                n = min(n, prev - 1)
            if n < 1:
                break  # prices must stay positive
            bids.append(SyntheticLevel(n * self._tick, self._level_size()))
            prev = n
        asks: list[SyntheticLevel] = []
        prev = math.floor(bids[0].price / self._tick) if bids else None
        for off in self._offsets:
            n = math.ceil(self._mid * (1 + off) / self._tick_f)
            if prev is not None:
                n = max(n, prev + 1)
            asks.append(SyntheticLevel(n * self._tick, self._level_size()))
            prev = n
        self._book = SyntheticBook(bids, asks)

    def _level_size(self) -> Decimal:
        """A synthetic level's size: the configured size with mild seeded noise, on the lot."""
        noisy = self._level_size_f * self._rng.uniform(*_SIZE_NOISE)
        return max(1, math.floor(noisy / self._lot_f)) * self._lot
