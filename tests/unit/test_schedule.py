"""Tests for kasmm.schedule: the pure cron queries and the runtime ModeScheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import anyio
import anyio.lowlevel
import pytest
from apscheduler.triggers.cron import CronTrigger

from kasmm import schedule as sched
from kasmm.config.schema import ScheduleEntry
from kasmm.schedule import ModeScheduler, mode_at, next_switch, parse_cron


def E(cron: str, mode: str, tz: str = "UTC") -> ScheduleEntry:
    return ScheduleEntry.model_validate({"cron": cron, "timezone": tz, "mode": mode})


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# 2025-06-02 is a Monday, 2025-06-07 a Saturday. 2025-03-30 and 2025-10-26 are the last Sundays
# of March and October (Europe/Berlin switches CET->CEST at 02:00 and CEST->CET at 03:00).
WEEKDAYS = (E("0 8 * * 1-5", "aggressive"), E("0 18 * * 1-5", "passive"))
WEEKEND = (E("0 0 * * sat,7", "aggressive"), E("0 0 * * 1", "passive"))
NEW_YORK = (
    E("0 9 * * *", "aggressive", "America/New_York"),
    E("0 17 * * *", "passive", "America/New_York"),
)
BERLIN_SKIPPED = (
    E("0 0 * * *", "passive", "Europe/Berlin"),
    E("30 2 * * *", "aggressive", "Europe/Berlin"),
)
BERLIN_REPEATED = (
    E("30 2 * * *", "aggressive", "Europe/Berlin"),
    E("45 2 * * *", "passive", "Europe/Berlin"),
)
LEAP_DAY = (E("0 0 1 1 *", "passive"), E("0 12 29 2 *", "aggressive"))
EVERY_MINUTE = (E("* * * * *", "aggressive"), E("30 8 * * *", "passive"))

MODE_AT_CASES = [
    # weekday crons (crontab numbering: 1-5 is Mon..Fri, not APScheduler's Tue..Sat)
    ("weekday morning", WEEKDAYS, "passive", utc(2025, 6, 2, 9), "aggressive"),
    ("exactly at firing", WEEKDAYS, "passive", utc(2025, 6, 2, 8), "aggressive"),
    ("just before firing", WEEKDAYS, "aggressive", utc(2025, 6, 2, 7, 59, 59), "passive"),
    ("friday late", WEEKDAYS, "aggressive", utc(2025, 6, 6, 17, 59, 59), "aggressive"),
    ("saturday: no 08:00 firing", WEEKDAYS, "aggressive", utc(2025, 6, 7, 9), "passive"),
    ("monday before open", WEEKDAYS, "aggressive", utc(2025, 6, 9, 7), "passive"),
    # weekend crons; 7 is Sunday too
    ("saturday", WEEKEND, "passive", utc(2025, 6, 7, 12), "aggressive"),
    ("sunday", WEEKEND, "passive", utc(2025, 6, 8, 23), "aggressive"),
    ("monday", WEEKEND, "aggressive", utc(2025, 6, 9, 1), "passive"),
    ("friday", WEEKEND, "aggressive", utc(2025, 6, 6, 12), "passive"),
    # time zones: 09:00 New York is 13:00Z in summer (EDT) and 14:00Z in winter (EST)
    ("NY summer before", NEW_YORK, "aggressive", utc(2025, 6, 2, 12, 59), "passive"),
    ("NY summer after", NEW_YORK, "passive", utc(2025, 6, 2, 13), "aggressive"),
    ("NY winter before", NEW_YORK, "aggressive", utc(2025, 1, 15, 13, 59), "passive"),
    ("NY winter after", NEW_YORK, "passive", utc(2025, 1, 15, 14), "aggressive"),
    # Berlin spring-forward: 02:30 does not exist on 2025-03-30; like ISC cron it fires at the
    # jump, 01:00Z (03:00 CEST)
    ("DST eve 02:30 CET", BERLIN_SKIPPED, "passive", utc(2025, 3, 29, 1, 30), "aggressive"),
    ("DST day before jump", BERLIN_SKIPPED, "aggressive", utc(2025, 3, 30, 0, 59, 59), "passive"),
    ("DST day at jump", BERLIN_SKIPPED, "passive", utc(2025, 3, 30, 1), "aggressive"),
    # ... and the next midnight (22:00Z) still fires (stock APScheduler 3.11 skips that day)
    ("DST day next midnight", BERLIN_SKIPPED, "aggressive", utc(2025, 3, 30, 22), "passive"),
    ("DST day before midnight", BERLIN_SKIPPED, "passive", utc(2025, 3, 30, 21, 59), "aggressive"),
    ("after DST 02:29 CEST", BERLIN_SKIPPED, "aggressive", utc(2025, 3, 31, 0, 29), "passive"),
    ("after DST 02:30 CEST", BERLIN_SKIPPED, "passive", utc(2025, 3, 31, 0, 30), "aggressive"),
    # Berlin fall-back: 02:30 and 02:45 happen twice on 2025-10-26 but fire once, the first time
    ("fall-back 02:30 CEST", BERLIN_REPEATED, "passive", utc(2025, 10, 26, 0, 30), "aggressive"),
    ("fall-back 02:45 CEST", BERLIN_REPEATED, "aggressive", utc(2025, 10, 26, 0, 45), "passive"),
    ("no repeat 02:30 CET", BERLIN_REPEATED, "aggressive", utc(2025, 10, 26, 1, 30), "passive"),
    ("next day 02:30 CET", BERLIN_REPEATED, "passive", utc(2025, 10, 27, 1, 30), "aggressive"),
    # two entries; ties go to the later entry, also across time zones (09:00 CEST == 07:00Z)
    ("tie later wins", (E("0 8 * * *", "aggressive"), E("0 8 * * *", "passive")), "aggressive",
     utc(2025, 6, 2, 8), "passive"),
    ("tie reversed", (E("0 8 * * *", "passive"), E("0 8 * * *", "aggressive")), "passive",
     utc(2025, 6, 2, 9), "aggressive"),
    ("tie across zones", (E("0 7 * * *", "passive"), E("0 9 * * *", "aggressive", "Europe/Berlin")),
     "passive", utc(2025, 6, 2, 7, 0, 1), "aggressive"),
    # no entries: the profile's default
    ("empty schedule", (), "aggressive", utc(2025, 6, 2, 9), "aggressive"),
    # the sparsest cron: 29 February, found years later
    ("leap day years later", LEAP_DAY, "passive", utc(2027, 6, 1), "passive"),
    ("leap day that noon", LEAP_DAY, "passive", utc(2024, 2, 29, 12), "aggressive"),
    ("leap year, before", LEAP_DAY, "aggressive", utc(2024, 2, 29, 11, 59), "passive"),
    ("leap day next year", (E("0 12 29 2 *", "aggressive"),), "passive", utc(2025, 3, 1),
     "aggressive"),
    # every-minute cron against a daily entry that ties with it at 08:30
    ("minute tie at 08:30", EVERY_MINUTE, "passive", utc(2025, 6, 2, 8, 30), "passive"),
    ("minute 08:30:59", EVERY_MINUTE, "aggressive", utc(2025, 6, 2, 8, 30, 59), "passive"),
    ("minute 08:31", EVERY_MINUTE, "passive", utc(2025, 6, 2, 8, 31), "aggressive"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("schedule", "default", "now", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in MODE_AT_CASES],
)
def test_mode_at(
    schedule: tuple[ScheduleEntry, ...], default: str, now: datetime, expected: str
) -> None:
    assert mode_at(schedule, default, now) == expected
    # Epoch seconds and aware datetimes in any zone mean the same instant.
    assert mode_at(schedule, default, now.timestamp()) == expected
    assert mode_at(schedule, default, now.astimezone(ZoneInfo("Asia/Tokyo"))) == expected


def test_mode_at_default_when_nothing_fired_within_lookback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sched, "LOOKBACK_WINDOWS", (timedelta(hours=1), timedelta(days=1)))
    yearly = (E("0 0 1 1 *", "aggressive"),)
    assert mode_at(yearly, "passive", utc(2025, 6, 2)) == "passive"
    assert mode_at(yearly, "passive", utc(2025, 1, 1, 0, 30)) == "aggressive"


def test_mode_at_every_minute_performance_sanity() -> None:
    # Correctness only: a linear scan would need thousands of trigger calls here, the bisection
    # a few dozen. No timing assertion (CI machines vary).
    every = (E("* * * * *", "aggressive"),)
    now = utc(2025, 6, 2, 13, 37, 42)
    for i in range(200):
        t = now + timedelta(seconds=97 * i + 0.25)
        assert mode_at(every, "passive", t) == "aggressive"
    # Sparse first entry forces the wide windows for it; the minute entry still wins.
    mixed = (E("0 0 1 1 *", "passive"), E("* * * * *", "aggressive"))
    assert mode_at(mixed, "passive", now) == "aggressive"


def test_mode_at_rejects_naive_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        mode_at(WEEKDAYS, "passive", datetime(2025, 6, 2, 9))


NEXT_SWITCH_CASES = [
    ("friday evening -> monday", WEEKDAYS, utc(2025, 6, 6, 19), (utc(2025, 6, 9, 8), "aggressive")),
    ("at a firing -> the next one", WEEKDAYS, utc(2025, 6, 2, 8), (utc(2025, 6, 2, 18), "passive")),
    ("fractional second", WEEKDAYS, utc(2025, 6, 2, 7, 59, 59, 500_000),
     (utc(2025, 6, 2, 8), "aggressive")),
    ("NY in UTC", NEW_YORK, utc(2025, 6, 2, 12), (utc(2025, 6, 2, 13), "aggressive")),
    ("Berlin skipped 02:30", BERLIN_SKIPPED, utc(2025, 3, 30, 0), (utc(2025, 3, 30, 1),
     "aggressive")),
    ("Berlin midnight after jump", BERLIN_SKIPPED, utc(2025, 3, 30, 1),
     (utc(2025, 3, 30, 22), "passive")),
    ("Berlin repeated 02:30", BERLIN_REPEATED, utc(2025, 10, 26, 0, 50),
     (utc(2025, 10, 27, 1, 30), "aggressive")),
    ("tie later wins", (E("0 8 * * *", "aggressive"), E("0 8 * * *", "passive")), utc(2025, 6, 2),
     (utc(2025, 6, 2, 8), "passive")),
    ("leap day", LEAP_DAY, utc(2025, 1, 2), (utc(2025, 1, 1) + timedelta(days=365), "passive")),
    ("leap day from 2027", (E("0 12 29 2 *", "aggressive"),), utc(2027, 6, 1),
     (utc(2028, 2, 29, 12), "aggressive")),
    ("empty", (), utc(2025, 6, 2), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("schedule", "now", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in NEXT_SWITCH_CASES],
)
def test_next_switch(
    schedule: tuple[ScheduleEntry, ...],
    now: datetime,
    expected: tuple[datetime, str] | None,
) -> None:
    want = None if expected is None else (expected[0].timestamp(), expected[1])
    assert next_switch(schedule, now) == want
    assert next_switch(schedule, now.timestamp()) == want


@pytest.mark.parametrize("start", [utc(2025, 3, 27), utc(2025, 10, 23)], ids=["spring", "fall"])
@pytest.mark.parametrize(
    "schedule",
    [WEEKDAYS, NEW_YORK, BERLIN_SKIPPED, BERLIN_REPEATED, EVERY_MINUTE, LEAP_DAY],
    ids=["weekdays", "new_york", "berlin_skipped", "berlin_repeated", "every_minute", "leap"],
)
def test_next_switch_agrees_with_mode_at(
    schedule: tuple[ScheduleEntry, ...], start: datetime
) -> None:
    # Walk the switches through a DST week: each switch's mode is the mode in force from that
    # instant, and the mode just before it is whatever the previous switch set.
    now = start.timestamp()
    end = (start + timedelta(days=6)).timestamp()
    steps = 0
    while now < end and steps < 300:
        switch = next_switch(schedule, now)
        assert switch is not None
        at, mode = switch
        assert at > now
        assert mode_at(schedule, "none", at - 1e-3) == mode_at(schedule, "none", now)
        assert mode_at(schedule, "none", at) == mode
        now, steps = at, steps + 1
    assert steps >= 1


# --- DstSafeCronTrigger --------------------------------------------------------------------


def _chain(cron: str, tz: str, start: datetime, count: int) -> list[datetime]:
    """Fire times as the running scheduler would compute them (each from the previous one)."""
    trigger = parse_cron(E(cron, "passive", tz))
    fires: list[datetime] = []
    previous = None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        assert previous is None or fire > previous  # stock 3.11 repeats one forever here
        fires.append(fire.astimezone(UTC))
        previous = now = fire
    return fires


@pytest.mark.parametrize(
    ("cron", "tz", "start", "expected"),
    [
        # fall-back in Berlin: the repeated 02:00-03:00 (CET) does not fire again
        ("0 * * * *", "Europe/Berlin", utc(2025, 10, 25, 23),
         [utc(2025, 10, 25, 23), utc(2025, 10, 26, 0), utc(2025, 10, 26, 2), utc(2025, 10, 26, 3)]),
        # spring-forward in Berlin: 02:00 does not exist and fires at the jump (01:00Z)
        ("0 * * * *", "Europe/Berlin", utc(2025, 3, 29, 23, 30),
         [utc(2025, 3, 30, 0), utc(2025, 3, 30, 1), utc(2025, 3, 30, 2)]),
        # several firings inside the gap collapse into one at the jump
        ("*/15 2 * * *", "Europe/Berlin", utc(2025, 3, 29, 12),
         [utc(2025, 3, 30, 1), utc(2025, 3, 31, 0), utc(2025, 3, 31, 0, 15)]),
        # daily midnight across spring-forward: no day is skipped
        ("0 0 * * *", "Europe/Berlin", utc(2025, 3, 29, 12),
         [utc(2025, 3, 29, 23), utc(2025, 3, 30, 22), utc(2025, 3, 31, 22)]),
        # New York fall-back at 02:00 EDT -> 01:00 EST: 01:30 fires once (05:30Z)
        ("30 1 * * *", "America/New_York", utc(2025, 11, 1, 12),
         [utc(2025, 11, 2, 5, 30), utc(2025, 11, 3, 6, 30)]),
        # Lord Howe: a 30-minute DST shift; 02:00 (in the 02:00-02:30 gap) fires at the jump
        ("0 2 * * *", "Australia/Lord_Howe", utc(2025, 10, 3, 12),
         [utc(2025, 10, 3, 15, 30), utc(2025, 10, 4, 15, 30), utc(2025, 10, 5, 15)]),
    ],
)  # fmt: skip
def test_dst_safe_trigger_chain(
    cron: str, tz: str, start: datetime, expected: list[datetime]
) -> None:
    assert _chain(cron, tz, start, len(expected)) == expected


def test_dst_safe_trigger_starts_at_or_after_now() -> None:
    trigger = parse_cron(E("0 8 * * *", "passive", "Europe/Berlin"))
    at = utc(2025, 6, 2, 6)  # exactly 08:00 CEST
    assert trigger.get_next_fire_time(None, at) == at
    assert trigger.get_next_fire_time(at, at) == at + timedelta(days=1)
    fire = trigger.get_next_fire_time(None, at + timedelta(microseconds=1))
    assert fire == at + timedelta(days=1)
    assert fire.tzinfo == ZoneInfo("Europe/Berlin")
    assert "Europe/Berlin" in str(trigger)


# --- parse_cron ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dow", "fires_on"),
    [
        ("1-5", {0, 1, 2, 3, 4}),  # Python weekday(): Monday is 0
        ("0", {6}),
        ("7", {6}),
        ("5-7", {4, 5, 6}),
        ("0-7", set(range(7))),
        ("*/2", {6, 1, 3, 5}),  # Sun, Tue, Thu, Sat
        ("1/2", {0, 2, 4, 6}),  # Mon, Wed, Fri, Sun
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("SAT,sun", {5, 6}),
        ("?", set(range(7))),
    ],
)
def test_parse_cron_weekdays_follow_crontab(dow: str, fires_on: set[int]) -> None:
    trigger = parse_cron(E(f"0 12 * * {dow}", "passive"))
    assert isinstance(trigger, CronTrigger)
    fire: datetime | None = utc(2025, 6, 1)  # a Sunday
    seen = set()
    for _ in range(14):
        fire = trigger.get_next_fire_time(None, fire)
        assert fire is not None
        seen.add(fire.weekday())
        fire += timedelta(seconds=1)
    assert seen == fires_on


def test_parse_cron_uses_entry_time_zone() -> None:
    trigger = parse_cron(E("0 9 * * *", "passive", "Europe/Berlin"))
    assert trigger.timezone == ZoneInfo("Europe/Berlin")
    fire = trigger.get_next_fire_time(None, utc(2025, 1, 15))
    assert fire is not None and fire.astimezone(UTC) == utc(2025, 1, 15, 8)


@pytest.mark.parametrize(
    ("cron", "tz", "message"),
    [
        ("0 8 * *", "UTC", "5 fields"),
        ("0 0 8 * * *", "UTC", "5 fields"),
        ("0 8 1 * 1", "UTC", "both day-of-month and day-of-week"),
        ("0 0 30 2 *", "UTC", "never fires"),
        ("0 8 * * 8", "UTC", "day-of-week"),
        ("0 8 * * fri-mon", "UTC", "backwards"),
        ("0 8 * * L", "UTC", "day-of-week"),
        ("0 8 * * 1#2", "UTC", "day-of-week"),
        ("61 8 * * *", "UTC", "maximum"),
        ("0 8 * * *", "Mars/Olympus", "time zone"),
    ],
)
def test_parse_cron_rejects(cron: str, tz: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cron(E(cron, "passive", tz))


def test_parse_cron_star_step_day_fields_are_anded_like_crontab() -> None:
    # Crontab only ORs the day fields when neither starts with "*", so this one is accepted.
    trigger = parse_cron(E("0 0 */2 * 1", "passive"))
    fire = trigger.get_next_fire_time(None, utc(2025, 6, 1))
    assert fire == utc(2025, 6, 9)  # first Monday on an odd day of the month


# --- ModeScheduler ------------------------------------------------------------------------


def test_add_profile_jobs_and_reload() -> None:
    ms = ModeScheduler()
    posts: list[str] = []
    ms.add_profile("kas-1", WEEKDAYS, posts.append)
    ms.add_profile("kas-10", (E("0 9 * * *", "passive"),), posts.append)
    ids = sorted(job.id for job in ms._scheduler.get_jobs())
    assert ids == ["kas-1/0000", "kas-1/0001", "kas-10/0000"]
    job = ms._scheduler.get_job("kas-1/0000")
    assert job.coalesce is True
    assert job.misfire_grace_time is None

    # A bad reload leaves the old jobs alone; a good one replaces them.
    with pytest.raises(ValueError):
        ms.add_profile("kas-1", (E("0 8 31 2 *", "passive"),), posts.append)
    assert sorted(job.id for job in ms._scheduler.get_jobs()) == ids
    ms.add_profile("kas-1", (E("0 7 * * *", "aggressive"),), posts.append)
    assert sorted(job.id for job in ms._scheduler.get_jobs()) == ["kas-1/0000", "kas-10/0000"]

    # "kas-1" is not a prefix match for "kas-10".
    ms.remove_profile("kas-1")
    ms.remove_profile("unknown")
    assert [job.id for job in ms._scheduler.get_jobs()] == ["kas-10/0000"]
    assert ms.profiles() == ["kas-10"]
    ms.shutdown()  # never started: a no-op besides forgetting the profiles
    assert posts == []


@pytest.mark.anyio
async def test_job_posts_mode_recomputed_at_run_time() -> None:
    # Run the jobs' coroutine directly with a fake clock: a late run of the 08:00 "aggressive"
    # job at 18:30 must not undo the 18:00 switch to passive.
    clock_now = utc(2025, 6, 2, 18, 30).timestamp()
    ms = ModeScheduler(clock=lambda: clock_now)
    posts: list[str] = []
    ms.add_profile("p", WEEKDAYS, posts.append)
    morning = ms._scheduler.get_job("p/0000")
    await morning.func(*morning.args)
    clock_now = utc(2025, 6, 3, 8).timestamp() + 0.5
    await morning.func(*morning.args)
    assert posts == ["passive", "aggressive"]

    # A run that was already queued when the profile was removed posts nothing.
    ms.remove_profile("p")
    await morning.func(*morning.args)
    assert posts == ["passive", "aggressive"]
    ms.shutdown()


@pytest.mark.anyio
async def test_mode_scheduler_real_time() -> None:
    send, receive = anyio.create_memory_object_stream[tuple[str, str]](100)
    ms = ModeScheduler()
    ms.start()
    try:
        assert ms.running
        every_second = CronTrigger(second="*", timezone=UTC)
        # "p": two entries firing together each second; the later one ("passive") must win.
        ms.add_profile(
            "p",
            [(every_second, "aggressive"), (every_second, "passive")],
            lambda mode: send.send_nowait(("p", mode)),
        )
        ms.add_profile(
            "q", [(every_second, "aggressive")], lambda mode: send.send_nowait(("q", mode))
        )
        seen: set[tuple[str, str]] = set()
        with anyio.fail_after(2.5):
            while {"p", "q"} - {name for name, _ in seen}:
                seen.add(await receive.receive())
        assert seen <= {("p", "passive"), ("q", "aggressive")}

        ms.remove_profile("p")
        while True:  # drain what was posted before the removal
            try:
                receive.receive_nowait()
            except anyio.WouldBlock:
                break
        await anyio.sleep(1.6)
        after = []
        while True:
            try:
                after.append(receive.receive_nowait())
            except anyio.WouldBlock:
                break
        assert after, "q should still be posting"
        assert {name for name, _ in after} == {"q"}
    finally:
        ms.shutdown()
        await (
            anyio.lowlevel.checkpoint()
        )  # let APScheduler's deferred shutdown run before the loop closes
        send.close()
        receive.close()
    assert not ms.running
