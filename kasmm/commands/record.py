"""``kasmm record PROFILE --out FILE --duration S``: record a market for replay backtests."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from kasmm.backtest.record import DEFAULT_DEPTH, feed_for_profile, record
from kasmm.config.loader import load_one_for_command
from kasmm.errors import KasmmError

__all__ = ["record_command"]


def record_command(
    path: Path,
    *,
    out: Path,
    duration: float,
    depth: int | None = DEFAULT_DEPTH,
    name: str | None = None,
) -> int:
    """Implement ``kasmm record``: exit 0 when something was recorded, 1 on errors."""
    loaded = load_one_for_command(path, name)
    if isinstance(loaded, int):
        return loaded
    profile = loaded
    try:
        feed, source = feed_for_profile(profile)
        with open(out, "w", encoding="utf-8", newline="") as handle:
            stats = anyio.run(
                lambda: record(feed, handle, duration_s=duration, depth=depth, source=source)
            )
    except (KasmmError, OSError) as exc:
        print(f"{path}: {profile.name}: {exc}", file=sys.stderr)
        return 1
    print(
        f"recorded {stats.books} books and {stats.trades} trades of {stats.symbol} "
        f"({stats.rows} rows) from {stats.source} to {out}"
    )
    return 0 if stats.books > 0 else 1
