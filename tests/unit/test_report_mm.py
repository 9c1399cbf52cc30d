"""The report's "Market making" section: per-day KPIs and obligation compliance from a ledger.

One profile, two runs around a UTC midnight (M): run r1 stores rows at M-1h (its start),
M-30m and M+30m; the bot restarts and run r2 stores a row at M+1h, counting from zero again.
Each day sums the increments within each run, by hand:

* 2023-11-14: r1's first 1,800 s: both sides 1,700 s at 20 bps, 160/320/320 USDT of depth,
  placed 10,000, filled 1,000, 20 actions, 4 fills, obligations met 1,700 of 1,800 s (94.4 %
  vs 90 % required: met);
* 2023-11-15: r1's next 3,600 s (both 3,500 s at 30 bps, met 2,300 s, a window breach
  reported) plus r2's 1,000 s (both sides, 20 bps, met 1,000 s): 4,600 s, both 4,500 s,
  spread 125,000 / 4,500 = 27.78 bps, fill ratio 1,500 / 25,000 = 6.0 %, 50 actions per
  5 fills, met 3,300 / 4,600 = 71.7 %: BREACHED;
* the period: 6,400 s, both 6,200 s (96.9 %), spread 159,000 / 6,200 = 25.65 bps, fill ratio
  2,500 / 35,000 = 7.1 %, order-to-trade 70 / 9 = 7.8.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.commands.report import report_command
from kasmm.report.mm import daily_kpis, period_kpis
from kasmm.store import KpiRecord, Ledger
from tests.unit.test_report import _NO_CHROMIUM, _render_script, build_ledger, tables

D = Decimal
M = 1_700_006_400.0  # 2023-11-15 00:00:00 UTC
NOW = M + 7200


def rec(
    ts: float,
    run: str,
    total: float,
    both: float,
    ask: float,
    spread: float,
    placed: float,
    filled: float,
    actions: int,
    fills: int,
    met: float,
    breached: bool = False,
) -> KpiRecord:
    return KpiRecord(
        ts=ts,
        run_id=run,
        total_s=total,
        both_s=both,
        bid_s=total,
        ask_s=ask,
        spread_bps_s=spread,
        depth_s=(160 * total, 320 * total, 320 * total),
        placed_size=placed,
        filled_size=filled,
        order_actions=actions,
        fills=fills,
        met_s=met,
        observed_s=total,
        required=0.9,
        breached=breached,
    )


RECORDS = [
    rec(M - 3600, "r1", 0, 0, 0, 0, 0, 0, 0, 0, 0),
    rec(M - 1800, "r1", 1800, 1700, 1700, 34_000, 10_000, 1000, 20, 4, 1700),
    rec(M + 1800, "r1", 5400, 5200, 5200, 139_000, 30_000, 2000, 60, 8, 4000, breached=True),
    rec(M + 3600, "r2", 1000, 1000, 1000, 20_000, 5000, 500, 10, 1, 1000),
]


def build(state: Path) -> Path:
    state.mkdir()
    with Ledger(state / "kasmm.sqlite") as ledger:
        for r in RECORDS:
            ledger.record_equity("alpha", r.ts, D(280), D("0.08"), D(1000), D(200))
            ledger.record_kpis("alpha", r)
    return state


def test_days_sum_the_increments_within_each_run() -> None:
    day1, day2 = daily_kpis(RECORDS)
    assert str(day1.day) == "2023-11-14" and str(day2.day) == "2023-11-15"
    assert (day1.total_s, day1.both_s, day1.fills, day1.met_s) == (1800, 1700, 4, 1700)
    assert day1.avg_spread_bps == 20.0 and not day1.breached
    assert (day2.total_s, day2.both_s, day2.order_actions, day2.fills) == (4600, 4500, 50, 5)
    assert day2.avg_spread_bps == pytest.approx(125_000 / 4500)
    assert day2.avg_depth == (160.0, 320.0, 320.0)
    assert day2.fill_ratio == 1500 / 25_000
    assert day2.compliance == pytest.approx(3300 / 4600) and day2.breached
    period = period_kpis([day1, day2])
    assert period.uptime_both == 6200 / 6400 and period.order_to_trade == 70 / 9
    # A period from M: the r1 row at M+30m still counts from its previous row (before M).
    (only,) = daily_kpis(RECORDS, since=M)
    assert (only.total_s, only.both_s) == (4600, 4500)
    # Days in another zone: Berlin's midnight is 23:00 UTC, so M-30m is on 2023-11-15 there.
    (berlin,) = daily_kpis(RECORDS, "Europe/Berlin")
    assert berlin.total_s == 6400


def test_report_shows_kpis_per_day_and_the_breached_day(tmp_path: Path) -> None:
    state = build(tmp_path / "state")
    out = tmp_path / "report.html"
    assert report_command(state, out, now=NOW) == 0
    page = out.read_text(encoding="utf-8")
    assert "<h3>Market making</h3>" in page
    rows = tables(page)["alpha"]
    head = ["day (UTC)", "running", "uptime both", "bid", "ask", "spread (bps)"]
    depth = ["depth ±0.5 %", "±1 %", "±2 %"]
    assert [*head, *depth, "fill ratio", "order-to-trade"] in rows
    bands = ["160.00", "320.00", "320.00"]
    assert [
        "2023-11-14",
        "0.50 h",
        "94.4 %",
        "100.0 %",
        "94.4 %",
        "20.00",
        *bands,
        "10.0 %",
        "5.0",
    ] in rows
    assert [
        "2023-11-15",
        "1.28 h",
        "97.8 %",
        "100.0 %",
        "97.8 %",
        "27.78",
        *bands,
        "6.0 %",
        "10.0",
    ] in rows
    assert [
        "period",
        "1.78 h",
        "96.9 %",
        "100.0 %",
        "96.9 %",
        "25.65",
        *bands,
        "7.1 %",
        "7.8",
    ] in rows
    assert ["2023-11-14", "0.50 h", "94.4 %", "90.0 %", "met"] in rows
    assert ["2023-11-15", "1.28 h", "71.7 %", "90.0 %", "BREACHED"] in rows
    assert '<tr class="breach"><td>2023-11-15</td>' in page
    assert "1 of 2 days breached" in page


@pytest.mark.skipif(_NO_CHROMIUM, reason="Chromium is not installed")
def test_the_section_renders_in_headless_chromium(tmp_path: Path) -> None:
    # This ledger has no fills, so no charts: the section is what there is to see.
    script = _render_script()
    page = tmp_path / "report.html"
    assert report_command(build(tmp_path / "state"), page, now=NOW) == 0
    png = tmp_path / "shot.png"
    script.screenshot(page, png)
    ink = script.measure(script.load_png(png))
    assert script.check(ink, min_colored=0.0) == [], ink
    # The highlighted breached day: its red text and pink background are on the page.
    assert ink.colored > 0


def test_the_charts_stay_above_the_section(tmp_path: Path) -> None:
    # test_report's ledger with these KPI rows added: the section follows the charts.
    state = build_ledger(tmp_path / "state")
    with Ledger(state / "kasmm.sqlite") as ledger:
        for r in RECORDS:
            ledger.record_kpis("alpha", r)
    out = tmp_path / "report.html"
    assert report_command(state, out, now=NOW) == 0
    page = out.read_text(encoding="utf-8")
    alpha = page[page.index('data-profile="alpha"') :]
    assert alpha.index("<figure>") < alpha.index("<h3>Market making</h3>")
    assert '<tr class="breach"><td>2023-11-15</td>' in alpha
