"""Scheduled settlement in the supervisor: off unless an account of ``_settlement.yaml`` has a
``schedule``, then that account's settlement runs at each of its cron firings.

:class:`SettlementScheduler` holds the last good ``_settlement.yaml`` (a bad edit keeps it and
reports the file's issues, as ``_notify.yaml`` and ``_portfolios.yaml`` do; a removed file turns
scheduled settlement off) and runs one loop that, at each firing of an account's schedule, calls
the injected ``settle(account, gates)`` in its own task. The gates come from the account's
running bots (:mod:`kasmm.supervisor.settle_gates`): the plan holds every sweep while one of
them is halted, paused by an operator or on a stale feed, and still moves the open sweeps on.

Firings are the DST-safe cron trigger of :mod:`kasmm.schedule` (APScheduler's ``CronTrigger``,
corrected), evaluated here on the injected wall clock and slept to with the injected sleep, as
the daily summary does: APScheduler's own scheduler reads the real clock itself, so a schedule
run through it could not be tested on controlled time. A wall clock stepped past one or more
firings (a suspended host) runs the settlement once, at once. A reload is seen within
``recheck_s``.

Never twice at once: a firing that finds the account's previous run still going is skipped
(logged, counted); the settlement service also holds a lock file, which keeps a ``kasmm settle
--execute`` in a shell and this schedule apart. A run that raises is logged and notified and the
next firing tries again: nothing here can fail the supervisor.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from kasmm.alerts import settlement_events
from kasmm.alerts.events import Alert
from kasmm.alerts.redact import redact, register_secret
from kasmm.config.loader import ConfigIssue
from kasmm.config.schema import Profile
from kasmm.config.secrets import MissingSecret, resolve_secret
from kasmm.config.settlement import SettlementFile, SettleSchedule
from kasmm.config.settlement_load import SettlementLoad, load_settlement
from kasmm.core.settlement import Gates
from kasmm.schedule import compile_cron
from kasmm.settle.check import find_settlement_file, sdk_destination_check

log = structlog.get_logger("kasmm.settlement")

__all__ = ["RUN_OUTCOMES", "SettleFn", "SettlementConfig", "SettlementScheduler", "next_run_at"]

#: ``settle(account, gates)``: one settlement run of ``account`` (the settlement service's
#: ``run(account, execute=True, gates=gates)``); its result is logged, never inspected.
SettleFn = Callable[[str, Gates], Awaitable[object]]
#: Values of ``kasmm_settlement_runs_total{outcome=...}``.
RUN_OUTCOMES: tuple[str, ...] = ("done", "failed", "skipped_running", "unavailable")


@dataclass(frozen=True)
class SettlementConfig:
    """A valid ``_settlement.yaml``: the file, its accounts, and each account's profiles."""

    path: Path
    settlement: SettlementFile
    members: Mapping[str, tuple[str, ...]]


def next_run_at(schedule: SettleSchedule, now: float) -> float:
    """The first firing of ``schedule`` strictly after ``now`` (Unix seconds), DST-safe."""
    trigger = compile_cron(schedule.cron, schedule.timezone)
    after = datetime.fromtimestamp(now, tz=UTC) + timedelta(microseconds=1)
    fire = trigger.get_next_fire_time(None, after)
    assert fire is not None  # compile_cron refuses an expression that never fires
    return float(fire.timestamp())


