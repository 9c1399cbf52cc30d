"""Where notifications come from: the supervisor's state, read the way ``/status`` reads it.

The supervisor already knows every profile's state (runner and bot view, combined by
:func:`~kasmm.supervisor.state.displayed_state`) and its config errors. :func:`watch_supervisor`
reads them once per ``poll_s`` into a :class:`Snapshot` and :func:`transitions`, a pure
function, turns the difference from the previous one into alerts: a profile that became
``halted`` or ``paused``, ``failed``, blocked by another process's lock, back from ``failed``;
a profile whose market-making obligations became breached, or met again (``obligation_breach``;
the bot's own verdict over its rolling window); config errors that were not there before.
Nothing in the bot is touched or hooked, and a supervisor without notification targets reads
nothing at all.

:func:`daily_summaries` sends one message a day at the configured local time, on the wall
clock, through the DST-safe cron trigger of :mod:`kasmm.schedule`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

import anyio
import anyio.lowlevel
import structlog

from kasmm.alerts import events
from kasmm.alerts.events import Alert, ProfileSummary
from kasmm.config.notify import DailySummary
from kasmm.schedule import compile_cron
from kasmm.supervisor.state import ProfileState, displayed_state

if TYPE_CHECKING:
    from kasmm.alerts.notifier import Notifier
    from kasmm.bot import BotView
    from kasmm.supervisor.runner import ProfileRunner

log = structlog.get_logger("kasmm.alerts")

__all__ = [
    "ProfileSnap",
    "Snapshot",
    "daily_summaries",
    "next_summary_at",
    "obligation_breached",
    "obligation_met",
    "snapshot",
    "snapshot_sliced",
    "transitions",
    "watch_supervisor",
]

#: States in which a profile's bot runs (a failed profile seen in one has recovered).
RUNNING: frozenset[str] = frozenset(
    {ProfileState.QUOTING, ProfileState.REDUCE_ONLY, ProfileState.PAUSED, ProfileState.HALTED}
)
#: The runner's error text when another process holds the profile's lock.
_LOCK_BUSY = "LockBusy:"
#: Profiles read between two yields to the event loop (~1 ms of work).
_PER_STEP = 40


class Watched(Protocol):
    """What the watcher reads of a supervisor."""

    @property
    def slots(self) -> Mapping[str, ProfileRunner]: ...
    @property
    def issues(self) -> Sequence[object]: ...
    @property
    def directory_missing(self) -> bool: ...
    @property
    def directory(self) -> object: ...


@dataclass(frozen=True, slots=True)
class ProfileSnap:
    """One profile as the watcher saw it."""

    state: str
    halt_reason: str | None = None
    pause_reason: str | None = None
    last_error: str | None = None
    #: Failed and not yet seen running again (carried from snapshot to snapshot).
    down: bool = False
    #: The bot's obligation verdict: breached or not (``None``: no obligations, or no bot
    #: view to read, e.g. while restarting: a new bot's verdict starts afresh).
    obligation_breached: bool | None = None
    #: Its compliance over the window, the share required and the window (for the message).
    obligation_share: float | None = None
    obligation_required: float | None = None
    obligation_window_s: float | None = None

    @property
    def lock_busy(self) -> bool:
        return (self.last_error or "").startswith(_LOCK_BUSY)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The supervisor as the watcher saw it."""

    profiles: Mapping[str, ProfileSnap] = field(default_factory=dict)
    #: Config errors (``file:line:col: ...``), and a missing profile directory.
    issues: frozenset[str] = frozenset()


