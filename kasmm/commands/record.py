"""``kasmm record PROFILE --out FILE --duration S``: record a market for replay backtests.

The recording goes to a hidden file next to ``--out`` and takes its name only when it holds
at least one book: a failed recording leaves no partial file, and never replaces an earlier
recording of the same name.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio

from kasmm.backtest.record import DEFAULT_DEPTH, feed_for_profile, record
from kasmm.commands.failure import failure_reason
from kasmm.config.loader import load_one_for_command

__all__ = ["record_command"]


def record_command(
    path: Path,
    *,
    out: Path,
    duration: float,
    depth: int | None = DEFAULT_DEPTH,
    name: str | None = None,
) -> int:
    """Implement ``kasmm record``: exit 0 when something was recorded, 1 on errors (and then
    ``out`` is left as it was)."""
    loaded = load_one_for_command(path, name)
    if isinstance(loaded, int):
        return loaded
    profile = loaded
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    kept = False
    try:
        feed, source = feed_for_profile(profile)
        with open(partial, "w", encoding="utf-8", newline="") as handle:
            stats = anyio.run(
                lambda: record(feed, handle, duration_s=duration, depth=depth, source=source)
            )
        if stats.books == 0:
            print(
                f"{path}: {profile.name}: no order book arrived in {duration:g} s; "
                f"nothing written to {out}",
                file=sys.stderr,
            )
            return 1
        os.replace(partial, out)
        kept = True
    except Exception as exc:  # one line, whatever failed (ExceptionGroup included)
        print(f"{path}: {profile.name}: {failure_reason(exc)}", file=sys.stderr)
        return 1
    finally:
        if not kept:
            partial.unlink(missing_ok=True)
    print(
        f"recorded {stats.books} books and {stats.trades} trades of {stats.symbol} "
        f"({stats.rows} rows) from {stats.source} to {out}"
    )
    return 0
