"""Backtest speed on the Avellaneda–Stoikov experiment, and the paper's comparison.

The experiment of Avellaneda & Stoikov (2008): ``as2008`` market (s0 100, sigma 2, A 140, k 1.5,
dt 0.005), T = 1 s, so 200 steps a path; the bot is the production ``Bot`` with the
``avellaneda_stoikov`` strategy (gamma 0.1, kappa 1.5, sigma 2, T - t counting down to the run's
end). ``kasmm.backtest.run_backtest`` runs ``--paths`` paths (seeds 1..N) in ``--workers``
processes.

Figures printed:

* **decision steps/s**: paths x steps / wall time (the experiment's unit: one model step = one
  mid move, with its fills); **decisions/s**: the bot's quoting decisions (one per event: every
  book and every fill) per wall second; both for the parallel run and for one process (cpu).
* **where the time goes**: ``cProfile`` of ``--profile-paths`` paths in this process, own time
  per component (quoting core, reconciliation, risk, the bot's shell, the simulated venue, the
  backtest plumbing, the event loop), and the top functions.
* **AS vs symmetric** (unless ``--no-compare``): the same paths with the symmetric strategy
  (``fixed_spread`` around the mid, no skew) quoting the AS run's average spread: mean and
  standard deviation of the final PnL and inventory, next to the paper's table (gamma = 0.1).

    .venv/bin/python bench/backtest_speed.py [--paths 1000] [--steps 200] [--workers N]
                                            [--profile-paths 40] [--no-compare] [--no-source]
                                            [--baseline-ref REF]

Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _baseline import hot_path, kasmm_tree, ratio, run_on_ref, run_source
from _common import OtherLoad, machine_facts, print_json_line, print_table, wait_for_idle

import kasmm
from kasmm.backtest import run_backtest
from kasmm.backtest.result import BacktestResult
from kasmm.config.loader import load_file
from kasmm.config.schema import Profile

DT = 0.005
S0 = 100.0
#: Avellaneda & Stoikov (2008), gamma = 0.1: profit, std(profit), final q, std(q).
#: gamma = 0.1: profit, std(profit), final q, std(q). The inventory strategy's row is the published
#: table (Quantitative Finance 8(3), 2008: 65.0 +- 6.6, std q 2.9; its mean q is not quoted
#: here); the symmetric row is the 2006 preprint's (the published symmetric row is not checked
#: here). The preprint's inventory row was 62.94 +- 5.89, std q 2.80.
PAPER: dict[str, tuple[float | None, ...]] = {
    "inventory": (65.0, 6.6, None, 2.9),
    "symmetric": (67.21, 13.43, -0.018, 8.66),
}


def as_profile(strategy: str, spread_bps: float = 1.0) -> Profile:
    """The paper's market maker (``as``) or the symmetric benchmark (``symmetric``)."""
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
            "name": f"as2008-{strategy}",
            "venue": {"type": "sim", "market": {"model": "as2008", "dt": DT, "s0": S0}},
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


COMPONENTS = (
    (
        "quoting core",
        (
            "kasmm/core/quoting",
            "kasmm/core/rules",
            "kasmm/core/skew",
            "kasmm/core/types",
            "kasmm/core/volatility",
            "kasmm/core/params",
        ),
    ),
    ("reconciliation", ("kasmm/core/reconcile",)),
    ("risk gate", ("kasmm/core/risk",)),
    ("pnl", ("kasmm/core/pnl",)),
    ("bot shell", ("kasmm/bot", "kasmm/journal", "kasmm/core/ids", "kasmm/clock")),
    ("sim venue", ("kasmm/venues/",)),
    ("backtest plumbing", ("kasmm/backtest/",)),
    ("event loop", ("asyncio", "anyio")),
    ("logging", ("structlog",)),
)


