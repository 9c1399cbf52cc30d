"""Backtests: determinism, the versioned JSON document, sweeps, rate limits, and the classic
Avellaneda–Stoikov (2008) result on the exact ``as2008`` market."""

from __future__ import annotations

import json
import math
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kasmm.backtest import BacktestError, BacktestResult, backtest_profile, run_backtest
from kasmm.backtest.engine import build_path
from kasmm.backtest.overrides import (
    OverrideError,
    apply_overrides,
    grid,
    parse_assignment,
    parse_sweep,
)
from kasmm.backtest.result import PATH_METRICS, SCHEMA_VERSION, PathResult
from kasmm.commands.backtest import backtest_command, print_result
from kasmm.config.schema import (
    AS2008Market,
    PaperVenueConfig,
    Profile,
    RandomWalkMarket,
    SimVenueConfig,
)
from tests.support import demo_profile, path_spec

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "kasmm" / "backtest" / "schema.json"


def as_profile(strategy: str = "as", spread_bps: float = 1.0) -> Profile:
    """The AS (2008) experiment: gamma 0.1, sigma 2, A 140, k 1.5, s0 100, T 1, dt 0.005."""
    strat: dict[str, Any] = (
        {
            "type": "avellaneda_stoikov",
            "gamma": 0.1,
            "kappa": 1.5,
            "sigma": 2,
            "horizon": {"type": "session_end"},
        }
        if strategy == "as"
        else {"type": "fixed_spread"}
    )
    return Profile.model_validate(
        {
            "name": strategy,
            "venue": {"type": "sim", "market": {"model": "as2008"}, "seed": 1},
            "symbol": "KAS/USDT",
            "modes": {
                "aggressive": {"spread_bps": spread_bps, "size": 1},
                "passive": {"spread_bps": spread_bps, "size": 1},
            },
            "strategy": strat,
            "inventory": {"skew_strength": 0},
            "refresh": {"tolerance_bps": 0, "min_requote_interval_s": 0},
            "kill_switch": {"stale_book": None},
        }
    )


def reproducible(result: BacktestResult) -> dict[str, Any]:
    doc = result.to_json()
    del doc["timing"]
    return doc


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_same_numbers_whatever_the_worker_count() -> None:
    profile = as_profile()
    one = run_backtest(profile, market="as2008", paths=4, seed=11, workers=1)
    again = run_backtest(profile, market="as2008", paths=4, seed=11, workers=1)
    parallel = run_backtest(profile, market="as2008", paths=4, seed=11, workers=2)
    assert reproducible(one) == reproducible(again) == reproducible(parallel)
    assert [p.seed for p in one.run.paths] == [11, 12, 13, 14]
    # Different seeds are different paths.
    assert len({p.final_pnl for p in one.run.paths}) == 4
    other = run_backtest(profile, market="as2008", paths=4, seed=12, workers=1)
    assert {**other.run.paths[0].to_json(), "index": 1} == one.run.paths[1].to_json()


def test_random_walk_demo_profile_is_deterministic_and_measured() -> None:
    profile = demo_profile()
    first = run_backtest(profile, paths=2, horizon_s=120, workers=1)
    second = run_backtest(profile, paths=2, horizon_s=120, workers=1)
    assert reproducible(first) == reproducible(second)
    assert first.market == "random_walk" and first.rate_limit["mode"] == "profile"
    for path in first.run.paths:
        assert path.end_time_s == pytest.approx(120, abs=0.2)
        assert path.open_orders_left == 0
        assert path.decisions == path.market_events > 1000
        assert path.order_actions > 0 and path.tokens_used >= path.order_actions
        assert path.avg_spread_bps is not None and path.avg_spread_bps >= 14 - 1e-9
        assert path.max_drawdown >= 0


# --- horizon, session end, rate limits ----------------------------------------------------------


