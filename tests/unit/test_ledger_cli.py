"""Commands on a damaged ledger: one stderr line naming the file, a non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kasmm.commands.reset import reset_command
from kasmm.store import Ledger

GARBAGE = b"this is not a ledger\n" * 300


@pytest.fixture
def state(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    (directory / "kasmm.sqlite").write_bytes(GARBAGE)
    return directory


def test_supervise_on_a_damaged_ledger_exits_2_with_one_line(tmp_path: Path, state: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "kasmm", "supervise", str(profiles), "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
    )
    ledger = state / "kasmm.sqlite"
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"kasmm supervise: {ledger}: damaged (file is not a database)"
    ]
    assert done.stdout == ""
    assert ledger.read_bytes() == GARBAGE  # left as found, for the operator to inspect


def test_reset_on_a_damaged_ledger_exits_2_with_one_line(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert reset_command("kas_usdt", state, "alice") == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"kasmm reset: {state / 'kasmm.sqlite'}: damaged (file is not a database)"
    ]


def test_report_on_a_damaged_ledger_exits_2_with_one_line(
    tmp_path: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    from kasmm.commands.report import report_command

    assert report_command(state, tmp_path / "report.html") == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert f"{state / 'kasmm.sqlite'}: damaged" in lines[0]
    assert not (tmp_path / "report.html").exists()


def test_reset_still_works_on_a_healthy_ledger(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Ledger(state / "kasmm.sqlite") as ledger:
        ledger.record_risk_event("p", 1.0, "trip", "max_drawdown", "halt", "halted", {})
    assert reset_command("p", state, "alice") == 0
