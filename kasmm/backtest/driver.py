"""The synchronous backtest driver: market events straight into the engine, no event loop.

The live bot (:class:`kasmm.bot.Bot`) is an async driver around the sans-I/O
:class:`~kasmm.bot.engine.Engine`. A backtest path needs none of the async machinery: one
requester, a simulated venue whose requests take effect at once, a clock that only moves when
told. So this driver runs the same engine, step for step as the async driver does, in a plain
loop:

    market step (SimVenue.poll / step)  ->  Engine.on_book / fill_verdict + on_fill
      -> Engine.due (balance read, order audit)  ->  Engine.decide
      -> Engine.plan_round waves  ->  SimVenue *_now requests  ->  RoundOutcomes (the executor's
         error policy, shared)  ->  Engine.persist

Every request first takes its tokens from the :class:`~.plumbing.BacktestBucket` (a wait moves
the clock) and then its latency (``latency_ms``: the clock moves, then the request takes
effect), as the rate-limited stack does live. Calls of one wave are made in the order the async
executor starts them (cancels, then placements); in virtual time that is the order they took
effect in before. ``tests/unit/test_backtest_equivalence.py`` replays what this driver did through
the real-time async bot and checks that every decision and every request is identical.

What a backtest leaves out on purpose: a ledger (fills are de-duplicated by trade id in memory;
a halt is never cleared, as no operator can ``kasmm reset`` a backtest), and the retries of a
stop (a simulated venue cancels everything at once, so one cancel-all and one listing decide).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from kasmm.bot.commands import Job, Log, PlaceIoc
from kasmm.bot.driver import BotNotRunning
from kasmm.bot.engine import Engine, FillVerdict
from kasmm.bot.outcomes import RATE_LIMIT_PAUSE_S, RoundOutcomes, RoundState, chunks
from kasmm.bot.stats import BotState
from kasmm.bot.view import BotView, build_view, marks
from kasmm.config.schema import Profile
from kasmm.core.ids import ClientIdFactory
from kasmm.core.quoting import QuoteDecision
from kasmm.core.types import (
    BookUpdated,
    ClientOrderId,
    Fill,
    OpenOrder,
    OrderAction,
    OrderClosed,
    OrderFilled,
    OrderRequest,
    PlaceOrder,
    ReferenceUpdated,
    Side,
    VenueEvent,
)
from kasmm.errors import (
    AuthenticationFailed,
    FatalVenueError,
    OrderNotFound,
    RateLimited,
    RequestTimedOut,
    VenueError,
)
from kasmm.journal import Restored
from kasmm.venues.base import CancelOutcome, IocOutcome, PlaceOutcome
from kasmm.venues.batch import requests_sent
from kasmm.venues.sim import SimVenue
from kasmm.venues.sim.replay import ReplayEnded

from .meter import PathMeter
from .plumbing import LEVELS, PROGRESS_EVERY_S, BacktestBucket, BacktestClock, quiet_logger

T = TypeVar("T")
A = TypeVar("A")


@dataclass(slots=True)
class Request:
    """One request the driver sent: what, with which argument, at what time, what came back.

    ``at`` is the time the request left (after its tokens, before its latency), as a venue
    wrapper below the rate limit would see it.
    """

    method: str
    arg: Any
    at: float
    result: Any = None
    error: BaseException | None = None


class Observer(Protocol):
    """Watches a path (the equivalence test records what the driver did)."""

    def request(self, request: Request) -> None:
        """A request was answered (or raised)."""

    def handled(self, at: float, event: VenueEvent, decision: QuoteDecision | None) -> None:
        """The engine has handled ``event`` (``decision``: its last quoting decision)."""


class BacktestDriver:
    """Runs one profile's engine against one simulated venue in virtual time, synchronously."""

    def __init__(
        self,
        profile: Profile,
        sim: SimVenue,
        clock: BacktestClock,
        bucket: BacktestBucket,
        *,
        session_end: float | None = None,
        log_level: int = LEVELS["error"],
        run_tag: str | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.profile = profile
        self.sim = sim
        #: The venue's synchronous exchange: every request of the path goes straight to it.
        self.exchange = sim.exchange
        self.clock = clock
        self.bucket = bucket
        self.observer = observer
        # The tag of the rng the async driver seeds in virtual time: the same ids for the same
        # inputs (every path of a run starts at the same time: one tag, drawn once).
        if run_tag is None:
            run_tag = _seeded_run_tag(f"{profile.name}@{clock.now()}")
        self.engine = Engine(
            profile,
            venue_name=sim.name,
            session_end=session_end,
            run_tag=run_tag,
            journaled=False,  # no ledger in a backtest
            log_floor=log_level,
        )
        self.outcomes = RoundOutcomes(self.engine)
        self.meter = PathMeter()
        self.state = BotState.STARTING
        self.orders_left = 0
        self._log_level = log_level
        self.log = quiet_logger(profile, sim.name, log_level)
        self._latency_s = sim.latency_s
        limits = sim.batch_limits  # a simulated venue's limits never change
        self._cancel_per_request = limits.cancel
        self._place_per_request = limits.place
        self._seen_trades: set[str] = set()
        #: Books of referenced markets handed to this bot (:meth:`handle_reference`).
        self.references = 0
        #: Called with each fill the engine took as its own, at the clock's time (what the
        #: live driver reports as "stored": a group backtest's hedger listens here).
        self.fill_listener: Callable[[Fill, float], None] | None = None
        #: Called with the fraction of the horizon done, about every ``progress_every_s``.
        self.on_progress: Callable[[float], None] | None = None
        self.progress_every_s = PROGRESS_EVERY_S

    @property
    def run_tag(self) -> str:
        """The tag in this path's client order ids."""
        return self.engine.ids.run_tag

    def view(self) -> BotView:
        """The bot's frozen view now."""
        return build_view(self.engine, self.state, self.clock.now(), self.orders_left)

    # --- the path -------------------------------------------------------------------------

    def run(self) -> None:
        """Connect, trade every market event up to the horizon (or the data's end), then stop
        and cancel every order."""
        try:
            self.begin()
            self._loop()
        except BaseException as exc:
            self.failed(exc)
            raise
        finally:
            self.finish()
        self.finished()

    # --- the steps of :meth:`run`, for a driver of several paths (:mod:`.group`) -----------

    def begin(self) -> None:
        """Connect and reconcile (the start of :meth:`run`)."""
        self._start()

    def handle(self, event: VenueEvent, now: float) -> None:
        """One market event of this venue, at ``now`` (the path's clock): the engine handles
        it and requotes; the meter samples the bot after it."""
        engine, meter, observer = self.engine, self.meter, self.observer
        meter.events += 1
        meter.last_event_at = now
        self._on_event(event, now)
        if self.state is BotState.STARTING and engine.stats.decisions > 0:
            self.state = BotState.QUOTING
            self.log.info("bot_started", mode=engine.mode, prefix=engine.ids.prefix)
        if observer is not None:
            observer.handled(self.clock.now(), event, engine.last_decision)
        meter.after(event, marks(engine))

    def handle_reference(self, event: ReferenceUpdated, now: float) -> None:
        """A book of another market this profile prices off, at ``now``: the engine takes it
        (:meth:`Engine.on_reference`) and requotes, as the async driver does. Counted in
        :attr:`references`, not among this venue's market events."""
        engine = self.engine
        self.references += 1
        self._on_event(event, now)
        if self.observer is not None:
            self.observer.handled(self.clock.now(), event, engine.last_decision)
        self.meter.after(event, marks(engine))

    # --- immediate-or-cancel orders (hedges sent through this path, :mod:`.group_hedge`) --

    def ioc_request(self, side: Side, price: Decimal, size: Decimal) -> OrderRequest:
        """An immediate-or-cancel request with a new client id of this run (its fills are this
        profile's own, although it never rests), as the live bot makes one."""
        return OrderRequest.ioc(self.engine.ids.next(), side, price, size)

    def send_ioc(self, request: OrderRequest) -> IocOutcome:
        """Send ``request`` on this path's venue as the live executor does: this bot's tokens and
        latency (on its clock), the venue's answer recorded in the engine; its fills come as
        this venue's events.

        :raises VenueError: as :meth:`Venue.place_ioc` (recorded in the engine first).
        :raises BotNotRunning: the bot is not connected (stopped, or not started yet).
        """
        engine = self.engine
        if engine.rules is None or self.state not in (BotState.STARTING, BotState.QUOTING):
            raise BotNotRunning(f"{self.profile.name} is not running ({self.state.value})")
        try:
            outcome = self._call_with("place_ioc", request, self.exchange.place_ioc_now)
        except VenueError as exc:
            engine.orders.ioc_failed(request, exc, self.clock.wall())
            self._carry_out()
            raise
        engine.orders.ioc_answered(request, outcome, self.clock.wall())
        self._carry_out()
        return outcome

    def failed(self, exc: BaseException) -> None:
        """The path failed with ``exc`` (what :meth:`run` records before it stops)."""
        self.state = BotState.FAILED
        self.engine.stats.last_error = f"{type(exc).__name__}: {exc}"

    def finish(self) -> None:
        """Stop: cancel every order, close the venue (the end of :meth:`run`, also after a
        failure)."""
        self.orders_left = self._stop()
        self.sim.close_now()  # the venue's: a replay also closes its file
        if self.state is not BotState.FAILED:
            self.state = BotState.STOPPED

    def finished(self) -> None:
        """The meter's last sample, after a path that ended normally."""
        self.meter.after(None, marks(self.engine))

    def _start(self) -> None:
        engine, exchange = self.engine, self.exchange
        engine.connected(self._call("connect", None, 1, exchange.connect_now))
        # Start-up reconciliation: a fresh simulated account holds none of this profile's
        # orders, but a replayed or rebuilt one is treated exactly like a live venue.
        listed = self._call("fetch_open_orders", None, 1, exchange.open_orders_now)
        for order in listed:
            if engine.is_leftover(order.client_id):
                try:
                    self._cancel_one(order.client_id)
                    engine.stats.orders_cancelled += 1
                except OrderNotFound:
                    pass
        engine.balance_timer.mark(self.clock.now())
        if engine.balances_known:
            self._read_balances()
        engine.restored(Restored(None, None, None, None), self.clock.wall())
        self._carry_out()

    def _loop(self) -> None:
        # The methods are called through self, not bound to locals: compiled, that is a
        # direct call; a bound method is a generic one.
        clock = self.clock
        start, end = clock.now(), clock.end
        span = (end - start) if end is not None and end > start else None
        every = self.progress_every_s
        report_at = time.monotonic() + every
        n = 0
        while True:
            event = self._next_event()
            if event is None:
                return
            n += 1
            if n & 255 == 0 and self.on_progress is not None and span is not None:
                wall = time.monotonic()  # checked every 256 events only: it costs a syscall
                if wall >= report_at:
                    report_at = wall + every
                    self.on_progress(min(1.0, (clock.now() - start) / span))
            self.handle(event, clock.now())

    def _next_event(self) -> VenueEvent | None:
        """The market's next event, ``None`` at the horizon or the end of the data."""
        exchange, clock = self.exchange, self.clock
        while True:
            try:
                nxt = exchange.poll()
            except ReplayEnded:
                return None
            if not isinstance(nxt, float):
                return nxt
            if not clock.step_to(nxt):
                return None  # the market never moves after the end of the run
            exchange.step()

    def _on_event(self, event: VenueEvent, now: float) -> None:
        """Hand ``event`` to the engine, then requote (``now``: the clock, which only requests
        move)."""
        engine = self.engine
        if isinstance(event, BookUpdated):
            engine.on_book(event.book, now)
        elif isinstance(event, OrderFilled):
            if not self._accept_fill(event.fill, now):
                self._carry_out()
                return
            engine.on_fill(event.fill, now)
            if self.fill_listener is not None:
                self.fill_listener(event.fill, now)
        elif isinstance(event, OrderClosed):
            engine.on_order_closed(event.client_id, event.reason, event.ts)
        elif isinstance(event, ReferenceUpdated) and not engine.on_reference(
            event.key, event.book, event.received_at
        ):
            return  # as the async driver: a book of no use to the reference changes nothing
        self._requote(now)

    def _accept_fill(self, fill: Fill, now: float) -> bool:
        """The async driver's gate, with the trade ids of this path as the ledger."""
        verdict = self.engine.fill_verdict(fill, now)
        if verdict is not FillVerdict.OWN:
            return False  # foreign, or from before this (ledger-less) accounting started
        if fill.trade_id in self._seen_trades:
            self.log.info("fill_duplicate_ignored", trade_id=fill.trade_id)
            return False
        self._seen_trades.add(fill.trade_id)
        return True

    def _requote(self, now: float) -> None:
        engine, clock = self.engine, self.clock
        if engine.book is None or engine.rules is None:
            return
        # Virtual time is both the interval clock and the calendar (``wall()`` is ``now()``),
        # and only a request moves it: the clock is read again only after requests.
        wall = now
        for job in engine.due(now):
            if job is Job.CHECK_HALT:
                continue  # no operator resets a backtest
            try:
                if job is Job.READ_BALANCES:
                    self._read_balances()
                else:
                    self._audit_open_orders()
            except (AuthenticationFailed, FatalVenueError):
                raise
            except VenueError as exc:
                engine.error(exc)
            wall = clock.wall()
        _, actions = engine.decide(now, wall)
        self._carry_out()
        if actions:
            self._execute(actions)
            self._carry_out()
            wall = clock.wall()
        engine.persist(now, wall)
        self._carry_out()

    # --- a round -------------------------------------------------------------------------

    def _execute(self, actions: tuple[OrderAction, ...]) -> None:
        """The async executor's rounds (:class:`kasmm.bot.executor.Executor`), in order."""
        state = RoundState()
        for wave in self.engine.plan_round(actions):
            self._wave(wave.cancels, wave.places, state)
            if state.funds_short:
                state.funds_short = False
                try:
                    self._read_balances()
                except (AuthenticationFailed, FatalVenueError):
                    raise
                except VenueError as exc:
                    self.engine.error(exc)
                    state.rate_limited |= isinstance(exc, RateLimited)
            if state.rate_limited:
                self.clock.advance_to(self.clock.now() + RATE_LIMIT_PAUSE_S)
                return

    def _wave(
        self,
        cancels: Sequence[ClientOrderId],
        places: Sequence[PlaceOrder],
        state: RoundState,
    ) -> None:
        """One wave: every cancel batch, then every placement batch, then their outcomes.

        A kind the wave does not hold costs nothing (many waves hold only placements or only
        cancels); a kind that fits one request goes out as it is (no copy), else in
        :func:`chunks`.
        """
        clock, policy = self.clock, self.outcomes
        requests: list[OrderRequest] = []
        if places:
            orders = self.engine.orders
            for place in places:
                requests.append(orders.request_for(place.intent))
        sent_at = clock.now()
        cancel_batches: Sequence[Sequence[ClientOrderId]] = ()
        cancel_results: list[list[CancelOutcome] | VenueError] = []
        if cancels:
            per_request = self._cancel_per_request
            cancel_batches = _batched(cancels, per_request)
            for ids in cancel_batches:
                cancel_results.append(self._cancel_batch(ids, per_request))
        place_batches: Sequence[Sequence[OrderRequest]] = ()
        place_results: list[list[PlaceOutcome] | VenueError] = []
        if requests:
            per_request = self._place_per_request
            place_batches = _batched(requests, per_request)
            for batch in place_batches:
                place_results.append(self._place_batch(batch, per_request))
        wall = clock.wall()
        for b in range(len(cancel_batches)):
            policy.cancelled(cancel_batches[b], cancel_results[b], state, wall)
        lost: list[tuple[OrderRequest, int]] = []
        n = 0
        for b in range(len(place_batches)):
            result = place_results[b]
            outcomes = result if isinstance(result, list) else [result] * len(place_batches[b])
            for outcome in outcomes:
                level = places[n].intent.level
                # An order (the answer mostly) is told apart first: a compiled class's check
                # is one pointer comparison, an error class's a generic isinstance().
                if not isinstance(outcome, OpenOrder) and isinstance(outcome, RequestTimedOut):
                    lost.append((requests[n], level))
                else:
                    policy.placed(requests[n], level, outcome, sent_at, state, wall)
                n += 1
        if lost:  # a simulated venue answers everything; kept for a venue that would not
            listed: dict[str, OpenOrder] = {}
            error: VenueError | None = None
            try:
                listed = {
                    o.client_id: o
                    for o in self._call("fetch_open_orders", None, 1, self.exchange.open_orders_now)
                }
            except (AuthenticationFailed, FatalVenueError):
                raise
            except VenueError as exc:
                error = exc
            policy.looked_up(lost, listed, error, sent_at, self.clock.wall())

    def _cancel_batch(
        self, ids: Sequence[ClientOrderId], per_request: int
    ) -> list[CancelOutcome] | VenueError:
        """One batch cancel call; an error about the whole call is its outcome."""
        at = self._send(requests_sent(len(ids), per_request))
        try:
            result = self.exchange.cancel_orders_now(ids)
        except Exception as exc:
            if self.observer is not None:
                self.observer.request(Request("cancel_orders", tuple(ids), at, error=exc))
            if isinstance(exc, VenueError):
                return exc
            raise
        if self.observer is not None:
            self.observer.request(Request("cancel_orders", tuple(ids), at, result))
        return result

    def _place_batch(
        self, batch: Sequence[OrderRequest], per_request: int
    ) -> list[PlaceOutcome] | VenueError:
        """One batch placement call; an error about the whole call is its outcome."""
        at = self._send(requests_sent(len(batch), per_request))
        try:
            result = self.exchange.place_orders_now(batch)
        except Exception as exc:
            if self.observer is not None:
                self.observer.request(Request("place_orders", tuple(batch), at, error=exc))
            if isinstance(exc, VenueError):
                return exc
            raise
        if self.observer is not None:
            self.observer.request(Request("place_orders", tuple(batch), at, result))
        return result

    def _read_balances(self) -> None:
        """Re-read balances; the engine adopts them and reports any drift."""
        engine, clock = self.engine, self.clock
        assert engine.rules is not None
        asked_at = engine.venue_time(clock.now())
        if asked_at is None:
            asked_at = clock.wall()
        balances = self._call("fetch_balances", None, 1, self.exchange.balances_now)
        engine.balances_read(
            balances.total(engine.rules.base),
            balances.total(engine.rules.quote),
            asked_at,
            clock.now(),
            clock.wall(),
        )
        self._carry_out()

    def _audit_open_orders(self) -> None:
        """Cancel orders of this profile that rest at the venue without the engine knowing."""
        engine = self.engine
        listed = self._call("fetch_open_orders", None, 1, self.exchange.open_orders_now)
        for cid in engine.orders.untracked(listed):
            found = True
            try:
                self._cancel_one(cid)
            except OrderNotFound:
                found = False
            engine.orders.untracked_cancelled(cid, found, self.clock.wall())

    # --- the stop ------------------------------------------------------------------------

    def _stop(self) -> int:
        """Cancel every order (one by one, then the cancel-all safety net), list what is left;
        return how many of this profile's orders remain."""
        engine = self.engine
        if engine.rules is None:
            self.log.info("bot_stopped", orders_left=0, connected=False)
            return 0
        if self.state is not BotState.FAILED:
            self.state = BotState.STOPPING
        for cid in list(engine.open_orders):
            found = True
            try:
                self._cancel_one(cid)
            except OrderNotFound:
                found = False
            except Exception as exc:  # the safety net below still cancels it
                self.log.warning("shutdown_cancel_failed", client_id=cid, error=str(exc))
                found = False
            engine.orders.stopped_order(cid, found, self.clock.wall())
        self._carry_out()
        prefix = engine.ids.prefix
        try:
            self._call_with("cancel_all", prefix, self.exchange.cancel_all_now)
            listed = self._call("fetch_open_orders", None, 1, self.exchange.open_orders_now)
        except Exception as exc:
            self.log.error("shutdown_verify_failed", error=f"{type(exc).__name__}: {exc}")
            return max(1, len(engine.open_orders))
        left = sum(1 for o in listed if engine.ids.is_own(o.client_id))
        self.log.info("bot_stopped", orders_left=left)
        return left

    # --- requests ------------------------------------------------------------------------

    def _cancel_one(self, client_id: ClientOrderId) -> None:
        self._call_with("cancel_order", client_id, self.exchange.cancel_order_now)

    def _send(self, weight: float) -> float:
        """A request's tokens (the clock moves on a wait), then its latency; return the time it
        left (after its tokens, before its latency)."""
        return self.bucket.request(weight, self._latency_s)

    def _call(self, method: str, arg: Any, weight: float, effect: Callable[[], T]) -> T:
        """One request: its tokens (the clock moves on a wait), its latency, then its effect."""
        at = self._send(weight)
        observer = self.observer
        if observer is None:
            return effect()
        try:
            result = effect()
        except Exception as exc:
            observer.request(Request(method, arg, at, error=exc))
            raise
        observer.request(Request(method, arg, at, result))
        return result

    def _call_with(self, method: str, arg: A, effect: Callable[[A], T]) -> T:
        """:meth:`_call` of ``effect(arg)``, one request's weight (no closure per call)."""
        at = self._send(1)
        observer = self.observer
        if observer is None:
            return effect(arg)
        try:
            result = effect(arg)
        except Exception as exc:
            observer.request(Request(method, arg, at, error=exc))
            raise
        observer.request(Request(method, arg, at, result))
        return result

    def _carry_out(self) -> None:
        """The engine's outbox: log what passes the level (a backtest stores nothing)."""
        threshold = self._log_level
        for command in self.engine.take():
            if isinstance(command, Log):
                if LEVELS.get(command.level, 50) >= threshold:
                    getattr(self.log, command.level)(command.event, **command.fields)
            elif isinstance(command, PlaceIoc):
                self._place_ioc(command.request)

    def _place_ioc(self, request: OrderRequest) -> None:
        """One of the engine's IOC orders (a rebalance), as the live driver sends it: this
        bot's tokens and latency, the answer recorded in the engine and handed back to it; a
        failure is the order's outcome unless it ends the run."""
        engine = self.engine
        rebalancer = engine.rebalancer
        assert rebalancer is not None  # the only source of the command
        try:
            outcome = self._call_with("place_ioc", request, self.exchange.place_ioc_now)
        except (AuthenticationFailed, FatalVenueError):
            raise
        except VenueError as exc:
            engine.orders.ioc_failed(request, exc, self.clock.wall())
            rebalancer.answered(request, None, exc)
        else:
            engine.orders.ioc_answered(request, outcome, self.clock.wall())
            rebalancer.answered(request, outcome, None)
        self._carry_out()


@functools.lru_cache(maxsize=64)
def _seeded_run_tag(seed: str) -> str:
    """The run tag a :class:`~kasmm.core.ids.ClientIdFactory` draws from ``Random(seed)`` (a
    function of ``seed``; seeding with a string hashes it, ~13 us a path)."""
    return ClientIdFactory.new_run_tag(random.Random(seed))


def _batched(items: Sequence[T], per_request: int) -> Sequence[Sequence[T]]:
    """:func:`chunks` of ``items``, without copying them when one call carries them all."""
    if per_request <= 1 or len(items) <= per_request:
        return (items,)
    return chunks(items, per_request)


__all__ = ["BacktestDriver", "Observer", "Request"]
