"""Ledger on disk: WAL mode, owner-only permissions, state across reopen, fills survive kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.store import Ledger

D = Decimal
P = "kas_usdt"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_wal_mode_and_connection_settings(tmp_path: Path) -> None:
    path = tmp_path / "kasmm.sqlite"
    with Ledger(path, busy_timeout_s=2.5) as ledger:
        assert ledger.connection_settings() == {
            "journal_mode": "wal",
            "synchronous": 1,  # NORMAL
            "foreign_keys": 1,
            "busy_timeout": 2500,
        }
    with closing(sqlite3.connect(path)) as other:  # WAL is a property of the file
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_new_files_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "state" / "db" / "kasmm.sqlite"
    previous = os.umask(0)
    try:
        with Ledger(path) as ledger:
            ledger.record_fill(
                P, Fill(TradeId("t"), ClientOrderId("c"), Side.BUY, D(1), D(1), D(0), "USDT", 1.0)
            )
            assert mode(path) == 0o600
            assert mode(path.with_name("kasmm.sqlite-wal")) == 0o600
            assert mode(path.with_name("kasmm.sqlite-shm")) == 0o600
    finally:
        os.umask(previous)
    assert mode(path.parent) == mode(path.parent.parent) == 0o700


def test_existing_directory_mode_is_left_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    with Ledger(tmp_path / "kasmm.sqlite"):
        pass
    assert mode(tmp_path) == 0o755


def test_state_is_the_same_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "kasmm.sqlite"
    fills = [
        Fill(TradeId("t1"), ClientOrderId("c1"), Side.BUY, D("1.00"), D(100), D("0.1"), "USDT", 1),
        Fill(TradeId("t2"), ClientOrderId("c2"), Side.BUY, D("1.10"), D(100), D("0.1"), "USDT", 2),
        Fill(TradeId("t3"), ClientOrderId("c3"), Side.SELL, D("1.20"), D(150), D("0.1"), "USDT", 3),
    ]
    with Ledger(path) as first:
        first.set_opening(P, D(10), D("0.95"), 0.5)
        for f in fills:
            first.record_fill(P, f)
        first.record_equity(P, 4.0, D("1234.5"), D("1.2"), D(60), D("1162.5"))
        first.record_equity(P, 5.0, D("1200"), D("1.1"), D(60), D("1134"))
        first.record_risk_event(P, 6.0, "trip", "max_drawdown", "halt", "halted", {"v": D(34)})
        before = (first.pnl_state(P, "USDT", first.opening(P)), first.peak_equity(P))
        halt_before = first.active_halt(P)
    with Ledger(path) as second:
        assert second.record_fill(P, fills[1]) is False  # a replayed event after restart
        after = (second.pnl_state(P, "USDT", second.opening(P)), second.peak_equity(P))
        assert after == before
        assert after[1] == D("1234.5")
        assert second.active_halt(P) == halt_before is not None
        assert second.opening(P) == (D(10), D("0.95"))


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from decimal import Decimal
    from pathlib import Path
    from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
    from kasmm.store import Ledger

    ledger = Ledger(Path(sys.argv[1]))
    for n in range(int(sys.argv[3])):
        fill = Fill(TradeId(f"t{n}"), ClientOrderId(f"c{n}"), Side.BUY, Decimal("0.1234"),
                    Decimal(n + 1), Decimal("0.000001234"), "USDT", float(n))
        assert ledger.record_fill("p", fill)
    sys.stdout.write("stored\\n")
    sys.stdout.flush()
    if sys.argv[2] == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(0)
    """
)


@pytest.mark.parametrize(("how", "returncode"), [("sigkill", -signal.SIGKILL), ("exit", 0)])
def test_fill_survives_the_process_dying_right_after_record_fill(
    tmp_path: Path, how: str, returncode: int
) -> None:
    path = tmp_path / "kasmm.sqlite"
    done = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(path), how, "50"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
    )
    assert (done.returncode, done.stdout, done.stderr) == (returncode, "stored\n", "")
    # The connection was never closed: the fills are only in the WAL, replayed on open.
    assert path.with_name("kasmm.sqlite-wal").stat().st_size > 0
    with Ledger(path) as ledger:
        stored = ledger.fills("p")
    assert [f.trade_id for f in stored] == [f"t{n}" for n in range(50)]
    assert stored[-1].fee == D("0.000001234")
