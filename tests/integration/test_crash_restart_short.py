"""The short crash-restart run (``bench/crash_restart.py --kills 3``): ``kasmm supervise`` killed
with SIGKILL three times against the out-of-process MEXC emulator, restarted on the same state
directory, then stopped with SIGTERM (about 30 s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def crash() -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "crash_restart.py"),
            "--kills",
            "3",
            "--max-seconds",
            "45",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=58,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_kills_leave_no_orders_and_no_duplicates(crash: dict[str, Any]) -> None:
    assert crash["kills"] == 3
    assert crash["supervisor_crashes"] == 0, crash["crash_messages"]
    assert crash["orders_left_after_reconcile"] == 0
    assert crash["orders_left_after_final_stop"] == 0
    assert crash["final_exit_code"] == 0
    assert crash["duplicate_client_id_posts"] == 0
    assert crash["duplicate_orders"] == 0
    assert crash["outside_fills"] > 0  # fills really happened


def test_halt_survives_every_kill(crash: dict[str, Any]) -> None:
    assert crash["halt_trips"] == 1
    assert crash["halt_active_at_end"] is True
    assert crash["halt_orders_after_trip"] == 0
    assert crash["halt_restored_runs"] == crash["halt_runs"] >= 1


def test_ledger_history_is_append_only_and_status_matches_it(crash: dict[str, Any]) -> None:
    assert crash["ledger_history_violations"] == []
    assert crash["pnl_status_vs_ledger_mismatches"] == 0, crash["pnl_mismatch_examples"]
    assert crash["mm_fills_extra_in_ledger"] == 0


def test_every_venue_fill_is_in_the_ledger_and_pnl_matches(crash: dict[str, Any]) -> None:
    assert crash["mm_fills_missing_in_ledger"] == 0, crash["mm_missing_fill_ids"]
    assert crash["mm_realized_pnl_ledger"] == crash["mm_realized_pnl_venue"]
