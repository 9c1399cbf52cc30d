"""Hedges in the ledger: each hedged fill, the hedge orders that offset it, what is left.

A profile A with a ``hedge:`` block has each of its fills offset by immediate-or-cancel orders
of its hedge profile B (:mod:`kasmm.core.hedge`). The ledger keeps:

* ``hedge_starts``: per (A, B), the id of A's last fill before hedging started, so that older
  fills are never hedged (a restart of A does not hedge its history).
* ``hedge_exposures``: one row per A fill taken in, with the base of it not offset yet
  (``residual``; ``open`` is 1 while it is above zero). Written when the hedging task takes
  the fill, updated on every change (netting, settlement).
* ``hedge_links``: one row per (hedge order of B, A fill it covers): the base of the fill the
  order was sent to offset (``planned``), and once settled the base it did offset (``hedged``).
  The order itself is B's usual ``orders`` row (written here, status ``new``, in the same
  transaction as its links, *before* it is sent); its status changes and fills are B's.

A restart never hedges twice: the links say which fills have an order; an order that was sent
but never settled (a crash) is settled from B's stored fills of it
(:func:`recover_exposures`). Money is exact text (:mod:`kasmm.store.records`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from kasmm.core.types import ZERO, ClientOrderId, Fill, Side, TradeId
from kasmm.store.db import FILL_COLUMNS, fill_from
from kasmm.store.records import decode_decimal, encode_decimal

__all__ = [
    "HedgeOrderView",
    "HedgedFill",
    "OpenExposure",
    "ensure_start",
    "hedged_fills",
    "insert_hedge_order",
    "recover_exposures",
    "register_exposure",
    "settle_hedge_order",
    "update_residuals",
]


#: ``FILL_COLUMNS`` of the table aliased ``f`` (a join with columns of the same names).
_F_COLUMNS = ", ".join("f." + c.strip() for c in FILL_COLUMNS.split(","))


@dataclass(frozen=True, slots=True)
class OpenExposure:
    """An A fill with base not offset yet (``residual`` > 0)."""

    trade_id: TradeId
    side: Side
    residual: Decimal


@dataclass(frozen=True, slots=True)
class HedgeOrderView:
    """One hedge order linked to an A fill: B's order row and fills, and its part of the fill."""

    profile: str
    client_id: ClientOrderId
    side: Side
    price: Decimal
    size: Decimal
    status: str
    planned: Decimal
    #: ``None`` until the order is settled.
    hedged: Decimal | None
    fills: tuple[Fill, ...]
    #: The hedge venue's mid when the order was priced (``None``: unknown).
    mid: Decimal | None = None

    @property
    def average_price(self) -> Decimal | None:
        """The average price of its fills (``None``: none)."""
        filled = sum((f.size for f in self.fills), ZERO)
        if filled <= ZERO:
            return None
        return sum((f.size * f.price for f in self.fills), ZERO) / filled

    @property
    def slippage_bps(self) -> float | None:
        """How far its average price was through the mid at send, in bps (+: a cost)."""
        average, mid = self.average_price, self.mid
        if average is None or mid is None or mid <= ZERO:
            return None
        through = average - mid if self.side is Side.BUY else mid - average
        return float(through / mid * 10_000)


@dataclass(frozen=True, slots=True)
class HedgedFill:
    """An A fill, what of it is still unhedged, and the hedge orders linked to it."""

    fill: Fill
    residual: Decimal
    hedges: tuple[HedgeOrderView, ...]


def ensure_start(conn: sqlite3.Connection, profile: str, hedge_profile: str, ts: float) -> int:
    """The fill id hedging of ``profile`` onto ``hedge_profile`` starts after (stored on the
    first call: the profile's last fill then, 0 for none)."""
    conn.execute(
        "INSERT INTO hedge_starts (profile, hedge_profile, since_fill, ts)"
        " SELECT ?, ?, COALESCE(MAX(id), 0), ? FROM fills WHERE profile = ?"
        " ON CONFLICT (profile, hedge_profile) DO NOTHING",
        (profile, hedge_profile, ts, profile),
    )
    row = conn.execute(
        "SELECT since_fill FROM hedge_starts WHERE profile = ? AND hedge_profile = ?",
        (profile, hedge_profile),
    ).fetchone()
    return int(row[0])


