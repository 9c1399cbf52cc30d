"""A portfolio's own rows in the shared ledger, under the key ``portfolio:<name>``.

The group's equity snapshots (with its base, quote and mark), its peak and its trips and resets
go to the tables a profile uses (``equity``, ``equity_peaks``, ``risk_events``); no profile name
holds a colon, and :meth:`kasmm.store.Ledger.profiles` leaves these keys out. They are stored
rather than derived from the members' ledgers because the group's peak is the peak of a *sum*,
which is not the sum of the members' peaks, and members snapshot their equity at different
instants. So a restart resumes the group's exact peak, its day start (its last snapshot before
local midnight, as for a profile) and its halt; the report reads the group's equity curve.

The members' settlement sweeps the group counted (:mod:`kasmm.store.group_transfers`) lowered
the stored peak as they were counted; a restart lowers its day start by those after the
snapshot it comes from, and first counts what the members booked while no manager counted
(a crash between a member's booking and the group's count).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kasmm.core.group_transfers import CountedTransfer, TransferId
from kasmm.core.portfolio import GroupAggregate, GroupTracker, restored_tracker
from kasmm.core.risk import Trip
from kasmm.core.types import ZERO
from kasmm.store.group_transfers import GroupTransfer
from kasmm.store.pnl_replay import transfer_value

if TYPE_CHECKING:
    from kasmm.store import AsyncLedger

__all__ = ["GROUP_KEY_PREFIX", "GroupStore", "group_key"]

#: The ledger key of a group's own rows, and the ``source`` of its trips on each member.
GROUP_KEY_PREFIX = "portfolio:"


def group_key(name: str) -> str:
    """``portfolio:<name>``: the group's ledger key and its trips' source on every member."""
    return GROUP_KEY_PREFIX + name


class GroupStore:
    """Reads and writes a group's rows; without a ledger it keeps nothing (and says so)."""

    def __init__(self, ledger: AsyncLedger | None) -> None:
        self.ledger = ledger

    async def restore(
        self, key: str, members: Sequence[str], tz: str, wall: float, now: float, quote: str
    ) -> tuple[GroupTracker, Trip | None, frozenset[TransferId]]:
        """The group's stored peak and day start (in ``tz`` at ``wall``), its halt (its ``ts``
        is ``now`` on the interval clock: the stored one is a wall time), and the members'
        transfers it has counted (the group's ``quote`` asset values them).

        A halt that a member's reset followed (``kasmm reset MEMBER`` while no supervisor ran)
        was acknowledged: it is cleared here as a running supervisor would have cleared it, not
        handed to the members again.
        """
        ledger = self.ledger
        if ledger is None:
            return GroupTracker(), None, frozenset()
        halt = await ledger.active_halt(key)
        if halt is not None:
            for member in members:
                events = await ledger.risk_events(member)
                if any(ev.kind == "reset" and ev.ts >= halt.ts for ev in events):
                    await ledger.reset(key, wall, f"reset of member {member}")
                    halt = None
                    break
        counted = await self._catch_up(key, members, quote)
        peak = await ledger.peak_equity(key)
        start = await ledger.day_start(key, tz, wall)
        day_start = None
        if start is not None:
            # What left after the day's snapshot is not in it (the peak was lowered as each
            # was counted); what left at or before it is.
            taken, day_start = start
            day_start -= sum((t.value for t in counted if t.ts > taken), start=ZERO)
        trip = None
        if halt is not None:
            details = halt.details
            trip = Trip(
                halt.rule,
                "halt",
                float(details.get("value", math.nan)),
                float(details.get("limit", math.nan)),
                now,
                str(details.get("detail", "")),
            )
        idents = frozenset((t.member, t.key, t.direction) for t in counted)
        return restored_tracker(peak, day_start), trip, idents

    async def _catch_up(self, key: str, members: Sequence[str], quote: str) -> list[GroupTransfer]:
        """Every transfer the group counted, after counting those its members booked that it
        did not (each at its booking's mark and time; the stored peak lowered by those after
        it)."""
        ledger = self.ledger
        assert ledger is not None
        counted = await ledger.group_transfers(key)
        known = {(t.member, t.key, t.direction) for t in counted}
        missing = [
            GroupTransfer(member, b.key, b.direction, transfer_value(b, quote), b.ts)
            for member in members
            for b in await ledger.booked_transfers(member)
            if (member, b.key, b.direction) not in known
        ]
        if missing:
            await ledger.count_group_transfers(key, missing, after_peak_only=True)
            counted = await ledger.group_transfers(key)
        return counted

    async def count(self, key: str, items: Sequence[CountedTransfer], wall: float) -> None:
        """Store the group's count of ``items`` (counted live at ``wall``) and lower its stored
        peak by their value, in one transaction."""
        if self.ledger is None or not items:
            return
        rows = [GroupTransfer(t.member, t.key, t.direction, t.value, wall) for t in items]
        await self.ledger.count_group_transfers(key, rows)

    async def trips(self, key: str, trips: Sequence[Trip], state: str, wall: float) -> None:
        """Store the group's trips with the numbers that caused them."""
        if self.ledger is None:
            return
        for t in trips:
            details = {"value": t.value, "limit": t.limit, "detail": t.detail}
            await self.ledger.record_risk_event(key, wall, "trip", t.rule, t.action, state, details)

    async def equity(self, key: str, agg: GroupAggregate, wall: float) -> bool:
        """Store an equity snapshot (the stored peak rises with it); False if none was."""
        if self.ledger is None or agg.value is None or agg.mark is None:
            return False
        await self.ledger.record_equity(key, wall, agg.value, agg.mark, agg.base, agg.quote)
        return True

    async def reset(self, key: str, wall: float, who: str) -> None:
        """Clear the group's stored halt and peak (a member's reset acknowledged it)."""
        if self.ledger is not None:
            await self.ledger.reset(key, wall, who)
