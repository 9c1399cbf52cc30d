"""Carrying out a round's order actions through the venue: together, with one error policy.

A round's actions go out in *waves*: every action of a wave is in flight at once, as batch
requests where the venue has a batch endpoint (``batch_limits``) and as concurrent single
requests where it does not. Order matters only where it must (the engine plans the waves,
:meth:`kasmm.bot.engine.Engine.plan_round`): a placement that needs the balance a cancel frees,
or that would cross one of the bot's own orders being cancelled, waits for the cancels. A full
requote with the balance to cover it therefore costs one round trip, not one per action.

Each order's outcome is handled on its own (some succeed while others fail). The error policy
is written once, in :mod:`kasmm.bot.outcomes` (the backtest driver shares it): authentication
and fatal errors end the run; a rate limit ends the round after its wave (the rest is stale by
the time the limit lifts; the next event requotes); a placement whose answer was lost is looked
up by client id before anything else is decided; a rejection for funds re-reads the balances;
any other venue error is counted by the consecutive-errors rule and the order stays as it was (a
cancel is retried next round).

A wave's first call goes out from the task that decided, at once; the others run in other tasks.
Spawning a task costs anyio 25-35 us of bookkeeping (a task group, a task handle), paid before the
first call could go out, on every round. A bot therefore runs :meth:`Executor.serve` beside its
event intake: a helper task (the *lane*) that is already waiting takes a wave's second call in
a few microseconds. The common wave (one cancel call and one place call) spawns nothing; a wave
of more calls, or an executor whose lane is not running (tools, tests), spawns as before. The
lane waits on an :class:`anyio.Event` and takes its job from a slot: a memory object stream
cost a checkpoint (a turn of the event loop) per job and a receiver per wait, before the
round's first call. The lane gets the second call only once the first waits for its answer;
a first call answered without waiting (the simulated and paper venues) is simply followed by
the second in the deciding task.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import anyio
from anyio.abc import TaskStatus

from kasmm.bot.engine import Engine
from kasmm.bot.orders import Wave
from kasmm.bot.outcomes import RATE_LIMIT_PAUSE_S, RoundOutcomes, RoundState, chunks
from kasmm.clock import Clock
from kasmm.core.types import ClientOrderId, OpenOrder, OrderAction, OrderRequest, PlaceOrder
from kasmm.errors import (
    AuthenticationFailed,
    FatalVenueError,
    RateLimited,
    RequestTimedOut,
    VenueError,
)
from kasmm.venues.base import CancelOutcome, IocOutcome, PlaceOutcome, Venue
from kasmm.venues.guard import resume


class _LaneJob:
    """One call handed to the lane: ``run(index)``, then ``done`` (with ``error`` if it raised,
    ``skipped`` if the lane stopped before it started the call)."""

    __slots__ = ("done", "error", "index", "run", "skipped")

    def __init__(self, run: Callable[[int], Coroutine[Any, Any, None]], index: int) -> None:
        self.run = run
        self.index = index
        self.done = anyio.Event()
        self.error: BaseException | None = None
        self.skipped = False


class Executor:
    """Executes rounds for one engine against one venue."""

    def __init__(
        self,
        engine: Engine,
        venue: Venue,
        clock: Clock,
        *,
        read_balances: Callable[[], Awaitable[None]],
        sequential: bool = False,
    ) -> None:
        self.engine = engine
        self.venue = venue
        self.clock = clock
        self._read_balances = read_balances
        self.outcomes = RoundOutcomes(engine)
        #: One action at a time, in the reconciler's order (the baseline ``bench/requote.py``
        #: compares with; what every round cost before waves).
        self.sequential = sequential
        #: Set to hand the lane the job in ``_lane_job``; ``None`` unless :meth:`serve` runs and
        #: is idle (a wave hands the lane a job only then).
        self._lane_idle: anyio.Event | None = None
        self._lane_job: _LaneJob | None = None

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the lane until cancelled: carry each wave's second call (module docstring).

        A call's venue errors are its outcome (the wave's closures catch them); anything else
        it raises (a bug) is handed back to the wave, which raises it in the deciding task, as
        a spawned task's error would have been.
        """
        task_status.started()
        try:
            while True:
                self._lane_idle = idle = anyio.Event()
                await idle.wait()
                job = self._lane_job
                assert job is not None  # set by the wave that woke the lane
                self._lane_job = None
                try:
                    await job.run(job.index)
                except Exception as exc:
                    job.error = exc
                except BaseException:  # cancelled: the wave must not wait for a result
                    job.error = RuntimeError("the executor's lane stopped during a call")
                    raise
                finally:
                    job.done.set()
        finally:
            self._lane_idle = None
            job = self._lane_job
            if job is not None:  # handed over, never started: the wave makes the call itself
                self._lane_job = None
                job.skipped = True
                job.done.set()

    async def execute(self, actions: tuple[OrderAction, ...]) -> None:
        """Carry out one round's ``actions`` wave by wave (see the module docstring)."""
        round_state = RoundState()
        waves = self.engine.plan_round(actions)
        if self.sequential:
            waves = tuple(Wave(cancels=(cid,)) for w in waves for cid in w.cancels) + tuple(
                Wave(places=(p,)) for w in waves for p in w.places
            )
        for wave in waves:
            await self._wave(wave.cancels, wave.places, round_state)
            if round_state.funds_short:
                round_state.funds_short = False
                try:  # the same policy as any request: a transient failure is counted
                    await self._read_balances()
                except (AuthenticationFailed, FatalVenueError):
                    raise
                except VenueError as exc:
                    self.engine.error(exc)
                    round_state.rate_limited |= isinstance(exc, RateLimited)
            if round_state.rate_limited:
                await self.clock.sleep_until(self.clock.now() + RATE_LIMIT_PAUSE_S)
                return

    async def _wave(
        self,
        cancels: Sequence[ClientOrderId],
        places: Sequence[PlaceOrder],
        state: RoundState,
    ) -> None:
        limits = self.venue.batch_limits
        cancel_chunks = chunks(cancels, limits.cancel)
        # The placements' requests (a client id each) are built by the first placement call
        # to run, not before the wave: when the wave starts with a cancel call, that call is
        # the reaction to the event and goes out first. Ids are drawn in ``places`` order
        # either way.
        requests: list[OrderRequest] = []
        request_chunks: list[list[OrderRequest]] = []
        place_calls = len(chunks(places, limits.place))  # as many as the requests will make
        # One slot per call for its outcome, which the call stores there; the empty list they
        # start with is never mutated, so one serves every slot (no comprehension per wave).
        cancel_results: list[list[CancelOutcome] | VenueError] = [[]] * len(cancel_chunks)
        place_results: list[list[PlaceOutcome] | VenueError] = [[]] * place_calls
        sent_at = self.clock.now()

        async def cancel(i: int) -> None:
            try:
                cancel_results[i] = await self.venue.cancel_orders(cancel_chunks[i])
            except VenueError as exc:  # about the whole call
                cancel_results[i] = exc

        async def place(i: int) -> None:
            if not requests:
                request_for = self.engine.orders.request_for
                requests.extend(request_for(p.intent) for p in places)
                request_chunks.extend(chunks(requests, limits.place))
            try:
                place_results[i] = await self.venue.place_orders(request_chunks[i])
            except VenueError as exc:
                place_results[i] = exc

        # Plain loops: a comprehension is a function call of its own, and a wave has one or
        # two calls.
        calls: list[tuple[Callable[[int], Coroutine[Any, Any, None]], int]] = []
        for i in range(len(cancel_chunks)):
            calls.append((cancel, i))
        for i in range(place_calls):
            calls.append((place, i))
        if not calls:
            return
        first, *others = calls
        lane = self._lane_idle
        if not others:
            await first[0](first[1])
        elif len(others) == 1 and lane is not None:
            # The first call runs until it first waits (for its answer); only then does the
            # lane get the second, to be in flight meanwhile. A call that answers without
            # waiting (a simulated venue) is done by then, and the second call simply follows
            # it here: no hand-over, and no turns of the event loop to wait for the lane.
            first_call = first[0](first[1])
            try:
                suspended_on = first_call.send(None)
            except StopIteration:
                await others[0][0](others[0][1])
            else:
                job = self._lane_job = _LaneJob(*others[0])
                self._lane_idle = None  # busy until it waits again
                lane.set()
                await resume(first_call, suspended_on)
                await job.done.wait()
                if job.skipped:  # the lane stopped before it started the call
                    await job.run(job.index)
                if job.error is not None:  # a bug, not a venue error: raise it plainly
                    raise job.error
        else:
            # The first call runs in this task, at once; the others are tasks, which start when
            # it first waits (for its answer). A spawned task waits for the event loop's next
            # turn, and the first action of a round is the reaction to the event.
            try:
                async with anyio.create_task_group() as tg:
                    for run, index in others:
                        tg.start_soon(run, index)
                    await first[0](first[1])
            except BaseExceptionGroup as group:  # a bug, not a venue error: raise it plainly
                raise group.exceptions[0] from None
        # Outcomes are handled in a fixed order (cancels, then places, each in request order),
        # whatever order the answers came in: the engine's state stays deterministic.
        policy = self.outcomes
        for cancel_chunk, cancel_result in zip(cancel_chunks, cancel_results, strict=True):
            policy.cancelled(cancel_chunk, cancel_result, state, self.clock.wall())
        unknown: list[tuple[int, int]] = []
        levels = [p.intent.level for p in places]
        offset = 0
        for chunk, result in zip(request_chunks, place_results, strict=True):
            outcomes = result if isinstance(result, list) else [result] * len(chunk)
            for k, outcome in enumerate(outcomes):
                n = offset + k
                if isinstance(outcome, RequestTimedOut):
                    unknown.append((n, k))
                    continue
                policy.placed(requests[n], levels[n], outcome, sent_at, state, self.clock.wall())
            offset += len(chunk)
        if unknown:
            await self._resolve_unknown([n for n, _ in unknown], requests, levels, sent_at)

    async def place_ioc(self, request: OrderRequest) -> IocOutcome:
        """Send an immediate-or-cancel order through this bot's venue stack (its token bucket,
        deadline and metering), from whichever task asks (the supervisor's hedging task sends
        hedges through the hedge profile's bot this way, never a connection of its own). The
        outcome or the failure is recorded in the engine; a failure is raised after that.

        :raises VenueError: as :meth:`Venue.place_ioc` (``RequestTimedOut``: outcome unknown).
        """
        try:
            outcome = await self.venue.place_ioc(request)
        except VenueError as exc:
            self.engine.orders.ioc_failed(request, exc, self.clock.wall())
            raise
        self.engine.orders.ioc_answered(request, outcome, self.clock.wall())
        return outcome

    async def _resolve_unknown(
        self,
        indices: list[int],
        requests: Sequence[OrderRequest],
        levels: Sequence[int],
        sent_at: float,
    ) -> None:
        """Placements whose answer was lost: look them up by client id (one listing), never
        place them again. Found ones are placed; the rest stay unknown (the audit cancels them
        if they rest after all) and count as an error."""
        listed: dict[str, OpenOrder] = {}
        lookup_error: VenueError | None = None
        try:
            listed = {o.client_id: o for o in await self.venue.fetch_open_orders()}
        except (AuthenticationFailed, FatalVenueError):
            raise
        except VenueError as exc:
            lookup_error = exc
        self.outcomes.looked_up(
            [(requests[n], levels[n]) for n in indices],
            listed,
            lookup_error,
            sent_at,
            self.clock.wall(),
        )