def register_exposure(
    conn: sqlite3.Connection,
    profile: str,
    hedge_profile: str,
    trade_id: TradeId,
    side: Side,
    size: Decimal,
    ts: float,
) -> bool:
    """Take in one A fill (its whole size unhedged); False when it was taken in before."""
    cursor = conn.execute(
        "INSERT INTO hedge_exposures (profile, trade_id, hedge_profile, side, size, residual,"
        " open, ts, updated_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (profile, trade_id) DO NOTHING",
        (
            profile,
            trade_id,
            hedge_profile,
            Side(side).value,
            encode_decimal(size),
            encode_decimal(size),
            int(size > ZERO),
            ts,
            ts,
        ),
    )
    return cursor.rowcount == 1


def update_residuals(
    conn: sqlite3.Connection,
    profile: str,
    residuals: Sequence[tuple[TradeId, Decimal]],
    ts: float,
) -> None:
    """Set the unhedged part of each A fill given (0: fully offset)."""
    conn.executemany(
        "UPDATE hedge_exposures SET residual = ?, open = ?, updated_ts = ?"
        " WHERE profile = ? AND trade_id = ?",
        [(encode_decimal(r), int(r > ZERO), ts, profile, t) for t, r in residuals],
    )


def insert_hedge_order(
    conn: sqlite3.Connection,
    hedge_profile: str,
    client_id: ClientOrderId,
    side: Side,
    price: Decimal,
    size: Decimal,
    ts: float,
    profile: str,
    covers: Sequence[tuple[TradeId, Decimal]],
    mid: Decimal | None = None,
) -> None:
    """Record B's hedge order (status ``new``) and its links to the A fills it covers, before
    it is sent (``mid``: B's mid when it was priced, what its slippage is measured against)."""
    ref = None if mid is None else encode_decimal(mid)
    conn.execute(
        "INSERT INTO orders (profile, client_id, side, price, size, level, created_ts, status,"
        " status_ts) VALUES (?, ?, ?, ?, ?, 0, ?, 'new', ?)",
        (
            hedge_profile,
            client_id,
            Side(side).value,
            encode_decimal(price),
            encode_decimal(size),
            ts,
            ts,
        ),
    )
    conn.execute(
        "INSERT INTO order_events (profile, client_id, status, ts, reason)"
        " VALUES (?, ?, 'new', ?, 'hedge')",
        (hedge_profile, client_id, ts),
    )
    conn.executemany(
        "INSERT INTO hedge_links (profile, trade_id, hedge_profile, hedge_client_id, planned,"
        " mid, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(profile, t, hedge_profile, client_id, encode_decimal(p), ref, ts) for t, p in covers],
    )


def settle_hedge_order(
    conn: sqlite3.Connection,
    hedge_profile: str,
    client_id: ClientOrderId,
    profile: str,
    parts: Sequence[tuple[TradeId, Decimal]],
    ts: float,
) -> None:
    """Store what the order offset of each A fill it covers."""
    conn.executemany(
        "UPDATE hedge_links SET hedged = ?, settled_ts = ? WHERE hedge_profile = ?"
        " AND hedge_client_id = ? AND profile = ? AND trade_id = ?",
        [(encode_decimal(h), ts, hedge_profile, client_id, profile, t) for t, h in parts],
    )


