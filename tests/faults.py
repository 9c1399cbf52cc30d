"""``FaultyVenue``: any venue, made as unreliable and hostile as a real exchange can be.

Test and bench equipment, not part of the ``kasmm`` package (nothing under ``kasmm/`` may import
it): a wrapper for reliability tests and soak runs. Around any
:class:`~kasmm.venues.base.Venue` (the simulator, a ccxt venue on an emulator, ...) it injects,
at the seeded rates of a :class:`FaultPlan`:

Requests (one draw per call; a request fault is exclusive, a latency spike comes on top)

* ``timeout_lost``: the request **is carried out** by the inner venue (an order placed, an IOC
  executed, an order or a prefix cancelled; or refused) but its answer is lost:
  :class:`~kasmm.errors.RequestTimedOut`. The caller must treat the outcome as unknown.
* ``timeout_unsent``: the request never reached the venue, and the caller sees the same
  ``RequestTimedOut``.
* ``rate_limited`` (a 429), ``network`` and ``maintenance`` (``TransientVenueError``):
  refused before anything happens.
* ``insufficient_funds`` (``place_order`` and ``place_ioc``): ``InsufficientFunds``, nothing
  placed.
* ``cancel_not_found_done`` (``cancel_order``): the order **is** cancelled, the answer says
  ``OrderNotFound`` (a retried cancel whose first attempt went through).
* ``cancel_not_found_kept`` (``cancel_order``): the order is **not** cancelled and the answer
  says ``OrderNotFound`` (a lagging replica): the order keeps resting.
* ``latency_spike``: the request sleeps ``latency_spike_s`` on the clock first (a timeout
  wrapper outside this one turns a long spike into an unknown outcome).
* ``connect_error``: ``connect`` fails with a ``TransientVenueError``.

Batch calls (``place_orders``, ``cancel_orders``) draw the request faults above once for the
whole call (``timeout_lost`` carries every order out and loses every answer), and the per-order
faults once per order: ``insufficient_funds`` for a placement and ``cancel_not_found_done`` /
``cancel_not_found_kept`` for a cancel become that order's outcome (a kept order is left out of
the batch sent to the inner venue, a done one is cancelled and answered ``OrderNotFound``). The
counters count a batch as the requests it stands for (``n`` concurrent singles: ``n`` calls), so
the faulted share means the same whether the bot sends its orders one by one or together.

The event stream (one draw per inner event, plus hostile extras)

* ``disconnect`` raises ``TransientVenueError`` out of ``events()`` (a dropped websocket);
  ``stream_end`` ends it quietly; ``stale`` stalls it for ``stale_s`` before the next event.
* ``book_out_of_order`` re-sends the previous (older) book after the current one;
  ``book_crossed`` sends a crossed copy of the current book instead of it.
* ``fill_duplicate`` delivers a fill twice; ``fill_out_of_order`` holds a fill back until after
  the next event; ``fill_split`` delivers one fill as 2-3 partial fills of the same order (trade
  ids ``<id>~1``, ``<id>~2``, ...; sizes on the lot, fee split exactly, ``remaining`` consistent).
* Hostile data, sent instead of the real book (the next update is real again): ``nan_price`` (a
  NaN best price), ``negative_size`` (a negative best level), ``empty_book`` (no levels at
  all), ``absurd_jump`` (every price times or divided by ``absurd_factor``). A hostile update
  replaces the real one rather than preceding it: sent back to back, the real one would
  supersede it before a real-time bot looked at it (queued books are coalesced).

Fills are never lost by the injection: a held-back fill or the remaining parts of a split one
are delivered before a disconnect or the end of the stream, and if the consumer closes the
stream while some are still held, the next ``events()`` of the same wrapper delivers them first.

Every call and every injected fault is counted in :class:`FaultCounters` (which may be shared by
several wrappers, e.g. one per restart of a profile). The randomness comes only from the
``random.Random`` passed in, so a seed and the same call sequence inject the same faults.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing, suppress
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any, TypeVar

from kasmm.clock import Clock
from kasmm.core.types import (
    Book,
    BookLevel,
    BookUpdated,
    ClientOrderId,
    Fill,
    MarketRules,
    OrderFilled,
    OrderRequest,
    TradeId,
    VenueEvent,
)
from kasmm.errors import (
    InsufficientFunds,
    OrderNotFound,
    RateLimited,
    RequestTimedOut,
    TransientVenueError,
    VenueError,
)
from kasmm.venues.base import CancelOutcome, PlaceOutcome, Venue
from kasmm.venues.batch import requests_sent
from kasmm.venues.decorator import VenueDecorator

T = TypeVar("T")

#: Request methods that can carry out their work and then lose the answer.
_MUTATING = (
    "place_order",
    "place_ioc",
    "cancel_order",
    "cancel_all",
    "place_orders",
    "cancel_orders",
)
#: Separator between a venue trade id and the part number of a split fill.
SPLIT_SEP = "~"


def _probability(value: float, name: str) -> float:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return value


@dataclass(frozen=True)
class FaultPlan:
    """Injection rates (probabilities in [0, 1]) and the sizes of the injected trouble."""

    # --- requests: exclusive outcomes, drawn once per call ---------------------------------
    timeout_lost: float = 0.0
    timeout_unsent: float = 0.0
    rate_limited: float = 0.0
    network: float = 0.0
    maintenance: float = 0.0
    insufficient_funds: float = 0.0
    cancel_not_found_done: float = 0.0
    cancel_not_found_kept: float = 0.0
    # --- requests: independent of the above ------------------------------------------------
    latency_spike: float = 0.0
    latency_spike_s: tuple[float, float] = (0.05, 0.5)
    connect_error: float = 0.0
    #: Seconds a timed-out request takes before it raises (0: at once).
    timeout_delay_s: float = 0.0
    # --- the event stream: drawn once per inner event --------------------------------------
    disconnect: float = 0.0
    stream_end: float = 0.0
    stale: float = 0.0
    stale_s: float = 2.0
    book_out_of_order: float = 0.0
    book_crossed: float = 0.0
    fill_duplicate: float = 0.0
    fill_out_of_order: float = 0.0
    fill_split: float = 0.0
    # --- hostile data: drawn once per inner book --------------------------------------------
    nan_price: float = 0.0
    negative_size: float = 0.0
    empty_book: float = 0.0
    absurd_jump: float = 0.0
    absurd_factor: float = 100.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("latency_spike_s",):
                low, high = value
                if not (0 <= low <= high and math.isfinite(high)):
                    raise ValueError(f"{f.name} must be (low, high) with 0 <= low <= high")
            elif f.name in ("timeout_delay_s", "stale_s"):
                if not (math.isfinite(value) and value >= 0):
                    raise ValueError(f"{f.name} must be a finite number >= 0")
            elif f.name == "absurd_factor":
                if not (math.isfinite(value) and value > 1):
                    raise ValueError("absurd_factor must be a finite number > 1")
            else:
                _probability(value, f.name)
        if self.request_fault_rate("cancel_order") > 1.0 + 1e-12:
            raise ValueError("request fault probabilities add up to more than 1")

    def request_faults(self, method: str) -> tuple[tuple[str, float], ...]:
        """The exclusive request faults that apply to ``method``, with their probabilities
        (for a batch method: the whole-call ones; its per-order faults are drawn per order)."""
        out: list[tuple[str, float]] = []
        if method in _MUTATING:
            out.append(("timeout_lost", self.timeout_lost))
        out += [
            ("timeout_unsent", self.timeout_unsent),
            ("rate_limited", self.rate_limited),
            ("network", self.network),
            ("maintenance", self.maintenance),
        ]
        if method in ("place_order", "place_ioc"):
            out.append(("insufficient_funds", self.insufficient_funds))
        if method == "cancel_order":
            out.append(("cancel_not_found_done", self.cancel_not_found_done))
            out.append(("cancel_not_found_kept", self.cancel_not_found_kept))
        return tuple(out)

    def request_fault_rate(self, method: str) -> float:
        """Probability that a call of ``method`` gets an exclusive request fault."""
        return sum(p for _, p in self.request_faults(method))

    @classmethod
    def uniform(cls, rate: float, **overrides: Any) -> FaultPlan:
        """A plan whose calls fail at about ``rate`` overall, spread over every request fault
        kind, with mild stream trouble (no hostile data unless given in ``overrides``)."""
        _probability(rate, "rate")
        plan = cls(
            timeout_lost=rate * 0.25,
            timeout_unsent=rate * 0.15,
            rate_limited=rate * 0.2,
            network=rate * 0.2,
            maintenance=rate * 0.1,
            insufficient_funds=rate * 0.1,
            cancel_not_found_done=rate * 0.1,
            cancel_not_found_kept=rate * 0.05,
            latency_spike=rate * 0.1,
            latency_spike_s=(0.02, 0.3),
            disconnect=0.0005,
            stale=0.0005,
            stale_s=1.0,
            book_out_of_order=0.01,
            book_crossed=0.005,
            fill_duplicate=0.1,
            fill_out_of_order=0.1,
            fill_split=0.1,
        )
        return replace(plan, **overrides)


@dataclass
class FaultCounters:
    """Calls per method and injected faults per kind (share one across restarts if wanted)."""

    calls: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    #: Calls that got at least one fault (an exclusive fault, a latency spike, or for a batch
    #: call a fault of one of its orders). A batch call counts in ``calls`` and here as the
    #: requests it stands for: ``n`` concurrent singles are ``n`` calls, and a fault of the
    #: whole batch ``n`` faulted calls (one of its orders: one).
    faulted_calls: int = 0
    events_in: int = 0
    events_out: int = 0

    @property
    def total_calls(self) -> int:
        """Every request call (connect included), faulted or not."""
        return sum(self.calls.values())

    @property
    def total_faults(self) -> int:
        """Every injected fault (requests and stream)."""
        return sum(self.faults.values())

    def merge(self, other: FaultCounters) -> None:
        """Add ``other``'s counts to this one."""
        self.calls.update(other.calls)
        self.faults.update(other.faults)
        self.faulted_calls += other.faulted_calls
        self.events_in += other.events_in
        self.events_out += other.events_out

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for JSON output)."""
        return {
            "calls": dict(sorted(self.calls.items())),
            "total_calls": self.total_calls,
            "faulted_calls": self.faulted_calls,
            "faults": dict(sorted(self.faults.items())),
            "total_faults": self.total_faults,
            "events_in": self.events_in,
            "events_out": self.events_out,
        }


def base_trade_id(trade_id: str) -> str:
    """The venue's trade id of a (possibly split) fill."""
    return trade_id.split(SPLIT_SEP, 1)[0]


