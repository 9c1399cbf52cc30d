"""What the watcher turns into alerts (a pure diff of snapshots), and the daily summary's time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from kasmm.alerts.watch import ProfileSnap, Snapshot, next_summary_at, transitions
from kasmm.config.notify import DailySummary


def snap(issues: tuple[str, ...] = (), **profiles: ProfileSnap) -> Snapshot:
    return Snapshot(profiles, frozenset(issues))


def kinds_and_titles(prev: Snapshot | None, *steps: Snapshot) -> list[list[str]]:
    """The alerts' titles after each step."""
    out: list[list[str]] = []
    for cur in steps:
        alerts, prev = transitions(prev, cur)
        out.append([a.title for a in alerts])
    return out


def test_halt_and_pause_are_reported_once_when_entered() -> None:
    quoting = ProfileSnap("quoting")
    halted = ProfileSnap("halted", halt_reason="max_drawdown: 6 > 5")
    paused = ProfileSnap("paused", pause_reason="stale_book: 31 > 30")
    assert kinds_and_titles(
        None,
        snap(p1=quoting),
        snap(p1=halted),
        snap(p1=halted),
        snap(p1=quoting),
        snap(p1=paused),
    ) == [[], ["kasmm: p1 HALTED"], [], [], ["kasmm: p1 paused"]]
    alerts, _ = transitions(None, snap(p1=halted))  # a restored halt, seen at start
    assert alerts[0].body.startswith("p1 halted (max_drawdown: 6 > 5).")
    assert alerts[0].key == ("halt", "p1", "max_drawdown")


def test_failed_then_recovered_through_restarting() -> None:
    failed = ProfileSnap("failed", last_error="TransientVenueError: exchange unreachable")
    assert kinds_and_titles(
        snap(p1=ProfileSnap("quoting")),
        snap(p1=failed),
        snap(p1=ProfileSnap("restarting")),
        snap(p1=ProfileSnap("starting")),
        snap(p1=ProfileSnap("quoting")),
        snap(p1=ProfileSnap("restarting")),  # an ordinary restart: nothing to say
        snap(p1=ProfileSnap("quoting")),
    ) == [["kasmm: p1 FAILED"], [], [], ["kasmm: p1 recovered"], [], []]


def test_lock_busy_is_reported_once_per_episode() -> None:
    busy = ProfileSnap(
        "restarting", last_error="LockBusy: profile p1 is already running in PID 42 (kasmm run)"
    )
    assert kinds_and_titles(
        snap(p1=ProfileSnap("starting")),
        snap(p1=busy),
        snap(p1=busy),
        snap(p1=ProfileSnap("quoting")),
        snap(p1=busy),
    ) == [["kasmm: p1 cannot start"], [], [], ["kasmm: p1 cannot start"]]


def test_only_new_config_errors_are_reported() -> None:
    a, b = "a.yaml:3:5: a: modes: bad", "b.yaml:1:1: -: empty file"
    steps = kinds_and_titles(None, snap((a,)), snap((a,)), snap((a, b)), snap(()), snap((a,)))
    assert steps == [
        ["kasmm: 1 configuration error"],
        [],
        ["kasmm: 1 configuration error"],
        [],
        ["kasmm: 1 configuration error"],
    ]
    alerts, _ = transitions(snap((a,)), snap((a, b)))
    assert b in alerts[0].body and a not in alerts[0].body


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 17:00 Berlin (CET) -> 18:30 the same day.
        (datetime(2026, 1, 15, 16, 0, tzinfo=UTC), datetime(2026, 1, 15, 18, 30)),
        # Exactly at the time: the next day's.
        (datetime(2026, 1, 15, 17, 30, tzinfo=UTC), datetime(2026, 1, 16, 18, 30)),
        # Across the spring-forward night (29 March 2026): still 18:30 local, now CEST.
        (datetime(2026, 3, 28, 18, 0, tzinfo=UTC), datetime(2026, 3, 29, 18, 30)),
    ],
)
def test_next_summary_is_at_the_local_time(now: datetime, expected: datetime) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    at = next_summary_at(DailySummary(at="18:30", timezone="Europe/Berlin"), now.timestamp())
    assert datetime.fromtimestamp(at, tz=berlin).replace(tzinfo=None) == expected
