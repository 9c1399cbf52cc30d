"""Cost of one decision, stage by stage: ``Engine.on_book`` and ``Engine.decide`` on real inputs.

Inputs are recorded, not invented: a short ``random_walk`` backtest (one path, one process,
the demo-like profile of the other benches: 3 levels, 20 levels of other traders' book per
side plus the bot's own orders merged in) runs with ``Engine.on_book`` and ``Engine.decide``
wrapped so that each call first saves a deep copy of the engine. Every saved engine is then
replayed outside the event loop, with the garbage collector off, and each stage is timed on
its own (``time.perf_counter_ns``, one call per sample and repetition):

* **book build**: ``Book(bids, asks, ts)`` from the recorded levels (what a venue pays);
* **on_book**: ``Engine.on_book`` (validation, mid, volatility estimator);
* **exclude_own**: the book without the bot's resting orders;
* **compute_quotes**: the quoting pipeline on that book;
* **risk inputs** and **evaluate**: ``Engine._risk_inputs`` and the kill-switch rules;
* **reconcile**: desired (gated) quotes against the open orders;
* **decide**: the whole ``Engine.decide`` (all of the above but on_book, plus the engine's
  bookkeeping).

Each figure is the median over samples and repetitions. Between repetitions the engine is put
back as it was (its attributes; counters and the outbox excepted), so every repetition sees
the same state. ``digest`` hashes every ``decide`` answer (the decision and the actions) of
the run: two trees that decide alike on the same inputs print the same digest.

``--baseline-ref REF`` measures the same way on a ``git worktree`` of ``REF`` (made under
/tmp, removed afterwards unless ``--keep-worktree``), in a subprocess whose ``PYTHONPATH`` is
that worktree, and prints both columns and the ratio. Both trees are measured in
subprocesses, alternately, ``--rounds`` times each; each stage shows its lowest median over
the rounds (on a shared machine other load only ever makes a round slower). Each side records
its own backtest with its own code (the same seed); when the simulated venue differs between
the trees, the inputs differ slightly too (and so does the digest).

    .venv/bin/python bench/decide.py [--horizon 120] [--reps 5] [--seed 3]
                                     [--baseline-ref 20a32b3 [--rounds 3]]

Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import copy
import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The recording wraps Engine.on_book and Engine.decide, which a compiled build's classes do not
# allow (nothing would be recorded): this bench measures the Python source, whatever is built.
# The compiled decision's cost is in bench/backtest_speed.py and bench/reaction.py.
os.environ["KASMM_PURE"] = "1"

from _common import (
    machine_facts,
    print_table,
    quiet_logging,
    sim_profile_yaml,
    wait_for_idle,
    write_atomic,
)

import kasmm
from kasmm.backtest import run_backtest
from kasmm.bot.engine import Engine
from kasmm.config.loader import load_file
from kasmm.config.schema import Profile
from kasmm.core.quoting import MarketState, compute_quotes, exclude_own
from kasmm.core.reconcile import reconcile
from kasmm.core.risk import evaluate, gate
from kasmm.core.types import Book
from kasmm.core.volatility import sigma_price

try:  # how deep the engine strips its own orders (a tree before issue 15: the whole book)
    from kasmm.core.quoting import QUOTING_DEPTH as _DEPTH  # type: ignore[attr-defined,unused-ignore]

    DEPTH: dict[str, Any] = {"depth": _DEPTH}
except ImportError:
    DEPTH = {}

ns = time.perf_counter_ns
REPO = Path(__file__).resolve().parent.parent
STAGES = (
    "book build",
    "on_book",
    "exclude_own",
    "compute_quotes",
    "risk inputs",
    "evaluate",
    "reconcile",
    "decide",
)

Sample = tuple[Engine, Any, float, float]  # engine copy, book (on_book) or None, now, wall


def bench_profile(seed: int) -> str:
    return sim_profile_yaml(
        "decide",
        seed=seed,
        market="{model: random_walk, sigma_bps: 20, book_interval_s: 0.1}",
        refresh="{tolerance_bps: 1, min_requote_interval_s: 0, fallback_interval_s: 2}",
        rate_limit="{capacity: 1000000, refill_per_s: 1000000}",
        strategy="{type: fixed_spread}",
    )


def load_profile(text: str) -> Profile:
    with tempfile.TemporaryDirectory(prefix="kasmm-decide-") as tmp:
        loaded, issues = load_file(write_atomic(Path(tmp), "decide", text))
    if issues or len(loaded) != 1:
        raise SystemExit(f"bench profile invalid: {issues}")
    return loaded[0].profile


def _snapshot(engine: Engine) -> Engine:
    # The profile is frozen and large: shared, not copied.
    return copy.deepcopy(engine, memo={id(engine.profile): engine.profile})


def record(horizon_s: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Run one backtest path; every on_book and decide call leaves a copy of its engine."""
    books: list[Sample] = []
    decisions: list[Sample] = []
    on_book, decide = Engine.on_book, Engine.decide

    def recording_on_book(self: Engine, book: Book, now: float) -> bool:
        # One copy of both: a book that shares levels with the previous one still does.
        engine, copied = copy.deepcopy((self, book), memo={id(self.profile): self.profile})
        books.append((engine, copied, now, 0.0))
        return on_book(self, book, now)

    def recording_decide(self: Engine, now: float, wall: float) -> Any:
        decisions.append((_snapshot(self), None, now, wall))
        return decide(self, now, wall)

    Engine.on_book = recording_on_book  # type: ignore[method-assign]
    Engine.decide = recording_decide  # type: ignore[method-assign]
    try:
        profile = load_profile(bench_profile(seed))
        run_backtest(profile, market="random_walk", paths=1, horizon_s=horizon_s, workers=1)
    finally:
        Engine.on_book, Engine.decide = on_book, decide  # type: ignore[method-assign]
    return books, decisions


