"""Scheduled mode switching: which mode a profile's ``schedule`` puts in force, and when.

Two layers:

* Pure functions — :func:`parse_cron`, :func:`mode_at`, :func:`next_switch` — that take the time
  as an argument and never read a clock, so the supervisor (and tests) can ask "which mode applies
  now?" at start-up and after a reload.
* :class:`ModeScheduler` — one ``AsyncIOScheduler`` for the whole supervisor whose jobs do
  nothing but hand a mode name to a callable. The supervisor passes a callable that does
  ``send_stream.send_nowait(ModeSwitch(mode))`` into the profile's own task, so the switch is
  applied by the task that owns the bot and structured concurrency stays intact.

Cron dialect (five fields, ``minute hour day-of-month month day-of-week``):

* The day-of-week field follows crontab, not APScheduler 3.x: ``0`` and ``7`` are Sunday,
  ``1-5`` is Monday to Friday. (``CronTrigger.from_crontab`` in 3.x counts 0 as *Monday*, which
  would silently turn ``1-5`` into Tuesday to Saturday; :func:`parse_cron` rewrites the field to
  day names first.) Names (``mon``…``sun``), lists, ranges and ``/step`` are accepted; ``?`` is
  ``*``; ``L`` and ``#`` are not.
* Restricting *both* day-of-month and day-of-week is refused: crontab fires when *either*
  matches, APScheduler only when *both* do, and guessing which one the author meant is worse than
  an error. Use two entries instead.
* Times are wall-clock times in the entry's IANA zone, with ISC cron's DST rules: a wall time
  skipped by spring-forward (02:30 in Europe/Berlin on the last Sunday of March) fires at the
  jump itself (03:00 CEST), and a wall time repeated by fall-back fires once, at its first
  occurrence. APScheduler 3.11's own ``CronTrigger`` gets DST wrong with ``zoneinfo`` zones —
  it skips the whole next day after a midnight firing on spring-forward day, and at fall-back
  an hourly cron returns the same fire time forever, which hangs the scheduler's event loop
  (agronholm/apscheduler#1021) — so :func:`parse_cron` returns :class:`DstSafeCronTrigger`.
* No seconds field. Tests that need sub-minute firings pass an already-built APScheduler trigger
  to :meth:`ModeScheduler.add_profile` as a ``(trigger, mode)`` pair instead.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from kasmm.config.schema import ScheduleEntry

__all__ = [
    "LOOKBACK_WINDOWS",
    "DstSafeCronTrigger",
    "ModeScheduler",
    "ScheduleItem",
    "Trigger",
    "mode_at",
    "next_switch",
    "parse_cron",
]


class Trigger(Protocol):
    """The part of an APScheduler trigger this module uses."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None: ...


#: How far back :func:`mode_at` looks, tried in order; the first window containing a firing is
#: searched for the latest one. Every valid five-field cron fires at least once in eight years
#: (29 February, which 2100 skips, is the sparsest), so the last window is exhaustive; the small
#: ones keep the common case — a firing in the last hour or day — to a handful of calls.
LOOKBACK_WINDOWS: tuple[timedelta, ...] = (
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=8),
    timedelta(days=32),
    timedelta(days=400),
    timedelta(days=8 * 366 + 2),
)

_ONE_US = timedelta(microseconds=1)

# --- cron parsing -------------------------------------------------------------------------

_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# APScheduler 3.x accepts weekday *names* with the usual meaning; emitting names (never numbers)
# sidesteps its Monday-is-0 numbering entirely.
_DOW_ITEM = re.compile(r"^(?:(\*)|([0-7a-z]+)(?:-([0-7a-z]+))?)(?:/(\d+))?$")


def _dow_value(token: str, expr: str) -> int:
    """A crontab weekday: 0-7 as written (0 and 7 are Sunday), or a name as 0-6."""
    if token.isdigit():
        value = int(token)
        if value > 7:
            raise ValueError(f"day-of-week {token!r} out of range 0-7 in cron {expr!r}")
        return value
    if token in _DOW_NAMES:
        return _DOW_NAMES.index(token)
    raise ValueError(f"unknown day-of-week {token!r} in cron {expr!r}")


