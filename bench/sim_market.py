"""Market updates per second of the random-walk sim market alone, next to a baseline version.

One ``SimVenue`` (``random_walk``, the default market: 10 book updates/s, 2 takers/s, 20 levels a
side) is driven in virtual time through its public ``events()`` on a clock whose sleeps return
at once, so nothing but the market model runs: no bot, no event loop. Two cases:

* **no orders**: the market by itself;
* **6 orders**: three bids and three asks rest 8, 14 and 20 bps from the mid (inside the
  synthetic depth); whenever some filled, they are placed again around the current book (outside
  the timed part), so the published books always merge the bot's orders.

Figure: **market updates/s** = simulated book updates (simulated seconds x 10) per second of
wall time spent pulling events (taker events, fills and their books included). Each case runs
``--repeats`` times over ``--sim-seconds``; the median is printed (the machine is noisy).

The same measurement runs on ``--baseline-ref`` (default ``20a32b3``, before issue 15's lighter
market) in a subprocess whose ``PYTHONPATH`` is a ``git worktree`` of that ref under /tmp
(removed afterwards), interleaved with this version's runs; every repeat of either version
runs in a fresh interpreter. This version runs both book models (``book_update: regenerate``,
the default until issue 15 and the baseline's model with the same seeded paths, and
``incremental``, model version 2 and the default now); the ratio is against the baseline.

    .venv/bin/python bench/sim_market.py [--sim-seconds 300] [--repeats 5]
                                         [--baseline-ref 20a32b3] [--no-baseline]

Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CASES = ("no orders", "6 orders")
#: Distances of the resting orders from the mid, in bps (inside the 5..43 bps synthetic depth).
ORDER_BPS = (8, 14, 20)


def run_now(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (the venue on a clock whose sleeps return at once)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("the coroutine suspended")


def measure(book_update: str | None, orders: bool, sim_seconds: float, seed: int) -> float:
    """Market updates per wall second of one run (imports whichever kasmm is on the path)."""
    from kasmm.clock import VirtualClock
    from kasmm.config.schema import RandomWalkMarket, SimVenueConfig
    from kasmm.core.types import ClientOrderId, OrderRequest, Side
    from kasmm.venues.sim import SimVenue

    class InstantClock(VirtualClock):
        async def sleep_until(self, deadline: float) -> None:
            self.advance_to(deadline)

    market = RandomWalkMarket(**({} if book_update is None else {"book_update": book_update}))
    clock = InstantClock()
    config = SimVenueConfig(
        type="sim",
        seed=seed,
        market=market,
        balances={"KAS": Decimal(10_000_000), "USDT": Decimal(1_000_000)},
    )
    venue = SimVenue(config, "KAS/USDT", clock, trade_id_tag="bench")
    run_now(venue.connect())
    events = venue.events()
    tick = config.tick
    wanted = [(side, bps) for side in (Side.BUY, Side.SELL) for bps in ORDER_BPS]
    placed = 0

    def replace_missing() -> None:
        nonlocal placed
        book = venue.book
        if book.mid is None:
            return
        resting = {o.client_id for o in run_now(venue.fetch_open_orders())}
        requests = []
        for side, bps in wanted:
            cid = ClientOrderId(f"{side.value[0]}{bps}")
            if cid in resting:
                continue
            sign = -1 if side is Side.BUY else 1
            price = (book.mid * (1 + sign * Decimal(bps) / 10_000)).quantize(tick)
            requests.append(OrderRequest(cid, side, price, Decimal(200), post_only=True))
        if requests:
            placed += len(requests)
            run_now(venue.place_orders(requests))

    busy = 0.0
    pulls = 0
    while clock.now() < sim_seconds:
        if orders and pulls % 10 == 0:
            replace_missing()
        t = time.perf_counter()
        run_now(events.__anext__())
        busy += time.perf_counter() - t
        pulls += 1
    return clock.now() / market.book_interval_s / busy


def run_cases(variants: list[str | None], args: argparse.Namespace) -> dict[str, list[float]]:
    """One repeat of every (variant, case): updates/s keyed by ``variant/case``."""
    out: dict[str, list[float]] = {}
    for variant in variants:
        for case in CASES:
            rate = measure(variant, case != "no orders", args.sim_seconds, args.seed)
            out.setdefault(f"{variant or 'baseline'}/{case}", []).append(rate)
    return out


def worker(args: argparse.Namespace) -> None:
    """Subprocess mode: one repeat on the kasmm found on ``PYTHONPATH``, as JSON on stdout."""
    import kasmm

    variants: list[str | None] = [v or None for v in args.variants.split(",")]
    result = run_cases(variants, args)
    print(json.dumps({"kasmm": kasmm.__file__, "rates": result}))


def baseline_worktree(ref: str) -> Path:
    """A detached ``git worktree`` of ``ref`` in a new directory under /tmp."""
    path = Path(tempfile.mkdtemp(prefix="kasmm-bench-baseline-"))
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(path), ref],
        check=True,
    )
    return path


def repeat_in(tree: Path, variants: str, args: argparse.Namespace) -> dict[str, list[float]]:
    """One repeat of ``variants`` in a fresh interpreter importing kasmm from ``tree`` (both
    versions alike: same process age, same warm-up)."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = [sys.executable, __file__, "--worker", "--sim-seconds", str(args.sim_seconds)]
    cmd += ["--seed", str(args.seed), "--variants", variants]
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    payload = json.loads(done.stdout.strip().splitlines()[-1])
    if not payload["kasmm"].startswith(str(tree)):
        raise RuntimeError(f"{tree}: imported {payload['kasmm']}")
    rates: dict[str, list[float]] = payload["rates"]
    return rates