def test_as2008_covers_exactly_the_papers_200_steps() -> None:
    result = run_backtest(as_profile(), market="as2008", paths=1, horizon_s=1.0, workers=1)
    path = result.run.paths[0]
    # 201 books (s0 and one per step) plus one event per fill, and nothing after T.
    assert path.market_events == 201 + path.fills_buy + path.fills_sell
    assert path.end_time_s == pytest.approx(1.0)
    assert result.rate_limit == {"mode": "unlimited", "capacity": None, "refill_per_s": None}
    assert path.rate_limit_wait_s == 0


def test_session_end_counts_down_to_the_end_of_the_run() -> None:
    # The AS spread is gamma sigma^2 (T - t) + 2/gamma ln(1 + gamma/k): with T - t running
    # from 1 to 0 over the run its mean is 0.2 + 1.2908; with T - t stuck at 0 it would be 1.29.
    result = run_backtest(as_profile(), market="as2008", paths=1, workers=1)
    assert result.run.paths[0].avg_spread == pytest.approx(0.2 + 20 * math.log1p(0.1 / 1.5), 0.02)


def test_profile_rate_limit_delays_requests_in_virtual_time() -> None:
    profile = as_profile()
    limited = run_backtest(profile, market="as2008", paths=1, rate_limit="profile", workers=1)
    free = run_backtest(profile, market="as2008", paths=1, rate_limit="unlimited", workers=1)
    assert limited.rate_limit["mode"] == "profile" and limited.rate_limit["capacity"] == 20
    # 20 burst + 10/s cannot carry ~5 actions per 5 ms step: the bot waits, and acts less.
    path = limited.run.paths[0]
    assert path.rate_limit_wait_s > 0.5
    assert path.order_actions < free.run.paths[0].order_actions / 10
    # The waits carried the clock past T: the market stopped there, the run ended.
    assert path.end_time_s <= 1.0 and path.market_events < free.run.paths[0].market_events


# --- the JSON document ------------------------------------------------------------------------

#: The document's keys, by level. A change here is a schema change: bump SCHEMA_VERSION (or
#: only add keys) and update kasmm/backtest/schema.json.
Kind = type | tuple[type, ...]
TOP_KEYS: dict[str, Kind] = {
    "schema_version": int,
    "kind": str,
    "kasmm_version": str,
    "profile": str,
    "market": str,
    "data": (str, type(None)),
    "paths": int,
    "horizon_s": (float, type(None)),
    "seed": int,
    "rate_limit": dict,
    "sweep": dict,
    "runs": list,
    "timing": dict,
}
PATH_KEYS: dict[str, Kind] = {
    "index": int,
    "seed": int,
    "final_pnl": float,
    "final_inventory": float,
    "inventory_change": float,
    "final_mid": (float, type(None)),
    "avg_spread": (float, type(None)),
    "avg_spread_bps": (float, type(None)),
    "spread_samples": int,
    "quoted_both_share": float,
    "fills_buy": int,
    "fills_sell": int,
    "volume_buy": float,
    "volume_sell": float,
    "volume_quote": float,
    "fees": float,
    "max_drawdown": float,
    "order_actions": int,
    "orders_placed": int,
    "orders_cancelled": int,
    "orders_rejected": int,
    "tokens_used": float,
    "rate_limit_wait_s": float,
    "decisions": int,
    "market_events": int,
    "kill_switch_trips": int,
    "trading_state": str,
    "end_time_s": float,
    "open_orders_left": int,
    "spread_capture": (float, type(None)),
    "revaluation": (float, type(None)),
    "hold": (float, type(None)),
    "vs_hold": (float, type(None)),
    "markout_1s_fills": int,
    "markout_1s_bps": (float, type(None)),
    "markout_1s_mean_bps": (float, type(None)),
    "markout_1s_quote": (float, type(None)),
    "markout_10s_fills": int,
    "markout_10s_bps": (float, type(None)),
    "markout_10s_mean_bps": (float, type(None)),
    "markout_10s_quote": (float, type(None)),
}
TIMING_KEYS = {
    "wall_s",
    "cpu_s",
    "workers",
    "decisions",
    "market_events",
    "decisions_per_s",
    "events_per_s",
}


