"""A venue wrapper that bounds every request in time.

A venue call that hangs (a dead TCP connection, an exchange stuck in maintenance) must not stall
its profile forever, and must never stall other profiles. Every request gets a deadline; running
out of it raises :class:`~kasmm.errors.RequestTimedOut`, whose outcome the bot treats as unknown.
A batch call gets one deadline for the whole call (its orders are in flight together), and
running out of it leaves every order's outcome unknown. The event stream has no deadline here:
staleness of market data is the risk gate's job.

**The deadline is armed when the call first waits.** Only a call that waits can hang, and a
cancel scope only acts at a wait. The request's scope is entered first, without a deadline (the
scopes a request enters itself must nest inside it), and the request runs until its first
suspension; if it answers without waiting (the simulated and paper venues with no latency: every
request of a demo), no timer is ever scheduled. A call that waits gets the deadline it would have
had from its start, and runs out of it exactly as before. ``anyio.fail_after`` cost about 10 us a
request (two generator context managers, a timer scheduled and cancelled), a fifth of the live
path's reaction; the scope alone costs about 3.

**The scope is made from its class.** ``anyio.CancelScope()`` looks up the running backend on
every call (``get_async_backend``: which async library runs, then its class) before it builds
the backend's scope, about 1 us of the 1.6 a scope costs to make. A venue serves one event loop,
so :class:`TimeoutVenue` takes the class from the first scope it makes and builds the rest from
it: the same scope, entered and cancelled as before, without the lookup.
"""

from __future__ import annotations

import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

import anyio

from kasmm.errors import RequestTimedOut
from kasmm.venues.base import Venue
from kasmm.venues.decorator import VenueDecorator

T = TypeVar("T")


@types.coroutine
def resume(coro: Coroutine[Any, Any, T], suspended_on: Any) -> Generator[Any, Any, T]:
    """The rest of ``await coro``, whose first step has already run and yielded ``suspended_on``.

    This is ``yield from`` (PEP 380) written out, because the first step ran outside it: what
    the event loop sends or throws in goes to ``coro``, and what ``coro`` yields goes out.
    Nothing may enter or leave a cancel scope between the first step and this (the scopes the
    step entered are still open). Used here and by the executor's waves.
    """
    yielded = suspended_on
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # cancellation, delivered where the call waits
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]


class TimeoutVenue(VenueDecorator):
    """Wrap ``inner`` so that each request fails with ``RequestTimedOut`` after ``timeout_s``."""

    def __init__(self, inner: Venue, timeout_s: float, connect_timeout_s: float = 30.0) -> None:
        super().__init__(inner)
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        #: The running backend's cancel scope class, from the first request (module docstring).
        self._scope_class: type[anyio.CancelScope] | None = None

    async def _call(
        self,
        method: str,
        call: Callable[[], Awaitable[T]],
        *,
        weight: float = 1.0,
        arg: object = None,
    ) -> T:
        limit = self.connect_timeout_s if method == "connect" else self.timeout_s
        started = time.perf_counter()  # cheaper than the loop's clock, read only if it waits
        scope_class = self._scope_class
        if scope_class is None:
            scope = anyio.CancelScope()
            self._scope_class = type(scope)
        else:
            scope = scope_class()
        try:
            with scope:
                request = call()
                if not isinstance(request, types.CoroutineType):  # no first step to take alone
                    scope.deadline = anyio.current_time() + limit
                    return await request
                try:  # the first step (module docstring): up to the call's first wait
                    suspended_on = request.send(None)
                except StopIteration as answered:
                    return answered.value  # type: ignore[no-any-return]
                # Counted from the call's start; a deadline already past cancels at once.
                scope.deadline = anyio.current_time() + limit - (time.perf_counter() - started)
                return await resume(request, suspended_on)
            # Only the deadline cancels this scope (nobody else holds it), and a cancellation
            # from outside passes through it; as fail_at, we get here only when time ran out.
            raise TimeoutError
        except TimeoutError as exc:
            raise RequestTimedOut(f"{self.inner.name} {method} timed out after {limit:g}s") from exc

    async def close(self) -> None:
        """Bounded ``close`` (a hung close must not hold up a restart or a shutdown)."""
        await self._call("close", self.inner.close)
