"""Settlement sweeps seen by a portfolio: the value that left a member's account is a transfer,
not a loss of the group.

Pure: frozen values in, frozen values out. A sweep lowers the balances a member reports, so the
group's equity (the sum of its members', :func:`kasmm.core.portfolio.aggregate`) falls by its
value; :func:`lowered` takes the same value off the group's peak and day-start equity, so
``portfolio_max_drawdown`` and ``portfolio_max_daily_loss`` measure trading only, as a
profile's own rules do (:meth:`kasmm.bot.risk_tracker.RiskTracker.transferred`).

Counted once per member, sweep and direction (:func:`new_transfers`). Members on one exchange
account each report the account's whole balances, and the group adds every member's: a sweep of
a shared account lowers the group's equity once per member on it, so it is taken off once per
member too, each member's part valued at that member's mid (as the group values its base).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from kasmm.core.portfolio import GroupTracker, MemberSnapshot, MemberTransfer
from kasmm.core.types import ZERO

__all__ = ["CountedTransfer", "TransferId", "lowered", "new_transfers", "transfer_value"]

#: ``(member, sweep key, direction)``: what the group counts once.
TransferId = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class CountedTransfer:
    """One member's sweep as the group counts it: ``value`` in quote left (negative: came
    back)."""

    member: str
    key: str
    direction: str
    value: Decimal

    @property
    def ident(self) -> TransferId:
        """What the group counts once."""
        return (self.member, self.key, self.direction)


def transfer_value(transfer: MemberTransfer, mid: Decimal | None) -> Decimal | None:
    """The quote value of ``transfer`` at ``mid`` (``None``: base with no mid to value it)."""
    if not transfer.base:
        return transfer.out
    return None if mid is None else transfer.out * mid


def new_transfers(
    members: Iterable[MemberSnapshot], counted: frozenset[TransferId], mark: Decimal | None
) -> tuple[CountedTransfer, ...]:
    """The members' transfers the group has not counted yet, each valued at its member's mid
    (the group's ``mark`` for a member without one: how the group values that member's base).

    A base transfer with neither mid nor mark waits: the group is not measured then either.
    """
    out: list[CountedTransfer] = []
    for m in members:
        mid = m.mid if m.mid is not None and m.mid.is_finite() and m.mid > ZERO else mark
        for t in m.transfers:
            if (m.name, t.key, t.direction) in counted:
                continue
            value = transfer_value(t, mid)
            if value is not None:
                out.append(CountedTransfer(m.name, t.key, t.direction, value))
    return tuple(out)


def lowered(tracker: GroupTracker, value: Decimal) -> GroupTracker:
    """``tracker`` with ``value`` (that left the group's accounts) taken off its peak and its
    day start; a figure not known yet stays unknown."""
    if not value:
        return tracker
    peak = tracker.peak_equity
    start = tracker.day_start_equity
    return GroupTracker(
        None if peak is None else peak - value,
        tracker.day_key,
        None if start is None else start - value,
    )
