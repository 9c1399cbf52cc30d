"""The report's period: ``--since`` parsing and UTC time formatting."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_EPOCH = re.compile(r"\d+(?:\.\d+)?")


class PeriodError(ValueError):
    """A ``--since`` value that is neither a duration, epoch seconds nor an ISO 8601 time."""


def parse_since(text: str, now: float) -> float:
    """Epoch seconds of the period's start.

    * a duration back from ``now``: ``90s``, ``30m``, ``24h``, ``7d``, ``2w`` or a sum of them
      (``1h30m``);
    * epoch seconds: ``1714560000`` or ``1714560000.5``;
    * an ISO 8601 date or time: ``2024-05-01``, ``2024-05-01T12:00``, ``2024-05-01T12:00:00Z``,
      ``2024-05-01T14:00+02:00``. Without an offset the time is UTC.

    :raises PeriodError: for anything else, or a start after ``now``.
    """
    value = text.strip().lower()
    if not value:
        raise PeriodError("empty --since")
    if _DURATION.fullmatch(value):
        seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(value))
        since = now - seconds
    elif _EPOCH.fullmatch(value):
        since = float(value)
    else:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise PeriodError(
                f"--since {text!r}: expected a duration (24h, 90m, 7d, 1h30m), epoch seconds "
                "or an ISO 8601 time (2024-05-01T12:00:00Z)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        since = moment.timestamp()
    if not math.isfinite(since):
        raise PeriodError(f"--since {text!r}: not a finite time")
    if since > now:
        raise PeriodError(f"--since {text!r} is in the future ({fmt_utc(since)})")
    return since


def fmt_utc(ts: float, *, seconds: bool = True) -> str:
    """``2024-05-01 12:00:00 UTC`` for epoch seconds ``ts``."""
    pattern = "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    try:
        return datetime.fromtimestamp(ts, UTC).strftime(pattern)
    except (OverflowError, OSError, ValueError):
        return f"epoch {ts!r}"  # outside what datetime can show
