"""Versioned schema of the ledger database.

``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``. They are append-only: a
released script is never edited, a change is a new script at the end. :func:`migrate` applies the
pending ones in order, each in its own ``BEGIN IMMEDIATE`` transaction together with the row that
records it in ``schema_version``, so a failure leaves the database at the previous version and a
second process opening the same file waits instead of migrating twice.

Money columns are ``TEXT`` (see :mod:`kasmm.store.records`); times are ``REAL`` epoch seconds.
Row ids of append-only tables use ``AUTOINCREMENT`` so insertion order is never reused, which
:meth:`kasmm.store.ledger.Ledger.active_halt` relies on ("a trip not followed by a reset").
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence

_V1_ORDERS_AND_FILLS = """
CREATE TABLE orders (
    profile    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    side       TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    price      TEXT NOT NULL,
    size       TEXT NOT NULL,
    level      INTEGER NOT NULL,
    created_ts REAL NOT NULL,
    status     TEXT NOT NULL,
    status_ts  REAL NOT NULL,
    venue_id   TEXT,
    PRIMARY KEY (profile, client_id)
);
CREATE INDEX orders_by_status ON orders (profile, status);
CREATE TABLE order_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    profile   TEXT NOT NULL,
    client_id TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status IN (
        'new', 'open', 'partially_filled', 'filled', 'cancelled', 'rejected', 'unknown')),
    ts        REAL NOT NULL,
    venue_id  TEXT,
    reason    TEXT,
    FOREIGN KEY (profile, client_id) REFERENCES orders (profile, client_id)
);
CREATE INDEX order_events_by_order ON order_events (profile, client_id);
CREATE TABLE fills (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    profile   TEXT NOT NULL,
    trade_id  TEXT NOT NULL,
    client_id TEXT NOT NULL,
    side      TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    price     TEXT NOT NULL,
    size      TEXT NOT NULL,
    fee       TEXT NOT NULL,
    fee_asset TEXT NOT NULL,
    ts        REAL NOT NULL,
    remaining TEXT NOT NULL,
    is_maker  INTEGER NOT NULL CHECK (is_maker IN (0, 1)),
    venue_id  TEXT,
    UNIQUE (profile, trade_id)
);
CREATE INDEX fills_by_time ON fills (profile, ts);
"""

_V2_ACCOUNTING_AND_RISK = """
CREATE TABLE openings (
    profile  TEXT PRIMARY KEY,
    position TEXT NOT NULL,
    mark     TEXT NOT NULL,
    ts       REAL NOT NULL
);
CREATE TABLE equity (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    profile TEXT NOT NULL,
    ts      REAL NOT NULL,
    equity  TEXT NOT NULL,
    mid     TEXT NOT NULL,
    base    TEXT NOT NULL,
    quote   TEXT NOT NULL
);
CREATE INDEX equity_by_time ON equity (profile, ts);
CREATE TABLE equity_peaks (
    profile TEXT PRIMARY KEY,
    equity  TEXT NOT NULL,
    ts      REAL NOT NULL
);
CREATE TABLE modes (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    profile TEXT NOT NULL,
    ts      REAL NOT NULL,
    mode    TEXT NOT NULL,
    source  TEXT NOT NULL CHECK (source IN ('start', 'schedule', 'operator'))
);
CREATE INDEX modes_by_profile ON modes (profile, id);
CREATE TABLE risk_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    profile TEXT NOT NULL,
    ts      REAL NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('trip', 'clear', 'reset')),
    rule    TEXT NOT NULL,
    action  TEXT NOT NULL,
    state   TEXT NOT NULL,
    details TEXT NOT NULL CHECK (json_valid(details))
);
CREATE INDEX risk_events_by_kind ON risk_events (profile, kind, id);
"""

_V3_BALANCE_CHECKS = """
CREATE TABLE balance_drifts (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    profile TEXT NOT NULL,
    ts      REAL NOT NULL,
    asset   TEXT NOT NULL,
    local   TEXT NOT NULL,
    venue   TEXT NOT NULL
);
CREATE INDEX balance_drifts_by_profile ON balance_drifts (profile, ts);
"""

# A simulated account's balances at its first start on this ledger (kasmm.store.balances).
_V4_OPENING_BALANCES = """
CREATE TABLE opening_balances (
    profile TEXT NOT NULL,
    asset   TEXT NOT NULL,
    amount  TEXT NOT NULL,
    ts      REAL NOT NULL,
    PRIMARY KEY (profile, asset)
);
"""

# Market-making KPI counters with each equity snapshot (kasmm.store.kpis). They are cumulative
# since the bot started and restart from zero with it, so rows carry the run's id: a reader sums
# the increments within each run. Statistics, not money: REAL like the times.
_V5_KPI_SNAPSHOTS = """
CREATE TABLE kpi_snapshots (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    profile       TEXT NOT NULL,
    ts            REAL NOT NULL,
    run_id        TEXT NOT NULL,
    total_s       REAL NOT NULL,
    both_s        REAL NOT NULL,
    bid_s         REAL NOT NULL,
    ask_s         REAL NOT NULL,
    spread_bps_s  REAL NOT NULL,
    depth_05_s    REAL NOT NULL,
    depth_1_s     REAL NOT NULL,
    depth_2_s     REAL NOT NULL,
    placed_size   REAL NOT NULL,
    filled_size   REAL NOT NULL,
    order_actions INTEGER NOT NULL,
    fills         INTEGER NOT NULL,
    met_s         REAL,
    observed_s    REAL,
    required      REAL,
    breached      INTEGER CHECK (breached IN (0, 1))
);
CREATE INDEX kpi_snapshots_by_time ON kpi_snapshots (profile, ts);
"""

# Who did what to a running supervisor (kasmm.supervisor.actions): every operator action with
# the operator's name, whether or not another table records its effect. ``profile`` is NULL
# for a supervisor-wide action (a reload).
_V6_OPERATOR_ACTIONS = """
CREATE TABLE operator_actions (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    ts       REAL NOT NULL,
    operator TEXT NOT NULL,
    action   TEXT NOT NULL,
    profile  TEXT,
    details  TEXT NOT NULL
);
CREATE INDEX operator_actions_by_time ON operator_actions (ts);
"""

# Markout of the bot's fills per horizon with each KPI snapshot (kasmm.store.kpis): cumulative
# sums since the bot started, like the row they belong to. The bps sums are statistics (REAL);
# the size and the quote sum are exact Decimal text like every amount of money.
_V7_KPI_MARKOUTS = """
CREATE TABLE kpi_markouts (
    kpi_id       INTEGER NOT NULL REFERENCES kpi_snapshots (id),
    horizon_s    REAL NOT NULL CHECK (horizon_s > 0),
    fills        INTEGER NOT NULL,
    bps_sum      REAL NOT NULL,
    size_bps_sum REAL NOT NULL,
    size         TEXT NOT NULL,
    quote        TEXT NOT NULL,
    PRIMARY KEY (kpi_id, horizon_s)
);
"""

# Hedging (kasmm.store.hedges): each hedged fill of a profile with its unhedged residual, and
# the links from each hedge order (an order of the hedge profile) to the fills it covers.
_V8_HEDGES = """
CREATE TABLE hedge_starts (
    profile       TEXT NOT NULL,
    hedge_profile TEXT NOT NULL,
    since_fill    INTEGER NOT NULL,
    ts            REAL NOT NULL,
    PRIMARY KEY (profile, hedge_profile)
);
CREATE TABLE hedge_exposures (
    profile       TEXT NOT NULL,
    trade_id      TEXT NOT NULL,
    hedge_profile TEXT NOT NULL,
    side          TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    size          TEXT NOT NULL,
    residual      TEXT NOT NULL,
    open          INTEGER NOT NULL CHECK (open IN (0, 1)),
    ts            REAL NOT NULL,
    updated_ts    REAL NOT NULL,
    PRIMARY KEY (profile, trade_id)
);
CREATE INDEX hedge_exposures_open ON hedge_exposures (profile, hedge_profile, open);
CREATE TABLE hedge_links (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    profile         TEXT NOT NULL,
    trade_id        TEXT NOT NULL,
    hedge_profile   TEXT NOT NULL,
    hedge_client_id TEXT NOT NULL,
    planned         TEXT NOT NULL,
    hedged          TEXT,
    mid             TEXT,
    ts              REAL NOT NULL,
    settled_ts      REAL,
    UNIQUE (hedge_profile, hedge_client_id, profile, trade_id),
    FOREIGN KEY (hedge_profile, hedge_client_id) REFERENCES orders (profile, client_id),
    FOREIGN KEY (profile, trade_id) REFERENCES hedge_exposures (profile, trade_id)
);
CREATE INDEX hedge_links_by_fill ON hedge_links (profile, trade_id);
CREATE INDEX hedge_links_unsettled ON hedge_links (profile, hedge_profile, hedged);
"""

# Settlement to a Kaspa wallet (kasmm.store.settlements): one row per sweep, keyed by its
# idempotency key and written *before* the withdrawal is requested, its trail of steps, and
# each profile's booking of a sweep as a transfer (so PnL and risk treat it so after a restart).
_V9_SETTLEMENTS = """
CREATE TABLE settlements (
    sweep_key     TEXT PRIMARY KEY,
    account       TEXT NOT NULL,
    exchange      TEXT NOT NULL,
    asset         TEXT NOT NULL,
    amount        TEXT NOT NULL,
    fee           TEXT NOT NULL,
    address       TEXT NOT NULL,
    network       TEXT NOT NULL,
    client_id     TEXT,
    state         TEXT NOT NULL
                  CHECK (state IN ('requested', 'accepted', 'sent', 'confirmed', 'failed')),
    withdrawal_id TEXT,
    txid          TEXT,
    confirmations INTEGER NOT NULL DEFAULT 0,
    reason        TEXT,
    derivation    INTEGER,
    requested_ts  REAL NOT NULL,
    updated_ts    REAL NOT NULL
);
CREATE INDEX settlements_by_account ON settlements (account, state, requested_ts);
CREATE TABLE settlement_steps (
    sweep_key TEXT NOT NULL REFERENCES settlements (sweep_key),
    seq       INTEGER NOT NULL,
    state     TEXT NOT NULL,
    ts        REAL NOT NULL,
    detail    TEXT NOT NULL,
    PRIMARY KEY (sweep_key, seq)
);
CREATE TABLE transfers (
    profile   TEXT NOT NULL,
    sweep_key TEXT NOT NULL REFERENCES settlements (sweep_key),
    direction TEXT NOT NULL CHECK (direction IN ('out', 'back')),
    asset     TEXT NOT NULL,
    amount    TEXT NOT NULL,
    mark      TEXT NOT NULL,
    ts        REAL NOT NULL,
    PRIMARY KEY (profile, sweep_key, direction)
);
"""

# A portfolio's count of its members' settlement sweeps (kasmm.store.group_transfers): one row
# per portfolio, member, sweep and direction, written with the lowering of the group's stored
# equity peak, so a sweep never looks like the group's loss, also after a restart.
_V10_GROUP_TRANSFERS = """
CREATE TABLE group_transfers (
    portfolio TEXT NOT NULL,
    member    TEXT NOT NULL,
    sweep_key TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('out', 'back')),
    value     TEXT NOT NULL,
    ts        REAL NOT NULL,
    PRIMARY KEY (portfolio, member, sweep_key, direction)
);
"""

#: Schema scripts in order; ``MIGRATIONS[i]`` upgrades version ``i`` to ``i + 1``.
MIGRATIONS: tuple[str, ...] = (
    _V1_ORDERS_AND_FILLS,
    _V2_ACCOUNTING_AND_RISK,
    _V3_BALANCE_CHECKS,
    _V4_OPENING_BALANCES,
    _V5_KPI_SNAPSHOTS,
    _V6_OPERATOR_ACTIONS,
    _V7_KPI_MARKOUTS,
    _V8_HEDGES,
    _V9_SETTLEMENTS,
    _V10_GROUP_TRANSFERS,
)

#: The version this code reads and writes.
LATEST_VERSION = len(MIGRATIONS)

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at REAL NOT NULL
)
"""


