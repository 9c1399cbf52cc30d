"""How many sim profiles can one supervisor process carry?

For each N in ``--sizes`` a fresh subprocess (so peak RSS is per size) writes N random-walk sim
profiles (10 book updates/s each, default Poisson takers, distinct seeds, generous rate limits)
into a temporary directory, starts an in-process ``Supervisor`` on it, and measures for
``--seconds``:

* event-loop lag: a probe task sleeps 5 ms over and over; lag = actual - requested sleep;
* CPU: ``time.process_time`` delta / wall delta (100 % = one core);
* RSS: current RSS (``/proc/self/statm``), its growth over the pre-start baseline per profile,
  and the peak (``ru_maxrss``);
* book updates the bots processed (sum of the bots' ``view().counters.book_updates``; in real
  time a bot that falls behind coalesces queued book updates) vs the N * 10 * seconds the
  venues scheduled;
* order actions/s (place + cancel requests the sim venues received);
* ``/metrics`` scraped every ``SCRAPE_EVERY_S`` (5 s) with a GET through the real control
  endpoint (``endpoint``: the production wiring, the sliced ``MetricsExporter``; the HTTP client
  is another process, as a Prometheus is), so the headline lag figures are
  those of a supervisor being scraped as in production. ``--old-render`` alternates it with the
  previous way, one synchronous ``render(build_registry(sup))`` on the loop (``old``), whose
  samples the headline lag leaves out. Per kind: scrape duration, body size, and the probe's
  lag while a scrape was in progress, next to the lag outside scrapes.

Then the supervisor is cancelled and the open orders of every sim venue are counted. Startup (one
``load_paths`` of the N files, then the whole ``tg.start(sup.run)``: reload + every bot quoting)
is timed separately (the ``load_paths`` in yet another fresh interpreter, so no cache is warm).

    .venv/bin/python bench/scale.py [--sizes 100,250,500,750,1000] [--seconds 10]
                                    [--book-update regenerate|incremental] [--old-render]
                                    [--baseline-ref 20a32b3]
    .venv/bin/python bench/scale.py --stall 2000   # only the scrape stall at 2,000 profiles

``--book-update`` sets the random-walk market's book model of every profile (``incremental``, the
default, leaves the field out so an older schema accepts the profiles; a baseline that predates
the field then runs its only model, ``regenerate``). ``--baseline-ref REF``
runs each size a second time, just before this tree's, with ``kasmm`` imported from a ``git
worktree`` of ``REF`` (``bench/_baseline.py``), and prints per size the baseline, this tree and
their ratio (lag, CPU, RSS and RSS per profile, book updates processed / scheduled, startup).

``--stall N`` measures the longest event-loop stall of one ``/metrics`` scrape at N profiles,
before (one synchronous render) and after (the sliced exporter), on a synthetic supervisor of N
slots that share the bots of 20 running sim profiles (so reading a profile costs what it costs
in production, without running N bots).

Figures only: no assertion is made on timings.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from itertools import cycle
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import anyio.lowlevel
from _baseline import checked_out, env_for, hot_path, imported_from, ratio
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
SCRAPE_EVERY_S = 5.0
SCRAPE_KINDS = ("endpoint", "old")


def scale_profile(i: int, book_update: str = "incremental") -> str:
    """A demo-like random-walk profile: 10 book updates/s, default takers (2/s, mean 2500).

    ``book_update`` is the market's book model; ``incremental`` (the default model) leaves the
    field out, so a baseline whose schema predates the field accepts the profiles."""
    book = "" if book_update == "incremental" else f", book_update: {book_update}"
    return sim_profile_yaml(
        f"p{i:04d}",
        seed=1000 + i,
        market=f"{{model: random_walk, book_interval_s: {BOOK_INTERVAL_S}{book}}}",
        rate_limit="{capacity: 1000, refill_per_s: 1000}",
        strategy="{type: fixed_spread, volatility: {halflife_s: 60, horizon_s: 10}}",
    )


# --- one size, in this process ------------------------------------------------------------


async def _probe(lags: list[tuple[float, float, float]], stop: anyio.Event) -> None:
    """Sleep PROBE_S repeatedly; record (start, wake-up, lag in ms) of each sleep."""
    while not stop.is_set():
        t0 = time.perf_counter()
        await anyio.sleep(PROBE_S)
        t1 = time.perf_counter()
        lags.append((t0, t1, max(0.0, (t1 - t0 - PROBE_S) * 1e3)))


async def _turn_probe(gaps: list[tuple[float, float, float]], stop: anyio.Event) -> None:
    """Yield to the loop over and over; record (start, end, ms of this thread's CPU) between
    two turns: the longest stretch the loop spent elsewhere, without the time the OS gave
    other processes (on a shared machine, wall-clock lag also counts being preempted)."""
    last_wall, last_cpu = time.perf_counter(), time.thread_time()
    while not stop.is_set():
        await anyio.lowlevel.checkpoint()
        wall, cpu = time.perf_counter(), time.thread_time()
        gaps.append((last_wall, wall, (cpu - last_cpu) * 1e3))
        last_wall, last_cpu = wall, cpu


_GET_METRICS = """
import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60)
conn.request("GET", "/metrics")
response = conn.getresponse()
body = response.read()
assert response.status == 200, response.status
print(len(body))
"""


async def _http_get_metrics(port: int) -> int:
    """GET /metrics from another process, as Prometheus scrapes; the body's size.

    Not from a thread of this process: reading and joining a 12 MB body (500 profiles) in a
    thread takes the GIL from the event loop being measured, which no deployment does.
    """
    proc = await anyio.run_process([sys.executable, "-c", _GET_METRICS, str(port)])
    return int(proc.stdout)


async def _scraper(
    sup: Any,
    port: int,
    windows: list[tuple[float, float, str, int]],
    stop: anyio.Event,
    done: anyio.Event,
    scrape_kinds: tuple[str, ...] = ("endpoint",),
) -> None:
    """Every SCRAPE_EVERY_S (or right after the previous one, if it took longer), one scrape,
    through ``scrape_kinds`` in turn (the endpoint, and with ``--old-render`` the old on-loop
    render); a failed scrape has size -1."""
    from kasmm.obs.metrics import render

    kinds = cycle(scrape_kinds)
    next_at = time.perf_counter() + SCRAPE_EVERY_S / 2
    try:
        while True:
            with anyio.move_on_after(max(0.0, next_at - time.perf_counter())):
                await stop.wait()
            if stop.is_set():
                return
            next_at = max(next_at + SCRAPE_EVERY_S, time.perf_counter())
            kind = next(kinds)
            t0 = time.perf_counter()
            try:
                if kind == "endpoint":
                    size = await _http_get_metrics(port)
                else:
                    size = len(render(sup.metrics_registry)[0])  # what /metrics used to do
            except (OSError, subprocess.CalledProcessError, AssertionError, ValueError) as exc:
                print(f"  scrape failed: {exc!r}", file=sys.stderr)
                size = -1
            windows.append((t0, time.perf_counter(), kind, size))
    finally:
        done.set()


def _overlaps(t0: float, t1: float, windows: list[tuple[float, float, str, int]]) -> str | None:
    """The kind of scrape that overlaps [t0, t1] the most, if any does."""
    best, kind = 0.0, None
    for s0, s1, what, _ in windows:
        overlap = min(t1, s1) - max(t0, s0)
        if overlap > best:
            best, kind = overlap, what
    return kind


def scrape_figures(
    lags: list[tuple[float, float, float]],
    windows: list[tuple[float, float, str, int]],
    scrape_kinds: tuple[str, ...] = SCRAPE_KINDS,
) -> dict[str, Any]:
    """Per scrape kind: durations, size, and the probe's lag during those scrapes."""
    during: dict[str | None, list[float]] = {None: [], **{k: [] for k in scrape_kinds}}
    for t0, t1, ms in lags:
        during[_overlaps(t0, t1, windows)].append(ms)
    out: dict[str, Any] = {}
    for kind in scrape_kinds:
        mine = [w for w in windows if w[2] == kind and w[3] >= 0]
        durations = sorted((w[1] - w[0]) * 1e3 for w in mine)
        lag = sorted(during[kind])
        out[kind] = {
            "scrapes": len(mine),
            "failed": sum(1 for w in windows if w[2] == kind and w[3] < 0),
            "duration_ms_p50": percentile(durations, 50),
            "duration_ms_max": durations[-1] if durations else float("nan"),
            "body_kb": mine[-1][3] / 1024 if mine else float("nan"),
            "lag_p99_ms": percentile(lag, 99),
            "lag_max_ms": lag[-1] if lag else float("nan"),
        }
    quiet = sorted(during[None])
    out["outside"] = {"lag_p99_ms": percentile(quiet, 99), "lag_max_ms": quiet[-1] if quiet else 0}
    return out


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


