"""What a person watching the console sees without asking: a line per profile every minute,
and a table when the supervisor exits.

Only with the console log format (:func:`kasmm.obs.logs.console_output`): JSON logs feed
machines, which read ``/status`` and ``/metrics`` instead. Both read the ``/status`` document,
so the numbers are the ones ``kasmm status`` shows (money already rounded at the market's
precision).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from kasmm.supervisor.core import Supervisor

log = structlog.get_logger("kasmm.summary")

#: Seconds between two summaries.
SUMMARY_EVERY_S = 60.0

#: (header, /status row key) of the exit table.
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("profile", "name"),
    ("state", "state"),
    ("mode", "mode"),
    ("fills", "fills"),
    ("net", "net_pnl"),
    ("vs hold", "vs_hold"),
    ("orders", "open_orders"),
    ("last error", "last_error"),
)


async def minute_summaries(sup: Supervisor, every_s: float = SUMMARY_EVERY_S) -> None:
    """Log one ``profile_summary`` line per profile every ``every_s`` (interval clock)."""
    clock = sup.clock
    next_at = clock.now() + every_s
    while True:
        await clock.sleep_until(next_at)
        next_at += every_s
        for row in sup.status()["profiles"]:
            log.info("profile_summary", **summary_fields(row))


def summary_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of one profile's summary line (what matters at a glance)."""
    pnl = row.get("pnl") or {}
    fields: dict[str, Any] = {
        "profile": row.get("name"),
        "state": row.get("state"),
        "mode": row.get("mode"),
        "mid": row.get("mid"),
        "bid": row.get("own_bid"),
        "ask": row.get("own_ask"),
        "inventory": row.get("inventory_base"),
        "net": pnl.get("net", row.get("net_pnl")),
        "vs_hold": pnl.get("vs_hold"),
        "fills": row.get("fills"),
        "orders": row.get("open_orders"),
    }
    if row.get("halt_reason"):
        fields["halt"] = row["halt_reason"]
    if row.get("last_error"):
        fields["last_error"] = row["last_error"]
    return {k: v for k, v in fields.items() if v is not None}


def exit_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The profiles as a plain text table (printed when the supervisor exits)."""
    cells = [[header for header, _ in _COLUMNS]]
    for row in rows:
        pnl = row.get("pnl") or {}
        values = {**row, "vs_hold": pnl.get("vs_hold")}
        cells.append(["-" if values.get(key) is None else str(values[key]) for _, key in _COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)
