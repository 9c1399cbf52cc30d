"""Batch order actions for venues without a batch endpoint: concurrent single requests.

A venue that cannot place (or cancel) several orders in one request still answers a batch call
in about one round trip by sending every order as its own request, all in flight at once in an
anyio task group. Each order's :class:`~kasmm.errors.VenueError` (a rejection, a lost answer, an
unknown order) becomes that order's outcome, so one failure never hides the others' results;
anything else (a bug, cancellation) propagates as it would from a single call.

:class:`ConcurrentBatch` is the mixin every concrete venue starts from (``BatchLimits()``); a
venue with real batch endpoints overrides ``batch_limits`` and the two batch methods.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import anyio

from kasmm.core.types import ClientOrderId, OpenOrder, OrderRequest
from kasmm.errors import VenueError
from kasmm.venues.base import BatchLimits, CancelOutcome, PlaceOutcome

T = TypeVar("T")
A = TypeVar("A")


def requests_sent(orders: int, per_request: int) -> int:
    """How many requests a batch call of ``orders`` orders really sends.

    One per order without a batch endpoint (``per_request`` 1: concurrent singles), else one
    per ``per_request`` orders (a batch call carries at most that many, so normally 1).
    """
    if orders <= 0:
        return 0
    return orders if per_request <= 1 else math.ceil(orders / per_request)


async def each_concurrently(
    call: Callable[[A], Awaitable[T]], args: Sequence[A]
) -> list[T | VenueError]:
    """``call(arg)`` for every arg at once; the results (or ``VenueError``\\ s) in ``args`` order.

    Tasks start in ``args`` order, so a venue that answers without awaiting (the paper venue)
    handles them in that order, deterministically. A non-``VenueError`` exception cancels the
    other calls and is raised as itself (not wrapped in an exception group) when it is the only
    one.
    """
    if not args:
        return []
    if len(args) == 1:  # no task group for one request: the same outcome, less overhead
        try:
            return [await call(args[0])]
        except VenueError as exc:
            return [exc]
    outcomes: dict[int, T | VenueError] = {}

    async def one(index: int, arg: A) -> None:
        try:
            outcomes[index] = await call(arg)
        except VenueError as exc:
            outcomes[index] = exc

    try:
        async with anyio.create_task_group() as tg:
            for index, arg in enumerate(args):
                tg.start_soon(one, index, arg)
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    return [outcomes[i] for i in range(len(args))]


class _SingleOrders(Protocol):
    async def place_order(self, request: OrderRequest) -> OpenOrder: ...

    async def cancel_order(self, client_id: ClientOrderId) -> None: ...


async def place_concurrently(
    venue: _SingleOrders, requests: Sequence[OrderRequest]
) -> list[PlaceOutcome]:
    """Every request through ``venue.place_order``, all at once; outcomes in request order."""
    return await each_concurrently(venue.place_order, requests)


async def cancel_concurrently(
    venue: _SingleOrders, client_ids: Sequence[ClientOrderId]
) -> list[CancelOutcome]:
    """Every cancel through ``venue.cancel_order``, all at once; outcomes in request order."""
    return await each_concurrently(venue.cancel_order, client_ids)


#: The limits of a venue without batch endpoints (one value: read on every round).
_SINGLE = BatchLimits()


class ConcurrentBatch:
    """The batch half of the ``Venue`` protocol for a venue without batch endpoints.

    ``batch_limits`` is ``BatchLimits()`` and the batch calls are concurrent single requests
    through the venue's own ``place_order`` / ``cancel_order`` (see the module docstring).
    """

    @property
    def batch_limits(self) -> BatchLimits:
        """No batch endpoint: one order per request."""
        return _SINGLE

    async def place_orders(
        self: _SingleOrders, requests: Sequence[OrderRequest]
    ) -> list[PlaceOutcome]:
        """Concurrent ``place_order`` calls; one outcome per request, in order."""
        return await place_concurrently(self, requests)

    async def cancel_orders(
        self: _SingleOrders, client_ids: Sequence[ClientOrderId]
    ) -> list[CancelOutcome]:
        """Concurrent ``cancel_order`` calls; one outcome per client id, in order."""
        return await cancel_concurrently(self, client_ids)
