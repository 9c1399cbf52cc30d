"""Backtest results carry the PnL attribution: per path, as mean/std per run, in the JSON (which
validates against schema.json) and in the CLI table (one number format)."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kasmm.backtest import run_backtest
from kasmm.backtest.result import (
    BacktestResult,
    PathResult,
    RunResult,
    Timing,
    pnl_fields,
)
from kasmm.commands.backtest import TableFormat, path_row, print_result, run_row
from kasmm.core.pnl import PnlParts
from tests.support import demo_profile
from tests.unit.test_backtest import _check

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "kasmm" / "backtest" / "schema.json").read_text())
D = Decimal


def path(index: int, parts: PnlParts) -> PathResult:
    return PathResult(
        index=index,
        seed=index + 1,
        final_pnl=float(parts.net),
        final_inventory=1000.0,
        inventory_change=0.0,
        final_mid=0.0825,
        avg_spread=0.000249,
        avg_spread_bps=30.123,
        spread_samples=10,
        quoted_both_share=1.0,
        fills_buy=3,
        fills_sell=2,
        volume_buy=300.0,
        volume_sell=200.0,
        volume_quote=41.0,
        fees=float(parts.fees),
        max_drawdown=0.5,
        order_actions=10,
        orders_placed=6,
        orders_cancelled=4,
        orders_rejected=0,
        tokens_used=10.0,
        rate_limit_wait_s=0.0,
        decisions=100,
        market_events=100,
        kill_switch_trips=0,
        trading_state="active",
        end_time_s=60.0,
        open_orders_left=0,
        # Any: the dict's floats go to float fields only, which mypy cannot see through **.
        **dict[str, Any](pnl_fields(parts)),
    )


# Path 0: the 5.92 net with 0.25 of it beyond holding; path 1: 2.70 net, 0.20 beyond.
PARTS = (
    PnlParts(D("1.5"), D("4.47"), D("0.05"), D("5.92"), D("5.67"), D("0.25")),
    PnlParts(D("0.13"), D("2.59"), D("0.02"), D("2.70"), D("2.50"), D("0.20")),
)


def result() -> BacktestResult:
    run = RunResult.build("base", {}, [path(i, p) for i, p in enumerate(PARTS)])
    return BacktestResult(
        profile="kas",
        market="random_walk",
        data=None,
        paths=2,
        horizon_s=60.0,
        seed=1,
        rate_limit={"mode": "unlimited", "capacity": None, "refill_per_s": None},
        sweep={},
        runs=(run,),
        timing=Timing(1.0, 1.0, 1, 200, 200),
    )


def test_run_summary_has_mean_and_std_of_each_part() -> None:
    run = result().run
    vs_hold = run.stat("vs_hold")
    assert vs_hold is not None
    assert vs_hold.mean == pytest.approx(0.225) and vs_hold.std == pytest.approx(0.0353553, 1e-5)
    spread = run.stat("spread_capture")
    assert spread is not None and spread.mean == pytest.approx(0.815)
    for part in ("revaluation", "hold"):
        assert run.stat(part) is not None


def test_json_carries_the_parts_and_validates() -> None:
    doc = json.loads(json.dumps(result().to_json()))
    assert doc["schema_version"] == 2
    first = doc["runs"][0]["paths"][0]
    assert (first["final_pnl"], first["spread_capture"], first["vs_hold"]) == (5.92, 1.5, 0.25)
    assert doc["runs"][0]["summary"]["hold"]["max"] == 5.67
    _check(doc, SCHEMA, SCHEMA["$defs"], "$")


def test_table_shows_net_spread_capture_and_vs_hold_in_one_format() -> None:
    res = result()
    fmt = TableFormat.of(res)  # final mid 0.0825: KAS/USDT's 2 money and 6 price places
    row: dict[str, Any] = run_row(res.run, fmt)
    assert row["net mean"] == "4.31"
    assert row["net std"] == "2.28"
    assert row["spread capture"] == "0.82"  # 0.815, half-even
    assert row["vs hold"] == "0.22"  # 0.225, half-even
    assert row["spread"] == "0.000249" and row["spread bps"] == "30.12"
    assert row["fills buy"] == "3.0" and row["vol buy"] == "300.00"
    assert path_row(res.run.paths[0], fmt)["net"] == "5.92"
    out = io.StringIO()
    print_result(res, out, per_path=True)
    text = out.getvalue()
    assert "net mean" in text and "spread capture" in text and "vs hold" in text
    assert "e-" not in text and "E-" not in text  # never exponent notation


def test_a_real_backtest_measures_the_parts() -> None:
    res = run_backtest(demo_profile(), paths=1, horizon_s=120, workers=1)
    p = res.run.paths[0]
    assert p.spread_capture is not None and p.revaluation is not None
    assert p.hold is not None and p.vs_hold is not None
    assert p.spread_capture + p.revaluation - p.fees == pytest.approx(p.final_pnl, abs=1e-9)
    assert p.final_pnl - p.hold == pytest.approx(p.vs_hold, abs=1e-9)