class Restore:
    """Put an engine's attributes back after a timed call (the call rebinds them)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.saved = dict(engine.__dict__)

    def __call__(self) -> None:
        self.engine.__dict__.update(self.saved)
        self.engine.take()


def timed(fn: Callable[[], Any]) -> tuple[int, Any]:
    t0 = ns()
    out = fn()
    return ns() - t0, out


def measure(books: list[Sample], decisions: list[Sample], reps: int) -> dict[str, Any]:
    times: dict[str, list[int]] = {stage: [] for stage in STAGES}
    digest = hashlib.sha256()
    gc.collect()
    gc.disable()
    try:
        for rep in range(reps):
            for engine, book, now, _ in books:
                bids, asks, ts = book.bids, book.asks, book.ts
                dt, _ = timed(lambda: Book(bids, asks, ts))  # noqa: B023 - called at once
                times["book build"].append(dt)
                restore = Restore(engine)
                dt, _ = timed(lambda: engine.on_book(book, now))  # noqa: B023
                times["on_book"].append(dt)
                restore()
            for engine, _, now, wall in decisions:
                restore = Restore(engine)
                _stages(engine, now, wall, times)
                restore()
                dt, answer = timed(lambda: engine.decide(now, wall))  # noqa: B023
                times["decide"].append(dt)
                restore()
                if rep == 0:
                    digest.update(repr(answer).encode())
    finally:
        gc.enable()
    return {
        "median_us": {stage: statistics.median(v) / 1e3 for stage, v in times.items()},
        "samples": {stage: len(v) for stage, v in times.items()},
        "digest": digest.hexdigest()[:16],
        "kasmm": str(Path(kasmm.__file__).resolve().parent),
    }


def _stages(engine: Engine, now: float, wall: float, times: dict[str, list[int]]) -> None:
    """The stages of ``Engine.decide``, each timed alone (the same calls in the same order)."""
    e: Any = engine  # private attributes: the bench looks inside on purpose
    assert e.book is not None and e.rules is not None
    orders = tuple(e.open_orders.values())
    dt, others = timed(lambda: exclude_own(e.book, orders, **DEPTH))
    times["exclude_own"].append(dt)
    state = MarketState(
        now=now,
        book=others,
        rules=e.rules,
        balances=e.account.inventory.balances(e.rules.base, e.rules.quote),
        sigma=sigma_price(e._vol),
        time_left_s=e._time_left(wall),
    )
    dt, decision = timed(lambda: compute_quotes(e._params, state))
    times["compute_quotes"].append(dt)
    dt, inputs = timed(lambda: e._risk_inputs(now, wall, decision))
    times["risk inputs"].append(dt)
    dt, (risk, _) = timed(lambda: evaluate(e._limits, e.risk, inputs))
    times["evaluate"].append(dt)
    desired = gate(decision.quotes, risk.trading_state(now), decision.excess)
    # As Engine.decide calls it: with the market's grid where the tree has one (since the
    # integer grid, the engine's own orders are matched in ticks).
    grid = getattr(getattr(e, "orders", None), "grid", None)
    extra = (grid,) if grid is not None else ()
    dt, _ = timed(lambda: reconcile(desired, orders, now, e._last_action_at, e._refresh, *extra))
    times["reconcile"].append(dt)


def run_here(args: argparse.Namespace) -> dict[str, Any]:
    quiet_logging("error")
    t0 = time.perf_counter()
    books, decisions = record(args.horizon, args.seed)
    recorded = time.perf_counter() - t0
    out = measure(books, decisions, args.reps)
    out["book_events"], out["decisions"] = len(books), len(decisions)
    out["record_s"] = recorded
    depth = [len(b.bids) + len(b.asks) for _, b, _, _ in books]
    out["book_levels_median"] = statistics.median(depth) if depth else 0
    orders = [len(e.open_orders) for e, _, _, _ in decisions]
    out["open_orders_median"] = statistics.median(orders) if orders else 0
    return out


def worktree(ref: str) -> tuple[Path, str, bool]:
    """A worktree of ``ref`` under /tmp: (path, short sha, whether this call made it)."""
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", f"{ref}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    tree = Path(f"/tmp/kasmm-bench-decide-{sha}")
    if tree.exists():
        return tree, sha, False
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), sha],
        check=True,
        capture_output=True,
    )
    return tree, sha, True


def measure_in(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    """This script's measurement in a subprocess that imports kasmm from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--json-only", "--wait-idle", "0"]
    cmd += ["--horizon", str(args.horizon), "--reps", str(args.reps), "--seed", str(args.seed)]
    proc = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if not result["kasmm"].startswith(str(tree)):
        raise SystemExit(f"{tree}: the subprocess imported kasmm from {result['kasmm']}")
    return result


