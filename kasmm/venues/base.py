"""The ``Venue`` protocol every exchange implementation satisfies.

The bot talks to venues only through this protocol, so the same bot runs against the simulated
exchange, a live exchange through ccxt, and backtests. Implementations raise only the classes in
:mod:`kasmm.errors`; they translate their transport's exceptions once, at their boundary.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol, TypeAlias, runtime_checkable

from kasmm.core.types import (
    ZERO,
    Balances,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderRequest,
    VenueEvent,
    VenueOrderId,
)
from kasmm.errors import OrderRejected, VenueError

#: How an immediate-or-cancel order ended: all of it executed, some of it (the venue cancelled
#: the rest), or none (nothing was there at the price: the venue cancelled it all).
IocStatus: TypeAlias = Literal["filled", "partial", "expired"]


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """How many orders one request may carry (1: no batch endpoint; a batch call then sends
    the orders as concurrent single requests)."""

    place: int = 1
    cancel: int = 1

    def __post_init__(self) -> None:
        if self.place < 1 or self.cancel < 1:
            raise ValueError(f"batch limits must be at least 1, got {self}")


@dataclass(frozen=True, slots=True)
class IocOutcome:
    """What an immediate-or-cancel order did, as the venue reported it when it answered.

    A summary for the caller's decision (hedge more, carry the rest): the fills themselves
    arrive as ``OrderFilled`` events through ``events()`` (taker fills, the venue's trade
    ids), which is what the ledger stores.
    """

    client_id: ClientOrderId
    #: Base executed, in total.
    filled: Decimal
    #: Size-weighted average execution price (``None`` when nothing executed).
    average_price: Decimal | None
    status: IocStatus
    #: The venue's id of the order, when it gave one (links its fills in the ledger).
    venue_id: VenueOrderId | None = None

    @classmethod
    def of(
        cls,
        client_id: ClientOrderId,
        size: Decimal,
        filled: Decimal,
        notional: Decimal | None,
        venue_id: VenueOrderId | None = None,
    ) -> IocOutcome:
        """The outcome of an order for ``size`` that executed ``filled`` for ``notional``
        (quote, ``None`` when unknown: no average then).

        :raises ValueError: ``filled`` is negative or above ``size``.
        """
        if filled < ZERO or filled > size:
            raise ValueError(f"{client_id}: filled {filled} outside 0..{size}")
        status: IocStatus = "expired"
        if filled == size:
            status = "filled"
        elif filled > ZERO:
            status = "partial"
        average = notional / filled if notional is not None and filled > ZERO else None
        return cls(client_id, filled, average, status, venue_id)


def require_ioc(request: OrderRequest) -> None:
    """Refuse a request ``place_ioc`` must not send (every venue checks this first).

    :raises OrderRejected: ``time_in_force`` is not ``IOC``, or the request is post-only (an
        IOC exists to take liquidity: the two contradict each other).
    """
    if not request.is_ioc:
        raise OrderRejected(f"{request.client_id}: place_ioc needs time_in_force=ioc")
    if request.post_only:
        raise OrderRejected(f"{request.client_id}: an IOC order cannot be post-only")


def require_resting(request: OrderRequest) -> None:
    """Refuse an IOC request handed to ``place_order`` / ``place_orders``, which return
    resting orders (sent as they are, it would rest as a plain limit order).

    :raises OrderRejected: ``time_in_force`` is ``IOC``.
    """
    if request.is_ioc:
        raise OrderRejected(f"{request.client_id}: an IOC order is placed with place_ioc")


#: One order's outcome in a batch placement: the order as resting, or why it was not placed.
PlaceOutcome: TypeAlias = OpenOrder | VenueError
#: One order's outcome in a batch cancel: ``None`` when cancelled, else the error (for an
#: order already gone, ``OrderNotFound``).
CancelOutcome: TypeAlias = VenueError | None


@runtime_checkable
class Venue(Protocol):
    """An exchange account trading one symbol."""

    @property
    def name(self) -> str:
        """Short venue name for logs and metric labels (``sim``, ``mexc``, ...)."""
        ...

    async def connect(self) -> MarketRules:
        """Open connections, load the market and return its trading rules."""
        ...

    async def close(self) -> None:
        """Release connections. Does not cancel orders (the bot does that explicitly)."""
        ...

    def events(self) -> AsyncGenerator[VenueEvent, None]:
        """Market data and own-order events, in the order the venue produced them.

        Yields ``BookUpdated`` on every book change and ``OrderFilled`` for every execution
        against one of this account's orders (partial fills included), ``OrderClosed`` when an
        order leaves the book for another reason. Iterating it drives a simulated venue's clock.
        """
        ...

    async def fetch_balances(self) -> Balances:
        """Current balances (the venue is the source of truth)."""
        ...

    async def fetch_open_orders(self) -> list[OpenOrder]:
        """All open orders on this symbol, the bot's and anyone else's on the account."""
        ...

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        """Place a limit order; returns it as resting on the book.

        :raises PostOnlyWouldCross: a post-only order would take liquidity.
        :raises OrderRejected: tick, lot, min-notional or other rule violation.
        :raises InsufficientFunds: not enough free balance.
        :raises RequestTimedOut: the outcome is unknown; look the order up by client id.
        """
        ...

    async def place_ioc(self, request: OrderRequest) -> IocOutcome:
        """Place an immediate-or-cancel limit order (``OrderRequest.ioc``): it executes at once
        against the book up to ``request.price`` (a buy at or below it, a sell at or above)
        and the venue cancels any remainder; it never rests. Returns the summary as soon as
        the venue answers; the fills arrive through ``events()`` (``is_maker=False``).

        :raises OrderRejected: not an IOC request (``time_in_force``, or post-only), a rule
            violation, or a venue that cannot take liquidity.
        :raises InsufficientFunds: the free balance cannot back the whole order at its price.
        :raises RequestTimedOut: the outcome is unknown; look the order up by client id.
        """
        ...

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        """Cancel one order by client id.

        :raises OrderNotFound: the order is no longer open (filled or already cancelled).
        """
        ...

    async def cancel_all(self, prefix: str) -> int:
        """Cancel every open order whose client id starts with ``prefix``; return how many."""
        ...

    @property
    def batch_limits(self) -> BatchLimits:
        """How many orders one placement or cancel request may carry."""
        ...

    async def place_orders(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        """Place requests (at most batch_limits.place) in one round trip where the venue can:
        one batch request, else concurrent single requests. One outcome per request, in order
        (some may succeed while others fail). An error about the whole call is raised instead:
        RequestTimedOut = every outcome unknown (each order is then looked up by client id, as
        after a single lost answer); auth/fatal as usual.

        With ``batch_limits.place == 1`` (no batch endpoint) any number of requests may be
        given: each is its own request, all in flight at once, and each one's error (a lost
        answer included) is that order's outcome. An empty sequence sends nothing.
        """
        ...

    async def cancel_orders(self, client_ids: Sequence[ClientOrderId]) -> list[CancelOutcome]:
        """Same for cancels; OrderNotFound as the outcome of one already gone."""
        ...
