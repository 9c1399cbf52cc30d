"""Venue request metering: latency per endpoint, errors by class, rate-limiter waits.

Everything here is plain Python state (ints, floats, small lists) mutated on the event loop by
the profile's own tasks; nothing talks to prometheus_client. The supervisor's collector
(:mod:`kasmm.obs.metrics`) reads these objects at scrape time and exports them.

One :class:`VenueMetrics` lives per profile slot, so its counters keep counting across bot
restarts. :class:`MeteredVenue` wraps a venue (outermost, around whatever the venue factory
built) and :class:`MeteredTokenBucket` is the profile's token bucket with its waits recorded.

Request latency excludes time spent waiting for rate-limit tokens: the bucket adds its wait to
a per-request cell held in a context variable, and the metered venue subtracts it. That makes
``kasmm_venue_request_duration_seconds`` the venue's latency whether the bucket sits in front of
the venue (``RateLimitedVenue``) or inside it (ccxt's throttle hook); the wait itself is in
``kasmm_rate_limit_wait_seconds``.
"""

from __future__ import annotations

import contextvars
import math
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, cast

from kasmm.clock import Clock
from kasmm.errors import VenueError
from kasmm.limiter import TokenBucket
from kasmm.venues.base import Venue
from kasmm.venues.decorator import VenueDecorator

T = TypeVar("T")

#: Every metered single-request method, in the order the dashboards list them (the batch
#: endpoints ``place_orders`` and ``cancel_orders``, and ``place_ioc``, a placement that takes
#: liquidity, get their histograms when first used).
ENDPOINTS: tuple[str, ...] = (
    "connect",
    "fetch_balances",
    "fetch_open_orders",
    "place_order",
    "cancel_order",
    "cancel_all",
)

#: Bucket upper bounds (seconds) for venue request latency: sub-ms sim to multi-second REST.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
#: Bucket upper bounds (seconds) for the time a request waited for rate-limit tokens; the first
#: bucket (100 µs) holds the acquires that found tokens at once.
WAIT_BUCKETS: tuple[float, ...] = (0.0001, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    """A fixed-bucket histogram: per-bucket counts (not cumulative), their sum and count.

    ``counts[i]`` holds observations ``<= bounds[i]`` and ``> bounds[i - 1]``; the last slot
    (``counts[len(bounds)]``) is the ``+Inf`` overflow. Observing is a bisect and two adds.
    """

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    sum: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if list(self.bounds) != sorted(set(self.bounds)) or any(
            not math.isfinite(b) for b in self.bounds
        ):
            raise ValueError(f"bucket bounds must be finite and strictly increasing: {self.bounds}")
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)
        elif len(self.counts) != len(self.bounds) + 1:
            raise ValueError("counts must have one slot per bound plus the +Inf slot")

    def observe(self, value: float) -> None:
        """Record one observation (NaN is ignored: it would poison the sum)."""
        if math.isnan(value):
            return
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, cumulative count)`` pairs ending with ``(inf, count)``."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((bound, running))
        out.append((math.inf, self.count))
        return out


