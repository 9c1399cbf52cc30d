"""Ledger risk events: a halt latches until exactly one operator reset, per profile."""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.store import HaltRecord, Ledger

P = "kas_usdt"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "kasmm.sqlite") as opened:
        yield opened


def trip_halt(ledger: Ledger, ts: float, rule: str = "max_drawdown", profile: str = P) -> None:
    details = {"value": Decimal("61.5"), "limit": Decimal("50"), "detail": "quote"}
    ledger.record_risk_event(profile, ts, "trip", rule, "halt", "halted", details)


def test_no_halt_without_a_halt_trip(ledger: Ledger) -> None:
    assert ledger.active_halt(P) is None
    ledger.record_risk_event(P, 1.0, "trip", "stale_book", "pause", "paused", {"value": 31.0})
    ledger.record_risk_event(P, 2.0, "trip", "max_inventory_deviation", "reduce_only", "x", {})
    assert ledger.active_halt(P) is None
    assert ledger.reset(P, 3.0, "alice") is False
    assert [e.kind for e in ledger.risk_events(P)] == ["trip", "trip"]


def test_halt_latches_through_clear_and_resets_exactly_once(ledger: Ledger) -> None:
    trip_halt(ledger, 10.0)
    ledger.record_risk_event(P, 11.0, "clear", "max_drawdown", "halt", "halted", {})
    halt = ledger.active_halt(P)
    assert halt == HaltRecord(
        10.0, "max_drawdown", {"value": "61.5", "limit": "50", "detail": "quote"}
    )
    assert ledger.reset(P, 12.0, "alice") is True
    assert ledger.active_halt(P) is None
    assert ledger.reset(P, 13.0, "bob") is False
    events = ledger.risk_events(P)
    assert [e.kind for e in events] == ["trip", "clear", "reset"]
    assert events[-1].details == {"operator": "alice", "halt_ts": 10.0, "halt_rule": "max_drawdown"}


def test_a_new_halt_after_a_reset_is_active_again(ledger: Ledger) -> None:
    trip_halt(ledger, 1.0)
    assert ledger.reset(P, 2.0, "alice")
    trip_halt(ledger, 3.0, rule="max_daily_loss")
    halt = ledger.active_halt(P)
    assert halt is not None
    assert (halt.ts, halt.rule) == (3.0, "max_daily_loss")


def test_latest_of_several_halts_is_reported_and_one_reset_clears_all(ledger: Ledger) -> None:
    trip_halt(ledger, 1.0, rule="max_drawdown")
    trip_halt(ledger, 2.0, rule="mid_jump")
    halt = ledger.active_halt(P)
    assert halt is not None
    assert halt.rule == "mid_jump"
    assert ledger.reset(P, 3.0, "alice")
    assert ledger.active_halt(P) is None


def test_halts_and_resets_are_per_profile(ledger: Ledger) -> None:
    trip_halt(ledger, 1.0, profile="a")
    trip_halt(ledger, 1.0, profile="b")
    assert ledger.reset("a", 2.0, "alice")
    assert ledger.active_halt("a") is None
    assert ledger.active_halt("b") is not None


def test_halt_persists_across_reopen_until_reset(tmp_path: Path) -> None:
    path = tmp_path / "kasmm.sqlite"
    with Ledger(path) as first:
        trip_halt(first, 1.0)
    with Ledger(path) as second:
        halt = second.active_halt(P)
        assert halt is not None
        assert halt.details["value"] == "61.5"
        assert second.reset(P, 2.0, "alice")
    with Ledger(path) as third:
        assert third.active_halt(P) is None
        assert third.reset(P, 3.0, "alice") is False


def test_details_hold_infinite_and_nested_values(ledger: Ledger) -> None:
    details = {"age": math.inf, "mids": [Decimal("0.1"), 2], "nested": {"ok": True, "n": None}}
    ledger.record_risk_event(P, 1.0, "trip", "stale_book", "halt", "halted", details)
    halt = ledger.active_halt(P)
    assert halt is not None
    assert halt.details == {"age": "inf", "mids": ["0.1", 2], "nested": {"ok": True, "n": None}}


@pytest.mark.parametrize(
    ("kind", "details", "error"),
    [
        ("tripped", {}, ValueError),
        ("trip", {"when": object()}, TypeError),
        ("trip", {1: "x"}, TypeError),
    ],
)
def test_invalid_risk_events_are_refused(
    ledger: Ledger, kind: str, details: dict[object, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        ledger.record_risk_event(P, 1.0, kind, "r", "halt", "halted", details)  # type: ignore[arg-type]
    assert ledger.risk_events(P) == []


def test_reset_needs_an_operator(ledger: Ledger) -> None:
    trip_halt(ledger, 1.0)
    with pytest.raises(ValueError, match="operator"):
        ledger.reset(P, 2.0, "")
    assert ledger.active_halt(P) is not None