def recover_exposures(
    conn: sqlite3.Connection, profile: str, hedge_profile: str, ts: float
) -> list[OpenExposure]:
    """What of A's fills is still unhedged, after a restart (oldest first).

    Takes in A's fills since hedging started that were never taken in (stored by A while the
    hedging task was down), and settles the hedge orders sent but never settled from B's
    stored fills of them (oldest cover first): a fill of such an order is never hedged again.
    Call inside a write transaction.
    """
    since = ensure_start(conn, profile, hedge_profile, ts)
    conn.execute(
        "INSERT INTO hedge_exposures (profile, trade_id, hedge_profile, side, size, residual,"
        " open, ts, updated_ts) SELECT f.profile, f.trade_id, ?, f.side, f.size, f.size, 1, ?, ?"
        " FROM fills f WHERE f.profile = ? AND f.id > ?"
        " AND NOT EXISTS (SELECT 1 FROM hedge_exposures e"
        " WHERE e.profile = f.profile AND e.trade_id = f.trade_id) ORDER BY f.id",
        (hedge_profile, ts, ts, profile, since),
    )
    unsettled = conn.execute(
        "SELECT id, hedge_client_id, trade_id, planned FROM hedge_links"
        " WHERE profile = ? AND hedge_profile = ? AND hedged IS NULL ORDER BY id",
        (profile, hedge_profile),
    ).fetchall()
    orders: dict[str, list[tuple[int, str, Decimal]]] = {}
    for link_id, client_id, trade_id, planned in unsettled:
        orders.setdefault(client_id, []).append((link_id, trade_id, decode_decimal(planned)))
    for client_id, links in orders.items():
        rows = conn.execute(
            "SELECT size FROM fills WHERE profile = ? AND client_id = ?",
            (hedge_profile, client_id),
        ).fetchall()
        left = sum((decode_decimal(r[0]) for r in rows), ZERO)
        for link_id, trade_id, planned in links:
            done = min(left, planned)
            left -= done
            conn.execute(
                "UPDATE hedge_links SET hedged = ?, settled_ts = ? WHERE id = ?",
                (encode_decimal(done), ts, link_id),
            )
            if done > ZERO:
                _reduce_residual(conn, profile, trade_id, done, ts)
    rows = conn.execute(
        "SELECT trade_id, side, residual FROM hedge_exposures"
        " WHERE profile = ? AND hedge_profile = ? AND open = 1 ORDER BY ts, rowid",
        (profile, hedge_profile),
    ).fetchall()
    return [OpenExposure(TradeId(t), Side(s), decode_decimal(r)) for t, s, r in rows]


def _reduce_residual(
    conn: sqlite3.Connection, profile: str, trade_id: str, by: Decimal, ts: float
) -> None:
    row = conn.execute(
        "SELECT residual FROM hedge_exposures WHERE profile = ? AND trade_id = ?",
        (profile, trade_id),
    ).fetchone()
    if row is None:
        return
    residual = max(ZERO, decode_decimal(row[0]) - by)
    update_residuals(conn, profile, [(TradeId(trade_id), residual)], ts)


def hedged_fills(conn: sqlite3.Connection, profile: str) -> list[HedgedFill]:
    """Each fill of ``profile`` taken in for hedging, oldest first, with its residual and the
    hedge orders linked to it (B's order row, the link's parts, B's fills of the order)."""
    fills = conn.execute(
        f"SELECT {_F_COLUMNS}, e.residual FROM fills f JOIN hedge_exposures e"
        " ON e.profile = f.profile AND e.trade_id = f.trade_id WHERE f.profile = ?"
        " ORDER BY f.id",
        (profile,),
    ).fetchall()
    links = conn.execute(
        "SELECT l.trade_id, l.hedge_profile, l.hedge_client_id, o.side, o.price, o.size,"
        " o.status, l.planned, l.hedged, l.mid FROM hedge_links l JOIN orders o"
        " ON o.profile = l.hedge_profile AND o.client_id = l.hedge_client_id"
        " WHERE l.profile = ? ORDER BY l.id",
        (profile,),
    ).fetchall()
    by_order: dict[tuple[str, str], tuple[Fill, ...]] = {}
    by_fill: dict[str, list[HedgeOrderView]] = {}
    for trade_id, b, cid, side, price, size, status, planned, hedged, mid in links:
        if (b, cid) not in by_order:
            rows = conn.execute(
                f"SELECT {FILL_COLUMNS} FROM fills WHERE profile = ? AND client_id = ? ORDER BY id",
                (b, cid),
            ).fetchall()
            by_order[(b, cid)] = tuple(fill_from(r) for r in rows)
        by_fill.setdefault(trade_id, []).append(
            HedgeOrderView(
                b,
                ClientOrderId(cid),
                Side(side),
                decode_decimal(price),
                decode_decimal(size),
                status,
                decode_decimal(planned),
                None if hedged is None else decode_decimal(hedged),
                by_order[(b, cid)],
                None if mid is None else decode_decimal(mid),
            )
        )
    out: list[HedgedFill] = []
    for row in fills:
        fill = fill_from(row[:-1])
        out.append(HedgedFill(fill, decode_decimal(row[-1]), tuple(by_fill.get(fill.trade_id, ()))))
    return out
