"""The persistent ledger: one SQLite file for the whole supervisor, rows keyed by profile name.

It records order intents and their status changes, fills (exactly once per venue trade id),
equity snapshots, mode changes and risk events, and the opening inventory, so that realized PnL,
average cost, peak equity and a latched halt survive a restart exactly.

Durability (WAL, ``synchronous=NORMAL``; survives ``kill -9``): see :mod:`kasmm.store.db`.

The connection is opened with ``check_same_thread=False`` and every call holds one lock, so the
ledger may be used from worker threads one call at a time (:class:`~kasmm.store.AsyncLedger`).

A ledger whose files were deleted or replaced while open, or that SQLite finds damaged, is lost
for good: that call and every later one raise :class:`~kasmm.errors.LedgerLost` (see
:mod:`kasmm.store.watch`). A write returns only after its commit and a check that the files are
still the ones opened, so no call reports success for data that went to a deleted file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo

from kasmm.core.pnl import PnlState
from kasmm.core.types import ZERO, ClientOrderId, Fill, Side, TradeId, VenueOrderId
from kasmm.store.balances import insert_opening_balances, select_opening_balances, settle_fills
from kasmm.store.db import (
    DEFAULT_BUSY_TIMEOUT_S,
    FILL_COLUMNS,
    DuplicateOrderError,
    UnknownOrderError,
    fill_from,
    fill_row,
    is_damage,
    open_database,
)
from kasmm.store.hedges import (
    HedgedFill,
    OpenExposure,
    hedged_fills,
    insert_hedge_order,
    recover_exposures,
    register_exposure,
    settle_hedge_order,
    update_residuals,
)
from kasmm.store.journal import (
    insert_mode,
    insert_reset,
    insert_risk_event,
    select_active_halt,
    select_modes,
    select_risk_events,
)
from kasmm.store.kpis import KpiRecord, insert_kpis, select_kpis
from kasmm.store.migrations import rollback
from kasmm.store.pnl_replay import replay
from kasmm.store.records import (
    LIVE_STATUSES,
    EquitySnapshot,
    HaltRecord,
    ModeChange,
    OperatorAction,
    OrderEvent,
    OrderStatus,
    RiskEvent,
    decode_decimal,
    encode_decimal,
)
from kasmm.store.settlements import booked_transfers
from kasmm.store.watch import FileWatch

_LIVE = tuple(sorted(s.value for s in LIVE_STATUSES))
_LIVE_SQL = ", ".join("?" for _ in _LIVE)


def _since(select: str, profile: str, since: float | None) -> tuple[str, tuple[object, ...]]:
    """``select`` restricted to ``profile`` (and ``ts >= since``), in insertion order."""
    if since is None:
        return f"{select} WHERE profile = ? ORDER BY id", (profile,)
    return f"{select} WHERE profile = ? AND ts >= ? ORDER BY id", (profile, since)


@dataclass(frozen=True, slots=True)
class OrderOpened:
    """An order handed to the venue, and how it came back (open, rejected, unknown)."""

    client_id: ClientOrderId
    side: Side
    price: Decimal
    size: Decimal
    ts: float
    status: str = "open"
    level: int = 0
    venue_id: VenueOrderId | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class OrderStatusChanged:
    """A later status of a recorded order (cancelled, filled, partially_filled, ...)."""

    client_id: ClientOrderId
    status: str
    ts: float
    venue_id: VenueOrderId | None = None
    reason: str | None = None


OrderJournalEntry = OrderOpened | OrderStatusChanged


def local_midnight(now: float, tz: str) -> float:
    """Epoch seconds of the most recent midnight at or before ``now`` in time zone ``tz``."""
    local = datetime.fromtimestamp(now, ZoneInfo(tz))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


class Ledger:
    """Synchronous access to the ledger database at ``path`` (created and migrated on open).

    :param path: the database file, e.g. ``state/kasmm.sqlite``; shared by all profiles.
    :param busy_timeout_s: how long a write waits for another process's write lock.
    :raises kasmm.errors.LedgerLost: when the file is damaged (see
        :func:`~kasmm.store.db.open_database`), and from any later call once the files were
        deleted, replaced or found damaged.
    :raises kasmm.store.LedgerError: when the file cannot be created or opened.
    :raises kasmm.store.migrations.SchemaError: when the file was written by a newer kasmm.
    """

    def __init__(self, path: Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self._conn = open_database(self.path, busy_timeout_s)
        # After migrate's reads: SQLite has opened the -wal and -shm files by now.
        self._watch = FileWatch(self.path)
        self._lock = threading.Lock()

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent). Committed data is already durable."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def check(self) -> None:
        """Raise :class:`~kasmm.errors.LedgerLost` if the ledger's files were deleted or
        replaced since open (or it was found lost before). A few ``stat`` calls, no lock: cheap
        enough to call every second, and not delayed by a write waiting for its lock.
        """
        self._watch.check()

    def connection_settings(self) -> dict[str, object]:
        """The connection's journal mode, synchronous level, foreign keys and busy timeout."""
        with self._read() as conn:
            return {
                name: conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front (no upgrade deadlocks).

        The files are checked before it starts and again after the commit: a commit that went
        to a file deleted meanwhile raises instead of returning as if stored.
        """
        with self._lock, self._damage_is_loss():
            self._watch.check()
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
            self._watch.check()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same snapshot."""
        with self._lock, self._damage_is_loss():
            self._watch.check()
            conn = self._conn
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction, for a store module's functions (:mod:`.settlements`)."""
        return self._write()

    def snapshot(self) -> AbstractContextManager[sqlite3.Connection]:
        """One read transaction, for a store module's functions."""
        return self._read()

    @contextmanager
    def _damage_is_loss(self) -> Iterator[None]:
        """SQLite finding the file malformed while in use: lost, like a deleted file."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if is_damage(exc):
                raise self._watch.lose(f"{self.path}: damaged while in use ({exc})") from exc
            raise

    # --- orders ---------------------------------------------------------------------------

    def record_order(
        self,
        profile: str,
        client_id: ClientOrderId,
        side: Side,
        price: Decimal,
        size: Decimal,
        ts: float,
        level: int = 0,
    ) -> None:
        """Record an order intent before it is sent (status ``new``).

        :raises DuplicateOrderError: when ``client_id`` is already recorded for ``profile``.
        """
        row = (profile, client_id, Side(side).value, encode_decimal(price), encode_decimal(size))
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO orders (profile, client_id, side, price, size, level,"
                    " created_ts, status, status_ts) VALUES (?, ?, ?, ?, ?, ?, ?, 'new', ?)",
                    (*row, level, ts, ts),
                )
            except sqlite3.IntegrityError as exc:
                raise DuplicateOrderError(f"{profile}: order {client_id} already recorded") from exc
            conn.execute(
                "INSERT INTO order_events (profile, client_id, status, ts) VALUES (?, ?, 'new', ?)",
                (profile, client_id, ts),
            )

    def record_order_status(
        self,
        profile: str,
        client_id: ClientOrderId,
        status: str,
        ts: float,
        venue_id: VenueOrderId | None = None,
        reason: str | None = None,
    ) -> None:
        """Append a status change to the order's history and make it the order's status.

        The last recorded change wins, whatever its order in time (venues report late).

        :raises ValueError: for a status not in :class:`OrderStatus`.
        :raises UnknownOrderError: when the order was never recorded.
        """
        value = OrderStatus(status).value
        with self._write() as conn:
            updated = conn.execute(
                "UPDATE orders SET status = ?, status_ts = ?, venue_id = COALESCE(?, venue_id)"
                " WHERE profile = ? AND client_id = ?",
                (value, ts, venue_id, profile, client_id),
            ).rowcount
            if updated != 1:
                raise UnknownOrderError(f"{profile}: no recorded order {client_id}")
            conn.execute(
                "INSERT INTO order_events (profile, client_id, status, ts, venue_id, reason)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (profile, client_id, value, ts, venue_id, reason),
            )

    def journal_orders(self, profile: str, entries: Sequence[OrderJournalEntry]) -> int:
        """Record one requote round's order events in a single transaction.

        The bot writes order events after handing the round to the venue, so the ledger is
        never on the book -> order path; start-up reconciliation by client-id prefix (not the
        journal) is what guarantees no orphaned orders after a crash. Status changes of orders
        this ledger never saw (left by a lost run) are skipped. Returns the rows written.
        """
        written = 0
        with self._write() as conn:
            for e in entries:
                if isinstance(e, OrderOpened):
                    row = (
                        profile,
                        e.client_id,
                        Side(e.side).value,
                        encode_decimal(e.price),
                        encode_decimal(e.size),
                        e.level,
                        e.ts,
                        e.status,
                        e.ts,
                        e.venue_id,
                    )
                    cur = conn.execute(
                        "INSERT OR IGNORE INTO orders (profile, client_id, side, price, size,"
                        " level, created_ts, status, status_ts, venue_id)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
                    if cur.rowcount != 1:
                        continue
                    conn.execute(
                        "INSERT INTO order_events (profile, client_id, status, ts, venue_id)"
                        " VALUES (?, ?, 'new', ?, ?)",
                        (profile, e.client_id, e.ts, e.venue_id),
                    )
                    status, reason = e.status, e.reason
                else:
                    status, reason = OrderStatus(e.status).value, e.reason
                    updated = conn.execute(
                        "UPDATE orders SET status = ?, status_ts = ?,"
                        " venue_id = COALESCE(?, venue_id) WHERE profile = ? AND client_id = ?",
                        (status, e.ts, e.venue_id, profile, e.client_id),
                    ).rowcount
                    if updated != 1:
                        continue
                if status != "new":
                    conn.execute(
                        "INSERT INTO order_events (profile, client_id, status, ts, venue_id,"
                        " reason) VALUES (?, ?, ?, ?, ?, ?)",
                        (profile, e.client_id, status, e.ts, e.venue_id, reason),
                    )
                written += 1
        return written

    def open_orders(self, profile: str) -> list[ClientOrderId]:
        """Client ids whose last status is new, open, partially filled or unknown, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT client_id FROM orders WHERE profile = ? AND status IN ({_LIVE_SQL})"
                " ORDER BY rowid",
                (profile, *_LIVE),
            ).fetchall()
        return [ClientOrderId(r[0]) for r in rows]

    def order_history(self, profile: str, client_id: ClientOrderId) -> list[OrderEvent]:
        """Every status change of one order, in the order they were recorded."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT ts, status, venue_id, reason FROM order_events"
                " WHERE profile = ? AND client_id = ? ORDER BY id",
                (profile, client_id),
            ).fetchall()
        return [OrderEvent(ts, OrderStatus(status), vid, why) for ts, status, vid, why in rows]

    # --- fills ----------------------------------------------------------------------------

    def record_fill(self, profile: str, fill: Fill) -> bool:
        """Store ``fill`` once per ``(profile, trade_id)``; committed before this returns.

        :return: True when stored now, False when that trade id was already stored (a repeated
            event: the caller must not apply it again).
        """
        row = fill_row(profile, fill)
        with self._write() as conn:
            cursor = conn.execute(
                f"INSERT INTO fills (profile, {FILL_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (profile, trade_id) DO NOTHING",
                row,
            )
            return cursor.rowcount == 1

    def fills(self, profile: str, since: float | None = None) -> list[Fill]:
        """The profile's fills in insertion order; with ``since``, those with ``ts >= since``."""
        with self._read() as conn:
            select = f"SELECT {FILL_COLUMNS} FROM fills"
            rows = conn.execute(*_since(select, profile, since)).fetchall()
        return [fill_from(r) for r in rows]

    # --- accounting -----------------------------------------------------------------------

    def set_opening(self, profile: str, position: Decimal, mark: Decimal, ts: float) -> bool:
        """Store the inventory accounting starts from, once per profile (its first start).

        :return: True when stored now, False when an opening was already stored (kept as is).
        """
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO openings (profile, position, mark, ts) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (profile) DO NOTHING",
                (profile, encode_decimal(position), encode_decimal(mark), ts),
            )
            return cursor.rowcount == 1

    def opening(self, profile: str) -> tuple[Decimal, Decimal] | None:
        """The stored ``(position, mark)`` accounting started from, or None."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT position, mark FROM openings WHERE profile = ?", (profile,)
            ).fetchone()
        return None if row is None else (decode_decimal(row[0]), decode_decimal(row[1]))

    def pnl_state(
        self, profile: str, quote_asset: str, opening: tuple[Decimal, Decimal] | None
    ) -> PnlState:
        """Average-cost PnL of every stored fill, folded in insertion order, with the
        settlement transfers the profile booked.

        :param opening: ``(position, mark)`` to start from (normally :meth:`opening`); None
            starts flat.
        """
        # Booked settlement transfers of base fold in time order with the fills, in the one
        # order kasmm.store.pnl_replay decides (the report and kasmm pnl replay the same).
        with self._read() as conn:
            transfers = booked_transfers(conn, profile)
        return replay(opening, self.fills(profile), transfers, quote_asset)

    # --- equity ---------------------------------------------------------------------------

    def record_equity(
        self,
        profile: str,
        ts: float,
        equity: Decimal,
        mid: Decimal,
        base: Decimal,
        quote: Decimal,
    ) -> None:
        """Store an equity snapshot and raise the profile's peak equity if it is a new high."""
        values = [encode_decimal(v) for v in (equity, mid, base, quote)]
        with self._write() as conn:
            conn.execute(
                "INSERT INTO equity (profile, ts, equity, mid, base, quote)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (profile, ts, *values),
            )
            peak = conn.execute(
                "SELECT equity FROM equity_peaks WHERE profile = ?", (profile,)
            ).fetchone()
            if peak is None or equity > decode_decimal(peak[0]):
                conn.execute(
                    "INSERT INTO equity_peaks (profile, equity, ts) VALUES (?, ?, ?)"
                    " ON CONFLICT (profile) DO UPDATE SET equity = excluded.equity,"
                    " ts = excluded.ts",
                    (profile, values[0], ts),
                )

    def peak_equity(self, profile: str) -> Decimal | None:
        """The highest equity ever recorded for the profile, or None before the first snapshot."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT equity FROM equity_peaks WHERE profile = ?", (profile,)
            ).fetchone()
        return None if row is None else decode_decimal(row[0])

    def equity_series(self, profile: str, since: float | None = None) -> list[EquitySnapshot]:
        """Equity snapshots in insertion order; with ``since``, only those with ``ts >= since``."""
        select = "SELECT ts, equity, mid, base, quote FROM equity"
        with self._read() as conn:
            rows = conn.execute(*_since(select, profile, since)).fetchall()
        return [
            EquitySnapshot(ts, *(decode_decimal(v) for v in (eq, mid, base, quote)))
            for ts, eq, mid, base, quote in rows
        ]

    def daily_pnl(self, profile: str, tz: str, now: float, mark: Decimal) -> Decimal:
        """Equity now minus equity at the start of the local day in ``tz``.

        * Equity now: the balances of the latest snapshot at or before ``now``, valued at
          ``mark`` (``base * mark + quote``).
        * Start of day: the equity of the last snapshot before local midnight; when there is
          none (the profile started today), the first snapshot since midnight.

        Both come from snapshots, so deposits and withdrawals count as PnL and the figure is as
        fresh as the snapshots the bot records. Zero when there is no snapshot at all.
        """
        with self._read() as conn:
            latest = conn.execute(
                "SELECT base, quote FROM equity WHERE profile = ? AND ts <= ?"
                " ORDER BY ts DESC, id DESC LIMIT 1",
                (profile, now),
            ).fetchone()
            start = self._day_start(conn, profile, tz, now)
        if latest is None or start is None:
            return ZERO
        equity_now = decode_decimal(latest[0]) * mark + decode_decimal(latest[1])
        return equity_now - start[1]

    def day_start_equity(self, profile: str, tz: str, now: float) -> Decimal | None:
        """Equity at the start of the local day in ``tz`` (see :meth:`daily_pnl`)."""
        start = self.day_start(profile, tz, now)
        return None if start is None else start[1]

    def day_start(self, profile: str, tz: str, now: float) -> tuple[float, Decimal] | None:
        """The time and equity of the snapshot the local day in ``tz`` starts from (see
        :meth:`daily_pnl`): what happened after that time is not in it, what happened at or
        before it is, wherever midnight falls."""
        with self._read() as conn:
            return self._day_start(conn, profile, tz, now)

    @staticmethod
    def _day_start(
        conn: sqlite3.Connection, profile: str, tz: str, now: float
    ) -> tuple[float, Decimal] | None:
        midnight = local_midnight(now, tz)
        row = (
            conn.execute(
                "SELECT ts, equity FROM equity WHERE profile = ? AND ts < ?"
                " ORDER BY ts DESC, id DESC LIMIT 1",
                (profile, midnight),
            ).fetchone()
            or conn.execute(
                "SELECT ts, equity FROM equity WHERE profile = ? AND ts >= ? AND ts <= ?"
                " ORDER BY ts, id LIMIT 1",
                (profile, midnight, now),
            ).fetchone()
        )
        return None if row is None else (float(row[0]), decode_decimal(row[1]))

    # --- hedging (kasmm.store.hedges) -----------------------------------------------------

    def recover_hedges(self, profile: str, hedge_profile: str, ts: float) -> list[OpenExposure]:
        """What of ``profile``'s fills is still unhedged (see
        :func:`~kasmm.store.hedges.recover_exposures`); the start of hedging is stored on the
        first call."""
        with self._write() as conn:
            return recover_exposures(conn, profile, hedge_profile, ts)

    def register_exposure(
        self,
        profile: str,
        hedge_profile: str,
        trade_id: TradeId,
        side: Side,
        size: Decimal,
        ts: float,
    ) -> bool:
        """Take in one fill of ``profile`` for hedging; False when taken in before."""
        with self._write() as conn:
            return register_exposure(conn, profile, hedge_profile, trade_id, side, size, ts)

    def record_hedge_order(
        self,
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
        """Record a hedge order of ``hedge_profile`` (status ``new``) linked to the fills of
        ``profile`` it covers, before it is sent (``mid``: the hedge venue's mid then).

        :raises DuplicateOrderError: when ``client_id`` is already recorded.
        """
        with self._write() as conn:
            try:
                insert_hedge_order(
                    conn, hedge_profile, client_id, side, price, size, ts, profile, covers, mid
                )
            except sqlite3.IntegrityError as exc:
                raise DuplicateOrderError(f"{hedge_profile}: order {client_id} exists") from exc

    def settle_hedge_order(
        self,
        hedge_profile: str,
        client_id: ClientOrderId,
        profile: str,
        parts: Sequence[tuple[TradeId, Decimal]],
        residuals: Sequence[tuple[TradeId, Decimal]],
        ts: float,
    ) -> None:
        """Store what a hedge order offset of each fill it covered, and the residuals then."""
        with self._write() as conn:
            settle_hedge_order(conn, hedge_profile, client_id, profile, parts, ts)
            update_residuals(conn, profile, residuals, ts)

    def update_hedge_residuals(
        self, profile: str, residuals: Sequence[tuple[TradeId, Decimal]], ts: float
    ) -> None:
        """Set the unhedged part of fills of ``profile`` (netting against each other)."""
        with self._write() as conn:
            update_residuals(conn, profile, residuals, ts)

    def hedged_fills(self, profile: str) -> list[HedgedFill]:
        """Each hedged fill of ``profile`` with its residual, its hedge orders and their fills
        (see :func:`~kasmm.store.hedges.hedged_fills`)."""
        with self._read() as conn:
            return hedged_fills(conn, profile)

    # --- market-making KPIs (kasmm.store.kpis) --------------------------------------------

    def record_kpis(self, profile: str, record: KpiRecord) -> None:
        """Store the profile's cumulative KPI counters of this run (with an equity snapshot)."""
        with self._write() as conn:
            insert_kpis(conn, profile, record)

    def kpi_series(
        self, profile: str, since: float | None = None, until: float | None = None
    ) -> list[KpiRecord]:
        """The profile's KPI records in insertion order, optionally within ``[since, until]``."""
        with self._read() as conn:
            return select_kpis(conn, profile, since, until)

    # --- modes and risk -------------------------------------------------------------------

    def record_mode(self, profile: str, ts: float, mode: str, source: str) -> None:
        """Record a mode switch. ``source``: ``start``, ``schedule`` or ``operator``."""
        with self._write() as conn:
            insert_mode(conn, profile, ts, mode, source)

    def record_operator_action(
        self,
        ts: float,
        operator: str,
        action: str,
        profile: str | None,
        details: Mapping[str, object],
    ) -> None:
        """Record an operator's action (``profile`` None: supervisor-wide, e.g. a reload)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO operator_actions (ts, operator, action, profile, details) "
                "VALUES (?, ?, ?, ?, ?)",
                (ts, operator, action, profile, json.dumps(dict(details), sort_keys=True)),
            )

    def operator_actions(self) -> list[OperatorAction]:
        """Every recorded operator action, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT ts, operator, action, profile, details FROM operator_actions ORDER BY id"
            ).fetchall()
        return [OperatorAction(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def mode_changes(self, profile: str) -> list[ModeChange]:
        """Every mode switch of the profile, oldest first."""
        with self._read() as conn:
            return select_modes(conn, profile)

    def record_risk_event(
        self,
        profile: str,
        ts: float,
        kind: str,
        rule: str,
        action: str,
        state: str,
        details: Mapping[str, object],
    ) -> None:
        """Record a risk event. A ``trip`` with action ``halt`` latches until a ``reset``.

        :param kind: ``trip``, ``clear`` or ``reset``.
        :param details: the numbers involved (JSON; Decimals are stored as strings).
        """
        with self._write() as conn:
            insert_risk_event(conn, profile, ts, kind, rule, action, state, details)

    def active_halt(self, profile: str) -> HaltRecord | None:
        """The latest ``trip`` with action ``halt`` not followed by a ``reset``, or None."""
        with self._read() as conn:
            return select_active_halt(conn, profile)

    def reset(self, profile: str, ts: float, operator: str) -> bool:
        """Operator reset: clear the active halt by recording a ``reset`` event.

        Check and write happen in one transaction, so two concurrent resets clear it once. The
        stored equity peak is cleared with it (drawdown restarts from the current equity).

        :return: False (and nothing recorded) when no halt was active.
        """
        with self._write() as conn:
            cleared = insert_reset(conn, profile, ts, operator)
            if cleared:
                # The operator accepted the loss: drawdown is measured from here on, or the
                # same drawdown would halt the profile again on its next event.
                conn.execute("DELETE FROM equity_peaks WHERE profile = ?", (profile,))
            return cleared

    def risk_events(self, profile: str) -> list[RiskEvent]:
        """Every risk event of the profile, oldest first."""
        with self._read() as conn:
            return select_risk_events(conn, profile)

    # --- profiles -------------------------------------------------------------------------

    def record_balance_drift(
        self, profile: str, ts: float, asset: str, local: Decimal, venue: Decimal
    ) -> None:
        """Store a difference beyond dust between the bot's balance view and the venue's."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO balance_drifts (profile, ts, asset, local, venue)"
                " VALUES (?, ?, ?, ?, ?)",
                (profile, ts, asset, encode_decimal(local), encode_decimal(venue)),
            )

    def balance_drifts(self, profile: str) -> list[tuple[float, str, Decimal, Decimal]]:
        """Stored balance drifts: (ts, asset, local, venue), oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT ts, asset, local, venue FROM balance_drifts WHERE profile = ? ORDER BY id",
                (profile,),
            ).fetchall()
        return [(r[0], r[1], decode_decimal(r[2]), decode_decimal(r[3])) for r in rows]

    def profiles(self) -> list[str]:
        """Names of the profiles with any row in the ledger, sorted.

        A portfolio's own rows (key ``portfolio:<name>``, :meth:`portfolios`) are no profile's:
        no profile name holds a colon.
        """
        tables = ("orders", "fills", "openings", "equity", "modes", "risk_events")
        union = " UNION ".join(f"SELECT profile FROM {t}" for t in tables)
        with self._read() as conn:
            rows = conn.execute(f"SELECT profile FROM ({union}) ORDER BY profile").fetchall()
        return [r[0] for r in rows if ":" not in r[0]]

    def portfolios(self) -> list[str]:
        """Names of the portfolios with equity or risk rows (stored as ``portfolio:<name>``)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT profile FROM (SELECT profile FROM equity UNION"
                " SELECT profile FROM risk_events) WHERE profile LIKE 'portfolio:%'"
                " ORDER BY profile"
            ).fetchall()
        return [r[0].removeprefix("portfolio:") for r in rows]

    # --- simulated accounts (kasmm.store.balances) ----------------------------------------

    def record_opening_balances(
        self, profile: str, balances: Mapping[str, Decimal], ts: float
    ) -> bool:
        """Store a simulated account's balances at its first start, once per profile.

        :return: True when stored now, False when some were already stored (kept as is).
        """
        with self._write() as conn:
            return insert_opening_balances(conn, profile, balances, ts)

    def implied_balances(self, profile: str, base: str, quote: str) -> dict[str, Decimal] | None:
        """The stored opening balances plus every stored fill of ``base/quote`` settled on them
        (see :func:`~kasmm.store.balances.settle_fills`); None when no opening balances are
        stored. One snapshot: a fill committed meanwhile is in both or neither."""
        with self._read() as conn:
            opening = select_opening_balances(conn, profile)
            if opening is None:
                return None
            rows = conn.execute(
                f"SELECT {FILL_COLUMNS} FROM fills WHERE profile = ? ORDER BY id", (profile,)
            ).fetchall()
        return settle_fills(opening, (fill_from(r) for r in rows), base, quote)
