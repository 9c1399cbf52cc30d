"""Portfolios in a group backtest: the supervisor's pure portfolio core, driven synchronously.

A portfolio of ``_portfolios.yaml`` whose members run in a group path is measured as a
supervisor measures it (:mod:`kasmm.supervisor.portfolios`), with the same pure core
(:mod:`kasmm.core.portfolio`): when a member changed (it handled an event), the group is
recomputed at most once per ``debounce_s`` of virtual time (the supervisor's default: a
member's book arrives ten times a second, the group needs a few looks a second); every member
gets the group's :class:`~kasmm.core.skew.GroupSkew` (``Engine.set_group``) and the group's trip
(``Engine.external_trip(trip, "portfolio:<name>")``): a halt once (each member holds it until
the end of the path: no operator resets a backtest), a pause while it lasts, ``None`` when it
ends.

The group is measured once every member has quoted (its balances are read), as the supervisor
waits for them; virtual time is also the calendar (the daily-loss rule's day).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kasmm.bot.risk_tracker import LocalDay
from kasmm.bot.stats import BotState
from kasmm.config.portfolios import ResolvedPortfolio, group_spec
from kasmm.core.portfolio import (
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
from kasmm.core.types import ZERO

if TYPE_CHECKING:
    from .group import Member

__all__ = ["DEBOUNCE_S", "GroupPortfolio", "group_key"]

#: At most one look at a group per this much virtual time (the supervisor's default).
DEBOUNCE_S = 0.25
_INF = math.inf


def group_key(name: str) -> str:
    """``portfolio:<name>``: the source of the group's trips on every member."""
    return f"portfolio:{name}"


class GroupPortfolio:
    """One portfolio's members in one group path, measured and told as a supervisor does."""

    def __init__(
        self, spec: GroupSpec, members: Sequence[Member], *, debounce_s: float = DEBOUNCE_S
    ) -> None:
        self.spec = spec
        self.members = tuple(members)
        self.key = group_key(spec.name)
        self.debounce_s = debounce_s
        loss = spec.limits.max_daily_loss
        self._day = LocalDay(loss.timezone if loss is not None else "UTC")
        self.tracker = GroupTracker()
        self.risk = RiskState()
        self.agg: GroupAggregate | None = None
        #: When the group is next looked at (``inf``: nothing changed since).
        self.at = _INF
        self._last = -_INF
        self._dirty = False
        #: What each member holds of the group: the halt handed over, the pause in force.
        self._halted: set[str] = set()
        self._paused: set[str] = set()
        #: Trips of the group's rules (transitions), and looks taken.
        self.trips = 0
        self.looks = 0

    @classmethod
    def of(
        cls, group: ResolvedPortfolio, members: Sequence[Member], *, debounce_s: float = DEBOUNCE_S
    ) -> GroupPortfolio:
        """The portfolio ``group`` over those of its members that run in the path."""
        return cls(group_spec(group), members, debounce_s=debounce_s)

    @property
    def name(self) -> str:
        """The portfolio's name."""
        return self.spec.name

    @property
    def trading_state(self) -> str:
        """The group's own state at the end: ``halted``, ``paused`` or ``active``."""
        return self.risk.trading_state(self._last).value

    def touched(self, now: float) -> None:
        """A member changed at ``now``: look again, at most once per ``debounce_s``."""
        if not self._dirty:
            self._dirty = True
            self.at = min(self.at, max(now, self._last + self.debounce_s))

    def act(self, now: float) -> None:
        """Measure the group at ``now`` and tell every member."""
        self._dirty = False
        self._last = now
        self.looks += 1
        self._recompute(now)
        risk = self.risk
        # A pause's end is a look of its own (its members are told ``None`` then).
        self.at = (
            risk.paused_until if risk.pause_trip is not None and risk.paused_until > now else _INF
        )

    def _recompute(self, now: float) -> None:
        snapshots: list[MemberSnapshot] = []
        for m in self.members:
            driver = m.driver
            if driver.state is BotState.STARTING:
                self.agg = None
                return  # not measured until every member has quoted once
            view = driver.view()
            mid = (
                view.mid
                if view.mid is not None and view.mid.is_finite() and view.mid > ZERO
                else None
            )
            snapshots.append(
                MemberSnapshot(
                    m.name,
                    view.inventory_base,
                    view.inventory_quote,
                    mid,
                    view.net_pnl,
                    view.trading_state.value,
                )
            )
        agg = self.agg = aggregate(self.spec, snapshots)
        self.tracker = tracked(self.tracker, agg.equity, self._day.of(now))
        self.risk, trips = evaluate_group(self.spec, self.risk, agg, self.tracker, now)
        self.trips += len(trips)
        skew = member_skew(agg)
        trip = member_trip(self.risk, now)
        for m in self.members:
            engine = m.driver.engine
            engine.set_group(skew)
            self._hand(m, trip)

    def _hand(self, m: Member, trip: Trip | None) -> None:
        """The group's trip to one member: a halt once, a pause while it lasts."""
        engine = m.driver.engine
        if trip is not None and trip.action == "halt":
            if m.name not in self._halted:
                engine.external_trip(trip, self.key)
                self._halted.add(m.name)
                m.driver.log.warning(
                    "portfolio_halt_sent", portfolio=self.name, member=m.name, rule=trip.rule
                )
        elif trip is not None:
            engine.external_trip(trip, self.key)
            self._paused.add(m.name)
        elif m.name in self._paused:
            engine.external_trip(None, self.key)
            self._paused.discard(m.name)
