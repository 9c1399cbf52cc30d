"""Scheduled settlement in the supervisor: fires at its cron times on a controlled clock, passes
the account's gates, never runs an account twice at once, contains a failing run, keeps the last
good ``_settlement.yaml`` on a bad edit and keeps the withdrawal key out of what it says."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from structlog.testing import capture_logs

from kasmm.alerts.events import Alert
from kasmm.config.schema import Profile
from kasmm.core.settlement import Gates
from kasmm.supervisor.settle_gates import MemberLook, account_gates
from kasmm.supervisor.settle_schedule import SettlementScheduler, next_run_at

pytestmark = pytest.mark.anyio

WD_KEY = "WDkey-5e4d3c2b1a-do-not-leak"

SETTLEMENT = """\
settlement:
  mexc-main:
    network: mainnet
    destination:
      address: kaspa:qqkqkzjvr7zwxxmjxjkmxxdwju9kjs6e9u82uh59z07vgaks6gg62v8707g73
    withdrawal_credentials:
      api_key: ${WD_KEY}
      secret: ${WD_SECRET}
    node_url: ws://127.0.0.1:17110
    schedule:
      cron: "CRON"
      timezone: UTC
    assets:
      KAS:
        keep_at_least: 1000
        keep_at_most: 5000
        max_sweep: 2000
        max_per_day: 4000
