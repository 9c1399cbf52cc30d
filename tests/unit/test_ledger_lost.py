"""A ledger deleted, replaced or damaged: LedgerLost, at open or at the next call, for good."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.errors import LedgerLost
from kasmm.store import AsyncLedger, Ledger, LedgerError
from kasmm.store.db import FILL_COLUMNS, fill_row

D = Decimal
P = "kas_usdt"


def fill(n: int) -> Fill:
    return Fill(
        TradeId(f"t{n}"), ClientOrderId(f"c{n}"), Side.BUY, D("0.12"), D(10), D(0), "USDT", n
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "kasmm.sqlite"


@pytest.fixture
def ledger(path: Path) -> Iterator[Ledger]:
    with Ledger(path) as opened:
        assert opened.record_fill(P, fill(0))
        yield opened


def every_call_raises(ledger: Ledger, message: str) -> None:
    """Once lost, reads, writes and check() all raise; none silently succeeds."""
    calls = [
        ledger.check,
        lambda: ledger.record_fill(P, fill(99)),
        lambda: ledger.set_opening(P, D(1), D(1), 1.0),
        lambda: ledger.record_mode(P, 1.0, "normal", "start"),
        lambda: ledger.fills(P),
        lambda: ledger.active_halt(P),
        ledger.profiles,
    ]
    for call in calls:
        with pytest.raises(LedgerLost, match=re.escape(message)):
            call()


# --- deleted or replaced while in use -------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
def test_a_deleted_file_makes_the_next_write_raise_and_every_later_call(
    ledger: Ledger, path: Path, suffix: str
) -> None:
    ledger.check()  # healthy: no error
    Path(f"{path}{suffix}").unlink()
    message = f"{path}{suffix}: deleted while in use"
    with pytest.raises(LedgerLost, match=re.escape(message)):
        ledger.record_fill(P, fill(1))
    every_call_raises(ledger, message)


def test_a_file_renamed_over_the_ledger_is_a_replaced_ledger(
    ledger: Ledger, path: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.sqlite"
    Ledger(other).close()
    os.replace(other, path)
    message = f"{path}: replaced while in use"
    with pytest.raises(LedgerLost, match=re.escape(message)):
        ledger.record_equity(P, 1.0, D(100), D("0.1"), D(500), D(50))
    every_call_raises(ledger, message)


def test_check_notices_a_deleted_ledger_without_any_write(ledger: Ledger, path: Path) -> None:
    """A quiet profile writes nothing for minutes: the supervisor's periodic check() is what
    notices."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink()
    with pytest.raises(LedgerLost, match=re.escape(f"{path}: deleted while in use")):
        ledger.check()


def test_a_commit_into_a_file_deleted_during_the_transaction_raises(
    ledger: Ledger, path: Path
) -> None:
    """The check before the write passes; the file goes while the INSERT runs. The call must
    not return True (the fill is only in an unlinked inode)."""

    def delete_on_insert(statement: str) -> None:
        if statement.startswith("INSERT INTO fills") and path.exists():
            path.unlink()

    ledger._conn.set_trace_callback(delete_on_insert)
    with pytest.raises(LedgerLost, match=re.escape(f"{path}: deleted while in use")):
        ledger.record_fill(P, fill(1))


@pytest.mark.anyio
async def test_async_ledger_raises_ledger_lost_from_writes_and_check(path: Path) -> None:
    async with AsyncLedger(Ledger(path)) as ledger:
        assert await ledger.record_fill(P, fill(1))
        await ledger.check()
        path.with_name("kasmm.sqlite-wal").unlink()
        with pytest.raises(LedgerLost, match=re.escape(f"{path}-wal: deleted while in use")):
            await ledger.check()
        with pytest.raises(LedgerLost, match="deleted while in use"):
            await ledger.record_fill(P, fill(2))
        with pytest.raises(LedgerLost, match="deleted while in use"):
            await ledger.fills(P)


def test_other_processes_and_checkpoints_are_not_a_lost_ledger(path: Path) -> None:
    """Shards share the file, `kasmm reset` and `kasmm report` open and close it, checkpoints
    rewrite the -wal: none of that changes the files a running ledger watches."""
    with Ledger(path) as first, Ledger(path) as second:
        for n in range(20):
            with Ledger(path) as passing:  # reset / report: open, write, close
                passing.record_mode(P, float(n), "normal", "operator")
            assert first.record_fill(P, fill(n))
            assert not second.record_fill(P, fill(n))
            with closing(sqlite3.connect(path)) as raw:
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        first.check()
        second.check()
        assert len(second.fills(P)) == 20
        assert len(first.mode_changes(P)) == 20


