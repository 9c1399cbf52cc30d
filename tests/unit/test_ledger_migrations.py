"""Ledger schema migrations: from empty, from v1, rollback on failure, refusing newer files."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.core.markout import HorizonMarkout
from kasmm.core.types import ClientOrderId, Side
from kasmm.store import LATEST_VERSION, MIGRATIONS, KpiRecord, Ledger, SchemaError, migrate
from kasmm.store.migrations import schema_version, statements


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(tmp_path / "kasmm.sqlite", isolation_level=None)) as opened:
        yield opened


def tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows} - {"sqlite_sequence"}


def test_migrate_from_empty_to_latest(conn: sqlite3.Connection) -> None:
    assert schema_version(conn) == 0
    assert migrate(conn, clock=lambda: 42.0) == LATEST_VERSION == 10
    assert conn.execute("SELECT version, applied_at FROM schema_version").fetchall() == [
        (1, 42.0),
        (2, 42.0),
        (3, 42.0),
        (4, 42.0),
        (5, 42.0),
        (6, 42.0),
        (7, 42.0),
        (8, 42.0),
        (9, 42.0),
        (10, 42.0),
    ]
    assert tables(conn) == {
        "schema_version",
        "orders",
        "order_events",
        "fills",
        "openings",
        "equity",
        "equity_peaks",
        "modes",
        "risk_events",
        "balance_drifts",
        "opening_balances",
        "kpi_snapshots",
        "operator_actions",
        "kpi_markouts",
        "hedge_starts",
        "hedge_exposures",
        "settlements",
        "settlement_steps",
        "transfers",
        "group_transfers",
        "hedge_links",
    }
    assert migrate(conn) == LATEST_VERSION  # idempotent


def test_v1_database_is_migrated_forward_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "kasmm.sqlite"
    with closing(sqlite3.connect(path, isolation_level=None)) as v1:
        assert migrate(v1, target=1) == 1
        assert "equity" not in tables(v1)
        v1.execute(
            "INSERT INTO fills (profile, trade_id, client_id, side, price, size, fee, fee_asset,"
            " ts, remaining, is_maker) VALUES"
            " ('p', 't1', 'c1', 'buy', '0.1030', '500', '0.05', 'USDT', 1.0, '0', 1)"
        )
        v1.execute(
            "INSERT INTO orders (profile, client_id, side, price, size, level, created_ts,"
            " status, status_ts) VALUES ('p', 'c2', 'sell', '0.11', '5', 0, 1.0, 'open', 1.0)"
        )
    with Ledger(path) as ledger:
        (stored,) = ledger.fills("p")
        assert (stored.price, stored.size, stored.fee) == (
            Decimal("0.1030"),
            Decimal(500),
            Decimal("0.05"),
        )
        assert ledger.open_orders("p") == [ClientOrderId("c2")]
        ledger.record_equity("p", 2.0, Decimal(100), Decimal("0.1"), Decimal(500), Decimal(50))
        assert ledger.peak_equity("p") == Decimal(100)
        ledger.record_order("p", ClientOrderId("c3"), Side.BUY, Decimal(1), Decimal(1), 3.0)
    with closing(sqlite3.connect(path)) as after:
        assert schema_version(after) == LATEST_VERSION


def test_v4_database_gains_kpi_snapshots_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "kasmm.sqlite"
    with closing(sqlite3.connect(path, isolation_level=None)) as v4:
        assert migrate(v4, target=4) == 4
        assert "kpi_snapshots" not in tables(v4)
        v4.execute(
            "INSERT INTO equity (profile, ts, equity, mid, base, quote)"
            " VALUES ('p', 1.0, '100', '0.08', '500', '60')"
        )
    record = KpiRecord(
        ts=2.0,
        run_id="r1",
        total_s=10.0,
        both_s=9.5,
        bid_s=10.0,
        ask_s=9.5,
        spread_bps_s=190.0,
        depth_s=(1600.0, 3200.0, 3200.0),
        placed_size=4000.0,
        filled_size=250.5,
        order_actions=6,
        fills=2,
        met_s=9.0,
        observed_s=10.0,
        required=0.9,
        breached=False,
    )
    bare = KpiRecord(3.0, "r2", 1.0, 0.0, 0.0, 0.0, 0.0, (0.0, 0.0, 0.0), 0.0, 0.0, 0, 0)
    with Ledger(path) as ledger:
        (snap,) = ledger.equity_series("p")
        assert (snap.ts, snap.equity) == (1.0, Decimal(100))
        ledger.record_kpis("p", record)
        ledger.record_kpis("p", bare)  # a profile without obligations: NULLs
        assert ledger.kpi_series("p") == [record, bare]
        assert ledger.kpi_series("p", since=2.5) == [bare]
        assert ledger.kpi_series("p", until=2.5) == [record]
        assert ledger.kpi_series("q") == []
    with closing(sqlite3.connect(path)) as after:
        assert schema_version(after) == LATEST_VERSION == 10


def test_v5_database_gains_operator_actions(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with closing(sqlite3.connect(path, isolation_level=None)) as old:
        assert migrate(old, target=5) == 5
        assert "operator_actions" not in tables(old)
    with Ledger(path) as ledger:
        ledger.record_operator_action(10.0, "alice", "mode", "p1", {"mode": "aggressive"})
        ledger.record_operator_action(11.0, "bob", "reload", None, {"result": "reloaded"})
        assert [(a.ts, a.operator, a.action, a.profile, dict(a.details)) for a in
                ledger.operator_actions()] == [
            (10.0, "alice", "mode", "p1", {"mode": "aggressive"}),
            (11.0, "bob", "reload", None, {"result": "reloaded"}),
        ]  # fmt: skip
    with closing(sqlite3.connect(path)) as after:
        assert schema_version(after) == LATEST_VERSION == 10


def test_failed_migration_rolls_back_and_keeps_the_version(conn: sqlite3.Connection) -> None:
    migrate(conn)
    broken = (*MIGRATIONS, "CREATE TABLE half_done (a TEXT);\nSELECT * FROM no_such_table;\n")
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        migrate(conn, broken)
    assert schema_version(conn) == LATEST_VERSION
    assert "half_done" not in tables(conn)
    assert not conn.in_transaction


def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kasmm.sqlite"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate(conn)
        conn.execute("INSERT INTO schema_version VALUES (?, 0)", (LATEST_VERSION + 1,))
    with pytest.raises(SchemaError, match="newer"):
        Ledger(path)


@pytest.mark.parametrize("target", [-1, LATEST_VERSION + 1])
def test_target_out_of_range(conn: sqlite3.Connection, target: int) -> None:
    with pytest.raises(SchemaError, match="outside"):
        migrate(conn, target=target)


def test_migrate_needs_an_autocommit_connection(tmp_path: Path) -> None:
    legacy = sqlite3.connect(tmp_path / "x.sqlite")  # implicit transactions
    with closing(legacy), pytest.raises(SchemaError, match="autocommit"):
        migrate(legacy)


def test_statements_split_on_complete_statements_only() -> None:
    script = (
        "-- a comment\n"
        "CREATE TABLE t (a TEXT DEFAULT 'x;y');\n"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n"
        "  UPDATE t SET a = 'z';\n"
        "END;\n"
        "-- trailing comment\n"
    )
    parts = list(statements(script))
    assert len(parts) == 2
    assert parts[0].endswith("DEFAULT 'x;y');")
    assert parts[1].startswith("CREATE TRIGGER") and parts[1].endswith("END;")
    with pytest.raises(SchemaError, match="incomplete"):
        list(statements("CREATE TABLE t (a TEXT)\n"))


def test_v6_database_gains_kpi_markouts_and_its_kpi_rows_read_without_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    old_row = KpiRecord(1.0, "r1", 1.0, 0.0, 0.0, 0.0, 0.0, (0.0, 0.0, 0.0), 0.0, 0.0, 0, 0)
    with closing(sqlite3.connect(path, isolation_level=None)) as v6:
        assert migrate(v6, target=6) == 6
        assert "kpi_markouts" not in tables(v6)
        v6.execute(
            "INSERT INTO kpi_snapshots (profile, ts, run_id, total_s, both_s, bid_s, ask_s,"
            " spread_bps_s, depth_05_s, depth_1_s, depth_2_s, placed_size, filled_size,"
            " order_actions, fills) VALUES ('p', 1.0, 'r1', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)"
        )
    marked = KpiRecord(
        2.0, "r1", 2.0, 0.0, 0.0, 0.0, 0.0, (0.0, 0.0, 0.0), 10.0, 3.0, 2, 2,
        markouts=(
            HorizonMarkout(1.0, 2, -3.5, -7.25, Decimal("3"), Decimal("-0.00012345678901234")),
            HorizonMarkout(10.0, 1, 4.0, 8.0, Decimal("2"), Decimal("0.0004")),
        ),
    )  # fmt: skip
    with Ledger(path) as ledger:
        assert ledger.kpi_series("p") == [old_row]  # a row from before: no markout rows
        ledger.record_kpis("p", marked)
        ledger.record_kpis("q", dataclasses.replace(marked, ts=2.5))
        assert ledger.kpi_series("p") == [old_row, marked]  # the quote sum exact
        assert ledger.kpi_series("p", since=1.5) == [marked]
        assert ledger.kpi_series("p", until=1.5) == [old_row]
        (other,) = ledger.kpi_series("q")
        assert other.markouts == marked.markouts
    with closing(sqlite3.connect(path)) as after:
        assert schema_version(after) == LATEST_VERSION == 10
