"""``VenueDecorator``: the one base of every venue wrapper (deadline, rate limit, metering, ...).

A wrapper changes what happens *around* each request (bound it in time, take tokens first, time
it, inject a fault), rarely the request itself. The base implements every ``Venue`` request
method by calling one hook, :meth:`VenueDecorator._call`, with the method's name, a thunk that
performs it on the wrapped venue, the number of requests it really sends (its ``weight``) and its
argument (``arg``, for wrappers that record requests); a wrapper overrides the hook, plus only
what it really changes. ``name``, ``batch_limits``,
``events()`` and ``close()`` pass straight through (override them to change them).

A batch call (``place_orders`` / ``cancel_orders``) goes through the hook **once**, as one call
of its own method name, with ``weight`` = the requests the wrapped venue sends for it: 1 for a
batch request of a venue with a batch endpoint, ``n`` for ``n`` concurrent single requests
(:func:`kasmm.venues.batch.requests_sent`). The wrapped venue is exposed as ``inner`` (what
:func:`kasmm.venues.sim.account.simulated_account` walks).

The request methods are plain functions that return the hook's coroutine (``_call(...)``), not
coroutines that await it: the caller awaits the same thing, one coroutine frame fewer per
wrapper and request (the production stack has three wrappers, and every order action passes
each). A wrapper may still override one of them with an ``async def`` of its own.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from kasmm.core.types import (
    Balances,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderRequest,
    VenueEvent,
)
from kasmm.venues.base import BatchLimits, CancelOutcome, IocOutcome, PlaceOutcome, Venue
from kasmm.venues.batch import requests_sent

T = TypeVar("T")


class VenueDecorator:
    """Wrap ``inner``; every request runs through :meth:`_call` (a plain pass-through here)."""

    def __init__(self, inner: Venue) -> None:
        self.inner = inner

    async def _call(
        self,
        method: str,
        call: Callable[[], Awaitable[T]],
        *,
        weight: float = 1.0,
        arg: object = None,
    ) -> T:
        """Perform one venue call (``call()``); override to act around it.

        :param method: the ``Venue`` method's name (``place_order``, ``place_orders``, ...).
        :param call: performs the request on ``inner``; await it at most once.
        :param weight: requests the call really sends (see the module docstring).
        :param arg: the method's argument, for wrappers that record requests: the
            ``OrderRequest``, client id or prefix; a batch call's sequence; ``None`` for
            ``connect`` and the fetches.
        """
        return await call()

    @property
    def name(self) -> str:
        """The wrapped venue's name."""
        return self.inner.name

    @property
    def batch_limits(self) -> BatchLimits:
        """The wrapped venue's batch limits."""
        return self.inner.batch_limits

    def connect(self) -> Coroutine[Any, Any, MarketRules]:
        """``connect`` through the hook."""
        return self._call("connect", self.inner.connect)

    async def close(self) -> None:
        """``close``, passed through (it releases local resources; no request to act on)."""
        await self.inner.close()

    def events(self) -> AsyncGenerator[VenueEvent, None]:
        """The wrapped venue's event stream, passed through."""
        return self.inner.events()

    def fetch_balances(self) -> Coroutine[Any, Any, Balances]:
        """``fetch_balances`` through the hook."""
        return self._call("fetch_balances", self.inner.fetch_balances)

    def fetch_open_orders(self) -> Coroutine[Any, Any, list[OpenOrder]]:
        """``fetch_open_orders`` through the hook."""
        return self._call("fetch_open_orders", self.inner.fetch_open_orders)

    def place_order(self, request: OrderRequest) -> Coroutine[Any, Any, OpenOrder]:
        """``place_order`` through the hook."""
        return self._call("place_order", lambda: self.inner.place_order(request), arg=request)

    def place_ioc(self, request: OrderRequest) -> Coroutine[Any, Any, IocOutcome]:
        """``place_ioc`` through the hook: one request, like a placement."""
        return self._call("place_ioc", lambda: self.inner.place_ioc(request), arg=request)

    def cancel_order(self, client_id: ClientOrderId) -> Coroutine[Any, Any, None]:
        """``cancel_order`` through the hook."""
        return self._call("cancel_order", lambda: self.inner.cancel_order(client_id), arg=client_id)

    def cancel_all(self, prefix: str) -> Coroutine[Any, Any, int]:
        """``cancel_all`` through the hook."""
        return self._call("cancel_all", lambda: self.inner.cancel_all(prefix), arg=prefix)

    def place_orders(
        self, requests: Sequence[OrderRequest]
    ) -> Coroutine[Any, Any, list[PlaceOutcome]]:
        """``place_orders`` through the hook once, weighted by the requests it sends."""
        weight = requests_sent(len(requests), self.inner.batch_limits.place)
        return self._call(
            "place_orders", lambda: self.inner.place_orders(requests), weight=weight, arg=requests
        )

    def cancel_orders(
        self, client_ids: Sequence[ClientOrderId]
    ) -> Coroutine[Any, Any, list[CancelOutcome]]:
        """``cancel_orders`` through the hook once, weighted by the requests it sends."""
        weight = requests_sent(len(client_ids), self.inner.batch_limits.cancel)
        return self._call(
            "cancel_orders",
            lambda: self.inner.cancel_orders(client_ids),
            weight=weight,
            arg=client_ids,
        )