def _crontab_dow_to_names(field: str, expr: str) -> str:
    """Rewrite a crontab day-of-week field into APScheduler's, as a list of day names."""
    field = field.lower()
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        match = _DOW_ITEM.fullmatch(item)
        if match is None:
            raise ValueError(f"unsupported day-of-week {item!r} in cron {expr!r}")
        star, first, last, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"day-of-week step must be >= 1 in cron {expr!r}")
        if star:
            lo, hi = 0, 6
        else:
            # Range ends stay 0-7 until the final % 7, so "5-7" is Fri..Sun and "0-7" all week.
            lo = _dow_value(first, expr)
            if last is not None:
                hi = _dow_value(last, expr)
            elif step_text:
                hi = 7  # cronie: "a/n" means "a-7/n"
            else:
                hi = lo
            if lo > hi:
                raise ValueError(f"day-of-week range {item!r} runs backwards in cron {expr!r}")
        days.update(d % 7 for d in range(lo, hi + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(_DOW_NAMES[d] for d in sorted(days))


def _transition(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant at which ``zone``'s offset changes, between two instants (UTC).

    ``before`` must have the old offset and ``after`` the new one, at most a few hours apart.
    Bisection on whole seconds: tzdata transitions fall on whole seconds.
    """
    new_offset = after.astimezone(zone).utcoffset()
    lo, hi = math.floor(before.timestamp()), math.ceil(after.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == new_offset:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


class DstSafeCronTrigger(CronTrigger):  # type: ignore[misc]  # apscheduler is untyped
    """A ``CronTrigger`` whose DST handling is ISC cron's, and correct.

    The fields are matched against *naive wall-clock time* by a twin trigger in UTC, where
    APScheduler's calendar arithmetic is exact; each matching wall time ``w`` then fires at the
    first instant the zone's clock reads ``w`` or later. That map is monotonic, so fire times
    strictly increase: a time in a spring-forward gap fires at the jump, a time repeated by
    fall-back fires at its first occurrence only. ``timezone`` and the field attributes are
    those of a normal ``CronTrigger``; ``jitter``, ``start_date`` and ``end_date`` are not
    supported (crontab has none).
    """

    def __init__(self, **fields: Any) -> None:
        zone = fields.pop("timezone")
        super().__init__(timezone=zone, **fields)
        self._zone: ZoneInfo = zone
        self._wall = CronTrigger(timezone=UTC, **fields)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first fire time at or after ``now`` (or just after ``previous_fire_time``).

        Same contract as ``CronTrigger``: the search starts at ``min(now, previous + 1 µs)``,
        and never at ``previous`` itself. The result is in the trigger's zone.
        """
        start = now.astimezone(UTC)
        if previous_fire_time is not None:
            previous = previous_fire_time.astimezone(UTC)
            start = min(start, previous + _ONE_US)
            if start == previous:  # as CronTrigger: never hand back the previous fire time
                start += _ONE_US
        fire = self._first_at_or_after(start)
        return None if fire is None else fire.astimezone(self._zone)

    def _first_at_or_after(self, start: datetime) -> datetime | None:
        zone = self._zone
        # Exactly the wall times greater than every reading the clock showed before ``start``
        # fire at or after ``start``. That maximum is the reading 1 µs earlier, unless that
        # instant lies in the second pass of a fall-back hour: then it is the end of that hour.
        before = (start - _ONE_US).astimezone(zone)
        if before.fold:
            wall_before = before.replace(tzinfo=None)
            old_offset = wall_before.replace(tzinfo=zone, fold=0).utcoffset()
            new_offset = before.utcoffset()
            assert old_offset is not None and new_offset is not None  # ZoneInfo always has one
            first_pass = (start - _ONE_US) - (old_offset - new_offset)
            jump = _transition(first_pass, start - _ONE_US, zone)
            earliest_wall = (jump + old_offset).replace(tzinfo=None)
        else:
            earliest_wall = before.replace(tzinfo=None) + _ONE_US
        wall_fire: datetime | None = self._wall.get_next_fire_time(
            None, earliest_wall.replace(tzinfo=UTC)
        )
        if wall_fire is None:
            return None
        wall = wall_fire.replace(tzinfo=None)
        fire = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)  # fold=0: first occurrence
        if fire.astimezone(zone).replace(tzinfo=None) == wall:
            return fire
        # ``wall`` does not exist (spring-forward gap): fire when the clock jumps over it.
        # fold=1 reads it with the new offset, which puts it before the jump.
        return _transition(wall.replace(tzinfo=zone, fold=1).astimezone(UTC), fire, zone)

    def __str__(self) -> str:
        return f"crontab[{super().__str__()}, timezone='{self._zone.key}']"


@functools.lru_cache(maxsize=512)
def compile_cron(cron: str, timezone: str) -> DstSafeCronTrigger:
    """Build (and cache) the trigger for one expression; see :func:`parse_cron`."""
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"cron {cron!r} must have 5 fields, got {len(fields)}")
    minute, hour, dom, month, dow = fields
    # Vixie cron ORs the two day fields only when neither starts with "*" ("*/2" counts as a
    # star); otherwise both it and APScheduler effectively AND them, so only that case differs.
    if not dom.startswith(("*", "?")) and not dow.startswith(("*", "?")):
        raise ValueError(
            f"cron {cron!r} restricts both day-of-month and day-of-week; crontab ORs them but "
            "APScheduler ANDs them, so write two schedule entries instead"
        )
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    dom = "*" if dom == "?" else dom  # Quartz-style "no value"; APScheduler only knows "*"
    dow = _crontab_dow_to_names(dow, cron)
    expr = " ".join((minute, hour, dom, month, dow))
    trigger: DstSafeCronTrigger = DstSafeCronTrigger.from_crontab(expr, timezone=zone)
    # An impossible date ("0 0 30 2 *") makes every search scan to year 9999 (~0.1 s a call);
    # pay that once here and refuse it, so mode_at never meets it.
    if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise ValueError(f"cron {cron!r} never fires")
    return trigger


def parse_cron(entry: ScheduleEntry) -> DstSafeCronTrigger:
    """The APScheduler trigger for ``entry``, in the entry's time zone.

    Built with ``DstSafeCronTrigger.from_crontab(cron, timezone=ZoneInfo(entry.timezone))``
    (a ``CronTrigger`` subclass with correct DST handling) after the day-of-week field is
    rewritten to crontab meaning (see the module docstring). Results are cached per
    ``(cron, timezone)``; treat the returned trigger as immutable.

    Raises:
        ValueError: wrong field count, bad field, unknown time zone, both day fields restricted,
            or an expression that can never fire.
    """
    return compile_cron(entry.cron, entry.timezone)


# --- pure queries -------------------------------------------------------------------------


def _as_utc(now: float | datetime) -> datetime:
    if isinstance(now, datetime):
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be epoch seconds or an aware datetime")
        return now.astimezone(UTC)
    return datetime.fromtimestamp(now, tz=UTC)


def _next_fire(trigger: Trigger, at_or_after: datetime) -> datetime | None:
    """First firing at or after the instant, in UTC.

    Always UTC because arithmetic on ZoneInfo datetimes is wall-clock arithmetic, which would
    be off by an hour across a DST change.
    """
    fire = trigger.get_next_fire_time(None, at_or_after)
    return None if fire is None else fire.astimezone(UTC)


def _last_fire(trigger: Trigger, now: datetime) -> datetime | None:
    """Latest firing at or before ``now`` (UTC) within the look-back, else None."""
    for window in LOOKBACK_WINDOWS:
        first = _next_fire(trigger, now - window)
        if first is None or first > now:
            continue
        # Bisection: ``lo`` is always a real firing <= now and no firing in (lo, now] is at or
        # after ``hi``. Each round halves hi - lo or moves lo forward, so even "* * * * *" over
        # a wide window costs a few dozen trigger calls instead of one per firing.
        lo, hi = first, now + _ONE_US
        while True:
            after = _next_fire(trigger, lo + _ONE_US)
            if after is None or after > now:
                return lo  # nothing fires in (lo, now]: lo is the answer by definition
            lo = after
            mid = lo + (hi - lo) / 2
            probe = _next_fire(trigger, mid)
            if probe is not None and probe <= now:
                lo = probe
            else:
                hi = mid
    return None


def _next_after(trigger: Trigger, now: datetime) -> datetime | None:
    """First firing strictly after ``now`` (UTC)."""
    return _next_fire(trigger, now + _ONE_US)


def _mode_from(triggers: Sequence[tuple[Trigger, str]], default_mode: str, now: datetime) -> str:
    best: datetime | None = None
    mode = default_mode
    for trigger, entry_mode in triggers:
        fired = _last_fire(trigger, now)
        # ">=": on a tie the later entry in the list wins.
        if fired is not None and (best is None or fired >= best):
            best, mode = fired, entry_mode
    return mode


def mode_at(schedule: Sequence[ScheduleEntry], default_mode: str, now: float | datetime) -> str:
    """The mode in force at ``now`` (epoch seconds or an aware datetime).

    That is the mode of the most recent firing at or before ``now`` across all entries, each
    cron evaluated in its own time zone; when two entries fire at the same instant the later
    entry in ``schedule`` wins. ``default_mode`` (normally ``Profile.mode``) applies when no
    entry has fired within :data:`LOOKBACK_WINDOWS` (i.e. the schedule is empty).

    Raises:
        ValueError: an entry does not parse (see :func:`parse_cron`), or ``now`` is naive.
    """
    triggers = [(parse_cron(entry), entry.mode) for entry in schedule]
    return _mode_from(triggers, default_mode, _as_utc(now))


def next_switch(
    schedule: Sequence[ScheduleEntry], now: float | datetime
) -> tuple[float, str] | None:
    """The first firing strictly after ``now`` as ``(epoch_seconds, mode)``, or None if no entries.

    A firing is reported even if it re-selects the mode already in force. On a tie the later
    entry wins, as in :func:`mode_at`.

    Raises:
        ValueError: an entry does not parse (see :func:`parse_cron`), or ``now`` is naive.
    """
    at = _as_utc(now)
    best: tuple[datetime, str] | None = None
    for entry in schedule:
        fire = _next_after(parse_cron(entry), at)
        if fire is not None and (best is None or fire <= best[0]):
            best = (fire, entry.mode)
    return None if best is None else (best[0].timestamp(), best[1])


# --- the runtime scheduler ----------------------------------------------------------------

#: A schedule item for :meth:`ModeScheduler.add_profile`: a config entry, or an already-built
#: APScheduler trigger with its mode (used by tests that need firings every second).
ScheduleItem = ScheduleEntry | tuple[Any, str]


@dataclass(eq=False)
class _Registration:
    """One profile's live jobs; identity (not equality) tells a stale job from a current one."""

    job_ids: list[str]
    triggers: list[tuple[Trigger, str]]
    post: Callable[[str], object]


class ModeScheduler:
    """One ``AsyncIOScheduler`` shared by every profile, posting mode names at cron times.

    Jobs never touch a bot. A job's only action is ``post(mode)``; the supervisor's ``post``
    must be non-blocking and loop-thread-only, e.g. ``send_stream.send_nowait(ModeSwitch(m))``
    into the profile's own task, which then applies the switch itself. Jobs are ``async def``
    on purpose: APScheduler's asyncio executor runs plain functions in a *thread pool*, where
    ``send_nowait`` on an anyio memory stream would not be safe.

    The mode a job posts is recomputed when it runs — the mode of the latest firing across the
    profile's whole schedule at that moment, with the job's own mode as fallback — rather than
    the job's fixed mode. So a job running late (event loop stalled, host suspended) can never
    undo a newer switch, and simultaneous firings resolve to the later entry whatever order
    APScheduler runs them in. That is also why ``misfire_grace_time`` is ``None`` (run however
    late) with ``coalesce=True`` (once): a late run only ever re-asserts the correct mode, while
    dropping it would leave the wrong mode in force until the next firing.

    Real time only: APScheduler reads the wall clock itself. ``clock`` (epoch seconds) is what
    jobs use to recompute the mode; it must be the wall clock in production and is injectable
    only so tests can drive the recomputation. Create it anywhere; call :meth:`start` inside the
    running event loop (asyncio, or anyio on its asyncio backend) and :meth:`shutdown` before the
    loop ends.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        # UTC as the scheduler's own zone so it never consults the host's local time zone; each
        # trigger carries the entry's zone.
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._clock = clock
        self._profiles: dict[str, _Registration] = {}

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`shutdown`."""
        return bool(self._scheduler.running)

    def start(self) -> None:
        """Start the scheduler on the running event loop (must be called from inside it)."""
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop firing; no ``post`` call happens after this returns.

        APScheduler completes its own shutdown on the next loop iteration (it defers it with
        ``call_soon_threadsafe``), so yield once (``await anyio.lowlevel.checkpoint()``) before
        the loop closes. Posts stop immediately regardless: every profile is deregistered here.
        """
        self._profiles.clear()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def profiles(self) -> list[str]:
        """Names of the profiles with scheduled jobs."""
        return list(self._profiles)

    def add_profile(
        self, name: str, schedule: Sequence[ScheduleItem], post: Callable[[str], object]
    ) -> None:
        """Schedule one job per entry of ``schedule``, each calling ``post(mode)``.

        Replaces the profile's previous jobs if it already has some (a reload). Items are
        :class:`ScheduleEntry` objects or ``(trigger, mode)`` pairs with an already-built
        APScheduler trigger (for tests that need firings every second). All entries are parsed
        before anything is scheduled, so a bad entry leaves the profile's old jobs in place.
        ``post`` (its return value is ignored, so e.g. ``lambda m: sup.post_mode(name, m)``
        fits) runs on the event loop thread and must neither block nor raise (an exception
        is only logged by APScheduler, so the switch would be lost): size the profile's stream
        so ``send_nowait`` cannot hit ``WouldBlock``. Call from the event loop thread.

        Raises:
            ValueError: an entry does not parse (see :func:`parse_cron`).
        """
        triggers: list[tuple[Trigger, str]] = [
            (parse_cron(item), item.mode) if isinstance(item, ScheduleEntry) else item
            for item in schedule
        ]
        self.remove_profile(name)
        registration = _Registration(job_ids=[], triggers=triggers, post=post)
        self._profiles[name] = registration
        for index, (trigger, mode) in enumerate(triggers):
            # "/" cannot occur in a profile name, so the prefix is unambiguous ("kas-1/" never
            # matches "kas-10/..."); the zero-padded index keeps the ids in entry order.
            job_id = f"{name}/{index:04d}"
            self._scheduler.add_job(
                self._fire,
                trigger=trigger,
                args=(name, registration, mode),
                id=job_id,
                name=f"mode switch {name} -> {mode}",
                misfire_grace_time=None,
                coalesce=True,
                max_instances=1,
                replace_existing=True,
            )
            registration.job_ids.append(job_id)

    def remove_profile(self, name: str) -> None:
        """Remove the profile's jobs; no ``post`` for it happens after this returns.

        Unknown names are ignored.
        """
        registration = self._profiles.pop(name, None)
        if registration is None:
            return
        for job_id in registration.job_ids:
            # A job may already be gone (e.g. the scheduler was shut down); that is fine.
            if self._scheduler.get_job(job_id) is not None:
                self._scheduler.remove_job(job_id)

    async def _fire(self, name: str, registration: _Registration, own_mode: str) -> None:
        # A run already handed to the executor can still arrive after remove_profile / a reload
        # / shutdown; the identity check drops it so a removed profile never sees a post.
        if self._profiles.get(name) is not registration:
            return
        now = _as_utc(self._clock())
        registration.post(_mode_from(registration.triggers, own_mode, now))
