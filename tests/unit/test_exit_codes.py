"""``kasmm supervise``'s exit statuses, and what the systemd units do with each."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from kasmm.daemon import exit_codes

UNITS = Path(__file__).resolve().parents[2] / "systemd"


@pytest.mark.parametrize(
    ("ledger_lost", "orders_left", "failed", "status"),
    [
        (False, 0, 0, 0),
        (False, 2, 0, 1),
        (False, 0, 1, 3),
        (False, 2, 1, 1),  # orders left is the more urgent news: a restart cancels them
        (True, 0, 0, 4),
        (True, 2, 1, 4),  # a lost ledger wins: a restart must wait for the operator
    ],
)
def test_the_most_urgent_condition_sets_the_status(
    ledger_lost: bool, orders_left: int, failed: int, status: int
) -> None:
    assert (
        exit_codes.stop_status(ledger_lost=ledger_lost, orders_left=orders_left, failed=failed)
        == status
    )


def test_a_forced_exit_is_128_plus_the_signal() -> None:
    assert exit_codes.forced_exit_code(signal.SIGTERM) == 143
    assert exit_codes.forced_exit_code(signal.SIGINT) == 130


def _values(unit: str, key: str) -> list[str]:
    out: list[str] = []
    for line in (UNITS / unit).read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name == key:
            out.extend(value.split())
    return out


@pytest.mark.parametrize("unit", ["kasmm.service", "kasmm@.service"])
def test_systemd_restarts_on_every_failure_but_a_usage_error_and_a_lost_ledger(unit: str) -> None:
    assert _values(unit, "Restart") == ["on-failure"]
    prevented = {int(v) for v in _values(unit, "RestartPreventExitStatus")}
    assert prevented == {exit_codes.USAGE, exit_codes.LEDGER_LOST}
    # None of the statuses that must restart is declared a success.
    success = set(_values(unit, "SuccessExitStatus"))
    restarting = {
        exit_codes.ORDERS_LEFT,
        exit_codes.PROFILES_FAILED,
        exit_codes.forced_exit_code(signal.SIGTERM),
        exit_codes.forced_exit_code(signal.SIGINT),
    }
    assert not success & {str(code) for code in restarting}
    assert not prevented & restarting
