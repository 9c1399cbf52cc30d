"""Read-only access to the ledger, for commands that only look (``kasmm pnl``).

:class:`~kasmm.store.Ledger` opens the database for writing (it creates, checks and migrates
the file), which a reader must not do to a running supervisor's ledger, nor to one that belongs
to another user. :class:`LedgerReader` opens it with SQLite's ``mode=ro``: in WAL mode a reader
sees the last committed state, never blocks the writer, and is never blocked by it. Every
:meth:`LedgerReader.accounting` call reads one snapshot (one transaction), so a fill committed
meanwhile is in all of its parts or in none.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import TracebackType

from kasmm.core.types import Fill
from kasmm.store.db import FILL_COLUMNS, LedgerError, fill_from
from kasmm.store.hedges import HedgedFill, hedged_fills
from kasmm.store.records import EquitySnapshot, decode_decimal
from kasmm.store.settlement_view import SettlementOverview, overview_from
from kasmm.store.settlements import BookedTransfer, booked_transfers

#: Tables a profile can have rows in (the same list as :meth:`Ledger.profiles`).
_PROFILE_TABLES = ("orders", "fills", "openings", "equity", "modes", "risk_events")


@dataclass(frozen=True, slots=True)
class Accounting:
    """What a profile's PnL is computed from: its opening, every fill, every equity snapshot."""

    opening: tuple[Decimal, Decimal] | None  #: ``(position, mark)`` accounting started from
    fills: tuple[Fill, ...]  #: insertion order (the order the bot folded them in)
    equity: tuple[EquitySnapshot, ...]  #: time order
    #: the settlement sweeps booked as transfers, time order (none before schema 9)
    transfers: tuple[BookedTransfer, ...] = ()


class LedgerReader:
    """A read-only connection to the ledger at ``path``.

    :raises LedgerError: when the file is missing or cannot be opened or read as a ledger.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise LedgerError(f"{self.path}: no ledger there")
        uri = self.path.resolve().as_uri() + "?mode=ro"
        try:
            self._conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            self._conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: cannot open: {exc}") from exc

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._conn.close()

    def __enter__(self) -> LedgerReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def profiles(self) -> list[str]:
        """Names of the profiles with any row in the ledger, sorted."""
        union = " UNION ".join(f"SELECT profile FROM {t}" for t in _PROFILE_TABLES)
        rows = self._query(f"SELECT profile FROM ({union}) ORDER BY profile", ())
        return [str(r[0]) for r in rows]

    def accounting(self, profile: str) -> Accounting:
        """The profile's opening, fills and equity snapshots, read in one snapshot."""
        conn = self._conn
        try:
            conn.execute("BEGIN")
            try:
                opening = conn.execute(
                    "SELECT position, mark FROM openings WHERE profile = ?", (profile,)
                ).fetchone()
                fills = conn.execute(
                    f"SELECT {FILL_COLUMNS} FROM fills WHERE profile = ? ORDER BY id", (profile,)
                ).fetchall()
                equity = conn.execute(
                    "SELECT ts, equity, mid, base, quote FROM equity WHERE profile = ?"
                    " ORDER BY ts, id",
                    (profile,),
                ).fetchall()
                has_transfers = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'transfers'"
                ).fetchone()
                transfers = booked_transfers(conn, profile) if has_transfers else []
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: cannot read: {exc}") from exc
        return Accounting(
            opening=None
            if opening is None
            else (decode_decimal(opening[0]), decode_decimal(opening[1])),
            fills=tuple(fill_from(r) for r in fills),
            equity=tuple(
                EquitySnapshot(ts, *(decode_decimal(v) for v in (eq, mid, base, quote)))
                for ts, eq, mid, base, quote in equity
            ),
            transfers=tuple(transfers),
        )

    def hedged_fills(self, profile: str) -> list[HedgedFill]:
        """Each hedged fill of ``profile`` with its hedge orders and their fills, read in one
        snapshot (see :func:`kasmm.store.hedges.hedged_fills`); empty for a ledger from before
        hedging (no hedge tables)."""
        conn = self._conn
        try:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'hedge_links'"
            ).fetchone()
            if exists is None:
                return []
            conn.execute("BEGIN")
            try:
                return hedged_fills(conn, profile)
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: cannot read: {exc}") from exc

    def settlement_overview(self) -> SettlementOverview:
        """The settlements in one snapshot (:func:`~kasmm.store.settlement_view.overview_from`);
        empty for a ledger from before settlement (no settlements table)."""
        conn = self._conn
        try:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'settlements'"
            ).fetchone()
            if exists is None:
                return SettlementOverview()
            conn.execute("BEGIN")
            try:
                return overview_from(conn, since=None)
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: cannot read: {exc}") from exc

    def _query(self, sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        try:
            return list(self._conn.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: cannot read: {exc}") from exc
