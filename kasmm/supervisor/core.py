"""The supervisor proper: runs every enabled profile of a directory and follows changes to it.

Each enabled profile runs in its own :class:`~kasmm.supervisor.runner.ProfileRunner` inside the
supervisor's task group, with its own token bucket (and its account's shared bucket above it).
Market data is shared: the supervisor's :class:`~kasmm.market.hub.MarketHub` (``market``, run in
the same task group before any profile starts) holds one feed per ``exchange:symbol``, which
every profile that trades or references that market reads (see :mod:`kasmm.venues.factory`).
Nothing a profile raises reaches the supervisor's task group, so one profile can never take
another down. The exception is a lost ledger (:class:`~kasmm.errors.LedgerLost`): every profile
records to it, so the supervisor stops them all and exits with
:data:`~kasmm.daemon.exit_codes.LEDGER_LOST`.

A reload (a file change seen by the watch, or SIGHUP) rescans the directory and applies
:func:`~kasmm.supervisor.plan.plan_reload`: the profiles to stop (removed, disabled, changed)
stop together, each cancelling its orders within its own deadline, then the new versions start
together. A file that no longer validates keeps its last good profiles running, and a directory
that is missing keeps every running profile (see :mod:`kasmm.daemon.watch`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import structlog
from anyio.abc import TaskGroup, TaskStatus

from kasmm.alerts import events as alerts
from kasmm.alerts.notifier import Notifier
from kasmm.alerts.watch import daily_summaries, watch_supervisor
from kasmm.bot import Bot
from kasmm.clock import Clock, RealClock
from kasmm.config.loader import ConfigIssue, LoadedProfile, load_paths
from kasmm.config.schema import CcxtVenueConfig, Profile, SimVenueConfig
from kasmm.daemon import exit_codes
from kasmm.errors import LedgerLost
from kasmm.limiter import TokenBucket
from kasmm.market.feeds import PublicFeeds
from kasmm.market.hub import MarketHub
from kasmm.market.keys import reference_keys
from kasmm.obs.metrics import LoopLagMonitor, build_registry
from kasmm.schedule import ModeScheduler, mode_at
from kasmm.shard import Shard, select_shard
from kasmm.store import AsyncLedger
from kasmm.store.state_dir import ProfileLocks
from kasmm.supervisor.actions import restore_pauses
from kasmm.supervisor.hedging import Hedging
from kasmm.supervisor.members import Member, RunnerMember
from kasmm.supervisor.plan import DesiredProfile, RunningProfile, plan_reload
from kasmm.supervisor.portfolios import PortfolioManager
from kasmm.supervisor.runner import ProfileRunner, RestartPolicy
from kasmm.supervisor.settle_schedule import SettleFn
from kasmm.supervisor.settling import Settling
from kasmm.supervisor.state import ProfileState
from kasmm.supervisor.status import health_verdict, supervisor_status
from kasmm.supervisor.summary import minute_summaries
from kasmm.venues.base import Venue
from kasmm.venues.factory import build_stack, build_venue

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from kasmm.venues.sim.world import SimWorlds

log = structlog.get_logger("kasmm.supervisor")

__all__ = ["ReloadResult", "Supervisor", "VenueFactory"]

VenueFactory = Callable[[Profile, Clock, TokenBucket], Venue]
#: The markets a profile references (``"<exchange>:<symbol>"``), whose books it receives.
ReferenceKeys = Callable[[Profile], Sequence[str]]


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
        notifier: Notifier | None = None,
        market: MarketHub | None = None,
        reference_keys: ReferenceKeys = reference_keys,
        settle: SettleFn | None = None,
    ) -> None:
        self.directory = directory
        self.shard = shard
        #: Each bot runs holding its profile's lock: never one profile in two processes.
        self.profile_locks = profile_locks
        #: Every bot, token bucket, restart backoff and cool-down runs on it.
        self.clock: Clock = clock or RealClock()
        self.venue_factory = venue_factory
        self.restart = restart or RestartPolicy()
        self.env = env
        self.wall_clock = wall_clock
        self.ledger = ledger
        #: Built in :meth:`run` unless given (tests inject a failing one).
        self.scheduler: ModeScheduler | None = scheduler
        #: The running profiles by name (``slots``: the name metrics and tools know them by).
        self.slots: dict[str, ProfileRunner] = {}
        #: Loaded profiles with ``enabled: false`` (name -> file): shown, never run.
        self.disabled: dict[str, Path] = {}
        #: Profiles an operator paused (name -> who): kept across reloads, and in the ledger
        #: across restarts (:mod:`kasmm.supervisor.actions`).
        self.paused: dict[str, str] = {}
        self.issues: list[ConfigIssue] = []
        self.reloads = 0
        #: Wall-clock start (a timestamp: the process start-time metric).
        self.started_at = time.time()
        #: Monotonic start: what uptime is measured from (a stepped clock cannot bend it).
        self.started_monotonic = time.monotonic()
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
        self.loop_lag: LoopLagMonitor = LoopLagMonitor()
        self.metrics_registry: CollectorRegistry = build_registry(self)
        #: Seconds between the per-profile console summaries (``None``: none; the supervise
        #: command sets it when a person reads the console).
        self.summary_every_s: float | None = None
        #: Notifications (``_notify.yaml``); idle while that file names no target.
        self.notifier = notifier or Notifier(env=env)
        #: Shared market data: one feed per ``exchange:symbol`` for every profile here.
        self.market = market or MarketHub(self.clock, feed_factory=PublicFeeds(self.clock))
        self.reference_keys = reference_keys
        #: The simulated worlds its sim venues share (``market.world``: one latent price for a
        #: deep and a thin venue); built with the first sim profile.
        self.worlds: SimWorlds | None = None
        #: Portfolios (``_portfolios.yaml``): groups measured on their members' changes.
        self.portfolios = PortfolioManager(
            self.clock, wall_clock, self._member, ledger, on_ledger_lost=self.on_ledger_lost
        )
        #: The hedge links of the profiles with a ``hedge:`` block (:mod:`.hedging`).
        self.hedging = Hedging(self)
        #: Settlement (``_settlement.yaml``): scheduled runs of ``settle``, the ledger watch.
        self.settling = Settling(
            self.slots, self.notifier, ledger, settle=settle, wall_clock=wall_clock, env=env
        )

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
                # Inside the try: a stop that lands while the hub or the notifier starts (an
                # early SIGTERM) must still run the stop below, which logs supervisor_stopped.
                await tg.start(self.market.run)  # before any profile: they subscribe to it
                await tg.start(self.notifier.run)
                await tg.start(self.portfolios.run)
                await self.settling.start(tg)
                tg.start_soon(watch_supervisor, self, self.notifier)
                tg.start_soon(
                    lambda: daily_summaries(self, self.notifier, wall_clock=self.wall_clock)
                )
                if self.summary_every_s is not None:
                    tg.start_soon(minute_summaries, self, self.summary_every_s)
                if self.ledger is not None:
                    self.paused = await restore_pauses(self.ledger)
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
                    await self.notifier.aclose()  # what is queued (a lost ledger) goes out
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
        runners = list(self.slots.values())
        failed = sorted(r.name for r in runners if r.state is ProfileState.FAILED)
        await _stop_together(runners)
        left = sum(r.orders_left for r in runners)
        self.exit_code = exit_codes.stop_status(
            ledger_lost=self.ledger_lost is not None, orders_left=left, failed=len(failed)
        )
        log.info(
            "supervisor_stopped",
            profiles=len(runners),
            orders_left=left,
            failed=failed,
            ledger_lost=self.ledger_lost is not None,
            exit_code=self.exit_code,
        )

    def on_ledger_lost(self, exc: LedgerLost) -> None:
        """Every profile records to the one ledger: stop them all (each cancels its orders)."""
        if self.ledger_lost is None:
            self.ledger_lost = str(exc)
            log.critical("supervisor_stopping", reason="ledger lost", error=str(exc))
            self.notifier.publish(alerts.ledger_trouble("lost; every profile stops", str(exc)))
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
                self.on_ledger_lost(exc)
                return
            except Exception as exc:
                log.warning("ledger_check_failed", error=f"{type(exc).__name__}: {exc}")
                self.notifier.publish(alerts.ledger_trouble("check failed", str(exc)))

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
        running = {name: runner.loaded.path for name, runner in self.slots.items()}
        load = await anyio.to_thread.run_sync(
            lambda: load_paths([self.directory], env=self.env, prefer=running)
        )
        everything = load.profiles
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
        feeds = self.market.feed_factory
        if isinstance(feeds, PublicFeeds):  # the feeds of an exchange use its profiles' URLs
            feeds.forget_endpoints()
            for lp in load.profiles.values():
                feeds.note_endpoints(lp.profile)
        self.disabled = {n: lp.path for n, lp in load.profiles.items() if not lp.profile.enabled}
        if not load.notify_invalid:  # an invalid _notify.yaml keeps the last good one
            self.notifier.configure(load.notify)
        if not load.portfolios_invalid:  # an invalid _portfolios.yaml keeps the last good one
            enabled = {n for n, lp in everything.items() if lp.profile.enabled}
            here = {n for n in enabled if n in load.profiles}
            self.portfolios.configure(load.portfolios or (), here, enabled - here)
        # An invalid _settlement.yaml keeps the last good one; its issues are shown as others.
        profiles = {name: lp.profile for name, lp in everything.items()}
        settle_issues = await self.settling.reload(self.directory, profiles)
        self.issues.extend(settle_issues)
        result.issues.extend(settle_issues)
        # Paths are resolved only when some file is invalid (the common reload has none).
        bad_files = {_real(issue.path) for issue in load.issues}
        plan = plan_reload(
            {
                name: RunningProfile(
                    runner.config_hash,
                    _real(runner.loaded.path) if bad_files else runner.loaded.path,
                    ended=runner.done.is_set(),
                )
                for name, runner in self.slots.items()
            },
            {
                name: DesiredProfile(lp.profile.config_hash(), lp.profile.enabled)
                for name, lp in load.profiles.items()
            },
            bad_files,
        )
        kept = {name: self.slots[name].loaded for name in plan.kept_last_good}
        for name, lp in kept.items():
            log.warning("profile_kept_last_good", profile=name, file=str(lp.path))

        def latest(name: str) -> LoadedProfile:
            return kept[name] if name in kept else load.profiles[name]

        # Everything that goes down stops together (each within its own deadline); only then
        # do the new versions start, so a changed profile never runs twice.
        await self._stop_many([*plan.stop, *plan.restart])
        starting = [latest(name) for name in (*plan.start, *plan.restart)]
        # Hedge links before the bots they hedge: a link takes in every fill of its profile
        # from its first one (a link whose profile stopped or changed ends first).
        assert self._tg is not None
        await self.hedging.sync(
            self._tg,
            {
                **{name: runner.loaded.profile for name, runner in self.slots.items()},
                **{lp.profile.name: lp.profile for lp in starting},
            },
        )
        for name in plan.unchanged:
            runner = self.slots[name]
            runner.loaded = latest(name)  # same config; the path may have changed (rename)
            # The operator may have fixed the cause (keys, disk space): try now.
            if runner.retry_now():
                result.retried.append(name)
        await self._start_many(starting)
        result.started = list(plan.start)
        result.stopped = list(plan.stop)
        result.restarted = list(plan.restart)
        result.unchanged = list(plan.unchanged)
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
        """Start profiles concurrently; return once each quotes (or gave up, or timed out)."""
        tg = self._tg
        assert tg is not None
        async with anyio.create_task_group() as starters:
            for lp in profiles:
                runner = ProfileRunner(lp, lp.profile.config_hash(), self)
                runner.paused_by = self.paused.get(lp.profile.name)
                self.slots[lp.profile.name] = runner
                starters.start_soon(runner.start, tg, self.start_timeout_s)

    async def _stop_many(self, names: Iterable[str]) -> None:
        """Stop these profiles together; return once each has cancelled its orders."""
        await _stop_together([self.slots.pop(name) for name in names])

    # --- what runners ask of the supervisor ----------------------------------------------

    def post_mode(self, name: str, mode: str) -> bool:
        """Ask profile ``name`` to switch mode (used by the scheduler); False if not running.

        A scheduled switch ends an operator's mode override."""
        runner = self.slots.get(name)
        if runner is None:
            return False
        runner.mode_override = None
        return runner.post_mode(mode)

    def make_bot(self, slot: ProfileRunner) -> Bot:
        """A fresh bot for ``slot``'s profile, on this supervisor's clock and ledger."""
        profile = slot.loaded.profile
        stack = build_stack(
            profile,
            self.clock,
            metrics=slot.venue_metrics,
            parent=self._account_bucket(profile),
            venue_factory=self.venue_factory,
            worlds=self._sim_worlds() if isinstance(profile.venue, SimVenueConfig) else None,
            hub=self.market,
            references=self.reference_keys(profile),
        )
        slot.limiter = stack.limiter
        name, portfolios = profile.name, self.portfolios
        bot = Bot(
            profile,
            stack.venue,
            clock=self.clock,
            ledger=self.ledger,
            on_fill=self.hedging.fill_reporter(profile.name),
            # Every handled event may move the member's group (fills, balances, its mid).
            on_handled=lambda _event: portfolios.touched(name),
        )
        self.hedging.bot_started(profile.name)
        # Every (re)start begins in the mode the schedule says applies now.
        if profile.schedule:
            bot.set_mode(mode_at(profile.schedule, profile.mode, self.wall_clock()))
        if slot.mode_override is not None:  # an operator's, until the next scheduled switch
            bot.set_mode(slot.mode_override)
        return bot

    def running_bot(self, name: str) -> Bot | None:
        """The bot profile ``name`` runs now (``None``: not running, or between bots)."""
        runner = self.slots.get(name)
        return None if runner is None else runner.bot

    def _member(self, name: str) -> Member | None:
        """The running profile ``name`` as a portfolio member (``None``: not running)."""
        runner = self.slots.get(name)
        return None if runner is None else RunnerMember(runner)

    def _sim_worlds(self) -> SimWorlds:
        """The supervisor's one registry of simulated worlds (imported only for sim profiles)."""
        if self.worlds is None:
            from kasmm.venues.sim.world import SimWorlds

            self.worlds = SimWorlds()
        return self.worlds

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
        """Supervisor and per-profile state, as plain JSON-ready values (``/status``)."""
        return supervisor_status(self)

    def health(self) -> tuple[bool, str]:
        """``(healthy, reason)`` for ``/healthz`` (see :func:`health_verdict`)."""
        return health_verdict(self)


async def _stop_together(runners: list[ProfileRunner]) -> None:
    """Cancel every runner first, then wait for each: their shutdowns overlap, so stopping N
    profiles takes about as long as the slowest one, not the sum."""
    for runner in runners:
        runner.request_stop()
    for runner in runners:
        await runner.done.wait()


def _real(path: Path) -> Path:
    """``path`` resolved; made absolute instead when it cannot be (a symlink loop raises)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))
