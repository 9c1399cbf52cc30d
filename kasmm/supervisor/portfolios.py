"""Portfolios inside a supervisor: each group measured on its members' changes, its skew and its
trips handed to every member.

A :class:`PortfolioManager` holds one :class:`GroupRun` per portfolio of ``_portfolios.yaml``.
Members say when they changed (:meth:`PortfolioManager.touched`, called after each venue event
a member's bot handled: books, fills, order updates); the manager's task then recomputes the
touched groups, at most once per ``debounce_s`` on the supervisor's clock (a member's book
arrives ten times a second; the group needs no more than a few looks a second). No polling loop.

A recompute reads every member (:class:`Member`), aggregates the group with the pure core
(:mod:`kasmm.core.portfolio`), hands each member the group's skew (``Engine.set_group``) and
the group's trip (``Engine.external_trip(trip, "portfolio:<name>")``):

* a **halt** goes to every member once per run of its bot; each member stores it in its own
  ledger like any halt, so a restart keeps it. ``kasmm reset MEMBER`` clears that member; the
  first member reset also clears the group's halt and re-bases the group's drawdown peak on its
  current equity (as a profile's reset does), so the other members are then reset one by one.
* a **pause** goes to every member while it lasts; when it ends, each gets ``None``.

Measuring waits until every running member's bot has quoted once (its balances read and its
ledger restored): a member still starting holds no balances yet, and counting it as empty would
read as a loss. A member that stops (failed, paused by an operator) keeps its last reading:
its orders are cancelled, so its balances stand still; its base is then valued at the others'
mid.

The group's own figures (equity snapshots, peak, trips) are kept in the shared ledger by
:mod:`kasmm.supervisor.portfolio_store`, so a restart resumes its peak, day start and halt.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import structlog
from anyio.abc import TaskStatus

from kasmm.bot.risk_tracker import LocalDay
from kasmm.config.portfolios import ResolvedPortfolio, group_spec
from kasmm.core.group_transfers import TransferId, lowered, new_transfers
from kasmm.core.portfolio import (
    RULE_PREFIX,
    GroupAggregate,
    GroupSpec,
    GroupTracker,
    MemberSnapshot,
    aggregate,
    evaluate_group,
    member_skew,
    member_trip,
    tracked,
)
from kasmm.core.risk import RiskState, Trip
from kasmm.core.skew import GroupSkew
from kasmm.core.types import ZERO
from kasmm.errors import LedgerLost
from kasmm.supervisor.members import Member, MemberReading
from kasmm.supervisor.portfolio_store import GroupStore, group_key

if TYPE_CHECKING:
    from kasmm.clock import Clock
    from kasmm.store import AsyncLedger

log = structlog.get_logger("kasmm.portfolio")

__all__ = ["GroupRun", "PortfolioManager"]

#: How often a group's equity is stored (as a profile's: the day start and the peak come from it).
SNAPSHOT_EVERY_S = 10.0


@dataclass
class _Seen:
    """What the manager knows of one member (internal)."""

    last: MemberSnapshot | None = None
    halt_seen_run: object | None = None
    halt_sent_run: object | None = None
    #: The run's decision count when the halt was handed over.
    halt_sent_at: int = 0
    pause_sent: tuple[object, Trip] | None = None


@dataclass
class GroupRun:
    """One portfolio's running state in the manager."""

    spec: GroupSpec
    members: tuple[str, ...]
    day: LocalDay
    tracker: GroupTracker = field(default_factory=GroupTracker)
    risk: RiskState = field(default_factory=RiskState)
    agg: GroupAggregate | None = None
    #: Members not measured yet (no bot, or not quoted once): the group waits for them.
    waiting: tuple[str, ...] = ()
    members_state: dict[str, str] = field(default_factory=dict)
    restored: bool = False
    last_snapshot_at: float = -math.inf
    seen: dict[str, _Seen] = field(default_factory=dict)
    #: Members that run in other shards: the group is not measured here.
    split: tuple[str, ...] = ()
    #: The group's quote asset (a quote transfer is valued as is).
    quote: str = ""
    #: The members' settlement sweeps the group took off its peak and day start.
    counted: frozenset[TransferId] = frozenset()

    @property
    def key(self) -> str:
        """The group's ledger key."""
        return group_key(self.spec.name)