"""


def _profile(name: str = "kas-mexc") -> Profile:
    return Profile.model_validate(
        {
            "name": name,
            "venue": {
                "type": "ccxt",
                "exchange": "mexc",
                "account": "mexc-main",
                "credentials": {"api_key": "${K}", "secret": "${S}"},
            },
            "symbol": "KAS/USDT",
            "modes": {"passive": {"spread_bps": 50, "size": 1000, "levels": 2}},
            "inventory": {"target_share": 0.5},
        }
    )


PROFILES = {"kas-mexc": _profile()}
ENV = {"WD_KEY": WD_KEY, "WD_SECRET": "WDsecret-0a1b2c3d4e"}
T0 = datetime(2026, 12, 6, 10, 0, 30, tzinfo=UTC).timestamp()


class Time:
    """The wall clock and the sleep the scheduler uses: sleeping moves the clock (virtual)."""

    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await anyio.lowlevel.checkpoint()  # what was started at this instant runs at it
        self.now += seconds


def _write(directory: Path, cron: str = "*/5 * * * *") -> Path:
    path = directory / "_settlement.yaml"
    path.write_text(SETTLEMENT.replace("CRON", cron))
    return path


def _scheduler(
    settle: Callable[[str, Gates], Awaitable[object]] | None,
    clock: Time,
    published: list[Alert] | None = None,
    gates: Gates | None = None,
) -> SettlementScheduler:
    return SettlementScheduler(
        settle,
        lambda _account: gates or Gates(),
        (published if published is not None else []).append,
        wall_clock=clock,
        sleep=clock.sleep,
        recheck_s=60.0,
        env=ENV,
    )


async def test_no_file_or_no_schedule_never_runs(tmp_path: Path) -> None:
    clock = Time()
    calls: list[str] = []

    async def settle(account: str, gates: Gates) -> None:
        calls.append(account)

    sched = _scheduler(settle, clock)
    assert await sched.reload(tmp_path, PROFILES) == []
    assert sched.tick() == 60.0  # nothing scheduled: it only rechecks
    path = _write(tmp_path)
    path.write_text(
        path.read_text().replace(
            '    schedule:\n      cron: "*/5 * * * *"\n      timezone: UTC\n', ""
        )
    )
    assert await sched.reload(tmp_path, PROFILES) == []
    assert sched.config is not None and sched.schedules() == {}
    clock.now += 86400
    sched.tick()
    assert calls == []


async def test_fires_at_each_cron_time_on_the_controlled_clock(tmp_path: Path) -> None:
    clock = Time()
    fired: list[tuple[str, float, Gates]] = []
    done = anyio.Event()
    gates = Gates(halted_profiles=("kas-mexc",))

    async def settle(account: str, g: Gates) -> str:
        fired.append((account, clock.now, g))
        if len(fired) == 3:
            done.set()
        return "ok"

    sched = _scheduler(settle, clock, gates=gates)
    _write(tmp_path)
    assert await sched.reload(tmp_path, PROFILES) == []
    assert sched.next_run("mexc-main") == T0 + 270  # known from the load on
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(sched.run)
            await done.wait()
            tg.cancel_scope.cancel()
    times = [datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S") for _a, at, _g in fired]
    assert times == ["10:05:00", "10:10:00", "10:15:00"]
    assert all(a == "mexc-main" and g == gates for a, _at, g in fired)
    # a halted member is passed on (the plan holds every sweep), and said so
    gated = [e for e in logs if e["event"] == "settlement_gated"]
    assert gated and gated[0]["halted"] == ["kas-mexc"]
    assert sched.runs[("mexc-main", "done")] == 3
    assert max(clock.sleeps) <= 60.0  # a reload is seen within recheck_s


async def test_a_reload_while_the_loop_sleeps_applies_the_new_schedule_at_once(
    tmp_path: Path,
) -> None:
    clock = Time()
    fired: list[float] = []
    done = anyio.Event()

    async def settle(account: str, gates: Gates) -> None:
        fired.append(clock.now)
        done.set()

    sched = SettlementScheduler(
        settle, lambda _a: Gates(), lambda _a: None, wall_clock=clock, env=ENV, recheck_s=3600
    )  # the real sleep: only a wake-up can end the hour's wait in time
    async with anyio.create_task_group() as tg:
        await tg.start(sched.run)
        await anyio.lowlevel.checkpoint()
        _write(tmp_path, "1 10 * * *")
        await sched.reload(tmp_path, PROFILES)
        assert sched.next_run("mexc-main") == T0 + 30
        clock.now = T0 + 30
        _write(tmp_path, "1 10 * * *")  # unchanged: still wakes the loop, which fires
        await sched.reload(tmp_path, PROFILES)
        with anyio.fail_after(5):
            await done.wait()
        tg.cancel_scope.cancel()
    assert fired == [T0 + 30]


async def test_a_run_still_going_makes_the_next_firing_skip(tmp_path: Path) -> None:
    clock = Time()
    release = anyio.Event()
    running = 0
    most = 0
    starts = 0

    async def settle(account: str, gates: Gates) -> None:
        nonlocal running, most, starts
        starts += 1
        running += 1
        most = max(most, running)
        try:
            await release.wait()
        finally:
            running -= 1

    sched = _scheduler(settle, clock)
    _write(tmp_path)
    await sched.reload(tmp_path, PROFILES)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(sched.run)
            while sched.runs[("mexc-main", "skipped_running")] < 2:
                await anyio.lowlevel.checkpoint()
            assert sched.running == {"mexc-main"}
            release.set()
            while sched.runs[("mexc-main", "done")] < 1:
                await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()
    assert most == 1 and starts == 1
    skipped = [e for e in logs if e["event"] == "settlement_skipped"]
    assert len(skipped) >= 2 and skipped[0]["account"] == "mexc-main"


async def test_a_failing_run_is_logged_and_notified_without_the_key(tmp_path: Path) -> None:
    clock = Time()
    published: list[Alert] = []

    async def settle(account: str, gates: Gates) -> None:
        raise RuntimeError(f"mexc withdraw?apiKey={WD_KEY}&amount=2000: suspended")

    sched = _scheduler(settle, clock, published)
    _write(tmp_path)
    await sched.reload(tmp_path, PROFILES)  # registers the withdrawal key with the redactor
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(sched.run)
            while sched.runs[("mexc-main", "failed")] < 2:
                await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()
    assert [a.kind for a in published][:2] == ["settlement_failed", "settlement_failed"]
    alert = published[0]
    assert "mexc-main" in alert.body and "suspended" in alert.body
    everything = repr(logs) + " ".join(a.title + a.body for a in published)
    assert WD_KEY not in everything
    assert "**redacted**" in alert.body
    assert any(e["event"] == "settlement_run_failed" for e in logs)


async def test_a_run_that_could_not_do_everything_is_notified(tmp_path: Path) -> None:
    clock = Time()
    published: list[Alert] = []

    class Run:
        requested = ()
        advanced = ()
        busy = False
        problems = ("mexc: the exchange could not be read: timeout",)

    async def settle(account: str, gates: Gates) -> Run:
        return Run()

    sched = _scheduler(settle, clock, published)
    _write(tmp_path)
    await sched.reload(tmp_path, PROFILES)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(sched.run)
            while sched.runs[("mexc-main", "done")] < 1:
                await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()
    done = next(e for e in logs if e["event"] == "settlement_run_done")
    assert done["problems"] == ["mexc: the exchange could not be read: timeout"]
    assert published[0].kind == "settlement_failed"
    assert "could not be read" in published[0].body


async def test_without_a_settlement_service_a_firing_says_so(tmp_path: Path) -> None:
    clock = Time()
    sched = _scheduler(None, clock)
    _write(tmp_path)
    await sched.reload(tmp_path, PROFILES)
    with capture_logs() as logs:
        sched.tick()
        clock.now = next_run_at(sched.schedules()["mexc-main"], T0)
        sched.tick()
    assert sched.runs[("mexc-main", "unavailable")] == 1
    assert [e["event"] for e in logs] == ["settlement_service_missing"]


async def test_a_bad_edit_keeps_the_last_good_file_and_removal_turns_it_off(
    tmp_path: Path,
) -> None:
    clock = Time()
    sched = _scheduler(None, clock)
    path = _write(tmp_path, "0 3 * * *")
    assert await sched.reload(tmp_path, PROFILES) == []
    good = sched.config
    assert good is not None and good.members == {"mexc-main": ("kas-mexc",)}
    path.write_text(SETTLEMENT.replace("CRON", "0 25 * * *"))  # no hour 25
    with capture_logs() as logs:
        issues = await sched.reload(tmp_path, PROFILES)
    assert len(issues) == 1
    assert str(issues[0]).startswith(f"{path}:11:13: settlement.mexc-main.schedule.cron: ")
    assert sched.config is good  # the last good one keeps running
    assert sched.schedules()["mexc-main"].cron == "0 3 * * *"
    assert "settlement_kept_last_good" in [e["event"] for e in logs]
    path.write_text(SETTLEMENT.replace("CRON", "30 4 * * *"))
    assert await sched.reload(tmp_path, PROFILES) == []
    assert sched.schedules()["mexc-main"].cron == "30 4 * * *"
    path.unlink()
    assert await sched.reload(tmp_path, PROFILES) == []
    assert sched.schedules() == {}
    assert sched.config is None


def test_next_run_is_the_next_firing_in_the_zone() -> None:
    from kasmm.config.settlement import SettleSchedule

    berlin = SettleSchedule(cron="0 3 * * *", timezone="Europe/Berlin")
    at = next_run_at(berlin, T0)
    assert datetime.fromtimestamp(at, UTC) == datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("members", "halted", "stale"),
    [
        ([MemberLook("a", live=True, book_age_s=1.0)], (), ()),
        ([MemberLook("a", live=True, halted=True, book_age_s=1.0)], ("a",), ()),
        ([MemberLook("a", operator_paused=True)], ("a",), ()),
        ([MemberLook("a", live=True, book_age_s=11.0)], (), ("a",)),
        ([MemberLook("a", live=True, book_age_s=11.0, stale_after_s=30.0)], (), ()),
        ([MemberLook("a", live=True, book_age_s=None)], (), ("a",)),
        ([MemberLook("a")], (), ("a",)),  # not running here: its feed is unknown
        ([MemberLook("a", enabled=False)], (), ()),  # disabled: rests nothing, gates nothing
        (
            [
                MemberLook("b", live=True, book_age_s=50.0),
                MemberLook("a", live=True, halted=True),
                MemberLook("c", live=True, book_age_s=0.5),
            ],
            ("a",),
            ("b",),
        ),
    ],
)
def test_account_gates(
    members: list[MemberLook], halted: tuple[str, ...], stale: tuple[str, ...]
) -> None:
    gates = account_gates(members, frozenset({"KAS"}))
    assert (gates.halted_profiles, gates.stale_feeds) == (halted, stale)
    assert gates.pending == frozenset({"KAS"})
