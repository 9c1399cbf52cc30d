"""What the watcher turns into alerts (a pure diff of snapshots), and the daily summary's time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import anyio
import anyio.lowlevel
import pytest

from kasmm.alerts.notifier import Notifier
from kasmm.alerts.watch import (
    ProfileSnap,
    Snapshot,
    daily_summaries,
    next_summary_at,
    transitions,
)
from kasmm.config.notify import DailySummary, NotifyFile
from kasmm.supervisor.runner import ProfileRunner
from tests.unit.test_notifier import FakeSender


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


def test_an_obligation_breach_and_its_recovery_are_reported_once_each() -> None:
    def ob(breached: bool | None, share: float | None = None) -> ProfileSnap:
        return ProfileSnap(
            "quoting",
            obligation_breached=breached,
            obligation_share=share,
            obligation_required=None if breached is None else 0.95,
            obligation_window_s=None if breached is None else 3600.0,
        )

    breach, met = "kasmm: p1 breaches its obligations", "kasmm: p1 meets its obligations again"
    assert kinds_and_titles(
        None,
        snap(p1=ob(False, 0.99)),
        snap(p1=ob(True, 0.9)),
        snap(p1=ob(True, 0.8)),
        snap(p1=ob(False, 0.96)),
        snap(p1=ob(True, 0.94)),
        snap(p1=ob(None)),  # restarting: no view; the new bot starts afresh, nothing to say
        snap(p1=ob(False, 1.0)),
    ) == [[], [breach], [], [met], [breach], [], []]
    alerts, _ = transitions(snap(p1=ob(False)), snap(p1=ob(True, 0.8312)))
    (alert,) = alerts
    assert alert.kind == "obligation_breach" and alert.level == "warning"
    assert alert.body == (
        "p1 met its market-making obligations (both sides quoted, spread, depth) 83.1% of "
        "the last 1 h 00 min, below the required 95.0%."
    )
    assert alert.key == ("obligation_breach", "p1", "breached")
    # A profile without obligations never says anything about them.
    assert kinds_and_titles(None, snap(p1=ob(None)), snap(p1=ob(None))) == [[], []]


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


@dataclass
class NoProfiles:
    """A supervisor with nothing running (what the watcher reads of one)."""

    slots: Mapping[str, ProfileRunner] = field(default_factory=dict)
    issues: Sequence[object] = ()
    directory_missing: bool = False
    directory: object = Path("profiles")


@pytest.mark.anyio
async def test_daily_summary_goes_out_at_its_time_on_the_wall_clock() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    wall = [datetime(2026, 6, 1, 17, 0, tzinfo=berlin).timestamp()]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # virtual time: the wall clock jumps
        waits.append(seconds)
        wall[0] += seconds
        await anyio.lowlevel.checkpoint()

    sender = FakeSender()
    notifier = Notifier(sender=sender, env={"HOOK": "json://127.0.0.1:9/h"})
    notifier.configure(
        NotifyFile.model_validate(
            {
                "targets": [{"name": "hook", "url": "${HOOK}"}],
                "events": {"daily_summary": {"at": "18:00", "timezone": "Europe/Berlin"}},
            }
        )
    )
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        tg.start_soon(
            lambda: daily_summaries(NoProfiles(), notifier, wall_clock=lambda: wall[0], sleep=sleep)
        )
        with anyio.fail_after(5):
            while len(sender.calls) < 2:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    await notifier.aclose()
    # The fake clock runs on while the test looks: later days may have gone out too.
    assert [c[1] for c in sender.calls[:2]] == [
        "kasmm daily summary 2026-06-01",
        "kasmm daily summary 2026-06-02",
    ]
    assert sender.calls[0][2] == "no profiles running"
    assert waits[0] == 60.0  # the configuration is re-read every minute
