"""The profile's own quotes over time, from the ledger's ``orders`` table.

:class:`~kasmm.store.Ledger` has no call listing orders by time, so this reads the table through
a separate read-only connection (the report never writes). Each order rests from its creation
to its last recorded status when that status is final (filled, cancelled); an order still live in
the ledger rests until the end given (the profile's last recorded activity).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from kasmm.core.types import Side
from kasmm.store import LIVE_STATUSES
from kasmm.store.records import decode_decimal

_LIVE = tuple(sorted(s.value for s in LIVE_STATUSES))

_SQL = f"""
SELECT side, price, level, created_ts, status, status_ts FROM orders
WHERE profile = ? AND status != 'rejected' AND created_ts <= ?
  AND (status IN ({", ".join("?" for _ in _LIVE)}) OR status_ts >= ?)
ORDER BY created_ts, rowid
"""


@dataclass(frozen=True, slots=True)
class RestingOrder:
    """One of the profile's orders and the time it rested (clipped to the period)."""

    side: Side
    price: Decimal
    level: int
    start: float
    end: float
    status: str


def resting_orders(
    path: Path, profile: str, since: float | None, until: float
) -> list[RestingOrder]:
    """Orders of ``profile`` that rested at some time in ``[since, until]``, oldest first.

    Rejected orders never rested and are left out.
    """
    uri = path.resolve().as_uri() + "?mode=ro"
    low = float("-inf") if since is None else since
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        rows = conn.execute(_SQL, (profile, until, *_LIVE, low)).fetchall()
    out: list[RestingOrder] = []
    for side, price, level, created, status, status_ts in rows:
        end = until if status in _LIVE else min(float(status_ts), until)
        start = max(float(created), low)
        if end < start:
            continue
        out.append(RestingOrder(Side(side), decode_decimal(price), int(level), start, end, status))
    return out
