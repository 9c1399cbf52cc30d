"""Market-making KPI counters in the ledger, stored with each equity snapshot.

A bot's KPI integrals (:class:`~kasmm.core.kpis.KpiState`: seconds quoted per side, spread and
depth integrals) and its order counters are cumulative since *that bot* started; so are the
seconds its obligations were met and observed, and the markout sums of its fills per horizon
(:class:`~kasmm.core.markout.HorizonMarkout`, one ``kpi_markouts`` row per horizon, schema 7).
A restart starts them from zero under a new run id, so a per-day figure is the sum of the
increments between consecutive rows of one run (:func:`kasmm.report.mm.daily_kpis`); the first
row of a run counts from zero.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from kasmm.core.markout import HorizonMarkout
from kasmm.store.records import decode_decimal, encode_decimal

__all__ = ["KpiRecord", "insert_kpis", "select_kpis"]

_COLUMNS = (
    "ts, run_id, total_s, both_s, bid_s, ask_s, spread_bps_s, depth_05_s, depth_1_s, depth_2_s,"
    " placed_size, filled_size, order_actions, fills, met_s, observed_s, required, breached"
)
_MARKOUT_COLUMNS = "horizon_s, fills, bps_sum, size_bps_sum, size, quote"


@dataclass(frozen=True, slots=True)
class KpiRecord:
    """One profile's cumulative KPI counters at wall time ``ts`` (this run's)."""

    ts: float
    run_id: str
    total_s: float
    both_s: float
    bid_s: float
    ask_s: float
    #: Integral of the own spread (bps x s) while both sides were quoted.
    spread_bps_s: float
    #: Integral of the own depth (quote x s) within 0.5 %, 1 % and 2 % of the mid.
    depth_s: tuple[float, float, float]
    placed_size: float
    filled_size: float
    order_actions: int
    fills: int
    #: Seconds the obligations were met / observed (``None``: the profile has none).
    met_s: float | None = None
    observed_s: float | None = None
    #: The required share then, and whether the engine found a window breached.
    required: float | None = None
    breached: bool | None = None
    #: The markout sums of this run's fills, one per horizon (empty: none measured, or a row
    #: from before schema 7).
    markouts: tuple[HorizonMarkout, ...] = ()


def insert_kpis(conn: sqlite3.Connection, profile: str, r: KpiRecord) -> None:
    """Store ``r`` for ``profile`` (its markout rows in the same transaction as the caller's)."""
    cursor = conn.execute(
        f"INSERT INTO kpi_snapshots (profile, {_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            profile, r.ts, r.run_id, r.total_s, r.both_s, r.bid_s, r.ask_s, r.spread_bps_s,
            *r.depth_s, r.placed_size, r.filled_size, r.order_actions, r.fills, r.met_s,
            r.observed_s, r.required, None if r.breached is None else int(r.breached),
        ),
    )  # fmt: skip
    if r.markouts:
        kpi_id = cursor.lastrowid
        conn.executemany(
            f"INSERT INTO kpi_markouts (kpi_id, {_MARKOUT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (kpi_id, m.horizon_s, m.fills, m.bps_sum, m.size_bps_sum,
                 encode_decimal(m.size), encode_decimal(m.quote))
                for m in r.markouts
            ],
        )  # fmt: skip


def select_kpis(
    conn: sqlite3.Connection, profile: str, since: float | None = None, until: float | None = None
) -> list[KpiRecord]:
    """``profile``'s records in insertion order, optionally only ``since <= ts <= until``."""
    bounds = (profile, -1e300 if since is None else since, 1e300 if until is None else until)
    rows = conn.execute(
        f"SELECT id, {_COLUMNS} FROM kpi_snapshots WHERE profile = ? AND ts >= ? AND ts <= ?"
        " ORDER BY id",
        bounds,
    ).fetchall()
    markouts: dict[int, list[HorizonMarkout]] = {}
    for kpi_id, horizon, fills, bps, size_bps, size, quote in conn.execute(
        "SELECT m.kpi_id, m.horizon_s, m.fills, m.bps_sum, m.size_bps_sum, m.size, m.quote"
        " FROM kpi_markouts m JOIN kpi_snapshots k ON k.id = m.kpi_id"
        " WHERE k.profile = ? AND k.ts >= ? AND k.ts <= ? ORDER BY m.kpi_id, m.horizon_s",
        bounds,
    ):
        markouts.setdefault(kpi_id, []).append(
            HorizonMarkout(
                horizon, fills, bps, size_bps, decode_decimal(size), decode_decimal(quote)
            )
        )
    return [
        KpiRecord(
            ts, run_id, total, both, bid, ask, spread, (d05, d1, d2), placed, filled, actions,
            fills, met, observed, required, None if breached is None else bool(breached),
            tuple(markouts.get(kpi_id, ())),
        )
        for (
            kpi_id, ts, run_id, total, both, bid, ask, spread, d05, d1, d2, placed, filled,
            actions, fills, met, observed, required, breached,
        ) in rows
    ]  # fmt: skip
