"""Settlements in ``kasmm status``, ``kasmm top`` and ``/metrics``, from a ledger filled through
:class:`SettlementBook`: open sweeps with their state, age, txid and confirmations, the last
finished ones, the next scheduled run; ``kasmm status`` reads the ledger when no supervisor
answers."""

from __future__ import annotations

import json
import socket
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace

import pytest

from kasmm.commands.status import render_table, status_command
from kasmm.config.settlement import SettleSchedule
from kasmm.console.details import supervisor_detail
from kasmm.console.plain import render_plain
from kasmm.obs.families import Families, MetricBackend
from kasmm.obs.settlement_metrics import fill_settlements
from kasmm.store.ledger import Ledger
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlement_view import read_overview
from kasmm.store.settlements import SweepRecord
from kasmm.supervisor.settle_schedule import SettlementScheduler
from kasmm.supervisor.settle_status import settlement_status

ADDRESS = "kaspa:qqkqkzjvr7zwxxmjxjkmxxdwju9kjs6e9u82uh59z07vgaks6gg62v8707g73"
TX_SENT = "ab" * 32
TX_DONE = "cd" * 32
WALL = 10_000.0


def _sweep(key: str, amount: str, ts: float, account: str = "mexc-main") -> SweepRecord:
    return SweepRecord(
        key=key,
        account=account,
        exchange="mexc",
        asset="KAS",
        amount=D(amount),
        fee=D("10"),
        address=ADDRESS,
        network="mainnet",
        client_id=key,
        state="requested",
        requested_ts=ts,
        updated_ts=ts,
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    led = Ledger(tmp_path / "kasmm.sqlite")
    book = SettlementBook(led)
    book.record_requested(_sweep("sw-done", "2000", WALL - 7200))
    book.advance("sw-done", "accepted", WALL - 7190, withdrawal_id="w1")
    book.advance("sw-done", "sent", WALL - 7100, txid=TX_DONE)
    book.advance("sw-done", "confirmed", WALL - 7000, confirmations=100)
    book.record_requested(_sweep("sw-bad", "900", WALL - 3600))
    book.advance("sw-bad", "failed", WALL - 3590, reason="address not whitelisted (30004)")
    book.record_requested(_sweep("sw-open", "1500.5", WALL - 125))
    book.advance("sw-open", "sent", WALL - 60, withdrawal_id="w3", txid=TX_SENT)
    book.advance("sw-open", "sent", WALL - 30, confirmations=12)
    book.record_requested(_sweep("gate-1", "300", WALL - 10, account="gate-main"))
    return led


def _doc(
    ledger: Ledger, schedules: dict[str, dict[str, object]] | None = None
) -> dict[str, object]:
    overview = read_overview(ledger)
    return {
        "supervisor": {"pid": 1, "uptime_s": 5.0, "profiles_total": 0},
        "profiles": [],
        "settlements": settlement_status(overview, WALL, schedules),
    }


def test_the_document_holds_open_and_finished_sweeps(ledger: Ledger) -> None:
    doc = _doc(ledger)["settlements"]
    assert isinstance(doc, dict)
    assert sorted(doc) == ["gate-main", "mexc-main"]
    mexc = doc["mexc-main"]
    (open_,) = mexc["open"]
    assert open_ | {} == {
        **open_,
        "key": "sw-open",
        "asset": "KAS",
        "amount": "1500.5",
        "state": "sent",
        "age_s": 125.0,
        "txid": TX_SENT,
        "confirmations": 12,
        "withdrawal_id": "w3",
    }
    assert [(r["key"], r["state"]) for r in mexc["recent"]] == [
        ("sw-bad", "failed"),
        ("sw-done", "confirmed"),
    ]
    assert mexc["recent"][1]["txid"] == TX_DONE and mexc["recent"][1]["confirmations"] == 100
    json.dumps(doc)  # JSON-ready


def test_status_and_top_render_pending_and_confirmed(ledger: Ledger) -> None:
    schedule = {"cron": "0 3 * * *", "timezone": "UTC", "next_run": WALL + 3600, "running": True}
    doc = _doc(ledger, {"mexc-main": schedule})
    text = render_table(doc)
    assert "settlements:" in text
    assert "account mexc-main: scheduled '0 3 * * *' UTC, next run " in text
    assert "(running now)" in text
    assert "account gate-main: not scheduled (kasmm settle only)" in text
    pending = next(line for line in text.splitlines() if "sw-open" in line)
    assert "pending" in pending and "1500.5 KAS" in pending and "sent" in pending
    assert "age 2m05s" in pending and "confirmations 12" in pending
    assert f"txid {TX_SENT[:10]}...{TX_SENT[-4:]}" in pending
    done = next(line for line in text.splitlines() if "sw-done" in line)
    assert "confirmed" in done and "confirmations 100" in done
    bad = next(line for line in text.splitlines() if "sw-bad" in line)
    assert "failed" in bad and "address not whitelisted" in bad
    # top: in the supervisor's details (the full screen and the plain reprint), once
    assert any("sw-open" in line for line in supervisor_detail(doc))
    assert render_plain(doc).count("sw-open") == 1


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_status_reads_the_ledger_when_no_supervisor_answers(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.close()
    assert status_command(_closed_port(), as_json=False, state_dir=tmp_path) == 1
    out, err = capsys.readouterr()
    assert "cannot reach supervisor" in err
    assert "settlements:" in out and "sw-open" in out and "confirmations 12" in out
    assert status_command(_closed_port(), as_json=True, state_dir=tmp_path) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["settlements"]["mexc-main"]["open"][0]["txid"] == TX_SENT


def test_status_without_a_ledger_says_only_the_supervisor_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert status_command(_closed_port(), as_json=False, state_dir=tmp_path / "none") == 1
    out, err = capsys.readouterr()
    assert out == "" and "cannot reach supervisor" in err


def test_metrics(ledger: Ledger) -> None:
    scheduler = SettlementScheduler(None, lambda _a: None, lambda _a: None)  # type: ignore[arg-type,return-value]
    scheduler.config = SimpleNamespace(  # type: ignore[assignment]
        settlement=SimpleNamespace(
            settlement={"mexc-main": SimpleNamespace(schedule=SettleSchedule(cron="0 3 * * *"))}
        )
    )
    scheduler.due["mexc-main"] = (SettleSchedule(cron="0 3 * * *"), WALL + 3600)
    scheduler.runs[("mexc-main", "done")] = 2
    settling = SimpleNamespace(overview=read_overview(ledger), scheduler=scheduler)
    backend = MetricBackend()
    fill_settlements(Families(backend), settling)  # type: ignore[arg-type]
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in backend.metrics
        for s in m.samples
        if m.name.startswith("kasmm_settlement")
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    sweeps = "kasmm_settlement_sweeps_total"
    assert value(sweeps, account="mexc-main", asset="KAS", state="requested") == 3
    assert value(sweeps, account="mexc-main", asset="KAS", state="accepted") == 1
    assert value(sweeps, account="mexc-main", asset="KAS", state="sent") == 2
    assert value(sweeps, account="mexc-main", asset="KAS", state="confirmed") == 1
    assert value(sweeps, account="mexc-main", asset="KAS", state="failed") == 1
    assert value("kasmm_settlement_pending", account="mexc-main", asset="KAS") == 1500.5
    assert value("kasmm_settlement_pending_sweeps", account="mexc-main", asset="KAS") == 1
    assert value("kasmm_settlement_pending", account="gate-main", asset="KAS") == 300
    last = "kasmm_settlement_last_confirmed_timestamp_seconds"
    assert value(last, account="mexc-main", asset="KAS") == WALL - 7000
    assert value("kasmm_settlement_runs_total", account="mexc-main", outcome="done") == 2
    assert value("kasmm_settlement_runs_total", account="mexc-main", outcome="failed") == 0
    assert value("kasmm_settlement_next_run_timestamp_seconds", account="mexc-main") == WALL + 3600
