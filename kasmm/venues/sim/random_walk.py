"""The ``random_walk`` market: a KAS/USDT-like book of other traders around a random-walk mid,
hit by Poisson-arriving market orders.

Two event streams, merged by time (a book update first on a tie):

* **Book updates** every ``book_interval_s`` (``t0 + n * interval``, so no float drift): the mid
  takes a log-normal step ``mid *= exp(sigma * sqrt(interval) * N(0, 1))`` with
  ``sigma = sigma_bps / 1e4`` per square-root second; the synthetic book follows it (see the two
  versions below). Bot orders the new book crosses (a bid at or above the new best ask, an ask
  at or below the new best bid) are filled in full at their own price, as maker fills: the other
  traders would have taken them. Then ``BookUpdated``.
* **Takers** arrive as a Poisson process (``taker_rate_per_s``), buy or sell with probability
  1/2, size exponential with mean ``taker_size_mean`` (rounded down to the lot, at least one
  lot). A taker sweeps the combined book with the priority of :mod:`.matching`; every execution
  of a bot order is an ``OrderFilled``, then a ``BookUpdated`` shows the consumed book. Consumed
  synthetic liquidity stays consumed until the next book update.

The synthetic book, by ``book_update``:

* ``incremental`` (model version 2, the default): levels on a fixed price grid keep their size
  while they stay in the book; an update only drops and adds the levels the mid moved past, most
  updates change no level at all (:mod:`.grid_ladder` has the geometry). Sizes are drawn as in
  version 1, but only for entering levels and from a second generator seeded from the venue
  generator's initial state (drawing nothing from it), so the mid path and the taker stream draw
  from the venue's generator alone and do not depend on the book settings. Seeded paths therefore
  differ from version 1's: the mid path (version 1 interleaves size draws with the mid's), the
  book's prices (grid steps, not tick by tick with the mid) and sizes, so fills.
* ``regenerate`` (model version 1, the default until issue 15): every update rebuilds the book
  around the mid (``book_levels`` per side, best levels at ``mid * (1 -/+ book_spread_bps /
  2e4)``, spaced ``book_step_bps``, bids rounded down and asks up to the tick, each level
  ``book_level_size * U(0.8, 1.2)`` rounded down to the lot, at least one lot). All random draws
  come from the venue's one seeded generator in a fixed order (the mid step, then level sizes bids
  before asks; for a taker: the next arrival gap, side, size).

**World mode** (``market.world``, :mod:`.world`): the venue's mid is not its own walk but a
view of a latent price shared with other venues, ``P(now - lag) * exp(deviation)``, sampled at
each book update (the deviation's normal draw takes the place of the walk's step draw, so the
venue's generator is drawn in the same order); the grid of the incremental book is laid out at
the world's ``s0``. A third event stream joins the two above when ``market.arbitrage`` is set:
informed takers (:mod:`.arbitrage`), arriving as a Poisson process of their own and sweeping
the combined book toward the latent price; on a tie in time a book update goes first, then a
taker, then an arbitrageur. Without a world nothing of this exists and the paths are those of
earlier kasmm versions bit for bit.

Either way a seed and the same sequence of bot requests reproduce the same events. The book is
kept in integer ticks and lots (:mod:`.tick_book`) and rendered as ``Decimal`` only when read;
version 1 evaluates its formulas with the same floats and the same draws as a plain
implementation of them, so its seeded paths are bit for bit those of earlier kasmm versions.
"""

from __future__ import annotations

import math
import operator
import random
from collections import deque
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from kasmm.config.schema import RandomWalkMarket
from kasmm.core.types import ZERO, Book, BookUpdated, Side, VenueEvent
from kasmm.venues.sim.grid_ladder import GridLadder, grid_spacing
from kasmm.venues.sim.ioc import Take, take_within
from kasmm.venues.sim.state import SimState
from kasmm.venues.sim.tick_book import TickBook

if TYPE_CHECKING:  # world.py and arbitrage.py import this module's draws
    from kasmm.venues.sim.arbitrage import Arbitrageurs
    from kasmm.venues.sim.world import VenueWorld

