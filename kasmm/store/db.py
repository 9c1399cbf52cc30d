"""Opening the ledger database: file permissions, pragmas, migrations; and the fill row codec.

Durability: the database runs in WAL mode with ``synchronous=NORMAL``. A commit appends the
transaction to the ``-wal`` file with ``write()`` before it returns, so once a ledger call returns
the data is in the operating system's page cache and survives the process dying in any way (an
exception, ``os._exit``, ``kill -9``): the kernel still writes those pages out, and the next open
replays the WAL. What NORMAL gives up against ``FULL`` is the ``fsync`` per commit, so a power cut
or kernel crash may lose the last few commits — it never corrupts the file. That trade buys
commits in microseconds instead of milliseconds.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from kasmm.core.types import ClientOrderId, Fill, Side, TradeId, VenueOrderId
from kasmm.errors import LedgerLost
from kasmm.store.migrations import SchemaError, migrate
from kasmm.store.records import decode_decimal, encode_decimal

#: Seconds a write waits for another connection's write lock before failing with "locked".
DEFAULT_BUSY_TIMEOUT_S = 5.0

#: Columns of ``fills`` that make up a :class:`~kasmm.core.types.Fill`, in constructor order.
FILL_COLUMNS = (
    "trade_id, client_id, side, price, size, fee, fee_asset, ts, remaining, is_maker, venue_id"
)


_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


class LedgerError(Exception):
    """A ledger call that cannot be carried out as asked."""


class DuplicateOrderError(LedgerError):
    """``record_order`` with a client id already recorded for that profile."""


class UnknownOrderError(LedgerError, LookupError):
    """A status change for an order that was never recorded."""


def prepare_file(path: Path) -> None:
    """Create missing parent directories 0700 and the database file 0600 (owner only).

    An existing file keeps its mode. SQLite gives ``-wal`` and ``-shm`` the database file's mode.
    """
    missing: list[Path] = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def open_database(path: Path, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """Open (creating if needed), check and migrate the ledger database; return an autocommit
    connection.

    The connection has ``check_same_thread=False``: the caller must serialize its use. Every
    error names the file, on one line.

    :raises LedgerLost: when the file is damaged: not a database, or ``PRAGMA quick_check``
        finds a problem (about 60 ms per 100,000 fills).
    :raises LedgerError: when the file cannot be created or opened (permissions, locked by
        another process beyond the busy timeout) or its file system does not support WAL mode.
    :raises kasmm.store.migrations.SchemaError: when the file was written by a newer kasmm.
    """
    try:
        prepare_file(path)
    except OSError as exc:
        raise LedgerError(f"{path}: cannot create: {exc.strerror or exc}") from exc
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise LedgerError(f"{path}: cannot open: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        mode = _set_wal(conn, busy_timeout_s)
        if str(mode).lower() != "wal":
            raise LedgerError(f"{path}: cannot use WAL journal mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Before anything writes: a damaged page would otherwise surface later, as an error
        # in whichever profile first reads it, after the supervisor has reported ready.
        problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise LedgerLost(f"{path}: damaged ({_one_line(problems)})")
        migrate(conn)
    except sqlite3.Error as exc:
        conn.close()
        if is_damage(exc):
            raise LedgerLost(f"{path}: damaged ({_one_line([str(exc)])})") from exc
        raise LedgerError(f"{path}: cannot open: {_one_line([str(exc)])}") from exc
    except SchemaError as exc:
        conn.close()
        raise SchemaError(f"{path}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def is_damage(exc: sqlite3.Error) -> bool:
    """True for SQLite's "database disk image is malformed" and "file is not a database"."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def _one_line(problems: list[str]) -> str:
    """SQLite's messages on one line: quick_check reports each problem as its own row(s)."""
    lines = [
        line.strip()
        for problem in problems
        for line in problem.splitlines()
        if line.strip() and not line.startswith("*** in database")
    ]
    shown = "; ".join(lines[:3])
    return shown if len(lines) <= 3 else f"{shown}; and {len(lines) - 3} more"


def _set_wal(conn: sqlite3.Connection, busy_timeout_s: float) -> object:
    """``PRAGMA journal_mode = WAL``, retried while another process holds the new file.

    Switching a fresh database to WAL needs an exclusive lock and SQLite does not run the busy
    handler for it, so two supervisors (shards) opening a new ledger at once would otherwise
    fail with "database is locked".
    """
    deadline = time.monotonic() + busy_timeout_s
    delay = 0.01
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(0.2, delay * 2)


def fill_row(profile: str, fill: Fill) -> tuple[object, ...]:
    """``(profile, *FILL_COLUMNS)`` values for ``fill``."""
    return (
        profile,
        fill.trade_id,
        fill.client_id,
        Side(fill.side).value,
        encode_decimal(fill.price),
        encode_decimal(fill.size),
        encode_decimal(fill.fee),
        fill.fee_asset,
        float(fill.ts),
        encode_decimal(fill.remaining),
        int(fill.is_maker),
        fill.venue_id,
    )


def fill_from(row: tuple[str, str, str, str, str, str, str, float, str, int, str | None]) -> Fill:
    """The :class:`Fill` of one row selected with ``FILL_COLUMNS``."""
    trade_id, client_id, side, price, size, fee, fee_asset, ts, remaining, maker, venue_id = row
    return Fill(
        trade_id=TradeId(trade_id),
        client_id=ClientOrderId(client_id),
        side=Side(side),
        price=decode_decimal(price),
        size=decode_decimal(size),
        fee=decode_decimal(fee),
        fee_asset=fee_asset,
        ts=float(ts),
        remaining=decode_decimal(remaining),
        is_maker=bool(maker),
        venue_id=None if venue_id is None else VenueOrderId(venue_id),
    )
