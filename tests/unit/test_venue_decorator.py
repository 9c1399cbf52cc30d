"""VenueDecorator: every request through one hook; the batch calls through it once, weighted by
the requests the wrapped venue really sends; and the production wrappers on batch calls."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import anyio
import pytest

from kasmm.clock import RealClock, VirtualClock
from kasmm.core.types import (
    Balance,
    Balances,
    Book,
    BookUpdated,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.errors import OrderNotFound, PostOnlyWouldCross, RequestTimedOut, VenueError
from kasmm.limiter import TokenBucket
from kasmm.venues.base import BatchLimits, CancelOutcome, IocOutcome, PlaceOutcome, Venue
from kasmm.venues.batch import ConcurrentBatch
from kasmm.venues.decorator import VenueDecorator
from kasmm.venues.guard import TimeoutVenue
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.metered import MeteredVenue, VenueMetrics

pytestmark = pytest.mark.anyio

T = TypeVar("T")

RULES = MarketRules(
    symbol="KAS/USDT",
    base="KAS",
    quote="USDT",
    tick=Decimal("0.000001"),
    lot=Decimal("0.01"),
    min_notional=Decimal(1),
    min_size=Decimal("0.01"),
    maker_fee=Decimal(0),
    taker_fee=Decimal(0),
)


def req(name: str, price: str = "0.1") -> OrderRequest:
    return OrderRequest(ClientOrderId(name), Side.BUY, Decimal(price), Decimal(10))


def ioc(name: str) -> OrderRequest:
    return OrderRequest.ioc(ClientOrderId(name), Side.SELL, Decimal("0.1"), Decimal(10))


class Fake(ConcurrentBatch):
    """A venue answering at once: a request priced ``9`` crosses, cancel of ``gone`` fails."""

    name = "fake"

    def __init__(self, limits: BatchLimits | None = None, delay: float = 0.0) -> None:
        self.limits = limits or BatchLimits()
        self.delay = delay
        self.calls: list[str] = []
        self.closed = False

    @property
    def batch_limits(self) -> BatchLimits:
        return self.limits

    async def _wait(self, what: str) -> None:
        self.calls.append(what)
        if self.delay:
            await anyio.sleep(self.delay)

    async def connect(self) -> MarketRules:
        await self._wait("connect")
        return RULES

    async def close(self) -> None:
        self.closed = True

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        yield BookUpdated(Book((), (), 0.0))

    async def fetch_balances(self) -> Balances:
        await self._wait("fetch_balances")
        return Balances({"KAS": Balance(Decimal(1))})

    async def fetch_open_orders(self) -> list[OpenOrder]:
        await self._wait("fetch_open_orders")
        return []

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        await self._wait("place_order")
        if request.price == 9:
            raise PostOnlyWouldCross(f"{request.client_id} would cross")
        return OpenOrder(
            request.client_id, request.side, request.price, request.size, request.size, 0.0
        )

    async def place_ioc(self, request: OrderRequest) -> IocOutcome:
        await self._wait("place_ioc")
        return IocOutcome.of(request.client_id, request.size, request.size, request.size)

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        await self._wait("cancel_order")
        if client_id == "gone":
            raise OrderNotFound(client_id)

    async def cancel_all(self, prefix: str) -> int:
        await self._wait("cancel_all")
        return 0


class Hooked(VenueDecorator):
    """Records every call of the hook: (method, weight), and the arguments."""

    def __init__(self, inner: Venue) -> None:
        super().__init__(inner)
        self.hooked: list[tuple[str, float]] = []
        self.args: list[object] = []

    async def _call(
        self,
        method: str,
        call: Callable[[], Awaitable[T]],
        *,
        weight: float = 1.0,
        arg: object = None,
    ) -> T:
        self.hooked.append((method, weight))
        self.args.append(arg)
        return await call()


async def every_call(venue: Venue) -> list[object]:
    """Call every request method of the protocol once; their answers (``None`` for a cancel)."""
    answers: list[object] = [
        await venue.connect(),
        await venue.fetch_balances(),
        await venue.fetch_open_orders(),
        await venue.place_order(req("a")),
    ]
    await venue.cancel_order(ClientOrderId("a"))
    answers += [
        None,
        await venue.cancel_all("k"),
        await venue.place_orders([req("b"), req("c"), req("d")]),
        await venue.cancel_orders([ClientOrderId("b"), ClientOrderId("c")]),
        await venue.place_ioc(ioc("h")),
    ]
    return answers


async def test_every_request_goes_through_the_hook_once_and_the_rest_passes_through() -> None:
    inner = Fake()
    venue = Hooked(inner)
    assert isinstance(venue, Venue)
    assert venue.name == "fake" and venue.inner is inner
    assert venue.batch_limits == BatchLimits()
    results = await every_call(venue)
    assert results == await every_call(inner)  # the answers are the wrapped venue's
    assert venue.hooked == [
        ("connect", 1.0),
        ("fetch_balances", 1.0),
        ("fetch_open_orders", 1.0),
        ("place_order", 1.0),
        ("cancel_order", 1.0),
        ("cancel_all", 1.0),
        ("place_orders", 3),  # no batch endpoint: 3 concurrent single requests
        ("cancel_orders", 2),
        ("place_ioc", 1.0),  # one request, like a placement
    ]
    assert venue.args == [
        None,
        None,
        None,
        req("a"),
        "a",
        "k",
        [req("b"), req("c"), req("d")],
        ["b", "c"],
        ioc("h"),
    ]
    events = venue.events()
    assert isinstance(await anext(events), BookUpdated)
    await events.aclose()
    await venue.close()
    assert inner.closed and len(venue.hooked) == 9  # neither events nor close is a request


@pytest.mark.parametrize(
    ("limits", "place_weight", "cancel_weight"),
    [
        (BatchLimits(), 4, 3),
        (BatchLimits(place=20, cancel=20), 1, 1),  # one batch request each
        (BatchLimits(place=2, cancel=1), 2, 3),  # more than one batch: ceil(4 / 2)
    ],
)
async def test_a_batch_weighs_the_requests_the_venue_really_sends(
    limits: BatchLimits, place_weight: int, cancel_weight: int
) -> None:
    venue = Hooked(Fake(limits))
    await venue.place_orders([req(f"p{i}") for i in range(4)])
    await venue.cancel_orders([ClientOrderId(f"p{i}") for i in range(3)])
    assert venue.hooked == [("place_orders", place_weight), ("cancel_orders", cancel_weight)]


def test_batch_limits_are_at_least_one() -> None:
    with pytest.raises(ValueError):
        BatchLimits(place=0)


# --- the default: concurrent single requests ------------------------------------------------


async def test_concurrent_batch_gives_one_outcome_per_order_in_order() -> None:
    venue = Fake()
    placed = await venue.place_orders([req("a"), req("x", "9"), req("b")])
    assert [type(o) for o in placed] == [OpenOrder, PostOnlyWouldCross, OpenOrder]
    assert [o.client_id for o in placed if isinstance(o, OpenOrder)] == ["a", "b"]
    cancelled = await venue.cancel_orders([ClientOrderId("a"), ClientOrderId("gone")])
    assert cancelled[0] is None and isinstance(cancelled[1], OrderNotFound)
    assert await venue.place_orders([]) == [] and await venue.cancel_orders([]) == []
    assert venue.calls == ["place_order"] * 3 + ["cancel_order"] * 2


async def test_concurrent_batch_has_every_request_in_flight_at_once() -> None:
    venue = Fake(delay=0.2)
    began = time.perf_counter()
    outcomes = await venue.place_orders([req(f"c{i}") for i in range(5)])
    elapsed = time.perf_counter() - began
    assert all(isinstance(o, OpenOrder) for o in outcomes)
    assert elapsed < 0.6, elapsed  # one round trip (0.2 s), not five (1.0 s)


async def test_concurrent_batch_raises_anything_but_a_venue_error_as_itself() -> None:
    class Buggy(Fake):
        async def place_order(self, request: OrderRequest) -> OpenOrder:
            if request.client_id == "bug":
                raise KeyError("bug")
            await anyio.sleep(10)  # cancelled when the bug surfaces
            return await super().place_order(request)

    with anyio.fail_after(5), pytest.raises(KeyError):
        await Buggy().place_orders([req("a"), req("bug"), req("b")])


# --- the production wrappers on batch calls ---------------------------------------------------


async def test_rate_limit_charges_a_batch_per_request_really_sent() -> None:
    clock = VirtualClock(0.0)
    singles = TokenBucket(100, 1, clock)
    await RateLimitedVenue(Fake(), singles).place_orders([req(f"a{i}") for i in range(5)])
    assert singles.tokens == 95
    batched = TokenBucket(100, 1, clock)
    await RateLimitedVenue(Fake(BatchLimits(place=20)), batched).place_orders(
        [req(f"a{i}") for i in range(5)]
    )
    assert batched.tokens == 99
    await RateLimitedVenue(Fake(), batched, weight=2).cancel_orders([ClientOrderId("a")])
    assert batched.tokens == 97


async def test_rate_limit_serves_a_batch_larger_than_the_bucket_by_waiting() -> None:
    clock = VirtualClock(0.0)
    bucket = TokenBucket(3, 1, clock)  # 3 tokens at most, 1 per second
    outcomes = await RateLimitedVenue(Fake(), bucket).place_orders([req(f"a{i}") for i in range(7)])
    assert len(outcomes) == 7
    assert clock.now() == pytest.approx(4.0)  # 7 tokens: 3 at once, then 4 more at 1/s


async def test_timeout_bounds_a_batch_call_as_a_whole() -> None:
    guard = TimeoutVenue(Fake(delay=10), 0.05)
    with anyio.fail_after(5), pytest.raises(RequestTimedOut, match="place_orders"):
        await guard.place_orders([req("a"), req("b")])
    assert await TimeoutVenue(Fake(), 1.0).place_orders([req("a")]) != []


async def test_metering_records_a_batch_once_and_counts_its_failed_orders() -> None:
    now = [0.0]

    class Slow(Fake):
        async def _wait(self, what: str) -> None:
            await super()._wait(what)
            now[0] += 0.02  # each request "takes" 20 ms; concurrently in a real venue

    metrics = VenueMetrics()
    venue = MeteredVenue(Slow(), metrics, clock=lambda: now[0])
    outcomes: list[PlaceOutcome] = await venue.place_orders([req("a"), req("x", "9")])
    cancels: list[CancelOutcome] = await venue.cancel_orders([ClientOrderId("gone")])
    assert isinstance(outcomes[1], VenueError) and isinstance(cancels[0], OrderNotFound)
    assert metrics.requests["place_orders"].count == 1
    assert metrics.requests["cancel_orders"].count == 1
    assert metrics.requests["place_order"].count == 0  # not counted as singles too
    assert metrics.errors == {
        ("place_orders", "PostOnlyWouldCross"): 1,
        ("cancel_orders", "OrderNotFound"): 1,
    }


async def test_a_stack_of_wrappers_forwards_batches_to_the_venue_once_per_order() -> None:
    inner = Fake()
    clock = VirtualClock(0.0)
    bucket = TokenBucket(50, 50, clock)
    stack = MeteredVenue(RateLimitedVenue(TimeoutVenue(inner, 5.0), bucket), VenueMetrics())
    requests: Sequence[OrderRequest] = [req("a"), req("x", "9"), req("b")]
    outcomes = await stack.place_orders(requests)
    assert [type(o) for o in outcomes] == [OpenOrder, PostOnlyWouldCross, OpenOrder]
    assert inner.calls == ["place_order"] * 3
    assert bucket.tokens == 47


def test_wrappers_expose_the_wrapped_venue_as_inner() -> None:
    inner: Any = Fake()
    clock = RealClock()
    for wrapper in (
        TimeoutVenue(inner, 1.0),
        RateLimitedVenue(inner, TokenBucket(1, 1, clock)),
        MeteredVenue(inner, VenueMetrics()),
    ):
        assert isinstance(wrapper, VenueDecorator) and wrapper.inner is inner


# --- the production wrappers on immediate-or-cancel orders ------------------------------------


async def test_the_production_stack_forwards_an_ioc_as_one_metered_limited_placement() -> None:
    inner = Fake()
    clock = VirtualClock(0.0)
    bucket = TokenBucket(50, 50, clock)
    metrics = VenueMetrics()
    stack = MeteredVenue(RateLimitedVenue(TimeoutVenue(inner, 5.0), bucket, weight=2), metrics)
    outcome = await stack.place_ioc(ioc("h"))
    assert outcome == IocOutcome(ClientOrderId("h"), Decimal(10), Decimal(1), "filled")
    assert inner.calls == ["place_ioc"]
    assert bucket.tokens == 48  # one placement of the bucket's weight
    assert metrics.requests["place_ioc"].count == 1
    assert metrics.requests["place_order"].count == 0


async def test_timeout_bounds_an_ioc_and_says_its_outcome_is_unknown() -> None:
    guard = TimeoutVenue(Fake(delay=10), 0.05)
    with anyio.fail_after(5), pytest.raises(RequestTimedOut, match="place_ioc"):
        await guard.place_ioc(ioc("h"))