OTHER_PROCESS = """
import sys
from pathlib import Path
from kasmm.store import Ledger
for n in range(10):
    with Ledger(Path(sys.argv[1])) as ledger:
        ledger.record_mode("other", float(n), "normal", "operator")
"""


def test_another_process_opening_and_closing_is_not_a_lost_ledger(path: Path) -> None:
    """Across processes the last connection to close deletes the -wal; one still open (ours)
    must keep SQLite from doing so."""
    with Ledger(path) as ledger:
        subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(path)], check=True, timeout=30)
        ledger.check()
        ledger.record_mode(P, 1.0, "normal", "start")
        assert len(ledger.mode_changes("other")) == 10


# --- damaged ----------------------------------------------------------------------------


def build(path: Path, fills: int) -> tuple[int, int]:
    """A real ledger with ``fills`` rows, checkpointed into the main file; (page size, pages)."""
    Ledger(path).close()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        conn.executemany(
            f"INSERT INTO fills (profile, {FILL_COLUMNS}) VALUES ({', '.join('?' * 12)})",
            (fill_row(P, fill(n)) for n in range(fills)),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    return page_size, pages


def overwrite_pages(path: Path, page_size: int, first: int, last: int) -> None:
    """Garbage over pages ``first..last`` (1-based), as a bad disk sector or a stray write."""
    with path.open("r+b") as fh:
        fh.seek((first - 1) * page_size)
        fh.write(b"\xa5" * page_size * (last - first + 1))


def tree_pages(path: Path, tree: str, kind: str) -> list[int]:
    """Page numbers of one table's or index's ``leaf`` or ``internal`` pages."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY pageno",
            (tree, kind),
        ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize(
    ("tree", "kind", "reason"),
    [
        # SQLite stops at a bad page of the table itself ...
        ("fills", "leaf", "database disk image is malformed)"),
        # ... and lists a bad index page: quick_check's report, on one line.
        ("fills_by_time", "leaf", "Page {bad}: btreeInitPage() returns error code 11)"),
        (
            "fills_by_time",
            "internal",
            "Page {bad}: btreeInitPage() returns error code 11; Page {next} is never used; ",
        ),
    ],
)
def test_one_damaged_page_refuses_the_open_with_one_line(
    path: Path, tree: str, kind: str, reason: str
) -> None:
    """A ledger whose rows are otherwise readable: without the check, the supervisor would
    report ready and each profile would crash-loop on the first query reaching the page."""
    page_size, _ = build(path, 5_000)
    pages = tree_pages(path, tree, kind)
    bad = pages[len(pages) // 2]
    below = tree_pages(path, tree, "leaf")
    overwrite_pages(path, page_size, bad, bad)
    with pytest.raises(LedgerLost) as caught:
        Ledger(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: damaged (")
    assert reason.format(bad=bad, next=below[0]) in message
    assert "\n" not in message
    assert len(message) < len(str(path)) + 200  # the first problems, then "and N more"


def test_a_damaged_page_in_the_middle_of_the_file_refuses_the_open_with_one_line(
    path: Path,
) -> None:
    """Whatever the page holds, SQLite reports it as a problem or as "malformed": both refuse."""
    page_size, pages = build(path, 5_000)
    for page in (pages // 3, pages // 2, pages - 1):
        damaged = path.with_name(f"damaged-{page}.sqlite")
        damaged.write_bytes(path.read_bytes())
        overwrite_pages(damaged, page_size, page, page)
        with pytest.raises(LedgerLost) as caught:
            Ledger(damaged)
        message = str(caught.value)
        assert message.startswith(f"{damaged}: damaged (")
        assert "\n" not in message


@pytest.mark.parametrize(
    "content",
    [b"this is not a ledger\n" * 300, b"SQLite format 3\x00" + b"\x00" * 4000],
    ids=["text", "bad-header"],
)
def test_a_garbage_file_refuses_the_open_with_one_line(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(LedgerLost) as caught:
        Ledger(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: damaged (")
    assert "\n" not in message


def test_a_page_damaged_while_in_use_is_a_lost_ledger(path: Path) -> None:
    """SQLite reports "malformed" when a query reaches a bad page the cache does not hold."""
    page_size, pages = build(path, 30_000)  # several MB: more than the 2 MB page cache
    with Ledger(path) as ledger:
        overwrite_pages(path, page_size, 3, pages)
        with pytest.raises(LedgerLost, match=re.escape(f"{path}: damaged while in use (")):
            ledger.fills(P)
        with pytest.raises(LedgerLost, match="damaged while in use"):
            ledger.check()


def test_a_ledger_that_cannot_be_created_is_a_ledger_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    with pytest.raises(LedgerError, match=re.escape(f"{blocker / 'kasmm.sqlite'}: cannot create")):
        Ledger(blocker / "kasmm.sqlite")