def transitions(prev: Snapshot | None, cur: Snapshot) -> tuple[list[Alert], Snapshot]:
    """The alerts for what changed from ``prev`` to ``cur``, and ``cur`` with the ``down``
    flags carried over (pass it as ``prev`` next time).

    ``prev`` is ``None`` on the first look: what is already wrong then (a restored halt, a
    broken file) is reported once.
    """
    out: list[Alert] = []
    carried: dict[str, ProfileSnap] = {}
    for name, now in cur.profiles.items():
        before = prev.profiles.get(name) if prev is not None else None
        was = before.state if before is not None else None
        if now.state == ProfileState.HALTED and was != ProfileState.HALTED:
            out.append(events.halted(name, now.halt_reason))
        if now.state == ProfileState.PAUSED and was != ProfileState.PAUSED:
            out.append(events.paused(name, now.pause_reason))
        if now.state == ProfileState.FAILED and was != ProfileState.FAILED:
            out.append(events.profile_failed(name, now.last_error))
        if now.lock_busy and not (before is not None and before.lock_busy):
            out.append(events.lock_busy(name, now.last_error))
        breach = now.obligation_breached
        had = before.obligation_breached if before is not None else None
        if breach is True and had is not True:
            out.append(obligation_breached(name, now))
        elif breach is False and had is True:  # the same bot's window recovered
            out.append(obligation_met(name, now))
        was_down = before is not None and before.down
        if was_down and now.state in RUNNING:
            out.append(events.profile_recovered(name, now.state))
        down = now.state == ProfileState.FAILED or (was_down and now.state not in RUNNING)
        carried[name] = replace(now, down=down)
    new_issues = cur.issues - (prev.issues if prev is not None else frozenset())
    if new_issues:
        out.append(events.config_error(sorted(new_issues)))
    return out, Snapshot(carried, cur.issues)


def snapshot(sup: Watched) -> Snapshot:
    """Read every profile's state (one bot view each) and the config errors."""
    profiles: dict[str, ProfileSnap] = {}
    for name, runner in list(sup.slots.items()):
        _read(profiles, name, runner)
    return _with_issues(sup, profiles)


async def snapshot_sliced(sup: Watched, per_step: int = _PER_STEP) -> Snapshot:
    """:func:`snapshot`, yielding to the event loop every ``per_step`` profiles (a bot view
    costs ~27 us: 2,000 profiles read in one go would hold the loop for ~55 ms)."""
    profiles: dict[str, ProfileSnap] = {}
    for i, (name, runner) in enumerate(list(sup.slots.items()), 1):
        _read(profiles, name, runner)
        if i % per_step == 0:
            await anyio.lowlevel.checkpoint()
    return _with_issues(sup, profiles)


def _read(profiles: dict[str, ProfileSnap], name: str, runner: ProfileRunner) -> None:
    try:
        profiles[name] = _profile(runner)
    except Exception as exc:  # one unreadable profile must not blind the watcher
        log.warning("notify_watch_failed", profile=name, error=f"{type(exc).__name__}: {exc}")


def _with_issues(sup: Watched, profiles: dict[str, ProfileSnap]) -> Snapshot:
    issues = {str(issue) for issue in sup.issues}
    if sup.directory_missing:
        issues.add(f"profile directory {sup.directory} is missing; profiles keep running")
    return Snapshot(profiles, frozenset(issues))


def _profile(runner: ProfileRunner) -> ProfileSnap:
    bot = runner.bot
    view = bot.view() if bot is not None and runner.state not in _IDLE else None
    if view is None:
        state = displayed_state(runner.state, None, None)
        return ProfileSnap(state.value, last_error=runner.last_error)
    state = displayed_state(runner.state, view.state.value, view.trading_state.value)
    pause = next((e for e in view.engaged if e.action == "pause"), None)
    ob = view.obligation
    return ProfileSnap(
        state.value,
        halt_reason=view.halt_reason,
        pause_reason=None if pause is None else f"{pause.rule}: {pause.why}",
        last_error=runner.last_error,
        obligation_breached=None if ob is None else ob.breached,
        obligation_share=None if ob is None else ob.share,
        obligation_required=None if ob is None else ob.required,
        obligation_window_s=None if ob is None else ob.window_s,
    )


# --- obligation alerts (built here from the watcher's snapshot) ----------------------------


def _pct(share: float | None) -> str:
    return "an unknown share" if share is None else f"{share * 100:.1f}%"


def _window(seconds: float | None) -> str:
    if seconds is None:
        return "its window"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def obligation_breached(profile: str, snap: ProfileSnap) -> Alert:
    """``profile`` met its market-making obligations for less than the required share of a
    whole window."""
    return Alert(
        "obligation_breach",
        f"kasmm: {profile} breaches its obligations",
        f"{profile} met its market-making obligations (both sides quoted, spread, depth) "
        f"{_pct(snap.obligation_share)} of the last {_window(snap.obligation_window_s)}, "
        f"below the required {_pct(snap.obligation_required)}.",
        ("obligation_breach", profile, "breached"),
    )