@dataclass
class VenueMetrics:
    """One profile's venue counters, kept across bot restarts."""

    latency_buckets: tuple[float, ...] = LATENCY_BUCKETS
    wait_buckets: tuple[float, ...] = WAIT_BUCKETS
    #: Request latency per endpoint (all outcomes; errors are also counted in ``errors``).
    requests: dict[str, Histogram] = field(default_factory=dict)
    #: ``(endpoint, exception class name) -> count``.
    errors: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Seconds each token-bucket acquire waited (by the bucket's clock).
    limiter_wait: Histogram = field(init=False)
    #: The ``limiter_wait`` slot a zero wait falls in (:meth:`observe_no_wait`).
    _no_wait_slot: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for endpoint in ENDPOINTS:
            self.requests.setdefault(endpoint, Histogram(self.latency_buckets))
        self.limiter_wait = Histogram(self.wait_buckets)
        self._no_wait_slot = bisect_left(self.wait_buckets, 0.0)

    def observe_request(self, endpoint: str, seconds: float) -> None:
        """Record one request's latency."""
        histogram = self.requests.get(endpoint)
        if histogram is None:
            histogram = self.requests[endpoint] = Histogram(self.latency_buckets)
        histogram.observe(seconds)

    def record_error(self, endpoint: str, exc: BaseException) -> None:
        """Count one failed request by its exception's class name."""
        key = (endpoint, type(exc).__name__)
        self.errors[key] = self.errors.get(key, 0) + 1

    def observe_wait(self, seconds: float) -> None:
        """Record one token-bucket wait."""
        self.limiter_wait.observe(max(0.0, seconds))

    def observe_no_wait(self) -> None:
        """``observe_wait(0.0)``: an acquire that found its tokens, as every request of a bot
        within its budget does. Its slot is found once, not bisected per request; the sum
        stays as it is (it grows by zero)."""
        wait = self.limiter_wait
        wait.counts[self._no_wait_slot] += 1
        wait.count += 1


class _WaitCell:
    """Token-bucket wait accrued during one metered request (on the venue's clock)."""

    __slots__ = ("clock", "waited")

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.waited = 0.0


_current_wait: contextvars.ContextVar[_WaitCell | None] = contextvars.ContextVar(
    "kasmm_metered_wait", default=None
)


#: The batch endpoints: each order of such a call that failed is counted as an error too.
_BATCH_METHODS = frozenset({"place_orders", "cancel_orders"})


class MeteredVenue(VenueDecorator):
    """Wrap ``inner`` so that every request records its latency and any error it raises.

    Errors are re-raised unchanged; cancellation is neither an error nor a latency sample.
    The event stream and ``close`` pass through unmetered. A batch call is one latency sample
    of its own endpoint (``place_orders``, ``cancel_orders``; their histograms appear with
    the first batch call); each order of it that failed is counted in ``errors`` under that
    endpoint with its error's class, as a failed single request would be.
    """

    def __init__(
        self,
        inner: Venue,
        metrics: VenueMetrics,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(inner)
        self.metrics = metrics
        self.clock = clock

    async def _call(
        self,
        method: str,
        call: Callable[[], Awaitable[T]],
        *,
        weight: float = 1.0,
        arg: object = None,
    ) -> T:
        cell = _WaitCell(self.clock)
        token = _current_wait.set(cell)
        started = self.clock()
        try:
            result = await call()
        except Exception as exc:
            self.metrics.observe_request(method, self._elapsed(started, cell))
            self.metrics.record_error(method, exc)
            raise
        finally:
            _current_wait.reset(token)
        self.metrics.observe_request(method, self._elapsed(started, cell))
        if method in _BATCH_METHODS:
            # Counted here rather than in async overrides of the two batch methods: the hook's
            # coroutine is then the only one this wrapper adds to a request (decorator docs).
            self._count_failed(method, cast("Sequence[object]", result))
        return result

    def _elapsed(self, started: float, cell: _WaitCell) -> float:
        return max(0.0, self.clock() - started - cell.waited)

    def _count_failed(self, endpoint: str, outcomes: Sequence[object]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, VenueError):
                self.metrics.record_error(endpoint, outcome)


class MeteredTokenBucket(TokenBucket):
    """A :class:`TokenBucket` that records every ``acquire`` wait into ``metrics``.

    The histogram gets the wait on the bucket's own clock (virtual seconds in a backtest);
    a metered request in progress gets it on its own clock, to subtract from its latency.
    """

    def __init__(
        self,
        capacity: float,
        refill_per_s: float,
        clock: Clock,
        *,
        metrics: VenueMetrics,
        parent: TokenBucket | None = None,
        name: str = "",
    ) -> None:
        super().__init__(capacity, refill_per_s, clock, parent=parent, name=name)
        self.metrics = metrics

    async def acquire(self, weight: float = 1.0) -> float:
        """Wait for and take ``weight`` tokens; record and return the seconds waited."""
        if self.try_acquire(weight):
            # The tokens were there (every request of a bot within its budget): a zero wait,
            # without reading the clocks or the request's cell (it has nothing to subtract).
            self.metrics.observe_no_wait()
            return 0.0
        cell = _current_wait.get()
        started = cell.clock() if cell is not None else 0.0
        waited = await super().acquire(weight)
        self.metrics.observe_wait(waited)
        if cell is not None:
            cell.waited += max(0.0, cell.clock() - started)
        return waited