def best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first run, with each stage's lowest median over the runs (the least disturbed)."""
    out = dict(runs[0])
    out["median_us"] = {s: min(r["median_us"][s] for r in runs) for s in STAGES}
    out["digests"] = sorted({r["digest"] for r in runs})
    return out


def side_by_side(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Baseline and this tree, measured in alternation, ``--rounds`` times each."""
    tree, sha, made = worktree(args.baseline_ref)
    try:
        base_runs: list[dict[str, Any]] = []
        here_runs: list[dict[str, Any]] = []
        for _ in range(args.rounds):
            for runs, where in ((base_runs, tree), (here_runs, REPO)):
                if args.wait_idle > 0:
                    wait_for_idle(args.wait_idle)
                runs.append(measure_in(where, args))
    finally:
        if made and not args.keep_worktree:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                check=False,
                capture_output=True,
            )
    base = best_of(base_runs)
    base["ref"] = sha
    return base, best_of(here_runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--horizon", type=float, default=120.0, help="virtual seconds recorded")
    parser.add_argument("--reps", type=int, default=5, help="timed calls per sample and stage")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--baseline-ref", help="git ref to measure side by side (a worktree)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="with --baseline-ref: measure both trees this many times, alternating, and keep "
        "each stage's lowest median (other load on a shared machine only ever slows a run)",
    )
    parser.add_argument("--keep-worktree", action="store_true")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=10.0,
        help="wait up to this many seconds for a quiet machine first (with --baseline-ref: "
        "before each measurement; 0: don't)",
    )
    parser.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json_only:
        print(json.dumps(run_here(args)))
        return
    facts = machine_facts()
    if args.wait_idle > 0 and not args.baseline_ref:
        wait_for_idle(args.wait_idle)  # with a baseline: before each round
    base: dict[str, Any] | None = None
    if args.baseline_ref:
        base, here = side_by_side(args)
    else:
        here = run_here(args)
    print(
        f"decide: {here['decisions']} decisions and {here['book_events']} books of a "
        f"{args.horizon:.0f} s random_walk path (seed {args.seed}), {args.reps} reps"
        + (f", best of {args.rounds} alternating rounds" if base is not None else "")
        + "; book "
        f"levels {here['book_levels_median']:.0f}, open orders {here['open_orders_median']:.0f} "
        f"(medians); nproc={facts['nproc']} python={facts['python']}\n"
    )
    headers = ["median us", "this tree"]
    rows: list[list[Any]] = []
    for stage in STAGES:
        now_us = here["median_us"][stage]
        row: list[Any] = [stage, now_us]
        if base is not None:
            was = base["median_us"][stage]
            row = [stage, was, now_us, f"{was / now_us:.2f}x" if now_us else "-"]
        rows.append(row)
    if base is not None:
        headers = ["median us", f"{base['ref']}", "this tree", "speed-up"]
        rows.append(["digest", " ".join(base["digests"]), " ".join(here["digests"]), ""])
        rows.append(["decisions", base["decisions"], here["decisions"], ""])
    else:
        rows.append(["digest", here["digest"]])
    print_table(headers, rows)
    print(json.dumps({"bench": "decide", "machine": facts, "here": here, "baseline": base}))


if __name__ == "__main__":
    main()
