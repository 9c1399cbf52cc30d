"""What the kill-switch rules measure over time: equity peak, the day's start, book age, rate.

:class:`RiskTracker` is a frozen value the engine replaces on every event; :func:`measure`
turns it and the current numbers into the :class:`~kasmm.core.risk.RiskInputs` the pure risk
gate reads. Calendar days come from the wall clock (:class:`LocalDay`); every age and window is
on the interval clock.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from decimal import Decimal
from zoneinfo import ZoneInfo

#: The runaway-action guard counts the actions of this many seconds.
ACTION_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True, init=False)
class RiskTracker:
    """The running figures behind the rules (``None``: not known yet)."""

    peak_equity: Decimal | None = None
    day_key: str | None = None
    day_start_equity: Decimal | None = None
    previous_mid: Decimal | None = None
    #: Interval-clock time the book last *changed* (a well-formed book whose levels differ from
    #: the one before): what ``stale_book`` measures. A feed that keeps repeating the same book
    #: (a stalled websocket re-sent, a frozen REST answer) is stale however often it arrives.
    last_book_at: float | None = None
    #: ``(time, actions)`` of each round that sent order actions in the last
    #: ``ACTION_WINDOW_S`` (interval clock), oldest first: one entry per round, not per
    #: action, so a busy bot's window stays short.
    action_rounds: tuple[tuple[float, int], ...] = ()
    #: The sum of the actions in ``action_rounds``.
    actions_in_window: int = 0

    def __init__(
        self,
        peak_equity: Decimal | None = None,
        day_key: str | None = None,
        day_start_equity: Decimal | None = None,
        previous_mid: Decimal | None = None,
        last_book_at: float | None = None,
        action_rounds: tuple[tuple[float, int], ...] = (),
        actions_in_window: int = 0,
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "peak_equity", peak_equity)
        object.__setattr__(self, "day_key", day_key)
        object.__setattr__(self, "day_start_equity", day_start_equity)
        object.__setattr__(self, "previous_mid", previous_mid)
        object.__setattr__(self, "last_book_at", last_book_at)
        object.__setattr__(self, "action_rounds", action_rounds)
        object.__setattr__(self, "actions_in_window", actions_in_window)

    def booked(self, previous_mid: Decimal | None, now: float, changed: bool = True) -> RiskTracker:
        """A new book arrived at ``now``; the one before had mid ``previous_mid``.

        :param changed: its levels differ from the previous book's (else the book's age, what
            ``stale_book`` reads, keeps counting from the last change).
        """
        mid = previous_mid if previous_mid is not None else self.previous_mid
        # The constructor, not dataclasses.replace: this runs on every book (replace is ~4x
        # slower), as does acted() on every round.
        return RiskTracker(
            self.peak_equity,
            self.day_key,
            self.day_start_equity,
            mid,
            now if changed or self.last_book_at is None else self.last_book_at,
            self.action_rounds,
            self.actions_in_window,
        )

    def acted(self, now: float, count: int) -> RiskTracker:
        """``count`` order actions went out at ``now``."""
        return RiskTracker(
            self.peak_equity,
            self.day_key,
            self.day_start_equity,
            self.previous_mid,
            self.last_book_at,
            # One tuple copy: mypyc builds (*rounds, new) as a list, extended, appended and
            # converted (an as2008 path acts every step, and its window holds every round).
            self.action_rounds + ((now, count),),  # noqa: RUF005
            self.actions_in_window + count,
        )

    def transferred(self, value: Decimal) -> RiskTracker:
        """``value`` (quote) left the account as a transfer (negative: came back): the peak
        and the day's start forget it, so drawdown and the day's PnL measure trading only."""
        peak, start = self.peak_equity, self.day_start_equity
        return replace(
            self,
            peak_equity=None if peak is None else peak - value,
            day_start_equity=None if start is None else start - value,
        )

    def rebased(self, equity: Decimal | None) -> RiskTracker:
        """An operator reset: drawdown is measured from ``equity`` on."""
        return replace(self, peak_equity=equity)


@dataclass(frozen=True, slots=True, init=False)
class Measured:
    """The tracker after one observation, and the figures the rules read."""

    tracker: RiskTracker
    equity: Decimal | None
    daily_pnl: Decimal | None
    actions_last_minute: int

    def __init__(
        self,
        tracker: RiskTracker,
        equity: Decimal | None,
        daily_pnl: Decimal | None,
        actions_last_minute: int,
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "tracker", tracker)
        object.__setattr__(self, "equity", equity)
        object.__setattr__(self, "daily_pnl", daily_pnl)
        object.__setattr__(self, "actions_last_minute", actions_last_minute)


def measure(
    tracker: RiskTracker, now: float, day: str, equity: Decimal | None, daily: bool = True
) -> Measured:
    """Fold the current ``equity`` (and the local ``day``) into the tracker.

    The peak only rises; a new local day starts the daily figure from the current equity;
    actions older than the window drop out.

    :param daily: compute the day's PnL (``daily_pnl``; else ``None``): only the daily-loss
        rule reads it, and it costs a ``Decimal`` subtraction on every decision.
    """
    peak, day_key, day_start = tracker.peak_equity, tracker.day_key, tracker.day_start_equity
    changed = False  # a new tracker only when a figure moved (this runs on every decision)
    if equity is not None:
        if peak is None or equity > peak:
            peak, changed = equity, True
        if day != day_key:
            day_key, day_start, changed = day, equity, True
    pnl = equity - day_start if daily and equity is not None and day_start is not None else None
    rounds, actions = tracker.action_rounds, tracker.actions_in_window
    cutoff = now - ACTION_WINDOW_S
    # Times never decrease (interval clock): the rounds to drop are a prefix.
    keep = 0
    while keep < len(rounds) and rounds[keep][0] <= cutoff:
        actions -= rounds[keep][1]
        keep += 1
    if keep:
        rounds, changed = rounds[keep:], True
    new = tracker
    if changed:
        new = RiskTracker(
            peak, day_key, day_start, tracker.previous_mid, tracker.last_book_at, rounds, actions
        )
    return Measured(new, equity, pnl, actions)


class LocalDay:
    """The local date of a wall-clock time in one time zone, cached until local midnight
    (it is asked on every event, on the book -> order path)."""

    __slots__ = ("_day", "_end", "_start", "_tz")

    def __init__(self, timezone: str) -> None:
        self._tz = ZoneInfo(timezone)
        # The cached day and its bounds [start, end) in epoch seconds, as plain floats (a
        # tuple's would be boxed objects in the compiled build); empty until the first call.
        self._start, self._end, self._day = math.inf, -math.inf, ""

    def of(self, wall: float) -> str:
        """ISO date of ``wall`` (epoch seconds) in the zone."""
        if self._start <= wall < self._end:
            return self._day
        local = dt.datetime.fromtimestamp(wall, self._tz)
        start = dt.datetime(local.year, local.month, local.day, tzinfo=self._tz)
        end = start + dt.timedelta(days=1)
        day = local.date().isoformat()
        self._start, self._end, self._day = start.timestamp(), end.timestamp(), day
        return day
