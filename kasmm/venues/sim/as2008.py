"""The ``as2008`` market: the Avellaneda–Stoikov (2008) model, implemented exactly.

Model: the mid ``s`` is an arithmetic random walk, ``s(t + dt) = s(t) +/- sigma * sqrt(dt)`` with
probability 1/2 each; a resting ask at distance ``d_a = p_a - s`` is lifted during a step with
probability ``min(1, A * exp(-k * d_a) * dt)`` and, independently, a bid at ``d_b = s - p_b`` is
hit with probability ``min(1, A * exp(-k * d_b) * dt)``. A hit fills the order in full.

Step order, exactly (``t_n = t0 + n * dt``; the consumer pulls one event at a time):

0. At ``t0`` (first pull): ``BookUpdated`` with one bid and one ask level, both at ``s0`` (a zero
   width book: the bot quotes from its mid; sizes are a nominal 1).
1. On the next pull, the clock sleeps until ``t_{n+1}``. Then, for each resting bot order in
   placement order, one uniform draw ``u``; the order fills in full when ``u < p`` with ``p`` as
   above computed in float from the mid ``s`` the last book showed. Each fill is an
   ``OrderFilled`` (no fees), handed out one per pull.
2. On the pull after the last fill (or right away when there was none), one more uniform draw
   moves the mid: up by ``sigma * sqrt(dt)`` when it is below 1/2, else down. Then
   ``BookUpdated`` with the new ``s``. Back to 1.

Orders placed while the consumer handles a step's events (fills or book) are first evaluated at
the next step, against the mid the book showed. The mid is computed as ``s0 + m * sigma*sqrt(dt)``
from the integer net number of up-moves ``m``, so float rounding never accumulates; published
prices are ``Decimal(repr(s))``, which converts back to exactly ``s``.

What the model does not have, on purpose: other traders' book, fees, balance checks (the trader
starts flat, 0 base and 0 quote, whatever ``balances`` says, and both may go negative), post-only
rejection (a negative distance is allowed and just fills more often), minimum notional. Prices
must be on the model's tick (``market.tick``); sizes on a lot of 1e-8.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Sequence
from decimal import Decimal

from kasmm.config.schema import AS2008Market
from kasmm.core.grid import price_float, tick_fraction
from kasmm.core.types import Book, BookLevel, BookUpdated, MarketRules, Side, VenueEvent
from kasmm.errors import OrderRejected
from kasmm.venues.sim.state import SimState

#: Size lot of the model (sizes are effectively continuous).
AS2008_LOT = Decimal("0.00000001")
#: Size shown on both levels of the zero-width book.
_NOMINAL_SIZE = Decimal(1)
#: Bound of the net-moves -> book level cache (see ``AS2008Model._level``): a path of n steps
#: visits about sqrt(n) mids, so this is hit nearly always and stays small per venue.
_LEVEL_CACHE_MAX = 1 << 8


def as2008_rules(symbol: str, base: str, quote: str, market: AS2008Market) -> MarketRules:
    """The trading rules of the AS model: its tick, a 1e-8 lot, no minimum, no fees.

    The paths of a backtest share one ``market`` (only the seed differs per path): they get
    the same rules object back, frozen, and so share its grid (:func:`kasmm.core.grid.grid_of`)
    with the Decimal prices it has cached. A path is only ~300 steps; each new rules object
    would start with a cold cache. The tick is compared by identity (the kept rules hold it):
    an equal tick with another exponent must give other rules.
    """
    global _last_rules
    last = _last_rules
    if (
        last is not None
        and last.tick is market.tick
        and last.symbol == symbol
        and last.base == base
        and last.quote == quote
    ):
        return last
    rules = _last_rules = MarketRules(
        symbol=symbol,
        base=base,
        quote=quote,
        tick=market.tick,
        lot=AS2008_LOT,
        min_size=AS2008_LOT,
    )
    return rules


#: The rules :func:`as2008_rules` made last (frozen; see there).
_last_rules: MarketRules | None = None


def fill_probability(a: float, k: float, dt: float, distance: float) -> float:
    """``min(1, A * exp(-k * distance) * dt)``: chance a quote at ``distance`` fills in a step."""
    try:
        return min(1.0, a * math.exp(-k * distance) * dt)
    except OverflowError:  # a very negative distance: exp overflows, the order surely fills
        return 1.0


class _Move:
    """Pending-queue marker: move the mid, then publish the book."""


_MOVE = _Move()


class AS2008Model:
    """The Avellaneda–Stoikov market (see the module docstring)."""

    enforces_post_only = False

    def __init__(self, market: AS2008Market, state: SimState, rng: random.Random) -> None:
        self._market = market
        self._state = state
        self._rng = rng
        self._delta = market.sigma * math.sqrt(market.dt)
        # The parameters a step reads, as plain floats (a config attribute is a generic lookup).
        self._s0, self._a, self._k, self._dt = market.s0, market.A, market.k, market.dt
        self._m = 0  # net number of up-moves so far
        self._t0 = 0.0
        self._n = 0  # steps completed
        self._pending: deque[VenueEvent | _Move] = deque()
        self._levels: dict[int, BookLevel] = {}  # the level at m net up-moves
        self._tick_num, self._tick_den = tick_fraction(state.rules.tick)

    @property
    def mid(self) -> float:
        """The current mid ``s = s0 + m * sigma * sqrt(dt)``."""
        return self._s0 + self._m * self._delta

    @property
    def step_size(self) -> float:
        """``sigma * sqrt(dt)``, the size of every mid move."""
        return self._delta

    def start(self) -> None:
        """Start at ``s0`` now; the first event is the book at ``s0``."""
        self._t0 = self._state.clock.now()
        self._pending.append(BookUpdated(self.snapshot()))

    def best(self, side: Side) -> Decimal | None:
        """There is no other traders' liquidity in this model."""
        return None

    def snapshot(self) -> Book:
        """One bid and one ask level, both at the mid."""
        level = self._level()
        return Book((level,), (level,), self._state.clock.wall())

    def _level(self) -> BookLevel:
        """``BookLevel(Decimal(repr(mid)), 1)``, built once per mid: the mid is a function of
        ``m`` alone, and the walk revisits its values (``repr`` and the ``Decimal`` parse were
        most of a step's book)."""
        level = self._levels.get(self._m)
        if level is None:
            if len(self._levels) >= _LEVEL_CACHE_MAX:
                self._levels.clear()
            level = self._levels[self._m] = BookLevel(Decimal(repr(self.mid)), _NOMINAL_SIZE)
        return level

    def take(
        self, taker_side: Side, limit: Decimal, size: Decimal
    ) -> list[tuple[Decimal, Decimal]]:
        """Refused: this market has no other traders' book to take from (fills are Poisson
        draws against the bot's quotes), so an immediate-or-cancel order has no meaning.

        :raises OrderRejected: always.
        """
        raise OrderRejected("the as2008 market has no book to take liquidity from")

    def publish(self, events: Sequence[VenueEvent]) -> None:
        """Queue ``events`` (never called: :meth:`take` refuses every order)."""
        self._pending.extend(events)

    def poll(self) -> VenueEvent | float:
        """The next event if one is ready, else the time of the next step (see
        :class:`~.state.MarketModel`)."""
        pending = self._pending
        if not pending:
            return self._t0 + (self._n + 1) * self._dt
        item = pending.popleft()
        if isinstance(item, _Move):
            self._m += 1 if self._rng.random() < 0.5 else -1
            return BookUpdated(self.snapshot())
        return item

    def step(self) -> None:
        """Steps 1 (fills at the mid the bot saw) and queue step 2 (the move)."""
        self._n += 1
        s = self.mid
        a, k, dt = self._a, self._k, self._dt
        num, den = self._tick_num, self._tick_den
        for order in self._state.orders.placed():
            price = price_float(order.ticks, num, den, order.price)  # float(order.price)
            distance = price - s if order.side is Side.SELL else s - price
            if self._rng.random() < fill_probability(a, k, dt, distance):
                self._pending.append(self._state.fill(order, order.price, order.remaining))
        self._pending.append(_MOVE)
