"""The supervisor: owns every profile's lifetime.

Each enabled profile runs in its own task group inside the supervisor's task group, with its own
token bucket (and its account's shared bucket above it). A profile that fails cancels its own
orders (the bot's shielded shutdown), then restarts with bounded exponential backoff; after
``max_restarts`` consecutive failures it is ``failed``: it says so (``/healthz`` turns
unhealthy), retries once per ``failed_retry_s`` cool-down, and at once on every reload (SIGHUP).
Refused credentials fail at the first attempt and are retried only by a reload. Nothing a
profile raises reaches the supervisor's task group, so one profile can never take another down.
The exception is a lost ledger (:class:`~kasmm.errors.LedgerLost`): every profile records to it,
so the supervisor stops them all and exits with :data:`~kasmm.daemon.exit_codes.LEDGER_LOST`.

Reloads (a file change seen by watchfiles, or SIGHUP) rescan the directory and diff by profile
name and config hash: added -> start, removed/disabled -> stop, changed -> stop then start,
unchanged -> untouched. A file that no longer validates keeps its last good profiles running,
and a directory that is missing keeps every running profile (see :mod:`kasmm.daemon.watch`).
"""

from __future__ import annotations

import gc
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from kasmm.bot import Bot
from kasmm.clock import Clock, RealClock
from kasmm.config.loader import ConfigIssue, LoadedProfile, load_paths
from kasmm.config.schema import CcxtVenueConfig, Profile
from kasmm.daemon import exit_codes
from kasmm.daemon.signals import process_signals
from kasmm.daemon.watch import watch_directory
from kasmm.errors import AuthenticationFailed, LedgerLost
from kasmm.limiter import TokenBucket
from kasmm.obs.metrics import LoopLagMonitor, build_registry
from kasmm.obs.notify import Notifier, status_line, watchdog_task
from kasmm.obs.scrape import MetricsExporter
from kasmm.schedule import ModeScheduler, mode_at
from kasmm.shard import Shard, select_shard
from kasmm.store import AsyncLedger
from kasmm.store.state_dir import ProfileLocks, hold_profile
from kasmm.venues.base import Venue
from kasmm.venues.factory import build_venue, profile_rate_budget
from kasmm.venues.metered import MeteredTokenBucket, MeteredVenue, VenueMetrics

log = structlog.get_logger("kasmm.supervisor")

VenueFactory = Callable[[Profile, Clock, TokenBucket], Venue]


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


@dataclass
class ProfileSlot:
    """Everything the supervisor tracks for one running profile."""

    loaded: LoadedProfile
    config_hash: str
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    done: anyio.Event = field(default_factory=anyio.Event)
    bot: Bot | None = None
    state: str = "starting"
    failures: int = 0
    restarts: int = 0
    last_error: str | None = None
    orders_left: int = 0
    control_send: Any = None
    #: Set once the profile's first quotes are live (or it gave up / was stopped).
    started: anyio.Event = field(default_factory=anyio.Event)
    limiter: TokenBucket | None = None
    #: Venue latency/errors and limiter waits; survives bot restarts within the slot.
    venue_metrics: VenueMetrics = field(default_factory=VenueMetrics)
    #: Set by a reload to wake the profile while it is ``failed``.
    retry: anyio.Event = field(default_factory=anyio.Event)

    @property
    def name(self) -> str:
        """The profile's name."""
        return self.loaded.profile.name


@dataclass
class ReloadResult:
    """What one reload did."""

    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: Failed profiles told to try again.
    retried: list[str] = field(default_factory=list)
    issues: list[ConfigIssue] = field(default_factory=list)


class _StartRelay:
    """The bot's ``task_status``: its first ``started()`` (first quotes live) sets an event.

    An event rather than ``tg.start``'s own status, so that the supervisor can stop waiting for
    a profile whose venue never delivers a book (it keeps starting in the background) without
    cancelling it and without stalling every other profile's start.
    """

    def __init__(self, event: anyio.Event) -> None:
        self._event = event

    @property
    def done(self) -> bool:
        return self._event.is_set()

    def started(self, value: None = None) -> None:
        self._event.set()


