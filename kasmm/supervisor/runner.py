"""One profile's lifetime: the restart loop, the failed cool-down, the mode channel, the lock.

A :class:`ProfileRunner` runs its profile's bot in a loop. A bot that fails has cancelled its
own orders (its shielded shutdown); the runner then waits the :class:`RestartPolicy` backoff
and builds a fresh one. After ``max_restarts`` consecutive failures the profile is ``failed``:
it retries once per ``failed_retry_s`` cool-down, and at once when a reload asks. Refused
credentials are ``failed`` at the first attempt and wait for a reload only. A lost ledger ends
the loop for good and tells the host, which stops every profile.

An operator's pause (:meth:`ProfileRunner.pause`) stops the bot (which cancels its orders) and
holds the profile ``paused``, starting no bot, until :meth:`ProfileRunner.resume`; it is neither
a failure nor a restart.

Every wait (backoff, cool-down) is on the host's injected clock, so tests run them in virtual
time. Nothing the bot raises leaves :meth:`ProfileRunner.run`: one profile never takes down
another, nor the supervisor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import structlog
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from kasmm.config.loader import LoadedProfile
from kasmm.config.schema import CcxtVenueConfig, Profile
from kasmm.errors import AuthenticationFailed, LedgerLost
from kasmm.obs.money import NumberFormat, pnl_dict
from kasmm.store.state_dir import ProfileLocks, hold_profile
from kasmm.supervisor.kpi_fields import kpi_fields
from kasmm.supervisor.state import ProfileState, displayed_state
from kasmm.supervisor.status import view_fields
from kasmm.venues.metered import VenueMetrics

if TYPE_CHECKING:
    from kasmm.bot import Bot
    from kasmm.clock import Clock
    from kasmm.limiter import TokenBucket
    from kasmm.schedule import ModeScheduler

log = structlog.get_logger("kasmm.supervisor")

__all__ = ["ModeSwitch", "ProfileRunner", "RestartPolicy", "RunnerHost"]


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff between restarts of a failed profile."""

    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 60.0
    max_restarts: int = 5
    #: A run that quoted for this long resets the failure count.
    healthy_after_s: float = 120.0
    #: A ``failed`` profile (not refused credentials) tries once more after this cool-down.
    failed_retry_s: float = 300.0

    def delay(self, failures: int) -> float:
        """Backoff before restart number ``failures`` (1-based)."""
        return min(self.max_s, self.initial_s * self.factor ** (failures - 1))


@dataclass(frozen=True)
class ModeSwitch:
    """A control message for a profile's task: switch the active mode."""

    mode: str


class RunnerHost(Protocol):
    """What a runner needs from the supervisor that runs it."""

    #: Backoff, cool-down and run ages are measured on it (and every bot runs on it).
    clock: Clock
    restart: RestartPolicy
    #: Each bot runs holding its profile's lock: never one profile in two processes.
    profile_locks: ProfileLocks | None
    scheduler: ModeScheduler | None

    def make_bot(self, runner: ProfileRunner) -> Bot:
        """A fresh bot for ``runner``'s profile (its venue stack and token buckets)."""
        ...

    def post_mode(self, name: str, mode: str) -> bool:
        """Route a scheduled mode switch to whichever runner runs ``name`` by then."""
        ...

    def on_ledger_lost(self, exc: LedgerLost) -> None:
        """The shared ledger is gone: stop every profile."""
        ...


class _FirstQuotes:
    """The bot's ``task_status``: its ``started()`` (first quotes live) marks the profile
    ``quoting`` and releases whoever waits for its start.

    An event rather than ``tg.start``'s own status, so that the supervisor can stop waiting for
    a profile whose venue never delivers a book (it keeps starting in the background) without
    cancelling it and without stalling every other profile's start.
    """

    def __init__(self, runner: ProfileRunner) -> None:
        self._runner = runner

    def started(self, value: None = None) -> None:
        if self._runner.state is ProfileState.STARTING:
            self._runner.state = ProfileState.QUOTING
        self._runner.started.set()


