"""Hedging in a group backtest: the supervisor's pure hedger, driven synchronously.

A member A with a ``hedge:`` block offsets its fills on member B with immediate-or-cancel
orders exactly as a supervisor's link does (:mod:`kasmm.supervisor.hedge_link`), through the same
pure state machine (:class:`kasmm.core.hedge.HedgeState`):

* A's fills (those A's engine took as its own) are taken in as A's driver reports them;
* at the hedger's deadlines (a window's end, an answer's settle time, a retry) the timeline lets
  it act (:class:`~.group.Actor`): it decides against B's book without B's own orders and B's
  own best prices, as the link does, when B can take a hedge (running, neither halted nor
  paused);
* an IOC goes out through **B's driver** (:meth:`~.driver.BacktestDriver.send_ioc`: B's client
  ids, B's token bucket and latency on B's clock, B's engine recording the answer) and takes
  effect on B's venue at once; B's fills of it come back through B's own fill path;
* A's engine is told the ``max_unhedged_base`` verdict through
  ``Engine.external_trip(trip, "hedge")`` when it changes.

What a backtest leaves out: the ledger (a path has none; each hedge order's covers are the
links), so nothing is recovered at a start.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING

from kasmm.bot.driver import BotNotRunning
from kasmm.bot.stats import BotState
from kasmm.core.hedge import HedgeParams, HedgeState, unhedged_trip
from kasmm.core.quoting import exclude_own
from kasmm.core.risk import TradingState, Trip
from kasmm.core.types import Book, Fill, MarketRules, Side
from kasmm.errors import (
    AuthenticationFailed,
    FatalVenueError,
    InsufficientFunds,
    OrderRejected,
    VenueError,
)
from kasmm.supervisor.hedge_link import TRIP_SOURCE

if TYPE_CHECKING:
    from collections.abc import Callable

    from .group import Member

__all__ = ["GroupHedge"]

_INF = math.inf
_NO_OWN: tuple[Decimal | None, Decimal | None] = (None, None)


class GroupHedge:
    """Member ``a`` hedged onto member ``b`` in one group path (an :class:`~.group.Actor`).

    :param sent: called with ``b`` after an IOC went out on its venue (its fills wait there:
        the timeline must look at ``b`` again).
    """

    def __init__(
        self, a: Member, b: Member, params: HedgeParams, sent: Callable[[Member], None]
    ) -> None:
        self.a = a
        self.b = b
        self.params = params
        self._sent = sent
        self.state = HedgeState()
        #: When the hedger next has something to do (``inf``: nothing before a new fill).
        self.at = _INF
        #: The residual rule's trip in force (what A's engine was told last).
        self.trip: Trip | None = None
        #: IOCs that failed (refused, or no answer), and the residual rule's trips.
        self.failures = 0
        self.trips = 0

    @property
    def name(self) -> str:
        """The hedged profile's name."""
        return self.a.name

    # --- what the members report --------------------------------------------------------

    def a_filled(self, fill: Fill, now: float) -> None:
        """A's engine took ``fill`` as its own at ``now``: take it in (a window opens)."""
        self.state = self.state.on_fill(fill.trade_id, fill.side, fill.size, now, self.params)
        self._next(now)

    def b_filled(self, fill: Fill, now: float) -> None:
        """B's engine took ``fill`` as its own: a fill of the order in flight is counted."""
        flight = self.state.in_flight
        if flight is None or flight.client_id != fill.client_id:
            return
        self.state = self.state.on_hedge_fill(fill.client_id, fill.trade_id, fill.size, fill.price)
        self._next(now)

    # --- acting ----------------------------------------------------------------------------

    def act(self, now: float) -> None:
        """At ``now``: settle what is due, send what the hedger asks (through B), then tell A
        the residual rule's verdict."""
        book, rules, own = self._market(now)
        self.state, order, _settled = self.state.decide(now, book, rules, self.params, own)
        if order is not None:
            b = self.b.driver
            request = b.ioc_request(order.side, order.price, order.size)
            cid = request.client_id
            self.state = self.state.sent(order, cid, now)
            b.clock.advance_to(now)  # B's lane: after what B is doing, never before ``now``
            try:
                outcome = b.send_ioc(request)
            except (AuthenticationFailed, FatalVenueError):
                raise
            except (BotNotRunning, OrderRejected, InsufficientFunds):  # nothing executed
                self.failures += 1
                self.state = self.state.on_refused(cid, now)
            except VenueError:  # it may have executed: its fills decide
                self.failures += 1
                self.state = self.state.on_answer(cid, None, b.clock.now(), self.params)
            else:
                self.state = self.state.on_answer(cid, outcome.filled, b.clock.now(), self.params)
            self._sent(self.b)
        self._tell_a(now)
        self._next(now)

    def _market(
        self, now: float
    ) -> tuple[Book | None, MarketRules | None, tuple[Decimal | None, Decimal | None]]:
        """B's book without its own orders, its rules and its own best prices, when B can take
        a hedge now (as the supervisor's link reads B's bot)."""
        driver = self.b.driver
        engine = driver.engine
        if driver.state not in (BotState.STARTING, BotState.QUOTING):
            return None, None, _NO_OWN
        if engine.risk.trading_state(now) in (TradingState.HALTED, TradingState.PAUSED):
            return None, None, _NO_OWN
        book, rules = engine.book, engine.rules
        if book is None or rules is None:
            return None, None, _NO_OWN
        orders = tuple(engine.open_orders.values())
        bids = [o.price for o in orders if o.side is Side.BUY]
        asks = [o.price for o in orders if o.side is Side.SELL]
        own = (max(bids) if bids else None, min(asks) if asks else None)
        return exclude_own(book, orders), rules, own

    def _tell_a(self, now: float) -> None:
        """A's engine gets the residual rule's verdict when it changes."""
        trip = unhedged_trip(self.state, self.params, now)
        if (trip is None) != (self.trip is None):
            self.a.driver.engine.external_trip(trip, TRIP_SOURCE)
            self.trips += trip is not None
        self.trip = trip

    def _next(self, now: float) -> None:
        """The hedger's next time: a window's end or a retry, an answer's settle time, or now
        when the order in flight can be settled."""
        state = self.state
        at = _INF
        if state.due_at is not None:
            at = state.due_at
        flight = state.in_flight
        if flight is not None:
            if state.ready():
                at = now
            elif flight.settle_at is not None:
                at = min(at, flight.settle_at)
        self.at = max(at, now) if at < _INF else _INF

    # --- figures ---------------------------------------------------------------------------

    @property
    def residual(self) -> Decimal:
        """A's net filled minus what B offset (signed: + means A holds more base)."""
        return self.state.residual
