"""How many sim profiles can one supervisor process carry?

For each N in ``--sizes`` a fresh subprocess (so peak RSS is per size) writes N random-walk sim
profiles (10 book updates/s each, default Poisson takers, distinct seeds, generous rate limits)
into a temporary directory, starts an in-process ``Supervisor`` on it, and measures for
``--seconds``:

* event-loop lag: a probe task sleeps 5 ms over and over; lag = actual - requested sleep;
* CPU: ``time.process_time`` delta / wall delta (100 % = one core);
* RSS: current RSS (``/proc/self/statm``), its growth over the pre-start baseline per profile,
  and the peak (``ru_maxrss``);
* book updates the bots processed (sum of ``bot.stats.book_updates``; in real time a bot that
  falls behind coalesces queued book updates) vs the N * 10 * seconds the venues scheduled;
* order actions/s (place + cancel requests the sim venues received).

Then the supervisor is cancelled and the open orders of every sim venue are counted. Startup (one
``load_paths`` of the N files, then the whole ``tg.start(sup.run)``: reload + every bot quoting)
is timed separately (the ``load_paths`` in yet another fresh interpreter, so no cache is warm).

    .venv/bin/python bench/scale.py [--sizes 100,250,500,750,1000] [--seconds 10]

Figures only: no assertion is made on timings.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _common import (
    OtherLoad,
    VenueRecorder,
    current_rss_bytes,
    machine_facts,
    percentile,
    print_json_line,
    print_table,
    quiet_logging,
    sim_profile_yaml,
    wait_for_idle,
    write_atomic,
)

BOOK_INTERVAL_S = 0.1
PROBE_S = 0.005
LAG_TARGET_MS = 10.0


def scale_profile(i: int) -> str:
    """A demo-like random-walk profile: 10 book updates/s, default takers (2/s, mean 2500)."""
    return sim_profile_yaml(
        f"p{i:04d}",
        seed=1000 + i,
        market=f"{{model: random_walk, book_interval_s: {BOOK_INTERVAL_S}}}",
        rate_limit="{capacity: 1000, refill_per_s: 1000}",
        strategy="{type: fixed_spread, volatility: {halflife_s: 60, horizon_s: 10}}",
    )


# --- one size, in this process ------------------------------------------------------------


async def _probe(lags: list[float], stop: anyio.Event) -> None:
    """Sleep PROBE_S repeatedly and record how late each wake-up is (ms)."""
    while not stop.is_set():
        t0 = time.perf_counter()
        await anyio.sleep(PROBE_S)
        lags.append(max(0.0, (time.perf_counter() - t0 - PROBE_S) * 1e3))


class GcWatch:
    """Counts and times garbage-collector runs (per generation) while active."""

    def __init__(self) -> None:
        self.active = False
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if not self.active:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses[info["generation"]].append((time.perf_counter() - self._t0) * 1e3)


_LOAD_ONCE = """
import sys, time
from kasmm.config.loader import load_paths
t = time.perf_counter()
load = load_paths([sys.argv[1]])
print(time.perf_counter() - t, len(load.profiles), len(load.issues))
"""


def time_load_paths(directory: Path) -> tuple[float, int, int]:
    """One ``load_paths`` of the directory, in a fresh interpreter (no warm caches)."""
    proc = subprocess.run(
        [sys.executable, "-P", "-c", _LOAD_ONCE, str(directory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seconds, profiles, issues = proc.stdout.split()
    return float(seconds), int(profiles), int(issues)


async def run_size(n: int, seconds: float, warmup: float) -> dict[str, Any]:
    from kasmm.supervisor import Supervisor

    out: dict[str, Any] = {"n": n, "seconds": seconds}
    with tempfile.TemporaryDirectory(prefix="kasmm-scale-") as tmp:
        directory = Path(tmp)
        for i in range(n):
            write_atomic(directory, f"p{i:04d}", scale_profile(i))

        out["load_files_s"], loaded, issues = time_load_paths(directory)
        assert loaded == n and issues == 0, (loaded, issues)

        rss_base = current_rss_bytes()
        recorder = VenueRecorder()
        sup = Supervisor(directory, venue_factory=recorder.factory)
        async with anyio.create_task_group() as tg:
            t = time.perf_counter()
            await tg.start(sup.run)
            out["startup_s"] = time.perf_counter() - t
            quoting = sum(1 for s in sup.slots.values() if s.bot and s.bot.state == "quoting")
            out["quoting_after_start"] = quoting

            await anyio.sleep(warmup)

            def counters() -> tuple[int, int]:
                books = sum(s.bot.stats.book_updates for s in sup.slots.values() if s.bot)
                actions = sum(v.stats.places + v.stats.cancels for v in recorder.all())
                return books, actions

            lags: list[float] = []
            stop = anyio.Event()
            gcw = GcWatch()
            gc.callbacks.append(gcw)
            gcw.active = True
            books0, actions0 = counters()
            other = OtherLoad()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            tg.start_soon(_probe, lags, stop)
            await anyio.sleep(seconds)
            stop.set()
            gcw.active = False
            cpu1, wall1 = time.process_time(), time.perf_counter()
            out["other_load_cores"] = other.cores()
            books1, actions1 = counters()
            rss_now = current_rss_bytes()
            wall = wall1 - wall0

            lags.sort()
            out.update(
                lag_samples=len(lags),
                lag_p50_ms=percentile(lags, 50),
                lag_p99_ms=percentile(lags, 99),
                lag_max_ms=lags[-1] if lags else float("nan"),
                cpu_pct=100 * (cpu1 - cpu0) / wall,
                book_updates=books1 - books0,
                book_updates_expected=round(n * wall / BOOK_INTERVAL_S),
                actions_per_s=(actions1 - actions0) / wall,
                rss_mb=rss_now / 2**20,
                rss_per_profile_kb=(rss_now - rss_base) / n / 1024,
                gc_runs=[len(gcw.pauses[g]) for g in (0, 1, 2)],
                gc_max_ms=[max(gcw.pauses[g], default=0.0) for g in (0, 1, 2)],
                gc_total_ms=sum(sum(v) for v in gcw.pauses.values()),
            )
            out["book_ratio"] = out["book_updates"] / max(1, out["book_updates_expected"])
            bots = [s.bot for s in sup.slots.values() if s.bot is not None]
            out["venue_errors"] = sum(getattr(b.stats, "venue_errors", 0) for b in bots)
            out["kill_switch_trips"] = sum(getattr(b.stats, "kill_switch_trips", 0) for b in bots)
            out["not_quoting_at_end"] = sum(1 for b in bots if b.state != "quoting")

            t = time.perf_counter()
            tg.cancel_scope.cancel()
        out["shutdown_s"] = time.perf_counter() - t
        venues = recorder.all()
        out["venues"] = len(venues)
        out["open_orders_after_stop"] = sum(v.open_order_count for v in venues)
        out["exit_code"] = sup.exit_code
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def child_main(args: argparse.Namespace) -> None:
    quiet_logging(args.log_level)
    limit = args.seconds + args.warmup + args.child_timeout

    async def bounded() -> dict[str, Any]:
        with anyio.fail_after(limit):
            return await run_size(args.child, args.seconds, args.warmup)

    result = anyio.run(bounded)
    print_json_line(result)


# --- the driver: one subprocess per size ----------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,250,500,750,1000", help="comma-separated N")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per size")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds after startup")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=20.0,
        help="before each size, wait up to this many seconds for other processes to go quiet",
    )
    parser.add_argument("--log-level", default="info", help="kasmm log level (JSON to /dev/null)")
    parser.add_argument(
        "--child-timeout", type=float, default=90.0, help="startup+shutdown budget per size (s)"
    )
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child_main(args)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    facts = machine_facts()
    print(
        f"scale: {sizes} profiles, {args.seconds:g} s measured each (+{args.warmup:g} s warm-up); "
        f"nproc={facts['nproc']} python={facts['python']} cpu={facts['cpu']}"
    )
    results: list[dict[str, Any]] = []
    for n in sizes:
        if args.wait_idle > 0:
            busy = wait_for_idle(args.wait_idle)
            if busy >= 0.15:
                print(f"  (the machine stayed busy: other processes use {busy:.2f} cores)")
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            str(n),
            "--seconds",
            str(args.seconds),
            "--warmup",
            str(args.warmup),
            "--log-level",
            args.log_level,
            "--child-timeout",
            str(args.child_timeout),
        ]
        budget = args.seconds + args.warmup + args.child_timeout + 30
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget)
        except subprocess.TimeoutExpired:
            print(f"  N={n}: timed out after {budget:g} s", flush=True)
            results.append({"n": n, "error": "timeout"})
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            print(f"  N={n}: failed (rc={proc.returncode}): {' | '.join(tail)}", flush=True)
            results.append({"n": n, "error": f"rc={proc.returncode}"})
            continue
        r = json.loads(lines[-1])
        results.append(r)
        print(
            f"  N={n}: lag p99 {r['lag_p99_ms']:.2f} ms, cpu {r['cpu_pct']:.0f} %, "
            f"books {100 * r['book_ratio']:.0f} %, startup {r['startup_s']:.1f} s, "
            f"other load {r['other_load_cores']:.2f} cores",
            flush=True,
        )

    ok = [r for r in results if "error" not in r]
    print()
    print_table(
        [
            "N",
            "lag p50 ms",
            "lag p99 ms",
            "lag max ms",
            "CPU %1core",
            "RSS MB",
            "KB/profile",
            "peak MB",
            "books done",
            "books exp",
            "books %",
            "actions/s",
            "other load",
        ],
        [
            [
                r["n"],
                r["lag_p50_ms"],
                r["lag_p99_ms"],
                r["lag_max_ms"],
                r["cpu_pct"],
                r["rss_mb"],
                r["rss_per_profile_kb"],
                r["peak_rss_mb"],
                r["book_updates"],
                r["book_updates_expected"],
                100 * r["book_ratio"],
                r["actions_per_s"],
                r["other_load_cores"],
            ]
            for r in ok
        ],
    )
    print()
    print_table(
        [
            "N",
            "load N files s",
            "startup s",
            "quoting",
            "errors",
            "kill trips",
            "shutdown s",
            "open orders left",
            "exit",
        ],
        [
            [
                r["n"],
                r["load_files_s"],
                r["startup_s"],
                f"{r['quoting_after_start']}/{r['n']}",
                r["venue_errors"],
                r["kill_switch_trips"],
                r["shutdown_s"],
                r["open_orders_after_stop"],
                r["exit_code"],
            ]
            for r in ok
        ],
    )
    print(
        "books done = every BookUpdated the bots handled: the 10/s scheduled updates plus the one"
        " each taker trade\npublishes (~2/s by default), so a run that keeps up shows ~120 % of"
        " 'books exp'; less means bots\ncoalesced queued updates they could not keep up with."
        " 'other load' = CPU cores used by other processes."
    )
    fits = [r["n"] for r in ok if r["lag_p99_ms"] < LAG_TARGET_MS]
    largest = max(fits) if fits else None
    print()
    print(f"largest N with event-loop lag p99 < {LAG_TARGET_MS:g} ms: {largest}")
    all_clean = all(r["open_orders_after_stop"] == 0 for r in ok) and len(ok) == len(results)
    print(f"every sim venue had zero open orders after stop: {all_clean}")
    print_json_line(
        {
            "bench": "scale",
            "machine": facts,
            "seconds": args.seconds,
            "largest_n_lag_p99_under_10ms": largest,
            "zero_open_orders_after_stop": all_clean,
            "results": results,
        }
    )


if __name__ == "__main__":
    main()
