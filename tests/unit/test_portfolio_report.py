"""``kasmm report``: the portfolio section, from a ledger holding a group's rows."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import matplotlib  # noqa: F401  (the dev extra installs it; the tests must not skip)

from kasmm.commands.report import report_command
from kasmm.store import Ledger
from tests.unit.test_report import T0, kv, tables

D = Decimal
NOW = T0 + 1000


def build(state: Path) -> None:
    with Ledger(state / "kasmm.sqlite") as ledger:
        ledger.set_opening("alpha", D(1000), D("0.08"), T0)
        key = "portfolio:kas"
        for dt, equity, mid in ((0, "8000", "0.08"), (10, "8100", "0.081"), (20, "7600", "0.076")):
            ledger.record_equity(key, T0 + dt, D(equity), D(mid), D(50000), D(4000))
        ledger.record_risk_event(
            key,
            T0 + 20,
            "trip",
            "portfolio_max_drawdown",
            "halt",
            "halted",
            {"value": 500.0, "limit": 400.0, "detail": "quote"},
        )


def test_a_portfolio_section_with_equity_drawdown_and_events(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    build(state)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "alpha.yaml").write_text(
        "venue: {type: sim}\nsymbol: KAS/USDT\nmodes: {passive: {spread_bps: 20, size: 100}}\n"
    )
    (profiles / "_portfolios.yaml").write_text(
        "portfolios: {kas: {members: [alpha], target: {share: 0.4}}}\n"
    )
    out = tmp_path / "report.html"
    assert report_command(state, out, now=NOW, profiles_dir=profiles) == 0
    page = out.read_text(encoding="utf-8")
    assert re.findall(
        r'<section class="portfolio" id="portfolio-1" data-portfolio="(\w+)"', page
    ) == ["kas"]
    assert "<h2>Portfolio kas</h2>" in page
    group = page.split('data-portfolio="kas"')[1]
    assert "<h3>Group equity and its running peak</h3>" in group and group.count("<svg") == 1
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "ids stay unique with the group's chart"
    assert "HALTED since" in page and "portfolio_max_drawdown" in page
    # The section's tables follow the last profile's in the parser's bookkeeping.
    rows = [r for rs in tables(page).values() for r in rs]
    info = kv(rows)
    assert info["Members"] == "alpha"
    assert info["Target"] == "40% of the group's value"
    assert info["Equity"] == "7,600 (from 8,000)"
    assert info["Peak equity"] == "8,100"
    assert info["Largest drawdown"] == "500"
    assert info["Base share"] == "50.0%"  # 50000 at 0.076 of 7600
    assert [
        "2023-11-14 22:13:40 UTC",
        "trip",
        "portfolio_max_drawdown",
        "halt",
        "500.0",
        "quote",
    ] in rows
    # The group is no profile of the report.
    assert 'data-profile="portfolio:kas"' not in page


def test_narrowed_to_profiles_the_report_has_no_portfolio(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    build(state)
    out = tmp_path / "report.html"
    assert report_command(state, out, now=NOW, profiles=["alpha"]) == 0
    assert "Portfolio kas" not in out.read_text(encoding="utf-8")


def test_a_sweep_the_group_counted_is_no_drawdown_of_the_report(tmp_path: Path) -> None:
    """The group counted 400 of a member's sweep between the second and third snapshots: the
    report's running peak falls with it (8100 - 400), so the largest drawdown is the trading
    loss only (100), as the live group measured it; without the count it was 500."""
    from kasmm.report.portfolio import gather_portfolios
    from kasmm.store.group_transfers import GroupTransfer, count_group_transfers

    state = tmp_path / "state"
    state.mkdir()
    build(state)
    with Ledger(state / "kasmm.sqlite") as ledger:
        (before,) = gather_portfolios(ledger, None)
        assert before.max_drawdown == D(500)
        sweep = GroupTransfer("alpha", "sweep-1", "out", D(400), T0 + 15)
        assert count_group_transfers(ledger, "portfolio:kas", [sweep], after_peak_only=False)
        (group,) = gather_portfolios(ledger, None)
        assert group.running_peaks() == [D(8000), D(8100), D(7700)]
        assert group.max_drawdown == D(100)
        # A sweep before the period's first snapshot lowers nothing.
        (later,) = gather_portfolios(ledger, T0 + 5)
        assert later.running_peaks() == [D(8100), D(7700)]
    out = tmp_path / "report.html"
    assert report_command(state, out, now=NOW) == 0
    info = kv([r for rs in tables(out.read_text(encoding="utf-8")).values() for r in rs])
    assert info["Largest drawdown"] == "100"