#: ``random.TWOPI``.
_TWO_PI = 2.0 * math.pi
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
        world: VenueWorld | None = None,
        arbitrage: Arbitrageurs | None = None,
    ) -> None:
        """:param world: the venue's view of a shared latent price (world mode), or ``None``
            for the venue's own random walk.
        :param arbitrage: informed takers (world mode only: they trade toward the latent
            price)."""
        self._market = market
        self._world = world
        self._arbs = arbitrage if world is not None else None
        self._phase = phase
        self._state = state
        self._rng = rng
        s0 = float(market.s0 if world is None else world.latent.params.s0)
        self._mid = s0
        self._interval = market.book_interval_s
        self._step_sigma = market.sigma_bps / 1e4 * math.sqrt(self._interval)
        half = market.book_spread_bps / 2
        offsets = [(half + i * market.book_step_bps) / 1e4 for i in range(market.book_levels)]
        # The factors of ``mid`` per level, each the float ``1 -/+ off`` the price formulas of
        # the module docstring evaluate (so the prices are bit for bit those formulas').
        self._bid_factors = [1 - off for off in offsets]
        self._ask_factors = [1 + off for off in offsets]
        self._tick_f = float(state.rules.tick)
        self._lot = state.rules.lot
        self._lot_f = float(state.rules.lot)
        self._level_size_f = float(market.book_level_size)
        self._taker_mean_f = float(market.taker_size_mean)
        self._book = TickBook(state.rules.tick, state.rules.lot)
        # Below one lot only when the smallest noisy size rounds to zero lots (then clamped).
        self._min_lots = math.floor(self._level_size_f * _SIZE_NOISE[0] / self._lot_f)
        self._ladder: GridLadder | None = None
        self._size_rng = rng
        if market.book_update == "incremental":
            # Sizes from a second generator, seeded from the first's initial state without
            # drawing from it: the mid and the takers then draw exactly what version 1 draws.
            self._size_rng = random.Random(repr(rng.getstate()))
            self._ladder = GridLadder(
                self._book,
                levels=market.book_levels,
                spacing=grid_spacing(s0, market.book_step_bps, self._tick_f),
                spread_bps=market.book_spread_bps,
                tick=self._tick_f,
                draw_lots=self._level_lots,
            )
        self._t0 = 0.0
        self._n_book = 0  # index of the next scheduled book update
        self._next_taker = math.inf
        self._next_arb = math.inf  # world mode with arbitrage only
        self._external: deque[tuple[Side, Decimal]] = deque()
        # Events computed but not yet handed out; ``None`` = publish the book as it is then.
        self._pending: deque[VenueEvent | None] = deque()

    @property
    def mid(self) -> float:
        """The true (unrounded) mid."""
        return self._mid

    @property
    def world(self) -> VenueWorld | None:
        """The venue's view of its world (``None``: the venue's own random walk)."""
        return self._world

    @property
    def synthetic(self) -> TickBook:
        """Other traders' book, before the bot's orders are merged in (read-only; for tests)."""
        return self._book

    def start(self) -> None:
        """Build the first book at the current time; it is the first event."""
        now = self._state.clock.now()
        if self._world is not None:
            self._mid = self._world.first_mid(now, self._rng)
        self._update_book()
        self._pending.append(None)
        # Scheduled updates at t0 + n * interval; the phase (a fraction of the interval) keeps
        # venues started together from all ticking at the same instant.
        self._t0 = now + (self._phase - 1.0) * self._interval if self._phase else now
        self._n_book = 1
        self._next_taker = now + expovariate(self._rng, self._market.taker_rate_per_s)
        if self._arbs is not None:
            self._next_arb = now + self._arbs.gap()

    def best(self, side: Side) -> Decimal | None:
        """Best synthetic price on ``side``."""
        return self._book.best(side)

    def snapshot(self) -> Book:
        """Synthetic levels merged with the bot's orders, stamped with the clock time."""
        return self._book.render(self._state.orders, self._state.clock.wall())

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
                return min(
                    self._t0 + self._n_book * self._interval, self._next_taker, self._next_arb
                )
            side, size = self._external.popleft()
            self._take(side, size)
        item = self._pending.popleft()
        # The book is rendered when handed out so it includes the bot's latest requests.
        return BookUpdated(self.snapshot()) if item is None else item

    def step(self) -> None:
        """Process the market event :meth:`poll` timed (a book update, a Poisson taker or, in
        world mode, an arbitrageur)."""
        t_book = self._t0 + self._n_book * self._interval
        next_taker = self._next_taker
        if t_book <= next_taker and t_book <= self._next_arb:
            self._n_book += 1
            world = self._world
            if world is None:
                self._mid *= math.exp(self._step_sigma * gauss(self._rng))
            else:
                self._mid = world.next_mid(t_book, self._rng)
            self._update_book()
            for order in self._book.crossed(self._state.orders):
                self._pending.append(self._state.fill(order, order.price, order.remaining))
            self._pending.append(None)
        elif next_taker <= self._next_arb:
            rng = self._rng
            self._next_taker += expovariate(rng, self._market.taker_rate_per_s)
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            lots = math.floor(expovariate(rng, 1.0 / self._taker_mean_f) / self._lot_f)
            self._take(side, Decimal(max(1, lots)) * self._lot)
        else:
            self._arbitrage()

    def _arbitrage(self) -> None:
        """An arbitrageur arrives (:mod:`.arbitrage`): it trades the stale part of the combined
        book toward the latent price at its arrival time, if any."""
        arbs, world = self._arbs, self._world
        assert arbs is not None and world is not None
        t = self._next_arb
        self._next_arb = t + arbs.gap()
        order = arbs.order(world.fair(t), self._book, self._state.orders)
        if order is not None:
            self._take(*order)

    def take(self, taker_side: Side, limit: Decimal, size: Decimal) -> list[Take]:
        """An immediate-or-cancel order's executions against the synthetic book (see
        :class:`~.state.MarketModel`); consumed like a taker's, until the next book update.
        Draws nothing from the generator: a run that places none stays bit for bit the same."""
        resting = taker_side.opposite
        own_best = self._state.orders.best(resting)
        return take_within(self._book.side(resting), own_best, taker_side, limit, size)

    def publish(self, events: Sequence[VenueEvent]) -> None:
        """Queue ``events``, then the book as it is when handed out."""
        self._pending.extend(events)
        self._pending.append(None)

    def _take(self, side: Side, size: Decimal) -> None:
        """Sweep a market order through the combined book and queue the resulting events."""
        executions, traded = self._book.sweep(self._state.orders, side, size)
        for ex in executions:
            self._pending.append(self._state.fill(ex.order, ex.price, ex.size))
        if traded > ZERO:
            self._pending.append(None)

    def _update_book(self) -> None:
        """Bring the synthetic book to the current mid (the configured ``book_update``)."""
        if self._ladder is None:
            self._regenerate()
        else:
            self._ladder.move(self._mid)

    def _regenerate(self) -> None:
        """Rebuild the synthetic book around the current mid."""
        # Prices in integer ticks: exact on-tick Decimals, and levels kept strictly monotonic
        # (and the book uncrossed) even when rounding would collapse two of them. One size
        # draw per level placed, bids before asks: prices draw nothing, so all bid sizes are
        # drawn after the bid prices without changing the sequence.
        mid, tick_f, floor, ceil = self._mid, self._tick_f, math.floor, math.ceil
        bids = [floor(mid * factor / tick_f) for factor in self._bid_factors]
        # The plain formulas already give what the clamping loop would (the usual case: the
        # levels are several ticks apart); the loop runs only when they do not.
        if not (bids[-1] >= 1 and all(map(operator.gt, bids, bids[1:]))):
            bids = _clamped(bids, -1, None)
        asks = [ceil(mid * factor / tick_f) for factor in self._ask_factors]
        if not ((not bids or asks[0] > bids[0]) and all(map(operator.lt, asks, asks[1:]))):
            asks = _clamped(asks, 1, bids[0] if bids else None)
        self._book.bids.set_levels(bids, self._level_lots(len(bids)))
        self._book.asks.set_levels(asks, self._level_lots(len(asks)))

    def _level_lots(self, count: int) -> list[int]:
        """``count`` synthetic level sizes in lots: the configured size with mild seeded noise
        (``book_level_size * U(0.8, 1.2)``), rounded down to the lot, at least one lot."""
        if count <= 0:
            return []
        size_f, lot_f, floor = self._level_size_f, self._lot_f, math.floor
        draw = self._size_rng.random
        # ``rng.uniform(lo, hi)`` is ``lo + (hi - lo) * random()``: inlined, the same floats.
        lo, hi = _SIZE_NOISE
        width = hi - lo
        lots = [floor(size_f * (lo + width * draw()) / lot_f) for _ in range(count)]
        if self._min_lots < 1:
            lots = [max(1, n) for n in lots]
        return lots