@dataclass(eq=False)
class ProfileRunner:
    """Owns one profile's lifetime; the supervisor tracks one per running profile."""

    loaded: LoadedProfile
    config_hash: str
    host: RunnerHost = field(repr=False)
    #: Cancelled to stop the profile (its bot then cancels its orders, shielded).
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    #: Set once :meth:`run` has returned: the profile is stopped and its orders are cancelled.
    done: anyio.Event = field(default_factory=anyio.Event)
    bot: Bot | None = None
    state: ProfileState = ProfileState.STARTING
    failures: int = 0
    restarts: int = 0
    last_error: str | None = None
    orders_left: int = 0
    control_send: MemoryObjectSendStream[ModeSwitch] | None = None
    #: Set once the profile's first quotes are live (or it gave up / was stopped).
    started: anyio.Event = field(default_factory=anyio.Event)
    limiter: TokenBucket | None = None
    #: Venue latency/errors and limiter waits; survives bot restarts within the runner.
    venue_metrics: VenueMetrics = field(default_factory=VenueMetrics)
    #: Set by a reload to wake the profile while it is ``failed``.
    retry: anyio.Event = field(default_factory=anyio.Event)
    #: Who paused the profile (``kasmm pause``, the console); None while not paused.
    paused_by: str | None = None
    #: An operator's mode, kept across bot restarts until the next scheduled switch.
    mode_override: str | None = None
    _resumed: anyio.Event = field(default_factory=anyio.Event, repr=False)
    #: Cancelled by a pause: the running bot (or the restart backoff) ends at once.
    _attempt: anyio.CancelScope | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The profile's name."""
        return self.loaded.profile.name

    # --- what the supervisor calls ---------------------------------------------------

    async def start(self, tg: TaskGroup, timeout_s: float) -> None:
        """Run the profile in ``tg``; return once it quotes, gave up, or ``timeout_s`` passed
        (a profile whose feed never starts keeps starting in the background)."""
        tg.start_soon(self.run)
        with anyio.move_on_after(timeout_s):
            await self.started.wait()
            return
        log.warning(
            "profile_start_slow", profile=self.name, waited_s=timeout_s, state=self.state.value
        )

    def request_stop(self) -> None:
        """Ask the profile to stop; :attr:`done` is set once its orders are cancelled."""
        self.scope.cancel()

    def retry_now(self) -> bool:
        """Wake a ``failed`` profile for a fresh attempt; False if it is not ``failed``."""
        if self.state is not ProfileState.FAILED:
            return False
        self.retry.set()
        return True

    def pause(self, operator: str) -> None:
        """Stop the bot (it cancels its orders) and start none until :meth:`resume`."""
        self.paused_by = operator
        self._resumed = anyio.Event()
        if self._attempt is not None:
            self._attempt.cancel()
        self.retry.set()  # a ``failed`` profile stops waiting for its cool-down, to park paused

    def resume(self) -> bool:
        """End an operator's pause (a fresh bot starts); False if the profile is not paused."""
        if self.paused_by is None:
            return False
        self.paused_by = None
        self._resumed.set()
        return True

    def post_mode(self, mode: str) -> bool:
        """Ask the running bot to switch mode; False when the profile takes no message now."""
        if self.control_send is None:
            return False
        try:
            self.control_send.send_nowait(ModeSwitch(mode))
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    def status_row(self) -> dict[str, Any]:
        """The profile's row of ``/status``, as plain JSON-ready values."""
        profile = self.loaded.profile
        bot = self.bot
        view = bot.view() if bot is not None else None
        state = displayed_state(
            self.state,
            None if view is None else view.state.value,
            None if view is None else view.trading_state.value,
        )
        row: dict[str, Any] = {
            "name": self.name,
            "file": str(self.loaded.path),
            "venue": profile.venue.type,
            "symbol": profile.symbol,
            "state": state.value,
            "restarts": self.restarts,
            "last_error": self.last_error,
        }
        if self.paused_by is not None:
            row["paused_by"] = self.paused_by
        if view is None:
            return row
        # Money at the market's precision (kasmm.obs.money), never 28 digits or 0E-7.
        money = NumberFormat.for_market(view.tick, view.lot, view.mid)
        row.update(view_fields(view, self.host.clock.now()))
        row.update(kpi_fields(view))  # kpis, obligation (kasmm.supervisor.kpi_fields)
        row.update(
            mode=view.mode,
            trading_state=view.trading_state.value,
            halt_reason=view.halt_reason,
            idle_reason=view.idle_reason,
            mid=_num(view.mid),
            spread_bps=None if view.spread_bps is None else round(view.spread_bps, 2),
            inventory_base=str(view.inventory_base),
            inventory_quote=str(view.inventory_quote),
            open_orders=view.open_orders,
            realized_pnl=money.money(view.realized_pnl),
            net_pnl=money.money(view.net_pnl),
            pnl=money.pnl(view.pnl_parts),
            # The same parts exact (no exponent, nothing rounded), for tools that reconcile
            # the bot against its ledger to the last digit.
            pnl_exact=pnl_dict(view.pnl_parts),
            fills=view.pnl.buy_count + view.pnl.sell_count,
            orders_placed=view.counters.orders_placed,
            orders_cancelled=view.counters.orders_cancelled,
            last_error=self.last_error or view.counters.last_error,
        )
        return row

    # --- the profile's task ------------------------------------------------------------

    async def run(self) -> None:
        """Run the profile until :meth:`request_stop`, a lost ledger, or a crash; then set
        :attr:`done`. Never raises an ``Exception``."""
        profile = self.loaded.profile
        # Bound in this task's context (copied into its child tasks, never leaking to other
        # profiles), so even ccxt's and apscheduler's stdlib log lines carry the profile.
        structlog.contextvars.bind_contextvars(
            profile=profile.name, venue=_venue_label(profile), symbol=profile.symbol
        )
        try:
            with self.scope:
                await self._attempts()
        except Exception as exc:
            # The restart loop contains whatever a bot raises; this is the last line of defence
            # against anything else, so that no profile can take down the supervisor's group.
            self.state = ProfileState.FAILED
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("profile_crashed", error=self.last_error, exc_info=True)
        finally:
            scheduler = self.host.scheduler
            if scheduler is not None:
                scheduler.remove_profile(self.name)
            self.started.set()  # never leave the starter waiting (stopped before quoting)
            if self.state is not ProfileState.FAILED:
                self.state = ProfileState.STOPPED
            self.done.set()

    async def _attempts(self) -> None:
        """The restart loop, with the profile's mode channel open alongside."""
        host = self.host
        clock = host.clock
        policy = host.restart
        plog = log.bind(profile=self.name)
        send, receive = anyio.create_memory_object_stream[ModeSwitch](16)
        self.control_send = send
        async with send, anyio.create_task_group() as ptg:
            ptg.start_soon(self._control_loop, receive)
            while True:
                if self.paused_by is not None:
                    await self._park_paused()
                began = clock.now()
                auth_failed = False
                try:
                    # Inside the restart loop: a scheduler that refuses the profile is this
                    # profile's failure, never the supervisor's.
                    self._schedule()
                    bot = host.make_bot(self)
                    self.bot = bot
                    self.state = ProfileState.STARTING
                    # Refused (LockBusy, a failure like any other) while another process runs
                    # the profile; held until the bot's shutdown has cancelled its orders.
                    with hold_profile(host.profile_locks, self.name), self._interruptible():
                        await bot.run(task_status=_FirstQuotes(self))
                    if self.paused_by is not None:
                        continue  # stopped by the operator, its orders cancelled: no failure
                    plog.warning("profile_stream_ended")
                    error: str | None = "venue event stream ended"
                except LedgerLost as exc:
                    # Fatal for every profile (they share the ledger): no restart; the
                    # supervisor stops them all. The bot has cancelled its orders.
                    self.state = ProfileState.FAILED
                    self.last_error = f"ledger lost: {exc}"
                    plog.critical("profile_ledger_lost", error=str(exc))
                    host.on_ledger_lost(exc)
                    break
                except AuthenticationFailed as exc:
                    # Retrying with the same keys cannot help: down until a reload (SIGHUP),
                    # since the operator may have fixed the key meanwhile.
                    error = f"authentication failed: {exc}"
                    auth_failed = True
                    plog.error("profile_failed", error=error, restarting=False)
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    # The reason goes into the one line per attempt below; the traceback (a
                    # page per attempt for an unreachable venue) only at debug level.
                    plog.debug("profile_failed_traceback", error=error, exc_info=True)
                finally:
                    if self.bot is not None:
                        self.orders_left = self.bot.orders_left
                self.last_error = error
                if auth_failed:
                    await self._park_failed(cool_down=False)
                    continue
                if clock.now() - began >= policy.healthy_after_s:
                    self.failures = 0
                self.failures += 1
                if self.failures > policy.max_restarts:
                    plog.error(
                        "profile_gave_up",
                        failures=self.failures - 1,
                        last_error=error,
                        retry_in_s=policy.failed_retry_s,
                    )
                    await self._park_failed(cool_down=True)
                    continue
                delay = policy.delay(self.failures)
                self.state = ProfileState.RESTARTING
                # One line per failed attempt: what failed, and when the next attempt starts.
                plog.warning(
                    "profile_failed", error=error, attempt=self.failures, restart_in_s=delay
                )
                # The first attempt is over: whoever started the profile (readiness, a reload
                # holding the reload lock) must not wait through its whole backoff sequence.
                self.started.set()
                with self._interruptible():
                    await clock.sleep_until(clock.now() + delay)
                self.restarts += 1
            ptg.cancel_scope.cancel()

    async def _park_failed(self, *, cool_down: bool) -> None:
        """Hold a ``failed`` profile until a reload retries it or, with ``cool_down``, until
        ``failed_retry_s`` has passed on the host's clock.

        A reload's retry starts a fresh backoff sequence (the operator acted); a cool-down
        retry is one attempt, whose failure parks the profile again.
        """
        clock = self.host.clock
        self.state = ProfileState.FAILED
        self.started.set()  # nobody waits for a failed profile's first quotes
        self.retry = anyio.Event()
        by_reload = True
        async with anyio.create_task_group() as tg:

            async def cool_down_ends() -> None:
                nonlocal by_reload
                await clock.sleep_until(clock.now() + self.host.restart.failed_retry_s)
                by_reload = False
                tg.cancel_scope.cancel()

            if cool_down:
                tg.start_soon(cool_down_ends)
            await self.retry.wait()
            tg.cancel_scope.cancel()
        if by_reload:
            self.failures = 0
        self.restarts += 1
        self.state = ProfileState.RESTARTING
        log.info(
            "profile_retrying", profile=self.name, trigger="reload" if by_reload else "cool_down"
        )

    @contextmanager
    def _interruptible(self) -> Iterator[None]:
        """A scope that :meth:`pause` cancels (at once if the pause came first)."""
        scope = anyio.CancelScope()
        if self.paused_by is not None:
            scope.cancel()
        self._attempt = scope
        try:
            with scope:
                yield
        finally:
            self._attempt = None

    async def _park_paused(self) -> None:
        """Hold the profile ``paused`` (no bot, no orders, no lock) until :meth:`resume`."""
        self.state = ProfileState.PAUSED
        self.started.set()  # nobody waits for a paused profile's first quotes
        log.info("profile_paused", profile=self.name, operator=self.paused_by)
        await self._resumed.wait()
        self.failures = 0
        self.state = ProfileState.STARTING
        log.info("profile_resumed", profile=self.name)

    def _schedule(self) -> None:
        """(Re)register the profile's mode schedule (it replaces the previous registration)."""
        profile = self.loaded.profile
        scheduler = self.host.scheduler
        if profile.schedule and scheduler is not None:
            name, host = profile.name, self.host
            scheduler.add_profile(name, profile.schedule, lambda m: host.post_mode(name, m))

    async def _control_loop(self, receive: MemoryObjectReceiveStream[ModeSwitch]) -> None:
        async with receive:
            async for message in receive:
                if self.bot is None:
                    continue
                try:
                    self.bot.set_mode(message.mode)
                except Exception as exc:
                    # The bot keeps its mode; the channel (and every other profile) lives.
                    log.error(
                        "mode_switch_failed",
                        profile=self.name,
                        mode=message.mode,
                        error=f"{type(exc).__name__}: {exc}",
                    )


def _venue_label(profile: Profile) -> str:
    venue = profile.venue
    return venue.exchange if isinstance(venue, CcxtVenueConfig) else venue.type


def _num(value: Any) -> str | None:
    return None if value is None else str(value)