def obligation_met(profile: str, snap: ProfileSnap) -> Alert:
    """``profile``'s compliance is back at or above the required share."""
    return Alert(
        "obligation_breach",
        f"kasmm: {profile} meets its obligations again",
        f"{profile} met its market-making obligations {_pct(snap.obligation_share)} of the "
        f"last {_window(snap.obligation_window_s)} (required "
        f"{_pct(snap.obligation_required)}).",
        ("obligation_breach", profile, "met"),
    )


#: Runner states whose display ignores the bot (no view is built for them).
_IDLE = frozenset({ProfileState.RESTARTING, ProfileState.FAILED, ProfileState.STOPPED})


async def watch_supervisor(sup: Watched, notifier: Notifier, *, poll_s: float = 1.0) -> None:
    """Publish the alerts of every change, polling every ``poll_s`` (real time: the state it
    reads changes in the real world). Reads nothing while no target is configured."""
    prev: Snapshot | None = None
    while True:
        if notifier.active:
            try:
                alerts, prev = transitions(prev, await snapshot_sliced(sup))
                for alert in alerts:
                    if notifier.wants(alert.kind):
                        notifier.publish(alert)
            except Exception as exc:
                log.error("notify_watch_failed", error=f"{type(exc).__name__}: {exc}")
        await anyio.sleep(poll_s)


# --- the daily summary ---------------------------------------------------------------------


def next_summary_at(summary: DailySummary, now: float) -> float:
    """The first summary time strictly after ``now`` (Unix seconds), DST-safe."""
    hour, minute = summary.at.split(":")
    trigger = compile_cron(f"{int(minute)} {int(hour)} * * *", summary.timezone)
    after = datetime.fromtimestamp(now, tz=UTC) + timedelta(microseconds=1)
    fire = trigger.get_next_fire_time(None, after)
    assert fire is not None  # a daily cron always fires
    return float(fire.timestamp())


def summary_rows(
    sup: Watched, previous: Mapping[str, Decimal] | None = None
) -> list[ProfileSummary]:
    """One :class:`ProfileSummary` per profile (net PnL change against ``previous``)."""
    rows: list[ProfileSummary] = []
    for name in sorted(sup.slots):
        runner = sup.slots[name]
        bot = runner.bot
        view: BotView | None = bot.view() if bot is not None else None
        if view is None:
            state = displayed_state(runner.state, None, None).value
            rows.append(ProfileSummary(name, state, runner.loaded.profile.symbol.split("/")[1]))
            continue
        state = displayed_state(runner.state, view.state.value, view.trading_state.value).value
        net = view.net_pnl
        before = (previous or {}).get(name)
        rows.append(
            ProfileSummary(
                name,
                state,
                view.quote,
                net_pnl=net,
                change=None if before is None else net - before,
                fills=view.pnl.buy_count + view.pnl.sell_count,
                fees=view.pnl.fees,
                inventory_base=view.inventory_base,
                halt_reason=view.halt_reason,
            )
        )
    return rows


async def daily_summaries(
    sup: Watched,
    notifier: Notifier,
    *,
    wall_clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[object]] = anyio.sleep,
    recheck_s: float = 60.0,
) -> None:
    """Send the daily summary at its local time, until cancelled.

    The configuration is re-read at least every ``recheck_s`` (a reload may add, move or
    remove the summary); a wall clock stepped forward past the time sends it at once.
    """
    key: tuple[str, str] | None = None
    due = 0.0
    last_net: dict[str, Decimal] = {}
    while True:
        cfg = notifier.config
        summary = cfg.events.daily_summary if cfg is not None else None
        if summary is None or not notifier.wants("daily_summary"):
            key = None
            await sleep(recheck_s)
            continue
        now = wall_clock()
        if key != (summary.at, summary.timezone):
            key = (summary.at, summary.timezone)
            due = next_summary_at(summary, now)
        if now < due:
            await sleep(min(due - now, recheck_s))
            continue
        try:
            rows = summary_rows(sup, last_net)
            day = datetime.fromtimestamp(due, tz=ZoneInfo(summary.timezone)).date().isoformat()
            notifier.publish(events.daily_summary(day, rows))
            last_net = {r.name: r.net_pnl for r in rows if r.net_pnl is not None}
        except Exception as exc:
            log.error("daily_summary_failed", error=f"{type(exc).__name__}: {exc}")
        due = next_summary_at(summary, max(now, due))
