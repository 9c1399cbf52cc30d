"""Hot-reload latency: profile file rewritten -> the new bot's full set of orders is live.

Runs ``supervise(tmpdir, supervisor=Supervisor(tmpdir, venue_factory=<recording factory>),
control_addr=None, watch=True)`` in-process on ``--profiles`` calm sim profiles (the market never
moves and nobody trades: ``sigma_bps`` 1e-6, ``taker_rate_per_s`` 1e-9), so a bot that is left
alone sends no order actions after its first placement round. Then ``--edits`` times, one profile
(round robin) is atomically rewritten (temporary file renamed over it, as editors save) with a
changed spread, and the time is measured from the rename to the moment the profile's NEW sim venue
holds its full set of open orders (2 x levels), polling every 1 ms. Each edit is split into:

* detect: rename -> ``Supervisor.reload`` entered (file watcher, its debounce/step);
* reload: ``reload`` entered -> returned (rescan and re-validate every file, stop the old bot
  and cancel its orders, start the new one until it quotes);
* the remainder until the poller sees every order (at most ~1 ms of polling).

Unchanged profiles must be left alone: their sim venues' ``stats.places``/``stats.cancels`` are
compared before each write and after the edit settled, and no new venue may be built for them.
The total of those order actions is printed (expected: 0).

    .venv/bin/python bench/reload.py [--profiles 10] [--edits 20] [--levels 2]

Figures only: no assertion is made on timings.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _common import (
    OtherLoad,
    VenueRecorder,
    machine_facts,
    percentile,
    print_json_line,
    print_table,
    quiet_logging,
    sim_profile_yaml,
    wait_for_idle,
    write_atomic,
)

from kasmm.supervisor import ReloadResult, Supervisor, supervise

CALM = "{model: random_walk, sigma_bps: 0.000001, taker_rate_per_s: 0.000000001}"


def calm_profile(name: str, seed: int, spread: float, levels: int, interval: float) -> str:
    return sim_profile_yaml(
        name,
        seed=seed,
        market=CALM.replace("}", f", book_interval_s: {interval}}}"),
        spread_bps=spread,
        levels=levels,
        size=1000,
        refresh="{fallback_interval_s: 0.2}",
        rate_limit="{capacity: 1000, refill_per_s: 1000}",
    )


async def wait_until(predicate: Any, limit: float, poll: float = 0.001) -> float:
    """Poll ``predicate`` every ``poll`` s; return perf_counter() when it first holds."""
    with anyio.fail_after(limit):
        while not predicate():
            await anyio.sleep(poll)
    return time.perf_counter()


async def probe(lags: list[tuple[float, float]]) -> None:
    """Event-loop lag probe: sleep 5 ms repeatedly, record (wake time, lateness in ms)."""
    while True:
        t0 = time.perf_counter()
        await anyio.sleep(0.005)
        t1 = time.perf_counter()
        lags.append((t1, max(0.0, (t1 - t0 - 0.005) * 1e3)))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    names = [f"r{i:02d}" for i in range(args.profiles)]
    full = 2 * args.levels
    with tempfile.TemporaryDirectory(prefix="kasmm-reload-") as tmp:
        directory = Path(tmp)
        for i, name in enumerate(names):
            write_atomic(
                directory, name, calm_profile(name, i + 1, 20.0, args.levels, args.book_interval)
            )

        recorder = VenueRecorder()
        sup = Supervisor(directory, venue_factory=recorder.factory)

        # Time every reload the watcher triggers (an instance attribute: the class is untouched;
        # supervise() looks ``sup.reload`` up when it starts the watcher).
        reloads: list[tuple[float, float, ReloadResult]] = []
        original_reload = sup.reload

        async def timed_reload() -> ReloadResult:
            t0 = time.perf_counter()
            result = await original_reload()
            reloads.append((t0, time.perf_counter(), result))
            return result

        sup.reload = timed_reload  # type: ignore[method-assign]

        async with anyio.create_task_group() as tg:
            t_start = time.perf_counter()
            await tg.start(
                lambda *, task_status: supervise(
                    directory,
                    supervisor=sup,
                    control_addr=None,
                    watch=True,
                    task_status=task_status,
                )
            )
            startup_s = time.perf_counter() - t_start
            await wait_until(
                lambda: all(recorder.last(n).open_order_count == full for n in names), 10.0
            )
            await anyio.sleep(0.5)  # the watcher is up and the first placements are done
            lags: list[tuple[float, float]] = []
            tg.start_soon(probe, lags)

            def snapshot(exclude: str) -> dict[str, tuple[int, int, int]]:
                return {
                    n: (
                        len(recorder.venues[n]),
                        recorder.last(n).stats.places,
                        recorder.last(n).stats.cancels,
                    )
                    for n in names
                    if n != exclude
                }

            other = OtherLoad()
            rows: list[dict[str, Any]] = []
            others_actions = 0
            others_restarts = 0
            spread = 20.0
            for k in range(args.edits + 1):  # edit 0 is a warm-up, not measured
                name = names[k % len(names)]
                spread += 1.0
                before = snapshot(name)
                built_before = len(recorder.venues[name])
                old_venue = recorder.last(name)
                n_reloads = len(reloads)

                t_write = time.perf_counter()
                write_atomic(
                    directory,
                    name,
                    calm_profile(name, k + 1, spread, args.levels, args.book_interval),
                )

                def done(name: str = name, built_before: int = built_before) -> bool:
                    return (
                        len(recorder.venues[name]) > built_before
                        and recorder.last(name).open_order_count == full
                    )

                t_done = await wait_until(done, args.edit_timeout)
                await anyio.sleep(args.settle)  # anything an unchanged bot would do shows now
                after = snapshot(name)
                actions = sum(
                    (after[n][1] - before[n][1]) + (after[n][2] - before[n][2]) for n in before
                )
                restarts = sum(after[n][0] - before[n][0] for n in before)
                mine = [r for r in reloads[n_reloads:] if r[2].restarted == [name]]
                t_enter, t_exit, result = mine[0] if mine else (float("nan"),) * 2 + (None,)
                if k == 0:
                    continue
                others_actions += actions
                others_restarts += restarts
                rows.append(
                    {
                        "edit": k,
                        "profile": name,
                        "total_ms": (t_done - t_write) * 1e3,
                        "detect_ms": (t_enter - t_write) * 1e3,
                        "reload_ms": (t_exit - t_enter) * 1e3,
                        "reloads_triggered": len(reloads) - n_reloads,
                        "unchanged_in_reload": len(result.unchanged) if result else None,
                        "old_venue_open_orders": old_venue.open_order_count,
                        "others_actions": actions,
                        "others_restarts": restarts,
                        "max_loop_lag_ms": max(
                            (lag for t, lag in lags if t_write <= t <= t_done + 0.005),
                            default=0.0,
                        ),
                    }
                )
            other_cores = other.cores()
            tg.cancel_scope.cancel()
    venues = recorder.all()
    return {
        "profiles": args.profiles,
        "levels": args.levels,
        "startup_s": startup_s,
        "edits": rows,
        "unchanged_profiles_order_actions": others_actions,
        "unchanged_profiles_restarts": others_restarts,
        "open_orders_after_stop": sum(v.open_order_count for v in venues),
        "exit_code": sup.exit_code,
        "other_load_cores": other_cores,
    }


def stats_ms(values: list[float]) -> list[float]:
    v = sorted(values)
    return [percentile(v, 50), percentile(v, 95), v[-1] if v else float("nan")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=10, help="calm profiles in the directory")
    parser.add_argument("--edits", type=int, default=20, help="measured edits (+1 warm-up)")
    parser.add_argument("--levels", type=int, default=2, help="order levels per side")
    parser.add_argument(
        "--book-interval", type=float, default=0.1, help="book_interval_s of the calm markets"
    )
    parser.add_argument("--settle", type=float, default=0.3, help="quiet time after each edit (s)")
    parser.add_argument("--edit-timeout", type=float, default=15.0, help="limit per edit (s)")
    parser.add_argument("--timeout", type=float, default=150.0, help="wall-clock bound (s)")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=20.0,
        help="wait up to this many seconds for other processes to go quiet first (0: don't)",
    )
    parser.add_argument("--log-level", default="info", help="kasmm log level (JSON to /dev/null)")
    args = parser.parse_args()
    quiet_logging(args.log_level)
    facts = machine_facts()
    print(
        f"reload: {args.profiles} calm profiles, {args.edits} edits (+1 warm-up); "
        f"nproc={facts['nproc']} python={facts['python']}"
    )

    async def bounded() -> dict[str, Any]:
        with anyio.fail_after(args.timeout):
            return await run(args)

    if args.wait_idle > 0:
        busy = wait_for_idle(args.wait_idle)
        if busy >= 0.15:
            print(f"(the machine stayed busy: other processes use {busy:.2f} cores)")
    r = anyio.run(bounded)
    edits = r["edits"]
    print()
    print_table(
        [
            "edit",
            "profile",
            "total ms",
            "detect ms",
            "reload ms",
            "reloads",
            "max loop lag ms",
            "others' actions",
        ],
        [
            [
                e["edit"],
                e["profile"],
                e["total_ms"],
                e["detect_ms"],
                e["reload_ms"],
                e["reloads_triggered"],
                e["max_loop_lag_ms"],
                e["others_actions"],
            ]
            for e in edits
        ],
    )
    print()
    summary = {
        "write -> new venue fully quoted": stats_ms([e["total_ms"] for e in edits]),
        "  detect (write -> reload entered)": stats_ms([e["detect_ms"] for e in edits]),
        "  reload (entered -> returned)": stats_ms([e["reload_ms"] for e in edits]),
        "event-loop lag during an edit (max)": stats_ms([e["max_loop_lag_ms"] for e in edits]),
    }
    print_table(["ms", "p50", "p95", "max"], [[k, *v] for k, v in summary.items()])
    print()
    print(
        f"startup {r['startup_s']:.2f} s; order actions by the unchanged profiles' venues during "
        f"all edits: {r['unchanged_profiles_order_actions']} (restarts of unchanged profiles: "
        f"{r['unchanged_profiles_restarts']}); old venues left with open orders: "
        f"{sum(e['old_venue_open_orders'] for e in edits)}; open orders after stop: "
        f"{r['open_orders_after_stop']}; exit code {r['exit_code']}; other processes used "
        f"{r['other_load_cores']:.2f} cores meanwhile"
    )
    print_json_line(
        {
            "bench": "reload",
            "machine": facts,
            "summary_ms": {
                k.strip(): dict(zip(["p50", "p95", "max"], v, strict=True))
                for k, v in summary.items()
            },
            **r,
        }
    )


if __name__ == "__main__":
    main()
