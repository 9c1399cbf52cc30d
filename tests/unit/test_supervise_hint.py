"""The one-line hint ``kasmm supervise`` logs on start: where to watch (issue 16, point 9)."""

from __future__ import annotations

from kasmm.commands.supervise import start_hint


def test_default_address_needs_no_flag() -> None:
    assert start_hint("127.0.0.1:9301") == (
        "watch with: kasmm top | kasmm status | metrics http://127.0.0.1:9301/metrics"
    )


def test_another_address_is_passed_on() -> None:
    assert start_hint("127.0.0.1:9400") == (
        "watch with: kasmm top --addr 127.0.0.1:9400 | kasmm status --addr 127.0.0.1:9400 | "
        "metrics http://127.0.0.1:9400/metrics"
    )


def test_no_endpoint_points_at_the_ledger_commands() -> None:
    hint = start_hint(None)
    assert "--metrics-addr ''" in hint and "kasmm report" in hint and "http" not in hint