def main(args: argparse.Namespace) -> None:
    from _common import (
        OtherLoad,
        machine_facts,
        print_json_line,
        print_table,
        wait_for_idle,
    )

    facts = machine_facts()
    print(
        f"machine: {facts['nproc']} cpus, {facts['cpu']}, Python {facts['python']}, "
        f"load {facts['loadavg_1m_at_start']:.2f}"
    )
    if args.wait_idle > 0:
        wait_for_idle(args.wait_idle)
    worktree = None if args.no_baseline else baseline_worktree(args.baseline_ref)
    rates: dict[str, list[float]] = {}
    load = OtherLoad()
    try:
        for _ in range(args.repeats):
            # Interleaved, so a burst of other load hits both versions alike.
            runs = [(REPO, "regenerate,incremental")]
            if worktree is not None:
                runs.insert(0, (worktree, ""))
            for tree, variants in runs:
                for key, values in repeat_in(tree, variants, args).items():
                    rates.setdefault(key, []).extend(values)
    finally:
        if worktree is not None:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)],
                check=False,
            )
    other = load.cores()
    medians = {key: statistics.median(values) for key, values in rates.items()}
    rows = []
    for case in CASES:
        base = medians.get(f"baseline/{case}")
        for variant in ("baseline", "regenerate", "incremental"):
            rate = medians.get(f"{variant}/{case}")
            if rate is None:
                continue
            ratio = rate / base if base else float("nan")
            rows.append([case, variant, rate, 1e6 / rate, ratio])
    print(
        f"random_walk market alone, {args.sim_seconds:g} simulated s a run, "
        f"median of {args.repeats}; baseline = {args.baseline_ref}"
    )
    print_table(["case", "version", "updates/s", "us/update", "x baseline"], rows)
    print(f"other load: {other:.2f} cores")
    print_json_line(
        {
            "bench": "sim_market",
            "baseline_ref": None if args.no_baseline else args.baseline_ref,
            "sim_seconds": args.sim_seconds,
            "repeats": args.repeats,
            "median_updates_per_s": medians,
            "runs": rates,
            "other_load_cores": other,
            "machine": facts,
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-seconds", type=float, default=300.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline-ref", default="20a32b3")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--wait-idle", type=float, default=20.0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variants", default="", help=argparse.SUPPRESS)
    cli = parser.parse_args()
    if cli.worker:
        worker(cli)
    else:
        main(cli)