def _check(value: Any, schema: dict[str, Any], defs: dict[str, Any], where: str) -> None:
    """A small JSON Schema subset validator: enough for schema.json."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    if "const" in schema:
        assert value == schema["const"], where
    if "enum" in schema:
        assert value in schema["enum"], where
    kinds = schema.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else kinds
        py: dict[str, Kind] = {
            "object": dict,
            "array": list,
            "string": str,
            "integer": int,
            "number": (int, float),
            "null": type(None),
            "boolean": bool,
        }
        assert any(
            isinstance(value, py[n])
            and not (n in ("integer", "number") and isinstance(value, bool))
            for n in names
        ), f"{where}: {value!r} is not {names}"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, f"{where}: missing {key}"
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                _check(item, props[key], defs, f"{where}.{key}")
            elif extra is False:
                raise AssertionError(f"{where}: unexpected key {key}")
            elif isinstance(extra, dict):
                _check(item, extra, defs, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], defs, f"{where}[{i}]")


def test_json_document_is_stable_and_matches_schema_json() -> None:
    result = run_backtest(
        as_profile(),
        market="as2008",
        paths=2,
        workers=1,
        sweep={"strategy.gamma": [0.05, 0.1]},
    )
    doc = json.loads(json.dumps(result.to_json()))  # exactly what --json writes
    assert doc["schema_version"] == SCHEMA_VERSION == 2
    assert doc["kind"] == "kasmm-backtest"
    assert set(doc) == set(TOP_KEYS)
    for key, kind in TOP_KEYS.items():
        assert isinstance(doc[key], kind), key
    assert set(doc["rate_limit"]) == {"mode", "capacity", "refill_per_s"}
    assert set(doc["timing"]) == TIMING_KEYS
    assert doc["sweep"] == {"strategy.gamma": [0.05, 0.1]}
    assert [r["label"] for r in doc["runs"]] == ["strategy.gamma=0.05", "strategy.gamma=0.1"]
    for run in doc["runs"]:
        assert set(run) == {"label", "overrides", "summary", "paths"}
        assert set(run["summary"]) == {"paths", *PATH_METRICS}
        assert run["summary"]["paths"] == 2
        for metric in PATH_METRICS:
            if metric.startswith("markout_") and not metric.endswith("_fills"):
                # T = 1 s: no book comes a whole horizon after a fill, so no path has one.
                assert run["summary"][metric] is None, metric
                continue
            assert set(run["summary"][metric]) == {"mean", "std", "min", "max"}
        for path in run["paths"]:
            assert set(path) == set(PATH_KEYS)
            for key, kind in PATH_KEYS.items():
                assert isinstance(path[key], kind), (key, path[key])
    schema = json.loads(SCHEMA.read_text())
    _check(doc, schema, schema["$defs"], "$")
    # The schema describes exactly the dataclass' fields.
    assert set(schema["$defs"]["path"]["properties"]) == set(PATH_KEYS)
    assert set(PathResult.__dataclass_fields__) == set(PATH_KEYS)


# --- overrides and sweeps ---------------------------------------------------------------------


def test_overrides_parse_validate_and_refuse_unknown_keys() -> None:
    assert parse_assignment("strategy.gamma=0.5") == ("strategy.gamma", 0.5)
    assert parse_assignment("strategy.horizon.type=rolling") == ("strategy.horizon.type", "rolling")
    assert parse_sweep("modes.passive.spread_bps=10,20,40") == (
        "modes.passive.spread_bps",
        [10, 20, 40],
    )
    assert grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    profile = demo_profile()
    changed = apply_overrides(
        profile, {"modes.passive.spread_bps": 20, "venue.market.sigma_bps": 3.5}
    )
    assert changed.modes.passive.spread_bps == 20
    assert isinstance(changed.venue, SimVenueConfig)
    assert isinstance(changed.venue.market, RandomWalkMarket)
    assert changed.venue.market.sigma_bps == 3.5
    with pytest.raises(OverrideError, match=r"strategy\.gamma"):
        apply_overrides(profile, {"strategy.gamma": 0.1})  # a fixed_spread strategy has none
    with pytest.raises(OverrideError, match="passive"):
        apply_overrides(profile, {"modes.passive.spread_bps": 1})  # narrower than aggressive
    with pytest.raises(OverrideError):
        parse_sweep("modes.passive.spread_bps=")


def test_sweep_runs_the_grid_and_the_table_compares_it(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_backtest(
        as_profile(),
        market="as2008",
        paths=12,
        sweep={"strategy.gamma": [0.01, 1.0]},
    )
    low, high = result.runs
    assert low.overrides == {"strategy.gamma": 0.01} and high.overrides == {"strategy.gamma": 1.0}
    low_inv, high_inv = low.stat("final_inventory"), high.stat("final_inventory")
    assert low_inv is not None and high_inv is not None
    # More risk aversion: inventory is pushed back harder.
    assert high_inv.std < low_inv.std
    print_result(result, sys.stdout, per_path=True)
    out = capsys.readouterr().out
    assert "strategy.gamma=0.01" in out and "strategy.gamma=1.0" in out and "net std" in out


def test_backtest_command_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile_file = ROOT / "profiles" / "kas-usdt-sim.yaml"
    out = tmp_path / "bt.json"
    code = backtest_command(
        profile_file,
        market="as2008",
        paths=2,
        workers=1,
        sets=["modes.passive.spread_bps=150", "modes.aggressive.spread_bps=150"],
        sweeps=["inventory.skew_strength=0,1"],
        json_path=out,
    )
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["market"] == "as2008" and len(doc["runs"]) == 2
    assert doc["runs"][0]["overrides"]["modes.passive.spread_bps"] == 150
    assert "inventory.skew_strength=0" in capsys.readouterr().out
    bad = backtest_command(profile_file, market="as2008", sets=["strategy.nope=1"])
    assert bad == 1
    assert backtest_command(profile_file, market="nope") == 2


def test_backtest_profile_moves_any_profile_to_the_simulator() -> None:
    paper = demo_profile("paper-mexc-kas-usdt.yaml")
    sim = backtest_profile(paper, "random_walk")
    assert isinstance(sim.venue, SimVenueConfig) and isinstance(paper.venue, PaperVenueConfig)
    assert sim.venue.balances == paper.venue.balances
    as_sim = backtest_profile(demo_profile(), "as2008")
    assert isinstance(as_sim.venue, SimVenueConfig)
    assert isinstance(as_sim.venue.market, AS2008Market)
    with pytest.raises(BacktestError, match="data"):
        run_backtest(demo_profile(), market="replay")
    with pytest.raises(BacktestError, match="paths"):
        run_backtest(demo_profile(), paths=0)


# --- the classic result -------------------------------------------------------------------------


def test_avellaneda_stoikov_has_lower_pnl_dispersion_than_symmetric_at_same_spread() -> None:
    # Avellaneda & Stoikov (2008), table for gamma = 0.1: inventory strategy profit ~63,
    # std ~6; symmetric strategy with the same average spread profit ~67, std ~13. The full
    # 1000-path comparison is in bench/backtest_speed.py; 100 paths are enough to see it.
    paths = 100
    strategy = run_backtest(as_profile("as"), market="as2008", paths=paths, seed=1)
    spread = strategy.run.stat("avg_spread")
    assert spread is not None
    s0 = 100.0
    symmetric = run_backtest(
        as_profile("symmetric", spread_bps=round(spread.mean / s0 * 1e4, 1)),
        market="as2008",
        paths=paths,
        seed=1,
    )
    sym_spread = symmetric.run.stat("avg_spread")
    assert sym_spread is not None and sym_spread.mean == pytest.approx(spread.mean, rel=0.03)
    as_pnl, sym_pnl = strategy.run.stat("final_pnl"), symmetric.run.stat("final_pnl")
    as_inv, sym_inv = strategy.run.stat("final_inventory"), symmetric.run.stat("final_inventory")
    assert as_pnl is not None and sym_pnl is not None
    assert as_inv is not None and sym_inv is not None
    assert 55 < as_pnl.mean < 75 and 3 < as_pnl.std < 10
    assert 55 < sym_pnl.mean < 80 and 9 < sym_pnl.std < 19
    assert as_pnl.std < 0.7 * sym_pnl.std
    assert as_inv.std < 0.5 * sym_inv.std
    assert abs(as_inv.mean) < 1.5


def test_exact_model_pnl_is_cash_plus_marked_inventory() -> None:
    # Flat start on as2008: PnL = X_T + q_T * S_T, with the last mid the bot saw.
    path = run_backtest(as_profile(), market="as2008", paths=1, workers=1).run.paths[0]
    assert path.final_mid is not None
    assert path.inventory_change == path.final_inventory
    assert Decimal(repr(path.final_inventory)) == Decimal(path.fills_buy - path.fills_sell)


def test_changing_a_section_kind_replaces_the_section() -> None:
    profile = demo_profile()  # fixed_spread with a volatility block
    changed = apply_overrides(
        profile,
        {
            "strategy.gamma": 0.1,  # before the type on purpose: kinds are applied first
            "strategy.type": "avellaneda_stoikov",
            "strategy.kappa": 1.5,
            "strategy.horizon.type": "session_end",
            "venue.market.model": "as2008",
            "venue.market.sigma": 3,
        },
    )
    assert changed.strategy.type == "avellaneda_stoikov"
    assert changed.strategy.gamma == 0.1 and changed.strategy.volatility is None
    assert changed.strategy.horizon.type == "session_end"
    assert isinstance(changed.venue, SimVenueConfig)
    assert isinstance(changed.venue.market, AS2008Market) and changed.venue.market.sigma == 3


def test_progress_starts_at_once_and_counts_every_path() -> None:
    seen: list[tuple[float, int]] = []
    run_backtest(
        as_profile(), market="as2008", paths=3, workers=1, progress=lambda d, t: seen.append((d, t))
    )
    assert seen[0] == (0.0, 3)  # before any path ran: something shows at once
    assert seen[-1] == (3.0, 3)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert {1.0, 2.0, 3.0} <= {d for d, _ in seen}


def test_a_running_path_reports_how_far_it_got() -> None:
    driver = build_path(path_spec(demo_profile(), 120.0))
    fractions: list[float] = []
    driver.on_progress = fractions.append
    driver.progress_every_s = 0.0  # every 256 events, whatever the machine's speed
    driver.run()
    assert len(fractions) >= 3
    assert fractions == sorted(fractions) and fractions[0] > 0 and fractions[-1] <= 1.0


def test_progress_bar_shows_an_eta_on_a_terminal_and_lines_elsewhere() -> None:
    import io

    from kasmm.commands.backtest import ProgressBar

    out = io.StringIO()
    bar = ProgressBar(out, tty=True, width=10)
    bar.started -= 10  # ten seconds in
    bar(5, 10)
    bar(10, 10)
    text = out.getvalue()
    assert "[#####.....] 5.0/10 paths  10 s elapsed  ETA 10 s" in text
    assert "[##########] 10.0/10 paths" in text and text.endswith("\n")

    lines = io.StringIO()
    plain = ProgressBar(lines, tty=False)
    plain(0.0, 200)
    plain(0.5, 200)  # under 10 % more and within 30 s: not repeated
    plain(25.0, 200)
    assert lines.getvalue().splitlines() == [
        "backtest: 0.0/200 paths  0 s elapsed  ETA -",
        lines.getvalue().splitlines()[1],
    ]
    assert lines.getvalue().splitlines()[1].startswith("backtest: 25.0/200 paths")
