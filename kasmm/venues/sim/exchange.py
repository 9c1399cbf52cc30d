"""The simulated exchange's synchronous core: one account, one market model, request effects.

:class:`kasmm.venues.sim.SimVenue` is the async ``Venue`` face of this (latency on the clock,
``events()``); the synchronous backtest driver (:mod:`kasmm.backtest.driver`) calls this
directly and keeps time itself. Split out of the venue so that it can be compiled
(``make native``): the face has async generators, which mypyc does not compile, and every
backtest request used to run through it interpreted.

A request takes effect at once: validated like a strict exchange (it raises, it never rounds a
price or size for the caller), checked for crossing against the combined book (other traders'
liquidity and the bot's own orders) when the model enforces post-only, funds locked, booked.
An immediate-or-cancel order (:meth:`SimExchange.place_ioc_now`) instead takes other traders'
liquidity at once, as far as its limit allows (:mod:`.ioc`), and never rests.
"""

from __future__ import annotations

from collections.abc import Sequence

from kasmm.core.types import (
    ZERO,
    Balances,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderRequest,
    VenueEvent,
)
from kasmm.errors import FatalVenueError, OrderNotFound, VenueError
from kasmm.venues.base import (
    CancelOutcome,
    IocOutcome,
    PlaceOutcome,
    require_ioc,
    require_resting,
)
from kasmm.venues.sim.matching import RestingOrder, combined_best
from kasmm.venues.sim.orders import check_cross, validate_request
from kasmm.venues.sim.state import MarketModel, SimState


class SimExchange:
    """Requests against one simulated account and market, without latency."""

    def __init__(self, state: SimState, model: MarketModel, name: str) -> None:
        self.state = state
        #: The market (the replay venue swaps in its own model before the first connect).
        self.model = model
        self.name = name
        self.connected = False
        self._started = False

    def connect_now(self) -> MarketRules:
        """Serve requests; the first connect starts the market at the clock's time."""
        self.connected = True
        if not self._started:
            self._started = True
            self.model.start()
        return self.state.rules

    def close_now(self) -> None:
        """Stop serving requests (orders stay on the book)."""
        self.connected = False

    def require_connected(self) -> None:
        """:raises FatalVenueError: the exchange is not connected."""
        if not self.connected:
            raise FatalVenueError(f"{self.name}: not connected")

    def poll(self) -> VenueEvent | float:
        """The market's next event, or the time of its next step (``MarketModel.poll``)."""
        return self.model.poll()

    def step(self) -> None:
        """Run the market step :meth:`poll` timed (the clock stands at its time)."""
        self.model.step()

    def balances_now(self) -> Balances:
        """Free and locked balances of every asset the account holds."""
        self.require_connected()
        return self.state.ledger.snapshot()

    def open_orders_now(self) -> list[OpenOrder]:
        """All open orders in placement order, whatever their client id prefix."""
        self.require_connected()
        return [o.to_open_order() for o in self.state.orders]

    def place_now(self, request: OrderRequest) -> OpenOrder:
        """Validate, lock funds for and book one limit order (``SimVenue.place_order``)."""
        self.require_connected()
        return self._place(request)

    def place_ioc_now(self, request: OrderRequest) -> IocOutcome:
        """Execute an immediate-or-cancel order against other traders' liquidity and cancel
        the rest (``SimVenue.place_ioc``; the rules are :mod:`.ioc`'s). Its fills, then the
        book it left, come out of the market's events.

        :raises OrderRejected: not an IOC, a rule violation, or a market without a book.
        :raises InsufficientFunds: the free balance cannot back the whole order at its limit.
        """
        self.require_connected()
        state = self.state
        state.places += 1
        try:
            require_ioc(request)
            validate_request(state.rules, state.orders, request)
            state.ledger.check_take(
                request.side, request.price, request.size, state.rules.taker_fee
            )
            takes = self.model.take(request.side, request.price, request.size)
        except VenueError:
            state.rejects += 1
            raise
        venue_id, fills = state.take(request, takes)
        if fills:
            self.model.publish(fills)
        filled = sum((size for _, size in takes), ZERO)
        notional = sum((price * size for price, size in takes), ZERO)
        return IocOutcome.of(request.client_id, request.size, filled, notional, venue_id)

    def place_orders_now(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        """Each order in request order, its error as its outcome."""
        self.require_connected()
        out: list[PlaceOutcome] = []
        for request in requests:
            try:
                out.append(self._place(request))
            except VenueError as exc:
                out.append(exc)
        return out

    def cancel_order_now(self, client_id: ClientOrderId) -> None:
        """Cancel one open order and unlock its funds.

        :raises OrderNotFound: no open order has this client id (filled, cancelled, unknown).
        """
        self.require_connected()
        self._cancel(client_id)

    def cancel_orders_now(self, client_ids: Sequence[ClientOrderId]) -> list[CancelOutcome]:
        """Each cancel in request order, its error as its outcome."""
        self.require_connected()
        out: list[CancelOutcome] = []
        for client_id in client_ids:
            try:
                self._cancel(client_id)
                out.append(None)
            except VenueError as exc:
                out.append(exc)
        return out

    def cancel_all_now(self, prefix: str) -> int:
        """Cancel every open order whose client id starts with ``prefix``; return the count."""
        self.require_connected()
        self.state.cancels += 1
        return self.state.cancel_prefix(prefix)

    def _place(self, request: OrderRequest) -> OpenOrder:
        self.state.places += 1
        try:
            order = self._accept(request)
        except VenueError:
            self.state.rejects += 1
            raise
        return order.to_open_order()

    def _cancel(self, client_id: ClientOrderId) -> None:
        self.state.cancels += 1
        if self.state.cancel(client_id) is None:
            raise OrderNotFound(f"no open order {client_id!r}")

    def _accept(self, request: OrderRequest) -> RestingOrder:
        state = self.state
        if request.is_ioc:
            # require_resting, inlined: a call into source from this compiled module on every
            # order of a backtest costs more than the check.
            require_resting(request)
        on_grid = validate_request(state.rules, state.orders, request)
        if self.model.enforces_post_only:
            opposite = request.side.opposite
            check_cross(request, combined_best(self.model.best(opposite), state.orders, opposite))
        # raises InsufficientFunds before anything is booked
        return state.add_order(request, on_grid)
