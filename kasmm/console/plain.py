"""``kasmm top`` without a full screen: the table, the details and the supervisor, reprinted
every interval (``--plain``, ``TERM=dumb``, or stdout not a terminal)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from kasmm.commands.status import StatusFetchError, render_table
from kasmm.console import rows
from kasmm.console.details import group_detail, profile_detail, supervisor_detail

__all__ = ["render_plain", "run_plain"]


def render_plain(doc: Mapping[str, Any]) -> str:
    """One screen as text: the profile table, each profile's and portfolio's details, the
    supervisor's."""
    parts = [render_table(doc, settlements=False)]  # they are in the supervisor's details
    for row in rows.profiles(doc):
        if row.get("state") != "disabled":
            parts.append("\n".join(profile_detail(doc, row)))
    for group in rows.portfolios(doc):
        parts.append("\n".join(group_detail(group)))
    parts.append("\n".join(supervisor_detail(doc)))
    return "\n\n".join(parts)


def run_plain(
    fetch: Callable[[], dict[str, Any]],
    interval: float,
    *,
    out: TextIO = sys.stdout,
    count: int | None = None,
) -> int:
    """Print :func:`render_plain` every ``interval`` seconds until Ctrl-C (or ``count`` times)."""
    shown = 0
    try:
        while count is None or shown < count:
            if shown:
                time.sleep(interval)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            try:
                text = render_plain(fetch())
            except StatusFetchError as exc:
                text = f"kasmm top: {exc}"
            print(f"--- {stamp} ---\n{text}\n", file=out, flush=True)
            shown += 1
    except KeyboardInterrupt:
        pass
    return 0
