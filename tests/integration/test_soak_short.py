"""The short soak (``bench/soak.py --short``): 20 sim profiles under one supervisor, about 10 %
of ~10,000 venue calls faulted, hostile stream data, tight kill switches; one run shared by the
checks below (about 40 s)."""

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
def soak() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "soak.py"), "--short", "--seconds", "30"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_soak_supervisor_survives_and_every_fault_kind_happened(soak: dict[str, Any]) -> None:
    assert soak["supervisor_crashes"] == 0, soak["crash_messages"]
    assert soak["profiles"] >= 20
    assert soak["venue_calls"] >= 5_000
    assert 0.07 <= soak["faulted_share"] <= 0.15
    for kind in (
        "timeout_lost",
        "timeout_unsent",
        "rate_limited",
        "network",
        "maintenance",
        "insufficient_funds",
        "cancel_not_found_done",
        "cancel_not_found_kept",
        "latency_spike",
        "fill_duplicate",
        "fill_out_of_order",
        "fill_split",
        "book_out_of_order",
        "book_crossed",
        "absurd_jump",
        "stale",
    ):
        assert soak["faults"].get(kind, 0) > 0, kind


def test_soak_no_duplicates_and_kill_switches_trip(soak: dict[str, Any]) -> None:
    assert soak["duplicate_client_ids"] == 0
    assert soak["fills_doubled"] == 0
    assert soak["kill_switches_expected"] >= 7
    # In 35 s of real time the error-heavy profile (30 % of its calls fail) may spend the
    # whole window failing at start-up and backing off: its errors then surface as restarts,
    # not as the in-loop max_consecutive_errors rule. Every other rule must trip, and that one
    # may only be missing from a profile that really was restarting. (The full soak trips 7/7.)
    for missing in soak["kill_switches_missing"]:
        name, rule = missing.split(":")
        assert rule == "max_consecutive_errors", missing
        assert soak["per_profile"][name]["restarts"] > 0, missing
    assert soak["profiles_failed"] == 0
    assert (
        soak["profiles_recovered"] + soak["profiles_restart_in_progress_at_stop"]
        == soak["profiles_restarted"]
    )


def test_soak_no_order_left(soak: dict[str, Any]) -> None:
    assert soak["orphaned_orders_after_shutdown"] == 0
    assert soak["supervisor_exit_code"] == 0


def test_soak_no_fill_lost(soak: dict[str, Any]) -> None:
    assert soak["fills_lost"] == 0
    assert soak["fills_in_ledger"] == soak["fills_delivered_to_bots"]
