"""A portfolio's own rows in the shared ledger, under the key ``portfolio:<name>``.

The group's equity snapshots (with its base, quote and mark), its peak and its trips and resets
go to the tables a profile uses (``equity``, ``equity_peaks``, ``risk_events``); no profile name
holds a colon, and :meth:`kasmm.store.Ledger.profiles` leaves these keys out. They are stored
rather than derived from the members' ledgers because the group's peak is the peak of a *sum*,
which is not the sum of the members' peaks, and members snapshot their equity at different
instants. So a restart resumes the group's exact peak, its day start (its last snapshot before
local midnight, as for a profile) and its halt; the report reads the group's equity curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kasmm.core.portfolio import GroupAggregate, GroupTracker, restored_tracker
from kasmm.core.risk import Trip

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
        self, key: str, members: Sequence[str], tz: str, wall: float, now: float
    ) -> tuple[GroupTracker, Trip | None]:
        """The group's stored peak and day start (in ``tz`` at ``wall``), and its halt (its
        ``ts`` is ``now`` on the interval clock: the stored one is a wall time).

        A halt that a member's reset followed (``kasmm reset MEMBER`` while no supervisor ran)
        was acknowledged: it is cleared here as a running supervisor would have cleared it, not
        handed to the members again.
        """
        ledger = self.ledger
        if ledger is None:
            return GroupTracker(), None
        halt = await ledger.active_halt(key)
        if halt is not None:
            for member in members:
                events = await ledger.risk_events(member)
                if any(ev.kind == "reset" and ev.ts >= halt.ts for ev in events):
                    await ledger.reset(key, wall, f"reset of member {member}")
                    halt = None
                    break
        peak = await ledger.peak_equity(key)
        day_start = await ledger.day_start_equity(key, tz, wall)
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
        return restored_tracker(peak, day_start), trip

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