class SchemaError(Exception):
    """The database's schema cannot be used or migrated by this code."""


def statements(script: str) -> Iterator[str]:
    """Split ``script`` into complete SQL statements (each must end a line with ``;``).

    ``executescript`` would do this too, but it commits any open transaction first, which would
    break "migration and version row in one transaction".
    """
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    rest = [ln for ln in buffer.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if rest:
        raise SchemaError(f"incomplete SQL statement at end of script: {buffer.strip()[:80]!r}")


def schema_version(conn: sqlite3.Connection) -> int:
    """The version of the schema in ``conn`` (0 for an empty database)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(row[0])


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[str] = MIGRATIONS,
    target: int | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Bring ``conn``'s schema to ``target`` (default: the last migration); return the version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) with no open transaction.

    :raises SchemaError: when the database is newer than ``migrations`` (written by a later kasmm)
        or ``target`` is out of range.
    :raises sqlite3.Error: when a script fails; that migration is rolled back, earlier ones stay.
    """
    if conn.isolation_level is not None or conn.in_transaction:
        raise SchemaError("migrate needs an autocommit connection with no open transaction")
    goal = len(migrations) if target is None else target
    if not 0 <= goal <= len(migrations):
        raise SchemaError(f"target version {goal} outside 0..{len(migrations)}")
    version = schema_version(conn)
    if version > len(migrations):
        raise SchemaError(
            f"database schema version {version} is newer than this kasmm ({len(migrations)})"
        )
    while version < goal:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_VERSION_TABLE)
            version = schema_version(conn)  # re-read under the write lock: another process
            if version < goal:  # may have migrated while we waited for it
                for statement in statements(migrations[version]):
                    conn.execute(statement)
                version += 1
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, clock()),
                )
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
    return version


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any (a failed COMMIT may already have ended it)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
