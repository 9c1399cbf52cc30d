"""The pure part of a portfolio's settlement sweeps: which are new, what each is worth, and a
tracker that forgets them (so drawdown and the day's PnL measure trading only)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kasmm.core.group_transfers import CountedTransfer, lowered, new_transfers
from kasmm.core.portfolio import (
    GroupSpec,
    GroupTracker,
    MemberSnapshot,
    MemberTransfer,
    aggregate,
    tracked,
)

D = Decimal
HALF = GroupSpec("kas", target_share=0.5, target_base=None)
OUT = MemberTransfer("s1", "out", True, D(1000))


def snap(name: str, mid: str | None, *transfers: MemberTransfer) -> MemberSnapshot:
    return MemberSnapshot(
        name, D(5000), D(100), None if mid is None else D(mid), D(0), transfers=transfers
    )


@pytest.mark.parametrize(
    ("members", "counted", "mark", "expected"),
    [
        # each base transfer at its member's own mid (as the group values its base)
        ([snap("a", "0.08", OUT), snap("b", "0.1", OUT)], set(), D("0.09"),
         [("a", D(80)), ("b", D(100))]),
        # a member with no mid: at the group's mark
        ([snap("a", None, OUT)], set(), D("0.09"), [("a", D(90))]),
        # neither: it waits (the group is not measured either)
        ([snap("a", None, OUT)], set(), None, []),
        # quote as is, a return negative
        ([snap("a", None, MemberTransfer("s2", "back", False, D(-40)))], set(), None,
         [("a", D(-40))]),
        # counted once per member, sweep and direction
        ([snap("a", "0.08", OUT), snap("b", "0.08", OUT)], {("a", "s1", "out")}, D("0.08"),
         [("b", D(80))]),
    ],
)  # fmt: skip
def test_new_transfers(
    members: list[MemberSnapshot],
    counted: set[tuple[str, str, str]],
    mark: Decimal | None,
    expected: list[tuple[str, Decimal]],
) -> None:
    found = new_transfers(members, frozenset(counted), mark)
    assert [(t.member, t.value) for t in found] == expected
    assert all(isinstance(t, CountedTransfer) and t.key in ("s1", "s2") for t in found)


def test_lowered_keeps_unknown_figures_unknown() -> None:
    assert lowered(GroupTracker(), D(5)) == GroupTracker()
    tracker = GroupTracker(D(100), "2026-12-06", None)
    assert lowered(tracker, D(5)) == GroupTracker(D(95), "2026-12-06", None)
    assert lowered(tracker, D(0)) is tracker


@given(
    st.decimals(min_value=0, max_value=5000, places=2),
    st.decimals(min_value=D("0.01"), max_value=10, places=4),
    st.decimals(min_value=-500, max_value=500, places=2),
)
def test_a_sweep_leaves_drawdown_and_daily_pnl_as_they_were(
    amount: Decimal, mid: Decimal, loss: Decimal
) -> None:
    """Whatever leaves, at whatever mid, after whatever trading: peak minus equity and equity
    minus the day start are what they were before the sweep."""
    day = "2026-12-06"
    before = [MemberSnapshot("a", D(5000), D(100) - loss, mid, D(0))]
    tracker = tracked(GroupTracker(D(1000), day, D(900)), aggregate(HALF, before).equity, day)
    equity = aggregate(HALF, before).equity
    assert equity is not None
    swept = MemberTransfer("s", "out", True, amount)
    after = [MemberSnapshot("a", D(5000) - amount, D(100) - loss, mid, D(0), transfers=(swept,))]
    (counted,) = new_transfers(after, frozenset(), None)
    now = tracked(lowered(tracker, counted.value), aggregate(HALF, after).equity, day)
    after_equity = aggregate(HALF, after).equity
    assert after_equity is not None
    assert now.peak_equity is not None and tracker.peak_equity is not None
    assert now.peak_equity - after_equity == tracker.peak_equity - equity
    assert now.day_start_equity is not None and tracker.day_start_equity is not None
    assert after_equity - now.day_start_equity == equity - tracker.day_start_equity
