"""SQL of the mode and risk event journals, over a connection the caller holds (and its lock).

A ``trip`` whose action is ``halt`` latches: it stays the active halt until a later ``reset``
event of the same profile, whatever ``clear`` events follow (a halt needs an operator). Row ids
are AUTOINCREMENT, so "later" is insertion order, never reused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from kasmm.store.records import (
    MODE_SOURCES,
    RISK_KINDS,
    HaltRecord,
    ModeChange,
    RiskEvent,
    decode_details,
    encode_details,
)

_HALT_SQL = """
SELECT ts, rule, details FROM risk_events
WHERE profile = ? AND kind = 'trip' AND action = 'halt'
  AND id > COALESCE((SELECT MAX(id) FROM risk_events WHERE profile = ? AND kind = 'reset'), 0)
ORDER BY id DESC LIMIT 1
"""


def insert_mode(conn: sqlite3.Connection, profile: str, ts: float, mode: str, source: str) -> None:
    """Append a mode switch. ``source``: ``start``, ``schedule`` or ``operator``."""
    if source not in MODE_SOURCES:
        raise ValueError(f"mode source must be one of {sorted(MODE_SOURCES)}, got {source!r}")
    conn.execute(
        "INSERT INTO modes (profile, ts, mode, source) VALUES (?, ?, ?, ?)",
        (profile, ts, mode, source),
    )


def select_modes(conn: sqlite3.Connection, profile: str) -> list[ModeChange]:
    """Every mode switch of ``profile``, oldest first."""
    rows = conn.execute(
        "SELECT ts, mode, source FROM modes WHERE profile = ? ORDER BY id", (profile,)
    ).fetchall()
    return [ModeChange(ts, mode, source) for ts, mode, source in rows]


_INSERT_SQL = (
    "INSERT INTO risk_events (profile, ts, kind, rule, action, state, details)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def insert_risk_event(
    conn: sqlite3.Connection,
    profile: str,
    ts: float,
    kind: str,
    rule: str,
    action: str,
    state: str,
    details: Mapping[str, object],
) -> None:
    """Append one risk event.

    :raises ValueError: for a kind other than ``trip``, ``clear``, ``reset``.
    :raises TypeError: for details JSON cannot hold.
    """
    if kind not in RISK_KINDS:
        raise ValueError(f"risk event kind must be one of {sorted(RISK_KINDS)}, got {kind!r}")
    payload = encode_details(details)
    conn.execute(_INSERT_SQL, (profile, ts, kind, rule, action, state, payload))


def select_active_halt(conn: sqlite3.Connection, profile: str) -> HaltRecord | None:
    """The latest halt trip of ``profile`` not followed by a reset, or None."""
    row = conn.execute(_HALT_SQL, (profile, profile)).fetchone()
    return None if row is None else HaltRecord(row[0], row[1], decode_details(row[2]))


def insert_reset(conn: sqlite3.Connection, profile: str, ts: float, operator: str) -> bool:
    """Record an operator reset of the active halt; False (nothing written) when none is active.

    Call inside a write transaction so the check and the insert are one step.
    """
    if not operator:
        raise ValueError("reset needs the operator's name")
    halt = select_active_halt(conn, profile)
    if halt is None:
        return False
    details = {"operator": operator, "halt_ts": halt.ts, "halt_rule": halt.rule}
    insert_risk_event(conn, profile, ts, "reset", halt.rule, "reset", "active", details)
    return True


def select_risk_events(conn: sqlite3.Connection, profile: str) -> list[RiskEvent]:
    """Every risk event of ``profile``, oldest first."""
    rows = conn.execute(
        "SELECT ts, kind, rule, action, state, details FROM risk_events"
        " WHERE profile = ? ORDER BY id",
        (profile,),
    ).fetchall()
    return [
        RiskEvent(ts, kind, rule, action, state, decode_details(details))
        for ts, kind, rule, action, state, details in rows
    ]