class PortfolioManager:
    """Every portfolio of one supervisor."""

    def __init__(
        self,
        clock: Clock,
        wall_clock: Callable[[], float],
        members: Callable[[str], Member | None],
        ledger: AsyncLedger | None = None,
        debounce_s: float = 0.25,
        on_ledger_lost: Callable[[LedgerLost], None] | None = None,
    ) -> None:
        self.clock = clock
        self.on_ledger_lost = on_ledger_lost
        self.wall_clock = wall_clock
        self.store = GroupStore(ledger)
        self.debounce_s = debounce_s
        self._members = members
        self.groups: dict[str, GroupRun] = {}
        self._dirty: set[str] = set()
        self._by_member: dict[str, str] = {}
        self._wake = anyio.Event()
        #: Completed recomputes (tests wait for it to move instead of sleeping).
        self.recomputes = 0
        self.recomputed = anyio.Event()

    # --- configuration ------------------------------------------------------------------

    def configure(
        self,
        groups: Iterable[ResolvedPortfolio],
        running: Iterable[str],
        elsewhere: Iterable[str] = (),
    ) -> None:
        """Apply (re)loaded portfolios. A group whose spec and members are unchanged keeps its
        state.

        :param running: the enabled profiles this supervisor runs (a disabled member is no
            member until it is enabled).
        :param elsewhere: enabled profiles other shards run. A group with members here and
            there is *split*: it is not measured (any figure would miss the other members) and
            says so in the status and the log; a group wholly elsewhere is not this shard's.
        """
        local, remote = set(running), set(elsewhere)
        new: dict[str, GroupRun] = {}
        for group in groups:
            spec = group_spec(group)
            members = tuple(m for m in group.members if m in local)
            split = tuple(m for m in group.members if m in remote)
            if not members:
                continue
            old = self.groups.get(group.name)
            if old is not None and (old.spec, old.members, old.split) == (spec, members, split):
                new[group.name] = old
                continue
            loss = spec.limits.max_daily_loss
            day = LocalDay(loss.timezone if loss else "UTC")
            run = GroupRun(spec, members, day, split=split, quote=group.quote)
            new[group.name] = run
            if split:
                log.error(
                    "portfolio_split",
                    portfolio=group.name,
                    here=list(members),
                    elsewhere=list(split),
                    action="not measured; run its members in one process (unsharded)",
                )
            else:
                log.info("portfolio_configured", portfolio=group.name, members=list(members))
        staying = {m for g in new.values() if not g.split for m in g.members}
        for name, old_group in self.groups.items():
            if new.get(name) is not old_group:
                self._release(old_group, staying)
        self.groups = new
        self._by_member = {m: name for name, g in new.items() for m in g.members}
        self._dirty = set(new)
        self._wake.set()

    def _release(self, group: GroupRun, staying: set[str]) -> None:
        """A group replaced or removed: its pause ends on every member, and members in no
        group any more skew on their own again (a halt stays: it is each member's, until
        reset)."""
        for name in group.members:
            member = self._members(name)
            if member is None:
                continue
            member.external_trip(None, group.key)
            if name not in staying:
                member.set_group(None)

    def portfolio_of(self, member: str) -> str | None:
        """The portfolio ``member`` belongs to here (``None``: none)."""
        return self._by_member.get(member)

    # --- notifications ------------------------------------------------------------------

    def touched(self, member: str) -> None:
        """``member`` changed (a book, a fill, an order update): its group is recomputed."""
        group = self._by_member.get(member)
        if group is not None:
            self._dirty.add(group)
            self._wake.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Recompute touched groups, at most once per ``debounce_s``, until cancelled."""
        task_status.started()
        clock = self.clock
        last = -math.inf
        while True:
            await self._wait(self._next_deadline())
            await clock.sleep_until(max(clock.now(), last + self.debounce_s))
            last = clock.now()
            dirty, self._dirty = self._dirty, set()
            for name in sorted(dirty | self._expired(last)):
                group = self.groups.get(name)
                if group is not None:
                    await self._contained(group)
            self.recomputes += 1
            self.recomputed.set()
            self.recomputed = anyio.Event()

    async def _contained(self, group: GroupRun) -> None:
        """One recompute whose failure is the group's, never the supervisor's: logged, and
        retried on the group's next change. A lost ledger stops every profile (the host's
        ``on_ledger_lost``), as it does when a bot finds it."""
        try:
            await self.recompute(group)
        except LedgerLost as exc:
            log.critical("portfolio_ledger_lost", portfolio=group.spec.name, error=str(exc))
            if self.on_ledger_lost is not None:
                self.on_ledger_lost(exc)
        except Exception as exc:
            self._dirty.add(group.spec.name)
            log.error(
                "portfolio_recompute_failed",
                portfolio=group.spec.name,
                error=f"{type(exc).__name__}: {exc}",
            )

    async def _wait(self, deadline: float | None) -> None:
        """Until something is touched, or ``deadline`` (a pause's end) passes."""
        wake = self._wake
        if deadline is None:
            await wake.wait()
        else:
            async with anyio.create_task_group() as tg:

                async def timer() -> None:
                    await self.clock.sleep_until(deadline)
                    wake.set()

                tg.start_soon(timer)
                await wake.wait()
                tg.cancel_scope.cancel()
        self._wake = anyio.Event()

    def _next_deadline(self) -> float | None:
        ends = [g.risk.paused_until for g in self.groups.values() if g.risk.pause_trip]
        now = self.clock.now()
        future = [t for t in ends if t > now]
        return min(future) if future else None

    def _expired(self, now: float) -> set[str]:
        """Groups whose pause has ended: their members get ``None`` now."""
        return {
            n for n, g in self.groups.items() if g.risk.pause_trip and now >= g.risk.paused_until
        }

    # --- one recompute ------------------------------------------------------------------

    async def recompute(self, group: GroupRun) -> None:
        """Measure ``group`` and hand every member its skew and trip."""
        if group.split:
            return  # a part of the group: nothing measured here would be the group's
        now, wall = self.clock.now(), self.wall_clock()
        if not group.restored:
            await self._restore(group, wall)
        readings: dict[str, MemberReading] = {}
        for name in group.members:
            member = self._members(name)
            reading = member.reading() if member is not None else None
            if reading is not None:
                readings[name] = reading
        await self._notice_resets(group, readings, now, wall)
        snapshots: list[MemberSnapshot] = []
        waiting: list[str] = []
        for name in group.members:
            seen = group.seen.setdefault(name, _Seen())
            reading = readings.get(name)
            if reading is not None and reading.ready:
                seen.last = reading.snapshot
            if seen.last is None:
                waiting.append(name)
            elif reading is not None and reading.ready:
                snapshots.append(reading.snapshot)
            else:  # stopped or restarting: its balances stand still, its mid is stale
                last = seen.last
                snapshots.append(
                    MemberSnapshot(
                        name, last.base, last.quote, None, last.pnl, "stopped", last.transfers
                    )
                )
            if reading is None:
                group.members_state[name] = "stopped"
            else:
                ready = reading.ready
                group.members_state[name] = reading.snapshot.trading if ready else reading.lifecycle
        group.waiting = tuple(waiting)
        if waiting:
            group.agg = None
            return  # members skew on their own until the group can be measured
        agg = aggregate(group.spec, snapshots)
        group.agg = agg
        # Before the equity is folded in: a day that starts now starts after the sweep.
        await self._count_transfers(group, snapshots, agg, wall)
        group.tracker = tracked(group.tracker, agg.equity, group.day.of(wall))
        risk, trips = evaluate_group(group.spec, group.risk, agg, group.tracker, now)
        group.risk = risk
        skew = member_skew(agg)
        trip = member_trip(risk, now)
        if self.groups.get(group.spec.name) is not group:
            return  # a reload replaced or removed the group while its ledger was read
        # The members first: each stores a halt in its own ledger on its next decision, so a
        # failing write of the group's own rows below cannot keep a halt from them.
        for name, reading in readings.items():
            member = self._members(name)
            if member is not None:
                self._hand(group, name, member, reading, skew, trip)
        if trips:
            await self._on_trips(group, trips, wall)
        await self._snapshot(group, agg, now, wall)

    async def _count_transfers(
        self,
        group: GroupRun,
        snapshots: list[MemberSnapshot],
        agg: GroupAggregate,
        wall: float,
    ) -> None:
        """Take the members' new settlement sweeps off the group's peak and day start (stored
        first: a failed write leaves them to the next recompute), so no group kill switch trips
        because KAS left an account (:mod:`kasmm.core.group_transfers`)."""
        new = new_transfers(snapshots, group.counted, agg.mark)
        if not new:
            return
        await self.store.count(group.key, new, wall)
        group.counted = group.counted | {t.ident for t in new}
        group.tracker = lowered(group.tracker, sum((t.value for t in new), start=ZERO))
        for t in new:
            log.info(
                "portfolio_transfer_counted",
                portfolio=group.spec.name,
                member=t.member,
                sweep=t.key,
                direction=t.direction,
                value=str(t.value),
            )

    def _hand(
        self,
        group: GroupRun,
        name: str,
        member: Member,
        reading: MemberReading,
        skew: GroupSkew | None,
        trip: Trip | None,
    ) -> None:
        """The group's skew to one member, and its trip once per run (a pause's end too)."""
        seen = group.seen[name]
        member.set_group(skew)
        if trip is not None and trip.action == "halt":
            own = reading.halt_rule is not None and reading.halt_rule.startswith(RULE_PREFIX)
            if not own and seen.halt_sent_run is not reading.run:
                member.external_trip(trip, group.key)
                seen.halt_sent_run, seen.halt_sent_at = reading.run, reading.decisions
                log.warning(
                    "portfolio_halt_sent", portfolio=group.spec.name, member=name, rule=trip.rule
                )
        elif trip is not None:
            if seen.pause_sent is None or seen.pause_sent != (reading.run, trip):
                member.external_trip(trip, group.key)
                seen.pause_sent = (reading.run, trip)
        elif seen.pause_sent is not None:
            if seen.pause_sent[0] is reading.run:
                member.external_trip(None, group.key)
            seen.pause_sent = None

    async def _notice_resets(
        self, group: GroupRun, readings: dict[str, MemberReading], now: float, wall: float
    ) -> None:
        """A member that held the group's halt and no longer does (same run) was reset by an
        operator: the group's halt is cleared and its peak re-based (once, by the first)."""
        reset_by: str | None = None
        for name, reading in readings.items():
            seen = group.seen.setdefault(name, _Seen())
            if not reading.ready:
                continue
            ours = reading.halt_rule is not None and reading.halt_rule.startswith(RULE_PREFIX)
            if ours:
                seen.halt_seen_run = reading.run
                continue
            # Not halted by the group although this run held its halt, or took a decision
            # since it was handed over (a reset that came before the manager looked again).
            held = seen.halt_seen_run is reading.run or (
                seen.halt_sent_run is reading.run and reading.decisions > seen.halt_sent_at
            )
            if held and reading.halt_rule is None:
                seen.halt_seen_run = None
                reset_by = reset_by or name
        if reset_by is None or group.risk.halt is None:
            return
        equity = group.agg.equity if group.agg is not None else None
        group.risk = RiskState()
        group.tracker = GroupTracker(equity, group.tracker.day_key, group.tracker.day_start_equity)
        for seen in group.seen.values():
            seen.halt_sent_run = None
        log.warning("portfolio_reset", portfolio=group.spec.name, member=reset_by)
        await self.store.reset(group.key, wall, f"reset of member {reset_by}")

    async def _restore(self, group: GroupRun, wall: float) -> None:
        """Resume the group's peak, day start and halt from the ledger."""
        group.restored = True
        loss = group.spec.limits.max_daily_loss
        tz = loss.timezone if loss is not None else "UTC"
        tracker, halt, counted = await self.store.restore(
            group.key, group.members, tz, wall, self.clock.now(), group.quote
        )
        group.tracker, group.counted = tracker, counted
        if halt is not None:
            group.risk = RiskState(halt=halt)
            log.warning("portfolio_halt_restored", portfolio=group.spec.name, rule=halt.rule)

    async def _on_trips(self, group: GroupRun, trips: tuple[Trip, ...], wall: float) -> None:
        state = group.risk.trading_state(self.clock.now()).value
        for t in trips:
            log.warning(
                "portfolio_tripped",
                portfolio=group.spec.name,
                rule=t.rule,
                action=t.action,
                value=t.value,
                limit=t.limit,
                detail=t.detail,
                members=list(group.members),
            )
        await self.store.trips(group.key, trips, state, wall)

    async def _snapshot(
        self, group: GroupRun, agg: GroupAggregate, now: float, wall: float
    ) -> None:
        """Store the group's equity every ``SNAPSHOT_EVERY_S`` (its peak rises with it)."""
        if now - group.last_snapshot_at < SNAPSHOT_EVERY_S:
            return
        if await self.store.equity(group.key, agg, wall):
            group.last_snapshot_at = now