class Supervisor:
    """Runs every enabled profile of a directory and follows changes to it."""

    def __init__(
        self,
        directory: Path,
        *,
        clock: Clock | None = None,
        venue_factory: VenueFactory = build_venue,
        restart: RestartPolicy | None = None,
        env: Mapping[str, str] | None = None,
        wall_clock: Callable[[], float] = time.time,
        ledger: AsyncLedger | None = None,
        shard: Shard | None = None,
        scheduler: ModeScheduler | None = None,
        profile_locks: ProfileLocks | None = None,
    ) -> None:
        self.directory = directory
        self.shard = shard
        #: Each bot runs holding its profile's lock: never one profile in two processes.
        self.profile_locks = profile_locks
        self.clock = clock or RealClock()
        self.venue_factory = venue_factory
        self.restart = restart or RestartPolicy()
        self.env = env
        self.wall_clock = wall_clock
        self.ledger = ledger
        #: Built in :meth:`run` unless given (tests inject a failing one).
        self.scheduler: ModeScheduler | None = scheduler
        self.slots: dict[str, ProfileSlot] = {}
        self.issues: list[ConfigIssue] = []
        self.reloads = 0
        self.started_at = time.time()
        self._accounts: dict[str, TokenBucket] = {}
        self._account_limits: dict[str, Any] = {}
        self._tg: TaskGroup | None = None
        self._reload_lock = anyio.Lock()
        self._stop_requested = anyio.Event()
        self.exit_code = exit_codes.OK
        #: Why the ledger is lost (then every profile stops and the exit status is 4), or None.
        self.ledger_lost: str | None = None
        #: How often the ledger's files are checked (a quiet supervisor records nothing that
        #: would notice them gone).
        self.ledger_check_s = 5.0
        #: The profile directory could not be read at the last reload (profiles kept running).
        self.directory_missing = False
        #: How long a reload waits for a starting profile's first quotes before moving on.
        self.start_timeout_s = 30.0
        self.reload_results: dict[str, int] = {"ok": 0, "invalid": 0}
        self.loop_lag = LoopLagMonitor()
        self.metrics_registry = build_registry(self)

    # --- the main loop ----------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> int:
        """Start every valid profile, signal readiness, run until cancelled or
        :meth:`request_stop`, stop every profile; return the exit status (see
        :func:`~kasmm.daemon.exit_codes.stop_status`, also left in ``exit_code``).
        """
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self.loop_lag.run)
            tg.start_soon(self._check_ledger)
            scheduler = self.scheduler or ModeScheduler(clock=self.wall_clock)
            self.scheduler = scheduler
            scheduler.start()
            try:
                result = await self.reload()
                log.info(
                    "supervisor_ready",
                    profiles=len(self.slots),
                    started=result.started,
                    invalid=len(result.issues),
                )
                task_status.started()
                await self._stop_requested.wait()
            finally:
                with anyio.CancelScope(shield=True):
                    scheduler.shutdown()
                    await self.stop_all()
                    await anyio.lowlevel.checkpoint()  # let APScheduler finish its shutdown
                tg.cancel_scope.cancel()  # the loop-lag monitor and the ledger check
        return self.exit_code

    def request_stop(self) -> None:
        """Make :meth:`run` stop every profile and return (as cancelling it would)."""
        self._stop_requested.set()

    async def stop_all(self) -> None:
        """Stop every profile in parallel; each cancels its orders within its deadline.

        Sets ``exit_code``: 4 if the ledger was lost, else 1 if any profile could not confirm
        its cancels, else 3 if any profile was ``failed``, else 0.
        """
        slots = list(self.slots.values())
        failed = sorted(s.name for s in slots if s.state == "failed")
        for slot in slots:
            slot.scope.cancel()
        for slot in slots:
            await slot.done.wait()
        left = sum(s.orders_left for s in slots)
        self.exit_code = exit_codes.stop_status(
            ledger_lost=self.ledger_lost is not None, orders_left=left, failed=len(failed)
        )
        log.info(
            "supervisor_stopped",
            profiles=len(slots),
            orders_left=left,
            failed=failed,
            ledger_lost=self.ledger_lost is not None,
            exit_code=self.exit_code,
        )

    def _on_ledger_lost(self, exc: LedgerLost) -> None:
        """Every profile records to the one ledger: stop them all (each cancels its orders)."""
        if self.ledger_lost is None:
            self.ledger_lost = str(exc)
            log.critical("supervisor_stopping", reason="ledger lost", error=str(exc))
        self.request_stop()

    async def _check_ledger(self) -> None:
        """Ask the ledger every ``ledger_check_s`` whether its files are still the ones it
        opened, so a deleted ledger is noticed even when no profile is recording."""
        ledger = self.ledger
        if ledger is None:
            return
        while True:
            # Real time, not self.clock: the files live in the real world (and a virtual clock
            # would make this loop spin).
            await anyio.sleep(self.ledger_check_s)
            try:
                await ledger.check()
            except LedgerLost as exc:
                self._on_ledger_lost(exc)
                return
            except Exception as exc:
                log.warning("ledger_check_failed", error=f"{type(exc).__name__}: {exc}")

    # --- reload -------------------------------------------------------------------------

    async def reload(self) -> ReloadResult:
        """Rescan the directory and apply the difference to the running profiles; retry the
        ``failed`` ones. Does nothing once the supervisor is stopping."""
        async with self._reload_lock:
            if self._stop_requested.is_set():
                return ReloadResult()
            return await self._reload()

    async def _reload(self) -> ReloadResult:
        # A running profile keeps its file: another file that starts declaring the same name
        # (a copy nobody renamed, or a hostile drop) is the duplicate, whatever the sort order.
        running = {name: slot.loaded.path for name, slot in self.slots.items()}
        load = await anyio.to_thread.run_sync(
            lambda: load_paths([self.directory], env=self.env, prefer=running)
        )
        load = select_shard(load, self.shard)
        result = ReloadResult(issues=list(load.issues))
        if self._directory_unreadable(load.issues):
            self.issues = list(load.issues)
            # Deleted, renamed, or a symlink to nothing: nothing to compare with, so change
            # nothing (stopping every profile because a deploy is half done would be worse).
            self.reloads += 1
            self.reload_results["invalid"] += 1
            return result
        for issue in load.issues:
            log.error("config_invalid", error=str(issue), file=str(issue.path))
        self.issues = list(load.issues)
        self._account_limits = dict(load.accounts)
        desired: dict[str, LoadedProfile] = {
            name: lp for name, lp in load.profiles.items() if lp.profile.enabled
        }
        # A file that failed to validate keeps the last good version of its profiles running.
        bad_paths = {_real(issue.path) for issue in load.issues}
        for name, slot in self.slots.items():
            if name not in desired and _real(slot.loaded.path) in bad_paths:
                desired[name] = slot.loaded
                log.warning("profile_kept_last_good", profile=name, file=str(slot.loaded.path))
        for name in list(self.slots):
            if name not in desired:
                await self._stop(name)
                result.stopped.append(name)
        starts: list[LoadedProfile] = []
        for name, lp in desired.items():
            current = self.slots.get(name)
            new_hash = lp.profile.config_hash()
            if current is None:
                starts.append(lp)
                result.started.append(name)
            elif current.config_hash != new_hash:
                await self._stop(name)
                starts.append(lp)
                result.restarted.append(name)
            elif current.done.is_set():
                # Its task ended (a crash the restart loop could not contain): start afresh.
                await self._stop(name)
                starts.append(lp)
                result.restarted.append(name)
            else:
                current.loaded = lp  # same config; the path may have changed (rename)
                result.unchanged.append(name)
                if current.state == "failed":
                    # The operator may have fixed the cause (keys, disk space): try now.
                    current.retry.set()
                    result.retried.append(name)
        await self._start_many(starts)
        self.reloads += 1
        self.reload_results["invalid" if load.issues else "ok"] += 1
        if self.reloads > 1:
            log.info(
                "profiles_reloaded",
                started=result.started,
                stopped=result.stopped,
                restarted=result.restarted,
                retried=result.retried,
                unchanged=len(result.unchanged),
                invalid=len(result.issues),
            )
        return result

    def _directory_unreadable(self, issues: list[ConfigIssue]) -> bool:
        """Whether the load could not list the directory itself; logs each change of that."""
        problem = next((i for i in issues if i.path == self.directory), None)
        if problem is not None and not self.directory_missing:
            self.directory_missing = True
            log.error(
                "profile_dir_missing",
                directory=str(self.directory),
                error=problem.message,
                running=sorted(self.slots),
                action="profiles keep running; waiting for the directory to come back",
            )
        elif problem is None and self.directory_missing:
            self.directory_missing = False
            log.warning("profile_dir_restored", directory=str(self.directory))
        return problem is not None

    async def _start_many(self, profiles: list[LoadedProfile]) -> None:
        """Start profiles concurrently; return once each quotes (or gave up)."""
        tg = self._tg
        assert tg is not None
        async with anyio.create_task_group() as starters:
            for lp in profiles:
                slot = ProfileSlot(loaded=lp, config_hash=lp.profile.config_hash())
                self.slots[lp.profile.name] = slot
                starters.start_soon(self._start_one, tg, slot)

    async def _start_one(self, tg: TaskGroup, slot: ProfileSlot) -> None:
        tg.start_soon(self._profile_task_entry, slot)
        with anyio.move_on_after(self.start_timeout_s):
            await slot.started.wait()
            return
        log.warning(
            "profile_start_slow",
            profile=slot.name,
            waited_s=self.start_timeout_s,
            state=slot.state,
        )

    async def _stop(self, name: str) -> None:
        slot = self.slots.pop(name)
        slot.scope.cancel()
        await slot.done.wait()

    # --- one profile's task -----------------------------------------------------------

    async def _profile_task_entry(self, slot: ProfileSlot) -> None:
        relay = _StartRelay(slot.started)
        profile = slot.loaded.profile
        # Bound in this task's context (copied into its child tasks, never leaking to other
        # profiles), so even ccxt's and apscheduler's stdlib log lines carry the profile.
        structlog.contextvars.bind_contextvars(
            profile=profile.name, venue=_venue_label(profile), symbol=profile.symbol
        )
        try:
            with slot.scope:
                await self._profile_task(slot, relay)
        except Exception as exc:
            # The restart loop contains whatever a bot raises; this is the last line of defence
            # against anything else, so that no profile can take down the supervisor's group.
            slot.state = "failed"
            slot.last_error = f"{type(exc).__name__}: {exc}"
            log.error("profile_crashed", error=slot.last_error, exc_info=True)
        finally:
            if self.scheduler is not None:
                self.scheduler.remove_profile(slot.name)
            relay.started()  # never leave the starter waiting (stopped before quoting)
            if slot.state not in ("failed",):
                slot.state = "stopped"
            slot.done.set()

    async def _profile_task(self, slot: ProfileSlot, relay: _StartRelay) -> None:
        profile = slot.loaded.profile
        plog = log.bind(profile=profile.name)
        send, receive = anyio.create_memory_object_stream[ModeSwitch](16)
        slot.control_send = send
        async with send, anyio.create_task_group() as ptg:
            ptg.start_soon(self._control_loop, slot, receive)
            while True:
                began = self.clock.now()
                auth_failed = False
                try:
                    # Inside the restart loop: a scheduler that refuses the profile is this
                    # profile's failure, never the supervisor's.
                    self._schedule(slot)
                    bot = self._make_bot(slot)
                    slot.bot = bot
                    slot.state = "starting"
                    # Refused (LockBusy, a failure like any other) while another process runs
                    # the profile; held until the bot's shutdown has cancelled its orders.
                    with hold_profile(self.profile_locks, profile.name):
                        await bot.run(task_status=relay)
                    plog.warning("profile_stream_ended")
                    error: str | None = "venue event stream ended"
                except LedgerLost as exc:
                    # Fatal for every profile (they share the ledger): no restart; the
                    # supervisor stops them all. The bot has cancelled its orders.
                    slot.state = "failed"
                    slot.last_error = f"ledger lost: {exc}"
                    plog.critical("profile_ledger_lost", error=str(exc))
                    self._on_ledger_lost(exc)
                    break
                except AuthenticationFailed as exc:
                    # Retrying with the same keys cannot help: down until a reload (SIGHUP),
                    # since the operator may have fixed the key meanwhile.
                    error = f"authentication failed: {exc}"
                    auth_failed = True
                    plog.error("profile_failed", error=error, restarting=False)
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    plog.error("profile_failed", error=error, exc_info=True)
                finally:
                    if slot.bot is not None:
                        slot.orders_left = slot.bot.orders_left
                slot.last_error = error
                if auth_failed:
                    await self._park_failed(slot, relay, cool_down=False)
                    continue
                if self.clock.now() - began >= self.restart.healthy_after_s:
                    slot.failures = 0
                slot.failures += 1
                if slot.failures > self.restart.max_restarts:
                    plog.error(
                        "profile_gave_up",
                        failures=slot.failures - 1,
                        last_error=error,
                        retry_in_s=self.restart.failed_retry_s,
                    )
                    await self._park_failed(slot, relay, cool_down=True)
                    continue
                delay = self.restart.delay(slot.failures)
                slot.state = "restarting"
                plog.warning("profile_restarting", attempt=slot.failures, delay_s=delay)
                # The first attempt is over: whoever started the profile (readiness, a reload
                # holding the reload lock) must not wait through its whole backoff sequence.
                relay.started()
                await anyio.sleep(delay)
                slot.restarts += 1
            ptg.cancel_scope.cancel()
        relay.started()

    async def _park_failed(self, slot: ProfileSlot, relay: _StartRelay, *, cool_down: bool) -> None:
        """Hold a ``failed`` profile until a reload retries it or, with ``cool_down``, until
        ``failed_retry_s`` has passed on the supervisor's clock.

        A reload's retry starts a fresh backoff sequence (the operator acted); a cool-down
        retry is one attempt, whose failure parks the profile again.
        """
        slot.state = "failed"
        relay.started()  # nobody waits for a failed profile's first quotes
        slot.retry = anyio.Event()
        by_reload = True
        async with anyio.create_task_group() as tg:

            async def cool_down_ends() -> None:
                nonlocal by_reload
                await self.clock.sleep_until(self.clock.now() + self.restart.failed_retry_s)
                by_reload = False
                tg.cancel_scope.cancel()

            if cool_down:
                tg.start_soon(cool_down_ends)
            await slot.retry.wait()
            tg.cancel_scope.cancel()
        if by_reload:
            slot.failures = 0
        slot.restarts += 1
        slot.state = "restarting"
        log.info(
            "profile_retrying", profile=slot.name, trigger="reload" if by_reload else "cool_down"
        )

    def _schedule(self, slot: ProfileSlot) -> None:
        """(Re)register the profile's mode schedule (it replaces the previous registration)."""
        profile = slot.loaded.profile
        if profile.schedule and self.scheduler is not None:
            name = profile.name
            self.scheduler.add_profile(name, profile.schedule, lambda m: self.post_mode(name, m))

    async def _control_loop(self, slot: ProfileSlot, receive: Any) -> None:
        async with receive:
            async for message in receive:
                if isinstance(message, ModeSwitch) and slot.bot is not None:
                    try:
                        slot.bot.set_mode(message.mode)
                    except Exception as exc:
                        # The bot keeps its mode; the channel (and every other profile) lives.
                        log.error(
                            "mode_switch_failed",
                            profile=slot.name,
                            mode=message.mode,
                            error=f"{type(exc).__name__}: {exc}",
                        )

    def post_mode(self, name: str, mode: str) -> bool:
        """Ask profile ``name`` to switch mode (used by the scheduler); False if not running."""
        slot = self.slots.get(name)
        if slot is None or slot.control_send is None:
            return False
        try:
            slot.control_send.send_nowait(ModeSwitch(mode))
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    def _make_bot(self, slot: ProfileSlot) -> Bot:
        profile = slot.loaded.profile
        capacity, refill = profile_rate_budget(profile)
        limiter = MeteredTokenBucket(
            capacity,
            refill,
            self.clock,
            metrics=slot.venue_metrics,
            parent=self._account_bucket(profile),
            name=profile.name,
        )
        slot.limiter = limiter
        venue = MeteredVenue(self.venue_factory(profile, self.clock, limiter), slot.venue_metrics)
        bot = Bot(profile, venue, clock=self.clock, ledger=self.ledger)
        # Every (re)start begins in the mode the schedule says applies now.
        if profile.schedule:
            bot.set_mode(mode_at(profile.schedule, profile.mode, self.wall_clock()))
        return bot

    def _account_bucket(self, profile: Profile) -> TokenBucket | None:
        venue = profile.venue
        if not isinstance(venue, CcxtVenueConfig) or venue.account is None:
            return None
        key = f"{venue.exchange}:{venue.account}"
        bucket = self._accounts.get(key)
        if bucket is None:
            # Imported here: the ccxt package (and ccxt itself) loads only for ccxt profiles.
            from kasmm.venues.ccxt.exchanges import default_rate_budget

            limits = self._account_limits.get(venue.account)
            default = default_rate_budget(venue.exchange)
            capacity = getattr(limits, "capacity", default.capacity if default else 50.0)
            refill = getattr(limits, "refill_per_s", default.refill_per_s if default else 20.0)
            bucket = TokenBucket(capacity, refill, self.clock, name=key)
            self._accounts[key] = bucket
        return bucket

    # --- reporting ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Supervisor and per-profile state, as plain JSON-ready values."""
        healthy, health_reason = self.health()
        profiles = []
        for name in sorted(self.slots):
            slot = self.slots[name]
            row: dict[str, Any] = {
                "name": name,
                "file": str(slot.loaded.path),
                "venue": slot.loaded.profile.venue.type,
                "symbol": slot.loaded.profile.symbol,
                "state": slot.state,
                "restarts": slot.restarts,
                "last_error": slot.last_error,
            }
            bot = slot.bot
            if bot is not None:
                snap = bot.snapshot()
                row.update(
                    state=(
                        slot.state
                        if slot.state in ("failed", "restarting")
                        else snap.trading_state
                        if snap.trading_state != "active" and snap.state == "quoting"
                        else snap.state
                    ),
                    mode=snap.mode,
                    trading_state=snap.trading_state,
                    halt_reason=snap.halt_reason,
                    idle_reason=snap.idle_reason,
                    mid=_num(snap.mid),
                    spread_bps=None if snap.spread_bps is None else round(snap.spread_bps, 2),
                    inventory_base=str(snap.inventory_base),
                    inventory_quote=str(snap.inventory_quote),
                    open_orders=snap.open_orders,
                    realized_pnl=str(snap.realized_pnl),
                    net_pnl=str(snap.net_pnl),
                    fills=bot.pnl.buy_count + bot.pnl.sell_count,
                    orders_placed=bot.stats.orders_placed,
                    orders_cancelled=bot.stats.orders_cancelled,
                    last_error=slot.last_error or snap.last_error,
                )
            profiles.append(row)
        return {
            "supervisor": {
                "pid": os.getpid(),
                "directory": str(self.directory),
                "shard": None if self.shard is None else str(self.shard),
                "uptime_s": round(time.time() - self.started_at, 1),
                "profiles_total": len(self.slots),
                "reloads": self.reloads,
                "config_errors": [str(i) for i in self.issues],
                "directory_missing": self.directory_missing,
                "ledger_lost": self.ledger_lost,
                "healthy": healthy,
                "health": health_reason,
            },
            "profiles": profiles,
        }

    def health(self) -> tuple[bool, str]:
        """``(healthy, reason)`` for ``/healthz``: unhealthy while the ledger is lost or any
        enabled profile is ``failed`` (the reason names them).

        A missing profile directory is only a warning (in the reason and ``status()``): the
        running profiles still trade on their last good configuration, and what an unhealthy
        check leads to, a restart, could not bring the directory back but would stop them all.
        """
        if self.ledger_lost is not None:
            return False, f"ledger lost: {self.ledger_lost}"
        failed = sorted(name for name, slot in self.slots.items() if slot.state == "failed")
        if failed:
            return False, "failed profiles: " + ", ".join(failed)
        if self.directory_missing:
            return True, f"ok; warning: profile directory {self.directory} is missing"
        return True, "ok"