class FaultyVenue(VenueDecorator):
    """Wrap ``inner`` and inject the faults of ``plan`` (see the module docstring)."""

    def __init__(
        self,
        inner: Venue,
        plan: FaultPlan,
        rng: random.Random,
        clock: Clock,
        *,
        counters: FaultCounters | None = None,
    ) -> None:
        super().__init__(inner)
        self.plan = plan
        self.rng = rng
        self.clock = clock
        self.counters = counters if counters is not None else FaultCounters()
        self.rules: MarketRules | None = None
        #: Events taken from the inner stream and not delivered yet (carried to the next
        #: ``events()`` if the consumer closes the stream while some are held).
        self._carry: deque[VenueEvent] = deque()
        self._held: list[VenueEvent] = []
        self._last_book: Book | None = None
        self._jump_up = True
        #: Set to False to stop injecting (e.g. while a soak run shuts down to count orders).
        self.enabled = True

    def pending_events(self) -> list[VenueEvent]:
        """Events taken from the inner venue and not delivered yet (carried or held back)."""
        return [*self._carry, *self._held]

    # --- requests ---------------------------------------------------------------------------

    def _fault(self, kind: str) -> None:
        self.counters.faults[kind] += 1

    async def _call(
        self,
        method: str,
        call: Callable[[], Awaitable[T]],
        *,
        weight: float = 1.0,
        arg: object = None,
    ) -> T:
        return await self._request(method, call, requests=max(1, round(weight)))

    async def _request(
        self,
        method: str,
        call: Callable[[], Awaitable[T]],
        *,
        requests: int = 1,
        orders_faulted: int = 0,
    ) -> T:
        """One call with its request faults, counted as the ``requests`` it stands for (a
        batch of ``n`` concurrent singles: ``n``); ``orders_faulted``: how many of a batch's
        orders get a fault of their own."""
        self.counters.calls[method] += requests
        if not self.enabled:
            return await call()
        plan = self.plan
        faulted = orders_faulted
        if plan.latency_spike and self.rng.random() < plan.latency_spike:
            faulted = requests  # every request of the call waits
            self._fault("latency_spike")
            low, high = plan.latency_spike_s
            await self.clock.sleep_until(self.clock.now() + self.rng.uniform(low, high))
        draw = self.rng.random()
        chosen: str | None = None
        acc = 0.0
        for kind, p in plan.request_faults(method):
            acc += p
            if draw < acc:
                chosen = kind
                break
        if chosen is None:
            self.counters.faulted_calls += faulted
            return await call()
        self.counters.faulted_calls += requests
        self._fault(chosen)
        if chosen == "timeout_lost":
            # Carried out (whatever its answer, accepted or refused, it never arrives).
            with suppress(VenueError):
                await call()
            await self._timeout_delay()
            raise RequestTimedOut(f"{self.name} {method}: injected timeout (answer lost)")
        if chosen == "timeout_unsent":
            await self._timeout_delay()
            raise RequestTimedOut(f"{self.name} {method}: injected timeout (never sent)")
        if chosen == "rate_limited":
            raise RateLimited(f"{self.name} {method}: injected 429 Too Many Requests")
        if chosen == "network":
            raise TransientVenueError(f"{self.name} {method}: injected connection reset")
        if chosen == "maintenance":
            raise TransientVenueError(f"{self.name} {method}: injected 503 system maintenance")
        if chosen == "insufficient_funds":
            raise InsufficientFunds(f"{self.name} {method}: injected insufficient balance")
        if chosen == "cancel_not_found_done":
            with suppress(OrderNotFound):
                await call()
            raise OrderNotFound(f"{self.name} {method}: injected unknown order (was cancelled)")
        if chosen == "cancel_not_found_kept":
            raise OrderNotFound(f"{self.name} {method}: injected unknown order (still open)")
        raise AssertionError(f"unhandled fault kind {chosen}")  # pragma: no cover

    async def _timeout_delay(self) -> None:
        if self.plan.timeout_delay_s > 0:
            await self.clock.sleep_until(self.clock.now() + self.plan.timeout_delay_s)

    async def connect(self) -> MarketRules:
        """``connect``, failing at ``connect_error``."""
        self.counters.calls["connect"] += 1
        if self.enabled and self.plan.connect_error and self.rng.random() < self.plan.connect_error:
            self.counters.faulted_calls += 1
            self._fault("connect_error")
            raise TransientVenueError(f"{self.name} connect: injected connection refused")
        self.rules = await self.inner.connect()
        return self.rules

    async def place_orders(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        """``place_orders`` with whole-call faults, and ``insufficient_funds`` per order."""
        if not requests:
            return []
        refused: set[int] = set()
        p = self.plan.insufficient_funds
        if self.enabled and p:
            refused = {i for i in range(len(requests)) if self.rng.random() < p}
        sent = [r for i, r in enumerate(requests) if i not in refused]

        async def place() -> list[PlaceOutcome]:
            for _ in refused:  # counted once the batch is really sent
                self._fault("insufficient_funds")
            answers = iter(await self.inner.place_orders(sent) if sent else [])
            return [
                InsufficientFunds(f"{self.name} place_orders: injected insufficient balance")
                if i in refused
                else next(answers)
                for i in range(len(requests))
            ]

        return await self._request(
            "place_orders",
            place,
            requests=requests_sent(len(requests), self.inner.batch_limits.place),
            orders_faulted=len(refused),
        )

    async def cancel_orders(self, client_ids: Sequence[ClientOrderId]) -> list[CancelOutcome]:
        """``cancel_orders`` with whole-call faults, and the not-found faults per order."""
        if not client_ids:
            return []
        done_p, kept_p = self.plan.cancel_not_found_done, self.plan.cancel_not_found_kept
        done: set[int] = set()
        kept: set[int] = set()
        if self.enabled and (done_p or kept_p):
            for i in range(len(client_ids)):
                draw = self.rng.random()
                if draw < done_p:
                    done.add(i)
                elif draw < done_p + kept_p:
                    kept.add(i)
        sent = [c for i, c in enumerate(client_ids) if i not in kept]

        async def cancel() -> list[CancelOutcome]:
            for i in sorted(done | kept):  # counted once the batch is really sent
                self._fault("cancel_not_found_done" if i in done else "cancel_not_found_kept")
            answers = iter(await self.inner.cancel_orders(sent) if sent else [])
            out: list[CancelOutcome] = []
            for i in range(len(client_ids)):
                if i in kept:
                    out.append(OrderNotFound(f"{self.name} cancel_orders: injected (still open)"))
                    continue
                answer = next(answers)
                if i in done:  # cancelled (or already gone): the answer says not found
                    answer = OrderNotFound(f"{self.name} cancel_orders: injected (was cancelled)")
                out.append(answer)
            return out

        return await self._request(
            "cancel_orders",
            cancel,
            requests=requests_sent(len(client_ids), self.inner.batch_limits.cancel),
            orders_faulted=len(done | kept),
        )

    # --- the event stream -------------------------------------------------------------------

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        """The inner stream with stream faults and hostile data injected."""
        async for item in self._drain():
            yield item
        async with aclosing(self.inner.events()) as inner:
            async for event in inner:
                self.counters.events_in += 1
                if not self.enabled:
                    self._carry.extend(self._held)
                    self._held = []
                    self._carry.append(event)
                else:
                    ready, hold = self._transform(event)
                    # Fills held back by the previous event go out after this event's output.
                    self._carry.extend(ready)
                    self._carry.extend(self._held)
                    self._held = hold
                while self._carry:
                    self.counters.events_out += 1
                    yield self._carry.popleft()
                if not self.enabled:
                    continue
                if self.plan.stale and self.rng.random() < self.plan.stale:
                    self._fault("stale")
                    await self.clock.sleep_until(self.clock.now() + self.plan.stale_s)
                end = self.rng.random()
                if end < self.plan.disconnect:
                    self._fault("disconnect")
                    async for item in self._drain():  # never lose a fill to the disconnect
                        yield item
                    raise TransientVenueError(f"{self.name}: injected websocket disconnect")
                if end < self.plan.disconnect + self.plan.stream_end:
                    self._fault("stream_end")
                    async for item in self._drain():
                        yield item
                    return
        async for item in self._drain():
            yield item

    async def _drain(self) -> AsyncGenerator[VenueEvent, None]:
        """Deliver whatever is carried over or held back."""
        self._carry.extend(self._held)
        self._held = []
        while self._carry:
            self.counters.events_out += 1
            yield self._carry.popleft()

    def _transform(self, event: VenueEvent) -> tuple[list[VenueEvent], list[VenueEvent]]:
        """What the consumer sees for one inner event: (deliver now, hold until the next)."""
        plan, rng = self.plan, self.rng
        if isinstance(event, BookUpdated):
            out: list[VenueEvent] = []
            book = event.book
            for kind, p in (
                ("nan_price", plan.nan_price),
                ("negative_size", plan.negative_size),
                ("empty_book", plan.empty_book),
                ("absurd_jump", plan.absurd_jump),
                ("book_crossed", plan.book_crossed),
            ):
                if p and rng.random() < p:
                    hostile = self._hostile(kind, book)
                    if hostile is not None:
                        self._fault(kind)
                        out.append(BookUpdated(hostile))
            if not out:
                # A hostile update replaces the real one: sent back to back, the real one
                # would supersede it at once (a real-time bot coalesces queued books).
                out.append(event)
            previous = self._last_book
            if (
                previous is not None
                and plan.book_out_of_order
                and rng.random() < plan.book_out_of_order
            ):
                self._fault("book_out_of_order")
                out.append(BookUpdated(previous))
            self._last_book = book
            return out, []
        if isinstance(event, OrderFilled):
            parts = [event]
            if plan.fill_split and rng.random() < plan.fill_split:
                split = self._split(event.fill)
                if len(split) > 1:
                    self._fault("fill_split")
                    parts = [OrderFilled(f) for f in split]
            fills: list[VenueEvent] = []
            for part in parts:
                fills.append(part)
                if plan.fill_duplicate and rng.random() < plan.fill_duplicate:
                    self._fault("fill_duplicate")
                    fills.append(part)
            if plan.fill_out_of_order and rng.random() < plan.fill_out_of_order:
                self._fault("fill_out_of_order")
                return [], fills
            return fills, []
        return [event], []

    def _hostile(self, kind: str, book: Book) -> Book | None:
        """A malformed copy of ``book`` (``None`` when the book has nothing to corrupt)."""
        if kind == "empty_book":
            return Book((), (), book.ts)
        if not (book.bids and book.asks):
            return None
        if kind == "nan_price":
            nan = Decimal("NaN")
            if self.rng.random() < 0.5:
                return Book((BookLevel(nan, book.bids[0].size), *book.bids[1:]), book.asks, book.ts)
            return Book(book.bids, (BookLevel(nan, book.asks[0].size), *book.asks[1:]), book.ts)
        if kind == "negative_size":
            bid0, ask0 = book.bids[0], book.asks[0]
            return Book(
                (BookLevel(bid0.price, -bid0.size - 1), *book.bids[1:]),
                (BookLevel(ask0.price, -ask0.size - 1), *book.asks[1:]),
                book.ts,
            )
        if kind == "absurd_jump":
            factor = Decimal(repr(self.plan.absurd_factor))
            up, self._jump_up = self._jump_up, not self._jump_up

            def move(levels: tuple[BookLevel, ...]) -> tuple[BookLevel, ...]:
                return tuple(
                    BookLevel(lv.price * factor if up else lv.price / factor, lv.size)
                    for lv in levels
                )

            return Book(move(book.bids), move(book.asks), book.ts)
        if kind == "book_crossed":
            # Bids moved above the best ask by the book's own spread: best bid > best ask.
            shift = book.asks[0].price - book.bids[0].price
            width = shift if shift > 0 else book.asks[0].price / 1000
            bids = tuple(BookLevel(lv.price + 2 * width, lv.size) for lv in book.bids)
            return Book(bids, book.asks, book.ts)
        raise AssertionError(kind)  # pragma: no cover

    def _split(self, fill: Fill) -> list[Fill]:
        """``fill`` as 2-3 partial fills of the same order (sizes on the lot when known)."""
        lot = self.rules.lot if self.rules is not None else None
        if lot is None or lot <= 0:
            return [fill]
        lots = int(fill.size / lot)
        if lots < 2 or lots * lot != fill.size:
            return [fill]
        n = min(lots, self.rng.choice((2, 3)))
        cuts = sorted(self.rng.sample(range(1, lots), n - 1))
        bounds = [0, *cuts, lots]
        sizes = [(bounds[i + 1] - bounds[i]) * lot for i in range(n)]
        parts: list[Fill] = []
        fee_left = fill.fee
        left_after = fill.size
        for i, size in enumerate(sizes):
            left_after -= size
            fee = fee_left if i == n - 1 else fill.fee * size / fill.size
            fee_left -= fee
            parts.append(
                replace(
                    fill,
                    trade_id=TradeId(f"{fill.trade_id}{SPLIT_SEP}{i + 1}"),
                    size=size,
                    fee=fee,
                    remaining=fill.remaining + left_after,
                )
            )
        return parts
