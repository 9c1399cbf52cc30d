"""Settlement inside a supervisor: the schedule, the ledger watch, the gates, what is shown.

One object the supervisor owns (as it owns :class:`~kasmm.supervisor.hedging.Hedging`), so the
supervisor proper only starts it, reloads it and asks it for its ``/status`` part:

* :class:`~kasmm.supervisor.settle_schedule.SettlementScheduler`: the last good
  ``_settlement.yaml`` and the scheduled runs (off by default: no file, or no ``schedule``);
* :class:`~kasmm.supervisor.settle_watch.SettlementWatch`: the ledger read every few seconds,
  each change of a sweep logged and notified (with a ledger only);
* the gates of a scheduled run, read from the member profiles' runners
  (:mod:`kasmm.supervisor.settle_gates`), with the assets of the open sweeps as ``pending``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anyio.abc import TaskGroup

from kasmm.config.loader import ConfigIssue
from kasmm.config.schema import Profile
from kasmm.core.settlement import Gates
from kasmm.store.settlement_view import SettlementOverview
from kasmm.supervisor.settle_gates import account_gates, look_at
from kasmm.supervisor.settle_schedule import SettleFn, SettlementScheduler
from kasmm.supervisor.settle_status import settlement_status
from kasmm.supervisor.settle_watch import SettlementWatch

if TYPE_CHECKING:
    from kasmm.alerts.notifier import Notifier
    from kasmm.store import AsyncLedger
    from kasmm.supervisor.runner import ProfileRunner

__all__ = ["Settling"]


class Settling:
    """The supervisor's settlement: schedule, watch and gates (see the module docstring)."""

    def __init__(
        self,
        slots: Mapping[str, ProfileRunner],
        notifier: Notifier,
        ledger: AsyncLedger | None,
        *,
        settle: SettleFn | None = None,
        wall_clock: Callable[[], float] = time.time,
        env: Mapping[str, str] | None = None,
        watch_poll_s: float = 5.0,
    ) -> None:
        self.slots = slots
        self.wall_clock = wall_clock
        self.scheduler = SettlementScheduler(
            settle, self.gates, notifier.publish, wall_clock=wall_clock, env=env
        )
        self.watch: SettlementWatch | None = None
        if ledger is not None:
            self.watch = SettlementWatch(
                ledger.settlement_overview,
                notifier.publish,
                wall_clock=wall_clock,
                poll_s=watch_poll_s,
            )
        #: Every loaded profile of the directory (all shards, disabled ones too), by name.
        self.profiles: dict[str, Profile] = {}

    @property
    def overview(self) -> SettlementOverview | None:
        """The ledger's settlements at the watch's last read (``None``: no ledger, or unread)."""
        return None if self.watch is None else self.watch.overview

    async def start(self, tg: TaskGroup) -> None:
        """Start the schedule and the watch in the supervisor's group."""
        await tg.start(self.scheduler.run)
        if self.watch is not None:
            tg.start_soon(self.watch.run)

    async def reload(self, directory: Path, profiles: Mapping[str, Profile]) -> list[ConfigIssue]:
        """Reread ``_settlement.yaml`` (a bad edit keeps the last good one); its issues."""
        self.profiles = dict(profiles)
        return await self.scheduler.reload(directory, profiles)

    def gates(self, account: str) -> Gates:
        """The gates of a run of ``account`` now: its members' state, its open sweeps."""
        cfg = self.scheduler.config
        members = () if cfg is None else cfg.members.get(account, ())
        looks = [look_at(n, self.slots.get(n), self.profiles.get(n)) for n in members]
        overview = self.overview
        pending = frozenset(
            r.asset for r in (overview.open if overview is not None else ()) if r.account == account
        )
        return account_gates(looks, pending)

    def status(self) -> dict[str, dict[str, Any]]:
        """The ``settlements`` part of ``/status``."""
        sched = self.scheduler
        schedules = {
            name: {
                "cron": s.cron,
                "timezone": s.timezone,
                "next_run": sched.next_run(name),
                "running": name in sched.running,
            }
            for name, s in sched.schedules().items()
        }
        return settlement_status(self.overview, self.wall_clock(), schedules)
