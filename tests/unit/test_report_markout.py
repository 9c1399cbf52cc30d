"""The report's markout table: per-day sums of the ledger's cumulative markout rows.

test_report_mm's two runs around a UTC midnight (M), with markout sums per horizon:

* r1 at M-1h (its start) zero; at M-30m 1 s: 4 fills, bps -8, size x bps -20, size 10,
  quote -0.02; 10 s: 3 fills, bps 3, size x bps 9, size 6, quote 0.006; at M+30m 1 s: 10
  fills, -14, -32, 22, -0.035; 10 s: 9 fills, 9, 30, 20, 0.02;
* r2 (a restart, from zero) at M+1h: 1 s: 2 fills, bps 6, size x bps 12, size 4, quote 0.004;
  no 10 s fill yet.

By hand: 2023-11-14 is r1's first step: 1 s mean -2.00, weighted -2.00, -0.0200; 10 s mean
+1.00, weighted +1.50, +0.0060. 2023-11-15 is r1's second step plus r2's: 1 s 6 + 2 fills,
bps -6 + 6 = 0, size x bps -12 + 12 = 0 over 12 + 4, quote -0.015 + 0.004 = -0.011; 10 s
6 fills, bps 6, size x bps 21 over 14 (+1.50), 0.014. The period: 1 s 12 fills, mean
-8 / 12 = -0.67, weighted -20 / 26 = -0.77, -0.0310; 10 s 9 fills, +1.00, +1.50, +0.0200.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.commands.report import report_command
from kasmm.core.markout import HorizonMarkout
from kasmm.report.mm import daily_kpis, period_kpis
from kasmm.store import Ledger
from tests.unit.test_report import tables
from tests.unit.test_report_mm import NOW, RECORDS

D = Decimal


def mk(h: float, fills: int, bps: float, size_bps: float, size: int, quote: str) -> HorizonMarkout:
    return HorizonMarkout(h, fills, bps, size_bps, D(size), D(quote))


MARKOUTS = [
    (mk(1.0, 0, 0.0, 0.0, 0, "0"), mk(10.0, 0, 0.0, 0.0, 0, "0")),
    (mk(1.0, 4, -8.0, -20.0, 10, "-0.02"), mk(10.0, 3, 3.0, 9.0, 6, "0.006")),
    (mk(1.0, 10, -14.0, -32.0, 22, "-0.035"), mk(10.0, 9, 9.0, 30.0, 20, "0.02")),
    (mk(1.0, 2, 6.0, 12.0, 4, "0.004"), mk(10.0, 0, 0.0, 0.0, 0, "0")),
]
MARKED = [dataclasses.replace(r, markouts=m) for r, m in zip(RECORDS, MARKOUTS, strict=True)]


def test_days_sum_the_markout_increments_within_each_run() -> None:
    day1, day2 = daily_kpis(MARKED)
    assert day1.markouts == {
        1.0: mk(1.0, 4, -8.0, -20.0, 10, "-0.02"),
        10.0: mk(10.0, 3, 3.0, 9.0, 6, "0.006"),
    }
    short, long = day2.markouts[1.0], day2.markouts[10.0]
    assert (short.fills, short.size, short.quote) == (8, D(16), D("-0.011"))
    assert short.mean_bps == pytest.approx(0.0) and short.weighted_bps == pytest.approx(0.0)
    assert (long.fills, long.quote, long.weighted_bps) == (6, D("0.014"), 1.5)
    period = period_kpis([day1, day2])
    assert period.markouts[1.0].fills == 12 and period.markouts[1.0].quote == D("-0.031")
    assert period.markouts[1.0].mean_bps == pytest.approx(-8 / 12)
    assert period.markouts[1.0].weighted_bps == pytest.approx(-20 / 26)
    assert period.markouts[10.0] == mk(10.0, 9, 9.0, 30.0, 20, "0.020")


def test_rows_without_markouts_give_no_markout_days() -> None:
    assert all(not d.markouts for d in daily_kpis(RECORDS))


def build(state: Path) -> Path:
    state.mkdir()
    with Ledger(state / "kasmm.sqlite") as ledger:
        for r in MARKED:
            ledger.record_equity("alpha", r.ts, D(280), D("0.08"), D(1000), D(200))
            ledger.record_kpis("alpha", r)
    return state


def test_report_shows_the_markout_per_day_and_for_the_period(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert report_command(build(tmp_path / "state"), out, now=NOW) == 0
    page = out.read_text(encoding="utf-8")
    assert "<h4>Markout (adverse selection)</h4>" in page
    rows = tables(page)["alpha"]
    head = ["day (UTC)"]
    for h in ("1s", "10s"):
        head += [f"{h} fills", f"{h} mean (bps)", f"{h} weighted (bps)", f"{h} (quote)"]
    assert head in rows
    assert [
        "2023-11-14",
        "4",
        "-2.00",
        "-2.00",
        "-0.0200",
        "3",
        "+1.00",
        "+1.50",
        "+0.0060",
    ] in rows
    assert [
        "2023-11-15",
        "8",
        "+0.00",
        "+0.00",
        "-0.0110",
        "6",
        "+1.00",
        "+1.50",
        "+0.0140",
    ] in rows
    assert ["period", "12", "-0.67", "-0.77", "-0.0310", "9", "+1.00", "+1.50", "+0.0200"] in rows


def test_no_marked_fill_no_markout_table(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with Ledger(state / "kasmm.sqlite") as ledger:
        for r in RECORDS:
            ledger.record_equity("alpha", r.ts, D(280), D("0.08"), D(1000), D(200))
            ledger.record_kpis("alpha", r)
    out = tmp_path / "report.html"
    assert report_command(state, out, now=NOW) == 0
    assert "Markout" not in out.read_text(encoding="utf-8")
