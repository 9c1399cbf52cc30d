"""A portfolio's count of its members' settlement sweeps, in the shared ledger.

A member's bot books a sweep of its account as a transfer (``transfers``, one row per profile,
sweep and direction); the portfolio manager then takes its value off the group's peak and day
start (:mod:`kasmm.core.group_transfers`). Each count is one row here, written in the same
transaction as the lowering of the group's stored peak (``equity_peaks`` under
``portfolio:<name>``), so a crash never lowers it twice nor forgets that it did. The rows also
give a restart the day start's part (the transfers after the snapshot it comes from) and the
report the points where the group's running peak falls.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from kasmm.store.ledger import Ledger
from kasmm.store.records import decode_decimal, encode_decimal

__all__ = ["GroupTransfer", "count_group_transfers", "group_transfers"]


@dataclass(frozen=True, slots=True)
class GroupTransfer:
    """The group counted ``member``'s sweep ``key`` (``direction``): ``value`` in quote left
    the group's accounts (negative: came back) at wall time ``ts``."""

    member: str
    key: str
    direction: str
    value: Decimal
    ts: float


def count_group_transfers(
    ledger: Ledger, portfolio: str, items: Sequence[GroupTransfer], *, after_peak_only: bool
) -> list[GroupTransfer]:
    """Record the group's count of ``items`` and lower its stored peak by each new one's value,
    in one transaction; return those not counted before.

    :param portfolio: the group's ledger key (``portfolio:<name>``).
    :param after_peak_only: lower the peak only by transfers after the stored peak's time (a
        restart catching up on bookings it did not count live: one before the peak is in the
        balances the peak was measured from). Live, each is new and the peak predates it.
    """
    with ledger.transaction() as conn:
        new = [t for t in items if _insert(conn, portfolio, t)]
        peak = conn.execute(
            "SELECT equity, ts FROM equity_peaks WHERE profile = ?", (portfolio,)
        ).fetchone()
        if peak is not None:
            at = float(peak[1])
            value = sum(
                (t.value for t in new if not after_peak_only or t.ts > at), start=Decimal(0)
            )
            if value:
                conn.execute(
                    "UPDATE equity_peaks SET equity = ? WHERE profile = ?",
                    (encode_decimal(decode_decimal(peak[0]) - value), portfolio),
                )
        return new


def _insert(conn: sqlite3.Connection, portfolio: str, t: GroupTransfer) -> bool:
    cur = conn.execute(
        "INSERT OR IGNORE INTO group_transfers "
        "(portfolio, member, sweep_key, direction, value, ts) VALUES (?, ?, ?, ?, ?, ?)",
        (portfolio, t.member, t.key, t.direction, encode_decimal(t.value), t.ts),
    )
    return cur.rowcount == 1


def group_transfers(ledger: Ledger, portfolio: str) -> list[GroupTransfer]:
    """Every transfer the group counted, by time."""
    with ledger.snapshot() as conn:
        rows = conn.execute(
            "SELECT member, sweep_key, direction, value, ts FROM group_transfers "
            "WHERE portfolio = ? ORDER BY ts, member, sweep_key, direction",
            (portfolio,),
        ).fetchall()
    return [GroupTransfer(m, k, d, decode_decimal(v), float(ts)) for m, k, d, v, ts in rows]