def _venue_label(profile: Profile) -> str:
    venue = profile.venue
    return venue.exchange if isinstance(venue, CcxtVenueConfig) else venue.type


def _real(path: Path) -> Path:
    """``path`` resolved; made absolute instead when it cannot be (a symlink loop raises)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


def _num(value: Any) -> str | None:
    return None if value is None else str(value)


async def supervise(
    directory: Path,
    *,
    duration: float | None = None,
    control_addr: str | None = None,
    watch: bool = True,
    supervisor: Supervisor | None = None,
    notifier: Notifier | None = None,
    task_status: TaskStatus[Supervisor] = anyio.TASK_STATUS_IGNORED,
) -> int:
    """Run a supervisor with file watching, signals and (optionally) the control endpoint;
    return the exit status (README "Exit codes").

    Signals (:mod:`kasmm.daemon.signals`, handled until this returns): the first SIGTERM or
    SIGINT stops every profile, each cancelling its orders; a second one ends the process at
    once; SIGHUP reloads, and is logged and ignored once stopping. The supervisor stopping by
    itself (a lost ledger) ends the run the same way.

    ``notifier`` (systemd ``Type=notify``) gets READY=1 once every profile quotes,
    RELOADING=1/READY=1 around a SIGHUP reload, STOPPING=1 on shutdown, and WATCHDOG=1/STATUS=
    from the event loop.
    """
    sup = supervisor or Supervisor(directory)
    notify = notifier or Notifier(None)
    stop_watch = anyio.Event()
    #: Everything but the signal handling: cancelled by the shutdown it starts.
    work = anyio.CancelScope()
    work_tasks: list[TaskGroup] = []

    def sd_status() -> str:
        return status_line(sup.status())

    def shut_down() -> None:
        if not work.cancel_called:
            notify.stopping(f"stopping: {sd_status()}")
        stop_watch.set()
        work.cancel()

    async def reload_from_signal() -> None:
        with notify.reload(sd_status):
            try:
                await sup.reload()
            except Exception as exc:
                log.error("reload_failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)

    async def on_signals(signals: AsyncIterator[signal.Signals]) -> None:
        # Outside ``work``: it must keep receiving while the shutdown it started runs.
        async for signum in signals:
            if signum != signal.SIGHUP:
                log.info("shutdown_requested", signal=signum.name)
                shut_down()
            elif work.cancel_called or not work_tasks:
                reason = "shutting down" if work.cancel_called else "starting"
                log.warning("reload_ignored", signal=signum.name, reason=reason)
            else:
                log.info("reload_requested", source="SIGHUP")
                # In its own task: a slow reload must not delay a SIGTERM behind it.
                work_tasks[0].start_soon(reload_from_signal)

    async def run_supervisor(*, task_status: TaskStatus[None]) -> None:
        await sup.run(task_status=task_status)
        shut_down()  # it stopped by itself (ledger lost): end the whole run

    with process_signals() as inbox:
        async with inbox.attach() as signals, anyio.create_task_group() as outer:
            outer.start_soon(on_signals, signals)
            with work:
                async with anyio.create_task_group() as tg:
                    work_tasks.append(tg)
                    tg.start_soon(lambda: watchdog_task(notify, sd_status))
                    await tg.start(run_supervisor)
                    await _serve(
                        sup, tg, notify, sd_status, directory, control_addr, watch, stop_watch
                    )
                    task_status.started(sup)
                    if duration is not None:
                        await anyio.sleep(duration)
                        shut_down()
            work_tasks.clear()
            outer.cancel_scope.cancel()
    return sup.exit_code


async def _serve(
    sup: Supervisor,
    tg: TaskGroup,
    notify: Notifier,
    sd_status: Callable[[], str],
    directory: Path,
    control_addr: str | None,
    watch: bool,
    stop_watch: anyio.Event,
) -> None:
    """What :func:`supervise` starts once every profile quotes: the endpoint and the watch."""
    # Everything built at startup (modules, schemas, profiles) lives as long as the process:
    # move it out of the cyclic GC's generations so full collections stay short.
    gc.collect()
    gc.freeze()
    if control_addr:
        from kasmm.control import parse_addr, serve_control

        host, port = parse_addr(control_addr)
        await tg.start(
            lambda *, task_status: serve_control(
                host,
                port,
                status=sup.status,
                metrics=MetricsExporter(sup).scrape,
                health=sup.health,
                task_status=task_status,
            )
        )
    if watch:
        tg.start_soon(lambda: watch_directory(directory, sup.reload, stop=stop_watch))
    notify.ready(sd_status())