def settle_gc() -> None:
    """What ``kasmm supervise`` does to the garbage collector once every profile runs
    (``kasmm.supervisor.daemon.settle_gc``; a baseline tree older than it froze the heap only)."""
    try:
        from kasmm.supervisor.daemon import settle_gc as settle
    except ImportError:
        gc.collect()
        gc.freeze()
        return
    settle()


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


async def run_size(
    n: int,
    seconds: float,
    warmup: float,
    book_update: str = "incremental",
    old_render: bool = False,
) -> dict[str, Any]:
    import kasmm
    from kasmm.control import serve_control
    from kasmm.obs.scrape import MetricsExporter
    from kasmm.supervisor import Supervisor

    kinds = SCRAPE_KINDS if old_render else ("endpoint",)
    out: dict[str, Any] = {
        "n": n,
        "seconds": seconds,
        "book_update": book_update,
        "scrape_kinds": list(kinds),
        "kasmm": kasmm.__file__,
        "hot_path": hot_path(),
    }
    with tempfile.TemporaryDirectory(prefix="kasmm-scale-") as tmp:
        directory = Path(tmp)
        for i in range(n):
            write_atomic(directory, f"p{i:04d}", scale_profile(i, book_update))

        out["load_files_s"], loaded, issues = time_load_paths(directory)
        # A baseline older than a schema field (book_update) rejects the profiles: say so.
        assert loaded == n and issues == 0, f"{issues} issue(s) loading the {n} profiles"

        rss_base = current_rss_bytes()
        recorder = VenueRecorder()
        sup = Supervisor(directory, venue_factory=recorder.factory)
        async with anyio.create_task_group() as tg:
            t = time.perf_counter()
            await tg.start(sup.run)
            out["startup_s"] = time.perf_counter() - t
            quoting = sum(1 for s in sup.slots.values() if s.bot and s.bot.state == "quoting")
            out["quoting_after_start"] = quoting
            port = await tg.start(
                lambda *, task_status: serve_control(
                    "127.0.0.1",
                    0,
                    status=sup.status,
                    metrics=MetricsExporter(sup).scrape,
                    task_status=task_status,
                )
            )

            settle_gc()  # as `kasmm supervise` does once every profile runs
            await anyio.sleep(warmup)

            def counters() -> tuple[int, int]:
                books = sum(s.bot.view().counters.book_updates for s in sup.slots.values() if s.bot)
                actions = sum(v.stats.places + v.stats.cancels for v in recorder.all())
                return books, actions

            lags: list[tuple[float, float, float]] = []
            windows: list[tuple[float, float, str, int]] = []
            stop = anyio.Event()
            gcw = GcWatch()
            gc.callbacks.append(gcw)
            gcw.active = True
            books0, actions0 = counters()
            other = OtherLoad()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            scraper_done = anyio.Event()
            tg.start_soon(_probe, lags, stop)
            tg.start_soon(_scraper, sup, port, windows, stop, scraper_done, kinds)
            await anyio.sleep(seconds)
            stop.set()
            gcw.active = False
            cpu1, wall1 = time.process_time(), time.perf_counter()
            out["other_load_cores"] = other.cores()
            books1, actions1 = counters()
            rss_now = current_rss_bytes()
            wall = wall1 - wall0

            # The headline lag is the production wiring's: every probe sample of the window in
            # which the endpoint is scraped every SCRAPE_EVERY_S. The old on-loop renders (only
            # with --old-render) are not how /metrics is served: their samples are left out.
            served = [w for w in windows if w[2] != "old"]
            baseline = [w for w in windows if w[2] == "old"]
            kept = sorted(lag for t0, t1, lag in lags if _overlaps(t0, t1, baseline) is None)
            out["endpoint_scrapes"] = len(served)
            out.update(
                lag_samples=len(kept),
                lag_p50_ms=percentile(kept, 50),
                lag_p99_ms=percentile(kept, 99),
                lag_max_ms=kept[-1] if kept else float("nan"),
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

            with anyio.move_on_after(120):  # a scrape in flight finishes before the shutdown
                await scraper_done.wait()
            out["scrape"] = scrape_figures(lags, windows, kinds)
            t = time.perf_counter()
            tg.cancel_scope.cancel()
        out["shutdown_s"] = time.perf_counter() - t
        venues = recorder.all()
        out["venues"] = len(venues)
        out["open_orders_after_stop"] = sum(v.open_order_count for v in venues)
        out["exit_code"] = sup.exit_code
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


# --- --stall N: the longest loop stall of one scrape, before and after ---------------------


async def run_stall(n: int, repeats: int = 3) -> dict[str, Any]:
    """One scrape at a time of a synthetic N-profile supervisor whose slots share the bots of 20
    running sim profiles; the probe's lag during each is the stall a bot would have seen."""
    from kasmm.obs.metrics import build_registry, render
    from kasmm.obs.scrape import MetricsExporter
    from kasmm.supervisor import Supervisor

    live = 20
    with tempfile.TemporaryDirectory(prefix="kasmm-stall-") as tmp:
        directory = Path(tmp)
        for i in range(live):
            write_atomic(directory, f"p{i:04d}", scale_profile(i))
        sup = Supervisor(directory)
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            await anyio.sleep(2.0)
            real = [sup.slots[name] for name in sorted(sup.slots)]
            slots = {}
            for i in range(n):
                slot = real[i % live]
                name = f"s{i:05d}"
                slots[name] = SimpleNamespace(
                    loaded=SimpleNamespace(
                        profile=slot.loaded.profile.model_copy(update={"name": name})
                    ),
                    state=slot.state,
                    restarts=slot.restarts,
                    bot=slot.bot,
                    limiter=getattr(slot, "limiter", None),
                    venue_metrics=slot.venue_metrics,
                )
            synthetic: Any = SimpleNamespace(
                slots=slots,
                issues=[],
                started_at=sup.started_at,
                reload_results=sup.reload_results,
                loop_lag=sup.loop_lag,
            )
            registry = build_registry(synthetic)
            exporter = MetricsExporter(synthetic, max_age_s=0.0)
            settle_gc()  # as `kasmm supervise` does once every profile runs
            rows: dict[str, list[dict[str, float]]] = {"none": [], "old": [], "sliced": []}
            for _ in range(repeats):
                for kind in rows:
                    lags: list[tuple[float, float, float]] = []
                    turns: list[tuple[float, float, float]] = []
                    stop = anyio.Event()
                    tg.start_soon(_probe, lags, stop)
                    tg.start_soon(_turn_probe, turns, stop)
                    await anyio.sleep(0.05)
                    t0, cpu0 = time.perf_counter(), time.thread_time()
                    if kind == "none":  # the bots alone, about as long as a sliced scrape
                        await anyio.sleep(
                            rows["sliced"][-1]["scrape_ms"] / 1e3 if rows["sliced"] else 0.2
                        )
                        size = 0
                    elif kind == "old":
                        size = len(render(registry)[0])
                    else:
                        exporter.longest_slice_s = 0.0
                        size = sum(len(c) for c in (await exporter.scrape())[0])
                    t1, cpu1 = time.perf_counter(), time.thread_time()
                    await anyio.sleep(0.02)
                    stop.set()
                    during = sorted(lag for a, b, lag in lags if a < t1 and t0 < b)
                    held = max((cpu for a, b, cpu in turns if a < t1 and t0 < b), default=math.nan)
                    rows[kind].append(
                        {
                            "scrape_ms": (t1 - t0) * 1e3,
                            "held_cpu_ms": held,
                            # The CPU the scrape itself held the loop for at a time (the old
                            # render: all of it).
                            "scrape_slice_ms": (
                                exporter.longest_slice_s * 1e3
                                if kind == "sliced"
                                else (cpu1 - cpu0) * 1e3
                                if kind == "old"
                                else math.nan
                            ),
                            "stall_max_ms": during[-1] if during else math.nan,
                            "lag_p99_ms": percentile(during, 99),
                            "body_mb": size / 2**20,
                        }
                    )
                    gc.collect()
            tg.cancel_scope.cancel()
    return {"n": n, "live_bots": live, "rows": rows}


def stall_main(n: int, log_level: str) -> None:
    quiet_logging(log_level)
    facts = machine_facts()
    print(f"scrape stall: {n} profiles (synthetic, sharing 20 live bots); nproc={facts['nproc']}")
    other = OtherLoad()
    result = anyio.run(run_stall, n)
    print_table(
        [
            "path",
            "scrape ms",
            "longest scrape slice ms (CPU)",
            "loop held ms (CPU)",
            "probe lag max ms",
            "body MB",
        ],
        [
            [
                kind,
                r["scrape_ms"],
                r["scrape_slice_ms"],
                r["held_cpu_ms"],
                r["stall_max_ms"],
                r["body_mb"],
            ]
            for kind, rows in result["rows"].items()
            for r in rows
        ],
    )
    print(
        "none = no scrape (the 20 live bots alone); old = one synchronous "
        "render(build_registry(sup)) on the loop (what /metrics did); sliced = "
        "MetricsExporter.scrape() (what it does now).\nlongest scrape slice = the most CPU the "
        "scrape used without yielding; loop held = the longest stretch of "
        "this thread's CPU between two turns of a task that only yields (OS preemption "
        "excluded); probe lag = the wall-clock lag of a 5 ms sleep (preemption included).\n"
        f"other load {other.cores():.2f} cores"
    )
    print_json_line({"bench": "scale-stall", "machine": facts, **result})


def child_main(args: argparse.Namespace) -> None:
    quiet_logging(args.log_level)
    limit = args.seconds + args.warmup + args.child_timeout

    async def bounded() -> dict[str, Any]:
        with anyio.fail_after(limit):
            return await run_size(
                args.child, args.seconds, args.warmup, args.book_update, args.old_render
            )

    result = anyio.run(bounded)
    print_json_line(result)


# --- the driver: one subprocess per size ----------------------------------------------------


def run_child(
    n: int, args: argparse.Namespace, env: dict[str, str] | None, label: str
) -> dict[str, Any]:
    """One size in a fresh subprocess (``env``: a baseline's, importing its ``kasmm``); its
    result, or ``{"n": n, "error": ...}``; one progress line either way."""
    if args.wait_idle > 0:
        busy = wait_for_idle(args.wait_idle)
        if busy >= 0.15:
            print(f"  (the machine stayed busy: other processes use {busy:.2f} cores)")
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        *("--child", str(n), "--seconds", str(args.seconds), "--warmup", str(args.warmup)),
        *("--log-level", args.log_level, "--child-timeout", str(args.child_timeout)),
        *("--book-update", args.book_update),
        *(("--old-render",) if args.old_render else ()),
    ]
    budget = args.seconds + args.warmup + args.child_timeout + 30
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget, env=env)
    except subprocess.TimeoutExpired:
        print(f"  N={n} {label}: timed out after {budget:g} s", flush=True)
        return {"n": n, "error": "timeout"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        print(f"  N={n} {label}: failed (rc={proc.returncode}): {' | '.join(tail)}", flush=True)
        return {"n": n, "error": f"rc={proc.returncode}"}
    r: dict[str, Any] = json.loads(lines[-1])
    print(
        f"  N={n} {label}: lag p99 {r['lag_p99_ms']:.2f} ms, cpu {r['cpu_pct']:.0f} %, "
        f"books {100 * r['book_ratio']:.0f} %, startup {r['startup_s']:.1f} s, "
        f"other load {r['other_load_cores']:.2f} cores",
        flush=True,
    )
    return r


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
    parser.add_argument(
        "--stall", type=int, default=None, help="only measure the scrape stall at N profiles"
    )
    parser.add_argument(
        "--book-update",
        choices=("regenerate", "incremental"),
        default="incremental",
        help="the sim market's book model (incremental: a newer schema field, which a baseline "
        "older than it rejects)",
    )
    parser.add_argument(
        "--old-render",
        action="store_true",
        help="alternate the endpoint scrapes with the old on-loop render (left out of the lag)",
    )
    parser.add_argument("--baseline-ref", help="git ref measured side by side (a worktree)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child_main(args)
        return
    if args.stall is not None:
        stall_main(args.stall, args.log_level)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    facts = machine_facts()
    print(
        f"scale: {sizes} profiles, {args.seconds:g} s measured each (+{args.warmup:g} s warm-up), "
        f"book_update {args.book_update}, /metrics through the endpoint every "
        f"{SCRAPE_EVERY_S:g} s{' alternating with the old render' if args.old_render else ''}; "
        f"nproc={facts['nproc']} python={facts['python']} cpu={facts['cpu']}"
    )
    if args.baseline_ref and args.book_update != "incremental":
        print("  (a baseline whose schema predates book_update rejects these profiles)")
    results: list[dict[str, Any]] = []
    baselines: list[dict[str, Any]] = []
    with ExitStack() as stack:
        tree, sha = (
            stack.enter_context(checked_out(args.baseline_ref))
            if args.baseline_ref
            else (None, None)
        )
        for n in sizes:
            if tree is not None:  # the baseline first, then this tree, size by size
                base = run_child(n, args, env_for(tree), f"baseline {sha}")
                if "error" not in base and not imported_from(base, tree):
                    raise SystemExit(f"the baseline imported kasmm from {base.get('kasmm')}")
                baselines.append(base)
            results.append(run_child(n, args, None, "this tree" if tree else ""))

    ok = [r for r in results if "error" not in r]
    print_tables(ok)
    if args.baseline_ref:
        print()
        print_side_by_side(baselines, results, str(sha))
    fits = [r["n"] for r in ok if r["lag_p99_ms"] < LAG_TARGET_MS]
    largest = max(fits) if fits else None
    print()
    print(f"largest N with event-loop lag p99 < {LAG_TARGET_MS:g} ms: {largest}")
    if args.baseline_ref:
        base_fits = [
            r["n"] for r in baselines if "error" not in r and r["lag_p99_ms"] < LAG_TARGET_MS
        ]
        print(f"  (baseline {sha}: {max(base_fits) if base_fits else None})")
    all_clean = all(r["open_orders_after_stop"] == 0 for r in ok) and len(ok) == len(results)
    print(f"every sim venue had zero open orders after stop: {all_clean}")
    print_json_line(
        {
            "bench": "scale",
            "machine": facts,
            "seconds": args.seconds,
            "book_update": args.book_update,
            "largest_n_lag_p99_under_10ms": largest,
            "zero_open_orders_after_stop": all_clean,
            "results": results,
            "baseline_ref": sha,
            "baseline": baselines or None,
        }
    )


def print_tables(ok: list[dict[str, Any]]) -> None:
    """This tree's figures: per size, the headline, startup/shutdown and scrape tables."""
    print()
    if ok:
        print(f"this tree runs {ok[0].get('hot_path', '?')}")
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
        f"/metrics scraped every {SCRAPE_EVERY_S:g} s during the measurement: 'endpoint' (GET "
        "through the control endpoint: the sliced exporter, the production wiring; the headline "
        "lag above is measured with it running), with --old-render alternating with 'old' (the "
        "previous one-call render on the loop, left out of the headline lag); lag = the 5 ms "
        "probe's lag while such a scrape ran."
    )
    print_table(
        [
            "N",
            "path",
            "scrapes",
            "failed",
            "scrape ms p50",
            "scrape ms max",
            "body KB",
            "lag p99 ms",
            "lag max ms",
        ],
        [
            [
                r["n"],
                kind,
                r["scrape"][kind]["scrapes"],
                r["scrape"][kind]["failed"],
                r["scrape"][kind]["duration_ms_p50"],
                r["scrape"][kind]["duration_ms_max"],
                r["scrape"][kind]["body_kb"],
                r["scrape"][kind]["lag_p99_ms"],
                r["scrape"][kind]["lag_max_ms"],
            ]
            for r in ok
            for kind in r["scrape_kinds"]
        ]
        + [
            [
                r["n"],
                "(no scrape)",
                "",
                "",
                "",
                "",
                "",
                r["scrape"]["outside"]["lag_p99_ms"],
                r["scrape"]["outside"]["lag_max_ms"],
            ]
            for r in ok
        ],
    )
    print()
    print(
        "books done = every BookUpdated the bots handled: the 10/s scheduled updates plus the one"
        " each taker trade\npublishes (~2/s by default), so a run that keeps up shows ~120 % of"
        " 'books exp'; less means bots\ncoalesced queued updates they could not keep up with."
        " 'other load' = CPU cores used by other processes."
    )


#: The figures compared with a baseline: (column, key, lower is better).
_COMPARED = (
    ("lag p50 ms", "lag_p50_ms", True),
    ("lag p99 ms", "lag_p99_ms", True),
    ("lag max ms", "lag_max_ms", True),
    ("CPU %1core", "cpu_pct", True),
    ("RSS MB", "rss_mb", True),
    ("KB/profile", "rss_per_profile_kb", True),
    ("books %", "book_ratio", False),
    ("startup s", "startup_s", True),
)


def print_side_by_side(
    baselines: list[dict[str, Any]], results: list[dict[str, Any]], sha: str
) -> None:
    """Per size three rows: the baseline, this tree, and the ratio (above 1: this tree better;
    baseline / this tree for what should be low, this tree / baseline for books %)."""
    rows: list[list[Any]] = []
    for base, here in zip(baselines, results, strict=True):
        compiled = str(here.get("hot_path", "")).startswith("compiled")
        sides = [
            (f"baseline {sha}", base),
            ("this tree" + (", compiled" if compiled else ""), here),
        ]
        for label, r in sides:
            if "error" in r:
                rows.append([r["n"], label, r["error"], *[""] * len(_COMPARED)])
                continue
            figures = [100 * r[k] if k == "book_ratio" else r[k] for _, k, _ in _COMPARED]
            rows.append([r["n"], label, r["other_load_cores"], *figures])
        if "error" not in base and "error" not in here:
            rows.append(
                [
                    here["n"],
                    "ratio",
                    "",
                    *[
                        ratio(base[k], here[k]) if low else ratio(here[k], base[k])
                        for _, k, low in _COMPARED
                    ],
                ]
            )
    print(
        f"side by side with {sha} (same script, kasmm from a worktree, measured alternately "
        "size by size); ratio > 1: this tree is better"
    )
    print_table(["N", "tree", "other load", *[c for c, _, _ in _COMPARED]], rows)


if __name__ == "__main__":
    main()