def component(filename: str) -> str:
    for name, keys in COMPONENTS:
        if any(k in filename for k in keys):
            return name
    if filename.startswith("~") or filename.startswith("<"):
        # cProfile sees compiled (mypyc) functions as builtins, and not what they call.
        return "builtins (Decimal, dict, ...) and compiled code"
    return "other"


def profile_paths(n: int) -> tuple[list[list[Any]], list[list[Any]], float]:
    """cProfile ``n`` AS paths in this process: (component rows, top functions, seconds)."""
    profile = as_profile("as")
    run_backtest(profile, market="as2008", paths=2, horizon_s=DT * 10, workers=1)  # warm up
    prof = cProfile.Profile()
    prof.enable()
    run_backtest(profile, market="as2008", paths=n, horizon_s=200 * DT, workers=1)
    prof.disable()
    stats = pstats.Stats(prof)
    own: dict[str, float] = defaultdict(float)
    total = 0.0
    rows = []
    for (filename, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        own[component(filename)] += tottime
        total += tottime
        short = filename.split("/work/main/")[-1].split("site-packages/")[-1]
        rows.append((tottime, calls, cumtime, f"{short}:{line}({func})"))
    comp_rows = [
        [name, f"{t / total * 100:.1f} %", f"{t / n * 1000:.2f}"]
        for name, t in sorted(own.items(), key=lambda kv: -kv[1])
    ]
    rows.sort(reverse=True)
    top = [
        [f"{t / total * 100:.1f} %", calls, f"{c / total * 100:.0f} %", where]
        for t, calls, c, where in rows[:15]
    ]
    return comp_rows, top, total


def _or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def stats_row(name: str, result: BacktestResult, paper: tuple[float | None, ...]) -> list[Any]:
    run = result.run
    pnl, inv, spread = run.stat("final_pnl"), run.stat("final_inventory"), run.stat("avg_spread")
    assert pnl is not None and inv is not None and spread is not None
    return [
        name,
        len(run.paths),
        spread.mean,
        pnl.mean,
        pnl.std,
        inv.mean,
        inv.std,
        f"{_or_dash(paper[0])} / {_or_dash(paper[1])}",
        f"{_or_dash(paper[2])} / {_or_dash(paper[3])}",
    ]


def demo_profile() -> Profile:
    """The random-walk demo profile (``profiles/kas-usdt-sim.yaml``), as a new user runs it.

    Read from the tree of the ``kasmm`` being measured: a baseline's own profile, which its
    loader knows (a newer profile may carry settings an older kasmm refuses).
    """
    loaded, issues = load_file(kasmm_tree() / "profiles" / "kas-usdt-sim.yaml")
    assert not issues and loaded, issues
    return loaded[0].profile


def measure_speed(args: argparse.Namespace) -> dict[str, Any]:
    """The speed figures of this process's ``kasmm``: AS experiment in parallel and in one
    process, and the demo profile's one-hour random-walk paths in parallel."""
    horizon = args.steps * DT
    out: dict[str, Any] = {"kasmm": kasmm.__file__, "hot_path": hot_path()}
    single = run_backtest(
        as_profile("as"), market="as2008", paths=args.single_paths, horizon_s=horizon, workers=1
    )
    out["single"] = {
        "paths": args.single_paths,
        "wall_s": single.timing.wall_s,
        "cpu_s": single.timing.cpu_s,
        "steps_per_s": args.single_paths * args.steps / single.timing.wall_s,
        "decisions_per_s": single.timing.decisions_per_s,
        "decisions": single.timing.decisions,
        "actions_per_step": _mean_actions(single) / args.steps,
    }
    busy0 = OtherLoad._busy_s()
    t0 = time.perf_counter()
    result = run_backtest(
        as_profile("as"), market="as2008", paths=args.paths, horizon_s=horizon, workers=args.workers
    )
    wall = time.perf_counter() - t0
    # CPU the rest of the machine used: busy time minus ours (this process and its workers).
    other = max(0.0, (OtherLoad._busy_s() - busy0 - result.timing.cpu_s) / wall)
    out["as2008"] = {
        "paths": args.paths,
        "wall_s": wall,
        "cpu_s": result.timing.cpu_s,
        "steps_per_s": args.paths * args.steps / wall,
        "decisions_per_s": result.timing.decisions / wall,
        "other_load_cores": other,
        "summary": _summary(result),
    }
    if args.rw_paths > 0:
        t0 = time.perf_counter()
        rw = run_backtest(demo_profile(), paths=args.rw_paths, horizon_s=3600, workers=args.workers)
        wall = time.perf_counter() - t0
        out["random_walk"] = {
            "paths": args.rw_paths,
            "wall_s": wall,
            "decisions": rw.timing.decisions,
            "decisions_per_s": rw.timing.decisions / wall,
            # The issue's figure: 200 one-hour paths, at this run's rate.
            "wall_s_for_200_paths": wall / args.rw_paths * 200,
            "pnl_mean": _summary(rw).get("pnl_mean"),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--profile-paths", type=int, default=40)
    parser.add_argument(
        "--single-paths", type=int, default=100, help="paths of the one-process run (per-core rate)"
    )
    parser.add_argument(
        "--rw-paths",
        type=int,
        default=20,
        help="one-hour paths of the demo profile on random_walk (0: skip; 200 is the issue's run)",
    )
    parser.add_argument("--baseline-ref", help="git ref measured side by side (a worktree)")
    parser.add_argument("--no-compare", action="store_true")
    parser.add_argument(
        "--no-source",
        action="store_true",
        help="with the compiled hot path, skip the column of this tree's Python source",
    )
    parser.add_argument("--wait-idle", type=float, default=20.0)
    parser.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json_only:
        print(json.dumps(measure_speed(args)))
        return
    facts = machine_facts()
    idle = wait_for_idle(args.wait_idle) if args.wait_idle > 0 else None
    horizon = args.steps * DT
    base = None
    forwarded = [
        "--json-only",
        *("--paths", str(args.paths), "--steps", str(args.steps)),
        *("--workers", str(args.workers), "--single-paths", str(args.single_paths)),
        *("--rw-paths", str(args.rw_paths)),
    ]
    if args.baseline_ref:
        base = run_on_ref(args.baseline_ref, Path(__file__).resolve(), forwarded)
    # With the compiled hot path, this tree's Python source (the reference) is a column too.
    source = None if args.no_source else run_source(Path(__file__).resolve(), forwarded)
    here = measure_speed(args)

    print(
        f"machine: {facts['nproc']} x {facts['cpu']}, Python {facts['python']}, "
        f"load1 {facts['loadavg_1m_at_start']:.2f}"
        + (f", idle probe {idle:.2f}" if idle is not None else "")
    )
    print(
        f"AS experiment: {args.paths} paths x {args.steps} steps (dt {DT}), "
        f"{args.workers} worker process(es); random_walk: the demo profile, {args.rw_paths} "
        f"one-hour paths; this tree runs {here['hot_path']}\n"
    )
    rows: list[list[Any]] = []
    figures = [
        ("as2008 parallel: wall s", ("as2008", "wall_s"), False),
        ("as2008 parallel: steps/s", ("as2008", "steps_per_s"), True),
        ("as2008 parallel: decisions/s", ("as2008", "decisions_per_s"), True),
        ("as2008 one process: steps/s", ("single", "steps_per_s"), True),
        ("as2008 one process: decisions/s", ("single", "decisions_per_s"), True),
        ("random_walk parallel: decisions/s", ("random_walk", "decisions_per_s"), True),
        (
            "random_walk: 200 x 1 h, s (at this rate)",
            ("random_walk", "wall_s_for_200_paths"),
            False,
        ),
    ]
    for name, (part, key), higher_better in figures:
        if part not in here:
            continue
        now = here[part][key]
        row: list[Any] = [name]
        if base is not None:
            row.append(base[part][key] if part in base else "-")
        if source is not None:
            row.append(source[part][key])
        row.append(now)
        if base is not None and part in base:
            was = base[part][key]
            row.append(ratio(now, was) if higher_better else ratio(was, now))
        rows.append(row)
    headers = ["figure"]
    if base is not None:
        headers.append(f"baseline {base['ref']}")
    if source is not None:
        headers.append("this tree, source")
    headers.append("this tree" + (", compiled" if source is not None else ""))
    if base is not None:
        headers.append("speed-up")
    print_table(headers, rows)
    single = here["single"]
    one_steps = args.single_paths * args.steps
    per_step_us = single["cpu_s"] / one_steps * 1e6
    per_decision_us = single["cpu_s"] / single["decisions"] * 1e6
    print(
        f"\none process: {per_step_us:.0f} us cpu per step, {per_decision_us:.0f} us per "
        f"decision ({single['decisions'] / one_steps:.2f} decisions and "
        f"{single['actions_per_step']:.2f} order actions per step); target 100,000 "
        f"steps/s = {args.workers * 1e6 / 100_000:.0f} us per step per core"
    )
    result = (
        run_backtest(
            as_profile("as"),
            market="as2008",
            paths=args.paths,
            horizon_s=horizon,
            workers=args.workers,
        )
        if not args.no_compare
        else None
    )

    comp_rows, top, total = profile_paths(args.profile_paths)
    print(
        f"\nwhere the time goes (cProfile own time, {args.profile_paths} paths in one process; "
        f"profiling inflates it to {total:.2f} s):"
    )
    print_table(["component", "share", "ms per path"], comp_rows)
    print("\ntop functions by own time:")
    print_table(["own", "calls", "cumulative", "function"], top)

    payload: dict[str, Any] = {
        "bench": "backtest_speed",
        "machine": facts,
        "paths": args.paths,
        "steps": args.steps,
        "workers": args.workers,
        "here": here,
        "baseline": base,
        "source": source,
        "us_per_step_cpu": per_step_us,
        "components_share": {row[0]: float(row[1].rstrip(" %")) / 100 for row in comp_rows},
    }
    if result is not None:
        spread = result.run.stat("avg_spread")
        assert spread is not None
        symmetric = run_backtest(
            as_profile("symmetric", spread_bps=round(spread.mean / S0 * 1e4, 2)),
            market="as2008",
            paths=args.paths,
            horizon_s=horizon,
            workers=args.workers,
        )
        print(
            "\nAvellaneda-Stoikov vs symmetric (same average spread), against the paper "
            "(gamma 0.1; AS row: the published 2008 table, symmetric row: the 2006 preprint; "
            "the paper's spread column is 1.29 for both). The symmetric strategy needs "
            "inventory.skew_strength: 0 (no skew), as set here:"
        )
        print_table(
            [
                "strategy",
                "paths",
                "spread",
                "pnl mean",
                "pnl std",
                "q mean",
                "q std",
                "paper pnl mean/std",
                "paper q mean/std",
            ],
            [
                stats_row("inventory (AS)", result, PAPER["inventory"]),
                stats_row("symmetric", symmetric, PAPER["symmetric"]),
            ],
        )
        payload["comparison"] = {
            name: _summary(res) for name, res in (("as", result), ("symmetric", symmetric))
        }
    print_json_line(payload)


def _summary(result: BacktestResult) -> dict[str, float]:
    run = result.run
    out = {}
    for key, metric in (("pnl", "final_pnl"), ("q", "final_inventory"), ("spread", "avg_spread")):
        stat = run.stat(metric)
        if stat is not None:
            out[f"{key}_mean"], out[f"{key}_std"] = stat.mean, stat.std
    return out


def _mean_actions(result: BacktestResult) -> float:
    stat = result.run.stat("order_actions")
    return stat.mean if stat is not None else float("nan")


if __name__ == "__main__":
    main()
