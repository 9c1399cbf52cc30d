"""The risk tracker's action window: exact counts, one entry per round."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from kasmm.bot.risk_tracker import ACTION_WINDOW_S, RiskTracker, measure


def count_in_window(actions: list[tuple[float, int]], now: float) -> int:
    """The plain definition: every action sent after ``now - ACTION_WINDOW_S``."""
    return sum(n for t, n in actions if t > now - ACTION_WINDOW_S)


def test_actions_leave_the_window_exactly_after_sixty_seconds() -> None:
    tracker = RiskTracker()
    for at, count in ((0.0, 3), (30.0, 2), (59.5, 1)):
        tracker = tracker.acted(at, count)
    seen = []
    for now in (59.9, 60.0, 89.9, 90.0, 119.5, 200.0):
        measured = measure(tracker, now, "2026-12-05", Decimal(100))
        tracker = measured.tracker
        seen.append(measured.actions_last_minute)
    # An action at t counts while t > now - 60: the round at 0 drops at 60, not before.
    assert seen == [6, 3, 3, 1, 0, 0]
    assert tracker.action_rounds == () and tracker.actions_in_window == 0


@given(
    st.lists(
        st.tuples(st.floats(0, 30, allow_nan=False), st.integers(1, 12)), min_size=1, max_size=60
    )
)
def test_the_window_count_matches_the_plain_definition(steps: list[tuple[float, int]]) -> None:
    tracker = RiskTracker()
    now = 0.0
    sent: list[tuple[float, int]] = []
    for gap, count in steps:
        now += gap
        measured = measure(tracker, now, "d", None)
        assert measured.actions_last_minute == count_in_window(sent, now)
        tracker = measured.tracker.acted(now, count)
        sent.append((now, count))


def test_a_busy_bot_keeps_one_entry_per_round_not_per_action() -> None:
    # Ten rounds a second of six actions: the window held 3,600 entries (one per action) and
    # measuring rebuilt them on most decisions, the largest cost of a live decision.
    tracker = RiskTracker()
    for i in range(600):
        now = i / 10
        tracker = measure(tracker, now, "d", None).tracker.acted(now, 6)
    measured = measure(tracker, 59.95, "d", None)
    assert measured.actions_last_minute == 3600
    assert len(measured.tracker.action_rounds) == 600
