"""TimeoutVenue: every request is bounded in time, results and errors pass through."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from kasmm.core.types import (
    Balance,
    Balances,
    Book,
    BookLevel,
    BookUpdated,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderClosed,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.errors import (
    FatalVenueError,
    InsufficientFunds,
    OrderNotFound,
    PostOnlyWouldCross,
    RateLimited,
    RequestTimedOut,
    VenueError,
)
from kasmm.venues.base import IocOutcome, Venue
from kasmm.venues.batch import ConcurrentBatch
from kasmm.venues.guard import TimeoutVenue

pytestmark = pytest.mark.anyio
D = Decimal
TIMEOUT = 0.05

RULES = MarketRules("KAS/USDT", "KAS", "USDT", tick=D("0.00001"), lot=D("0.01"))
BALANCES = Balances(MappingProxyType({"KAS": Balance(D(100)), "USDT": Balance(D(5), D(1))}))
CID = ClientOrderId("kab1200000a")
REQUEST = OrderRequest(CID, Side.BUY, D("0.0125"), D(100))
ORDER = OpenOrder(CID, Side.BUY, D("0.0125"), D(100), D(100), created_at=1.0)
IOC = OrderRequest.ioc(ClientOrderId("kab1200000b"), Side.SELL, D("0.0124"), D(100))
IOC_OUTCOME = IocOutcome(IOC.client_id, D(40), D("0.0124"), "partial")
EVENTS: list[VenueEvent] = [
    BookUpdated(Book((BookLevel(D("0.0124"), D(5)),), (BookLevel(D("0.0126"), D(5)),), 1.0)),
    OrderClosed(CID, "expired", 2.0),
]


class FakeVenue(ConcurrentBatch):
    """A venue whose every request first waits ``delay`` seconds (``None``: forever)."""

    def __init__(
        self,
        delay: float | None = 0.0,
        *,
        name: str = "fake",
        error: BaseException | None = None,
        event_gap: float = 0.0,
    ) -> None:
        self._name = name
        self.delay = delay
        self.error = error
        self.event_gap = event_gap
        self.calls: list[tuple[str, object]] = []
        self.cancelled: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    async def _wait(self, what: str, arg: object = None) -> None:
        self.calls.append((what, arg))
        try:
            if self.delay is None:
                await anyio.sleep_forever()
            else:
                await anyio.sleep(self.delay)
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(what)
            raise
        if self.error is not None:
            raise self.error

    async def connect(self) -> MarketRules:
        await self._wait("connect")
        return RULES

    async def close(self) -> None:
        await self._wait("close")

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        self.calls.append(("events", None))
        for event in EVENTS:
            await anyio.sleep(self.event_gap)
            yield event

    async def fetch_balances(self) -> Balances:
        await self._wait("fetch_balances")
        return BALANCES

    async def fetch_open_orders(self) -> list[OpenOrder]:
        await self._wait("fetch_open_orders")
        return [ORDER]

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        await self._wait("place_order", request)
        return ORDER

    async def place_ioc(self, request: OrderRequest) -> IocOutcome:
        await self._wait("place_ioc", request)
        return IOC_OUTCOME

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        await self._wait("cancel_order", client_id)

    async def cancel_all(self, prefix: str) -> int:
        await self._wait("cancel_all", prefix)
        return 3


Call = Callable[[TimeoutVenue], Awaitable[object]]

# (method name, how to call it, the argument the inner venue must see, the expected result)
METHODS: list[tuple[str, Call, object, object]] = [
    ("connect", lambda v: v.connect(), None, RULES),
    ("close", lambda v: v.close(), None, None),
    ("fetch_balances", lambda v: v.fetch_balances(), None, BALANCES),
    ("fetch_open_orders", lambda v: v.fetch_open_orders(), None, [ORDER]),
    ("place_order", lambda v: v.place_order(REQUEST), REQUEST, ORDER),
    ("place_ioc", lambda v: v.place_ioc(IOC), IOC, IOC_OUTCOME),
    ("cancel_order", lambda v: v.cancel_order(CID), CID, None),
    ("cancel_all", lambda v: v.cancel_all("kab12"), "kab12", 3),
]
METHOD_PARAMS = [
    pytest.param(call, name, arg, result, id=name) for name, call, arg, result in METHODS
]


def test_satisfies_the_venue_protocol() -> None:
    guard = TimeoutVenue(FakeVenue(), TIMEOUT)
    assert isinstance(guard, Venue)
    assert guard.timeout_s == TIMEOUT
    assert guard.connect_timeout_s == 30.0


@pytest.mark.parametrize(("call", "name", "arg", "result"), METHOD_PARAMS)
async def test_hanging_request_times_out(
    call: Call, name: str, arg: object, result: object
) -> None:
    inner = FakeVenue(None, name="mexc")
    guard = TimeoutVenue(inner, TIMEOUT, connect_timeout_s=TIMEOUT)
    t0 = time.monotonic()
    with anyio.fail_after(5), pytest.raises(RequestTimedOut) as info:
        await call(guard)
    elapsed = time.monotonic() - t0
    assert TIMEOUT * 0.8 <= elapsed < 2.0
    assert str(info.value) == f"mexc {name} timed out after 0.05s"
    assert isinstance(info.value.__cause__, TimeoutError)
    assert info.value.retryable  # a transient error: the bot retries / looks the order up
    assert inner.calls == [(name, arg)]
    assert inner.cancelled == [name]  # the hung call was cancelled, not left running


@pytest.mark.parametrize(("call", "name", "arg", "result"), METHOD_PARAMS)
async def test_fast_request_passes_result_through(
    call: Call, name: str, arg: object, result: object
) -> None:
    inner = FakeVenue(0.0)
    guard = TimeoutVenue(inner, TIMEOUT, connect_timeout_s=TIMEOUT)
    assert await call(guard) == result
    assert inner.calls == [(name, arg)]
    assert inner.cancelled == []


@pytest.mark.parametrize(("call", "name", "arg", "result"), METHOD_PARAMS)
async def test_slow_but_in_time_request_succeeds(
    call: Call, name: str, arg: object, result: object
) -> None:
    guard = TimeoutVenue(FakeVenue(0.01), 2.0, connect_timeout_s=2.0)
    assert await call(guard) == result


@pytest.mark.parametrize(
    "error",
    [
        OrderNotFound("gone"),
        PostOnlyWouldCross("would cross"),
        InsufficientFunds("poor"),
        RateLimited("slow down"),
        FatalVenueError("banned"),
    ],
)
@pytest.mark.parametrize(("call", "name", "arg", "result"), METHOD_PARAMS)
async def test_venue_errors_pass_through_unchanged(
    call: Call, name: str, arg: object, result: object, error: VenueError
) -> None:
    guard = TimeoutVenue(FakeVenue(0.0, error=error), TIMEOUT, connect_timeout_s=TIMEOUT)
    with pytest.raises(type(error)) as info:
        await call(guard)
    assert info.value is error


async def test_inner_timeout_error_reports_as_request_timed_out() -> None:
    # A transport that raises the builtin TimeoutError itself: the outcome is just as unknown.
    guard = TimeoutVenue(FakeVenue(0.0, error=TimeoutError("socket")), TIMEOUT)
    with pytest.raises(RequestTimedOut):
        await guard.place_order(REQUEST)


@pytest.mark.parametrize(
    ("timeout_s", "connect_timeout_s", "delay", "connect_ok", "request_ok"),
    [
        (TIMEOUT, 2.0, 0.12, True, False),  # connect gets its own, longer deadline
        (2.0, TIMEOUT, 0.12, False, True),  # and requests do not inherit it
        (2.0, 2.0, 0.0, True, True),
    ],
)
async def test_connect_has_its_own_deadline(
    timeout_s: float, connect_timeout_s: float, delay: float, connect_ok: bool, request_ok: bool
) -> None:
    guard = TimeoutVenue(FakeVenue(delay), timeout_s, connect_timeout_s=connect_timeout_s)
    if connect_ok:
        assert await guard.connect() == RULES
    else:
        with pytest.raises(RequestTimedOut, match="connect timed out"):
            await guard.connect()
    if request_ok:
        assert await guard.fetch_balances() == BALANCES
    else:
        with pytest.raises(RequestTimedOut, match="fetch_balances timed out"):
            await guard.fetch_balances()


async def test_outer_cancellation_is_not_turned_into_a_timeout() -> None:
    inner = FakeVenue(None)
    guard = TimeoutVenue(inner, 10.0)
    with anyio.move_on_after(TIMEOUT) as scope:
        await guard.place_order(REQUEST)
    assert scope.cancelled_caught
    assert inner.cancelled == ["place_order"]


async def test_each_request_gets_a_fresh_deadline() -> None:
    inner = FakeVenue(TIMEOUT * 0.6)
    guard = TimeoutVenue(inner, TIMEOUT)
    for _ in range(3):  # together they exceed the timeout, each alone does not
        assert await guard.cancel_all("kab") == 3
    assert inner.cancelled == []


async def test_requests_after_the_first_are_bounded_and_cancellable_alike() -> None:
    # The first request's scope comes from anyio.CancelScope(), the later ones from its class.
    inner = FakeVenue(None)
    guard = TimeoutVenue(inner, TIMEOUT)
    for _ in range(3):
        with pytest.raises(RequestTimedOut):
            await guard.place_order(REQUEST)
        with anyio.move_on_after(TIMEOUT / 5) as scope:  # a cancellation from outside
            await guard.cancel_all("kab")
        assert scope.cancelled_caught
    assert inner.cancelled == ["place_order", "cancel_all"] * 3


@pytest.mark.parametrize("venue_name", ["sim", "mexc", "gate"])
def test_name_passes_through(venue_name: str) -> None:
    assert TimeoutVenue(FakeVenue(name=venue_name), TIMEOUT).name == venue_name


@pytest.mark.parametrize("event_gap", [0.0, TIMEOUT * 1.5])
async def test_events_pass_through_unbounded(event_gap: float) -> None:
    inner = FakeVenue(event_gap=event_gap)
    guard = TimeoutVenue(inner, TIMEOUT)
    with anyio.fail_after(5):
        received = [event async for event in guard.events()]
    assert received == EVENTS  # gaps longer than the request timeout are fine
    assert inner.calls == [("events", None)]


class InstantVenue(FakeVenue):
    """A venue whose requests answer without waiting (the sim venue with no latency)."""

    async def _wait(self, what: str, arg: object = None) -> None:
        self.calls.append((what, arg))
        if self.error is not None:
            raise self.error


@pytest.mark.parametrize(("call", "name", "arg", "result"), METHOD_PARAMS)
async def test_request_answering_without_waiting_passes_through(
    call: Call, name: str, arg: object, result: object
) -> None:
    # The fast path (module docstring): no scope, the same result.
    inner = InstantVenue()
    guard = TimeoutVenue(inner, TIMEOUT, connect_timeout_s=TIMEOUT)
    assert await call(guard) == result
    assert inner.calls == [(name, arg)]


@pytest.mark.parametrize(
    "error", [OrderNotFound("gone"), FatalVenueError("banned"), TimeoutError("socket")]
)
async def test_request_failing_without_waiting_is_reported_as_before(error: Exception) -> None:
    guard = TimeoutVenue(InstantVenue(error=error), TIMEOUT)
    expected = RequestTimedOut if isinstance(error, TimeoutError) else type(error)
    with pytest.raises(expected):
        await guard.place_order(REQUEST)


class LateHangVenue(FakeVenue):
    """Requests that first work synchronously (``busy`` seconds), then wait ``delay``."""

    def __init__(self, busy: float, delay: float | None) -> None:
        super().__init__(delay)
        self.busy = busy

    async def _wait(self, what: str, arg: object = None) -> None:
        end = time.monotonic() + self.busy  # synchronous work before the first wait
        while time.monotonic() < end:
            pass
        await super()._wait(what, arg)


@pytest.mark.parametrize(
    ("busy", "delay", "times_out"),
    [
        (0.0, None, True),  # hangs at its first wait: cut off
        (TIMEOUT * 0.6, TIMEOUT * 0.6, True),  # the deadline counts from the call's start
        (0.0, TIMEOUT * 0.2, False),
    ],
)
async def test_deadline_counts_from_the_start_of_the_call(
    busy: float, delay: float | None, times_out: bool
) -> None:
    inner = LateHangVenue(busy, delay)
    guard = TimeoutVenue(inner, TIMEOUT)
    with anyio.fail_after(5):
        if times_out:
            with pytest.raises(RequestTimedOut, match="cancel_order timed out"):
                await guard.cancel_order(CID)
            assert inner.cancelled == ["cancel_order"]
        else:
            await guard.cancel_order(CID)
            assert inner.cancelled == []


async def test_request_waiting_several_times_gets_every_answer() -> None:
    # What the event loop sends into the resumed call, and what the call yields, pass through.
    class ManyWaits(InstantVenue):
        async def _wait(self, what: str, arg: object = None) -> None:
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            stream_send, stream_receive = anyio.create_memory_object_stream[int](1)
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream_send.send, 7)
                assert await stream_receive.receive() == 7
            stream_send.close()
            stream_receive.close()
            await super()._wait(what, arg)

    guard = TimeoutVenue(ManyWaits(), TIMEOUT)
    assert await guard.fetch_open_orders() == [ORDER]


async def test_non_coroutine_awaitable_is_bounded_too() -> None:
    guard = TimeoutVenue(FakeVenue(), TIMEOUT)

    class Hangs:
        def __await__(self) -> Generator[Any, None, None]:
            return anyio.sleep_forever().__await__()

    with anyio.fail_after(5), pytest.raises(RequestTimedOut):
        await guard._call("fetch_balances", lambda: Hangs())


@pytest.mark.parametrize("delay", [None, 0.0])
async def test_request_waiting_inside_its_own_scopes(delay: float | None) -> None:
    # A request that waits inside a task group and a scope of its own (a batch of concurrent
    # single requests): those scopes nest inside the deadline's, whether it hangs or answers.
    class Nested(FakeVenue):
        async def _wait(self, what: str, arg: object = None) -> None:
            with anyio.CancelScope():
                async with anyio.create_task_group() as tg:
                    tg.start_soon(anyio.lowlevel.checkpoint)
                    await super()._wait(what, arg)

    inner = Nested(delay)
    guard = TimeoutVenue(inner, TIMEOUT)
    with anyio.fail_after(5):
        if delay is None:
            with pytest.raises(RequestTimedOut):
                await guard.place_order(REQUEST)
            assert inner.cancelled == ["place_order"]
        else:
            assert await guard.place_order(REQUEST) == ORDER