def gauss(rng: random.Random) -> float:
    """``rng.gauss(0.0, 1.0)``: the same value and the same generator state after it.

    ``Random.gauss`` is Python code, which stays interpreted in the compiled build (about 1 us a
    draw, one per book update); this is its body (CPython 3.11, unchanged since 3.3), so it
    compiles to C calls of the same libm functions: the same floats. It keeps the second normal
    of each pair in ``rng.gauss_next``, as ``gauss`` does, so the two can be mixed on one
    generator (``tests/unit/test_sim_book.py`` holds it to ``rng.gauss``).
    """
    # ``gauss_next`` is an attribute of ``random.Random`` that typeshed does not declare.
    z: float | None = rng.gauss_next  # type: ignore[attr-defined]
    rng.gauss_next = None  # type: ignore[attr-defined]
    if z is None:
        x2pi = rng.random() * _TWO_PI
        g2rad = math.sqrt(-2.0 * math.log(1.0 - rng.random()))
        z = math.cos(x2pi) * g2rad
        rng.gauss_next = math.sin(x2pi) * g2rad  # type: ignore[attr-defined]
    return 0.0 + z * 1.0  # ``mu + z * sigma`` with gauss's arguments, as it computes it


def expovariate(rng: random.Random, lambd: float) -> float:
    """``rng.expovariate(lambd)`` (its body, compiled: see :func:`gauss`)."""
    return -math.log(1.0 - rng.random()) / lambd


def _clamped(raw: list[int], direction: int, anchor: int | None) -> list[int]:
    """Level prices (ticks) made strictly monotonic in ``direction`` (-1: bids, falling; +1:
    asks, rising), starting beyond ``anchor`` (the best bid, for asks): a level rounding onto or
    past the previous one moves one tick beyond it. Bids stop before a price below one tick."""
    levels: list[int] = []
    prev = anchor
    for n in raw:
        if prev is not None and (n - prev) * direction <= 0:
            n = prev + direction
        if n < 1:
            break  # prices must stay positive (only bids fall)
        levels.append(n)
        prev = n
    return levels