class SettlementScheduler:
    """Runs each scheduled account's settlement at its cron firings (see the module docstring).

    :param settle: one run of an account (``None``: no settlement service in this process;
        a firing is then logged as ``settlement_service_missing`` and nothing moves).
    :param gates: the account's gates now (from its running bots).
    :param publish: where a failed run's alert goes (the notifier's ``publish``).
    :param env: where withdrawal keys are looked up, only to keep them out of every
        notification (default ``os.environ``, then ``$CREDENTIALS_DIRECTORY``).
    """

    def __init__(
        self,
        settle: SettleFn | None,
        gates: Callable[[str], Gates],
        publish: Callable[[Alert], None],
        *,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = anyio.sleep,
        recheck_s: float = 60.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settle = settle
        self.gates = gates
        self.publish = publish
        self.wall_clock = wall_clock
        self._sleep = sleep
        self.recheck_s = recheck_s
        self.env = env
        #: The last good file (``None``: no file, or none valid yet).
        self.config: SettlementConfig | None = None
        #: Accounts whose run is going on now.
        self.running: set[str] = set()
        #: ``(account, outcome)`` -> runs, for ``kasmm_settlement_runs_total``.
        self.runs: Counter[tuple[str, str]] = Counter()
        #: account -> (its schedule, its next firing), as the loop last computed it.
        self.due: dict[str, tuple[SettleSchedule, float]] = {}
        self._tg: TaskGroup | None = None
        #: Set by every valid load: the loop's wait ends at once and it plans again.
        self._wake = anyio.Event()

    # --- configuration ----------------------------------------------------------------

    def schedules(self) -> dict[str, SettleSchedule]:
        """Account -> its schedule, for the accounts that have one."""
        cfg = self.config
        if cfg is None:
            return {}
        return {n: a.schedule for n, a in cfg.settlement.settlement.items() if a.schedule}

    async def reload(self, directory: Path, profiles: Mapping[str, Profile]) -> list[ConfigIssue]:
        """Read the directory's ``_settlement.yaml`` against every loaded profile (all shards:
        an account's membership is the whole directory's); return its issues.

        A valid file replaces the last good one, an invalid one keeps it, no file turns
        scheduled settlement off. The destination is checked with the SDK, as ``kasmm
        validate`` and ``kasmm settle`` check it.
        """
        path = find_settlement_file(directory)
        if path is None:
            if self.config is not None:
                log.info("settlement_config_removed", file=str(self.config.path))
            self.config = None
            self._plan(self.wall_clock())
            return []
        load = await anyio.to_thread.run_sync(
            lambda: load_settlement(
                path, profiles=profiles, check_destination=sdk_destination_check, env=self.env
            )
        )
        return self.apply(path, load)

    def apply(self, path: Path, load: SettlementLoad) -> list[ConfigIssue]:
        """Take a load of ``path``: the new config when valid, else keep the last good one."""
        if load.settlement is None or load.issues:
            for issue in load.issues:
                log.error("config_invalid", error=str(issue), file=str(issue.path))
            if self.config is not None:
                log.warning("settlement_kept_last_good", file=str(path))
            return list(load.issues)
        self._register_keys(load.settlement)
        changed = self.config is None or self.config.settlement != load.settlement
        self.config = SettlementConfig(path, load.settlement, dict(load.members))
        self._plan(self.wall_clock())
        self._wake.set()  # the loop sleeps to the new next firing
        if changed:
            log.info(
                "settlement_configured",
                file=str(path),
                accounts=sorted(load.settlement.settlement),
                scheduled=sorted(self.schedules()),
            )
        return []

    def _register_keys(self, cfg: SettlementFile) -> None:
        """Hand every resolvable withdrawal credential to the redactor (values never leave)."""
        credentials_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        where = Path(credentials_dir) if credentials_dir else None
        for acct in cfg.settlement.values():
            creds = acct.withdrawal_credentials
            for ref in (creds.api_key, creds.secret, creds.password):
                if ref is None:
                    continue
                try:
                    register_secret(resolve_secret(ref, self.env, where).get_secret_value())
                except MissingSecret:
                    continue  # not on this host: nothing to leak

    # --- the loop ---------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Fire every scheduled account at its times until cancelled (runs are cancelled with
        it: the settlement service records each step before it acts, so a cancelled run is
        resumed by the next one)."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            try:
                while True:
                    wait = self.tick()
                    await self._wait(min(wait, self.recheck_s))
            finally:
                self._tg = None

    async def _wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (the injected sleep), or less if a reload changes a schedule."""
        self._wake = anyio.Event()
        async with anyio.create_task_group() as tg:

            async def sleep() -> None:
                await self._sleep(seconds)
                tg.cancel_scope.cancel()

            tg.start_soon(sleep)
            await self._wake.wait()
            tg.cancel_scope.cancel()

    def _plan(self, now: float) -> None:
        """Keep :attr:`due` in step with the schedules: new or changed ones from ``now``."""
        wanted = self.schedules()
        for account in list(self.due):
            if account not in wanted:
                del self.due[account]
        for account, schedule in wanted.items():
            known = self.due.get(account)
            if known is None or known[0] != schedule:
                self.due[account] = (schedule, next_run_at(schedule, now))

    def tick(self) -> float:
        """Start the runs that are due now; return the seconds until the next firing."""
        now = self.wall_clock()
        self._plan(now)
        for account, (schedule, at) in list(self.due.items()):
            if now >= at:
                self.fire(account)
                self.due[account] = (schedule, next_run_at(schedule, max(now, at)))
        return max(0.0, min((at - now for _s, at in self.due.values()), default=self.recheck_s))

    def next_run(self, account: str) -> float | None:
        """When ``account`` settles next (Unix seconds), as the loop computed it."""
        due = self.due.get(account)
        return None if due is None else due[1]

    def fire(self, account: str) -> bool:
        """Start one run of ``account`` now; ``False`` when skipped (one still runs)."""
        if account in self.running:
            self.runs[(account, "skipped_running")] += 1
            log.warning("settlement_skipped", account=account, reason="previous run still going")
            return False
        if self.settle is None:
            self.runs[(account, "unavailable")] += 1
            log.error("settlement_service_missing", account=account)
            return False
        tg = self._tg
        if tg is None:
            return False
        self.running.add(account)
        tg.start_soon(self._run_one, account, self.settle, name=f"settle:{account}")
        return True

    async def _run_one(self, account: str, settle: SettleFn) -> None:
        try:
            gates = self.gates(account)
            if gates.halted_profiles or gates.stale_feeds:
                log.info(
                    "settlement_gated",
                    account=account,
                    halted=list(gates.halted_profiles),
                    stale=list(gates.stale_feeds),
                )
            log.info("settlement_run_started", account=account)
            result = await settle(account, gates)
            self.runs[(account, "done")] += 1
            problems = [redact(str(p)) for p in getattr(result, "problems", ())]
            log.info(
                "settlement_run_done",
                account=account,
                requested=len(getattr(result, "requested", ())),
                advanced=len(getattr(result, "advanced", ())),
                busy=bool(getattr(result, "busy", False)),
                problems=problems,
            )
            if problems:
                # Nothing raised, but something could not be done (an exchange that could not
                # be read, a node that did not answer): the operator hears of it.
                self.publish(settlement_events.run_failed(account, "; ".join(problems)))
        except Exception as exc:
            self.runs[(account, "failed")] += 1
            error = redact(f"{type(exc).__name__}: {exc}")
            log.error("settlement_run_failed", account=account, error=error)
            self.publish(settlement_events.run_failed(account, error))
        finally:
            self.running.discard(account)
