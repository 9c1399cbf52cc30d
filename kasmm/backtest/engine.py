"""Run a profile's bot in virtual time on a simulated or replayed market, over many paths.

There is one implementation of the strategy: the bot's engine (:class:`kasmm.bot.engine.Engine`),
with its quoting core, risk gate and reconciliation, exactly as ``kasmm run`` and the supervisor
run it. A backtest drives it synchronously (:class:`~.driver.BacktestDriver`: no event loop, the
same steps as the async driver) and only chooses what it is connected to:

* a :class:`~.plumbing.BacktestClock` (virtual time that stops at the horizon, so a path is
  deterministic for its seed);
* the simulated venue (``random_walk`` or ``as2008``) or the replay venue
  (:class:`~kasmm.venues.sim.replay.ReplayVenue`), seeded with ``seed + i`` for path ``i``;
* a token bucket (:class:`~.plumbing.BacktestBucket`), see "Rate limits" below;
* a meter that measures the path (:class:`~.result.PathResult`).

**Horizon.** A path starts at virtual time 0 (``random_walk``, ``as2008``) or at the first row
of the replay file, and covers every market event with a time up to ``start + horizon_s``
inclusive; the stream ends before the first later event, and the bot then stops and cancels its
orders like on any stop. The bot gets ``session_end = start + horizon_s``, so an
Avellaneda–Stoikov profile with a ``session_end`` horizon counts ``T - t`` down to the end of
the run (on ``as2008`` with ``dt`` 0.005 and ``horizon_s`` 1: exactly the paper's 200 steps,
each with its fills and its final mid move). A replay without ``horizon_s`` runs to the end of
the data.

**Rate limits.** By default (``rate_limit="auto"``) the bot draws from a bucket with the
profile's ``rate_limit`` capacity and refill, as it would live: a budget that binds delays
requests in virtual time (the clock jumps over the wait; market events whose time has passed
meanwhile are then delivered late, in order), which is part of what a backtest should show.
Once such waits carry the clock past the end of the run, the market does not move again and the
run ends. On ``as2008``, whose model has no rate limit, ``auto`` means an unlimited bucket, so
that requoting every 5 ms step is never delayed. ``"profile"`` and ``"unlimited"`` force either
choice. Either way the weight drawn (``tokens_used``) and the time waited
(``rate_limit_wait_s``) are reported.

**Speed.** A path is one synchronous loop: no event loop, no task per round, no lock on the
bucket, no view built per event (the meter samples a few marks), log events below ``log_level``
(``error`` by default) dropped before they are formatted, and paths run in worker processes
(``ProcessPoolExecutor``, one per core by default) in chunks. What remains is the engine's own
cost per decision and the market model's; see ``bench/backtest_speed.py`` for where it goes.
Request latency (``latency_ms``) and token waits move the clock even past the horizon: a round
in progress at the end finishes, and the run ends there.
"""

from __future__ import annotations

import contextlib
import gc
import math
import multiprocessing
import os
import resource
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kasmm.config.schema import (
    AS2008Market,
    CcxtVenueConfig,
    PaperVenueConfig,
    Profile,
    RandomWalkMarket,
    SimFees,
    SimVenueConfig,
)
from kasmm.venues.sim import SimVenue
from kasmm.venues.sim.replay import QueuePosition, ReplayVenue
from kasmm.venues.sim.replay_format import scan
from kasmm.venues.sim.world import SimWorlds

from .driver import BacktestDriver, Observer
from .overrides import OverrideError, apply_overrides, grid, label
from .plumbing import LEVELS, PROGRESS_EVERY_S, BacktestBucket, BacktestClock
from .result import (
    BacktestResult,
    PathResult,
    RunResult,
    Timing,
    markout_fields,
    pnl_fields,
)

MarketKind = Literal["random_walk", "as2008", "replay"]
RateLimitMode = Literal["auto", "profile", "unlimited"]
#: Markets a backtest can run on.
MARKETS: tuple[MarketKind, ...] = ("random_walk", "as2008", "replay")
#: Horizon when none is given: the AS paper's T = 1 s, one hour of the demo market.
DEFAULT_HORIZON_S: dict[str, float] = {"as2008": 1.0, "random_walk": 3600.0}
#: Chunks per worker: progress granularity and load balance against per-chunk overhead.
CHUNKS_PER_WORKER = 8
#: The cyclic GC while paths run: the young generation collected every 20,000 allocations,
#: not every 700 (a path's values are acyclic, freed by reference counting: the default scans
#: ~100 times a path for nothing, 2-4 % of a run). Everything built before the paths start is
#: frozen out of the collections. The same settings as a running supervisor's.
PATHS_GC_THRESHOLDS = (20_000, 10, 10)

#: ``(paths done, paths total)``; ``done`` counts the running paths' virtual time done as
#: fractions, so progress (and an ETA) shows long before the first path ends.
Progress = Callable[[float, int], None]
#: In a worker process: where its paths report their progress (set by the pool initializer).
_progress_queue: Any = None


class BacktestError(ValueError):
    """The backtest cannot run as asked (bad market, missing data, invalid override...)."""


# --- profiles -------------------------------------------------------------------------------


def _market_for(current: Any, market: MarketKind) -> Any:
    """The sim market config for ``market``, keeping ``current`` when it already is one."""
    model = getattr(current, "model", None)
    if market == "as2008":
        return current if isinstance(current, AS2008Market) else AS2008Market(model="as2008")
    if market == "random_walk":
        return current if isinstance(current, RandomWalkMarket) else RandomWalkMarket()
    return current if model == "replay" else RandomWalkMarket()


def backtest_profile(profile: Profile, market: MarketKind) -> Profile:
    """``profile`` on the simulated venue with the ``market`` model.

    A sim profile keeps its venue settings (balances, fees, grid, market parameters when the
    model is the same). A paper profile keeps its virtual balances and fees; a ccxt profile
    gets the simulator's defaults (set ``venue.balances.ASSET`` with an override when the
    pair is not KAS/USDT). Credentials are never read.
    """
    venue = profile.venue
    if isinstance(venue, SimVenueConfig):
        sim = venue.model_copy(update={"market": _market_for(venue.market, market)})
    elif isinstance(venue, PaperVenueConfig):
        fees = (
            SimFees(maker_bps=venue.fees.maker_bps, taker_bps=venue.fees.taker_bps)
            if venue.fees is not None
            else SimFees()
        )
        sim = SimVenueConfig(
            type="sim",
            market=_market_for(None, market),
            balances=dict(venue.balances),
            fees=fees,
        )
    else:
        assert isinstance(venue, CcxtVenueConfig)
        sim = SimVenueConfig(type="sim", market=_market_for(None, market))
    return profile.model_copy(update={"venue": sim})


def _profile_market(profile: Profile) -> MarketKind:
    model = getattr(getattr(profile.venue, "market", None), "model", None)
    if model in MARKETS:
        return model  # type: ignore[no-any-return]
    return "random_walk"


# --- one path ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathSpec:
    """Everything a worker needs to run one path (picklable)."""

    run: int
    index: int
    seed: int
    profile: Profile  # on the sim venue, seed set
    market: MarketKind
    data: str | None
    queue_position: QueuePosition
    start: float
    end: float | None  # the clock's stop: the run's end plus a float-rounding allowance
    session_end: float | None  # the run's end, for T - t
    unlimited: bool
    log_level: int


def build_path(
    spec: PathSpec,
    *,
    observer: Observer | None = None,
    run_tag: str | None = None,
    worlds: SimWorlds | None = None,
) -> BacktestDriver:
    """The driver of one path, wired to its venue, clock and bucket (not started).

    :param worlds: the simulated worlds the venue joins: a group path's, shared by its
        members (default: the path's own, ``seed_offset`` its index).
    """
    clock = BacktestClock(spec.start, spec.end)
    profile = spec.profile
    venue_cfg = profile.venue
    assert isinstance(venue_cfg, SimVenueConfig)
    sim: SimVenue
    if spec.market == "replay":
        assert spec.data is not None
        sim = ReplayVenue(
            venue_cfg, profile.symbol, clock, Path(spec.data), queue_position=spec.queue_position
        )
    else:
        # A world's latent path is drawn per path (seed_offset): without a registry of the
        # path's own, every path would replay the same latent price.
        if worlds is None:
            worlds = SimWorlds(seed_offset=spec.index)
        sim = SimVenue(venue_cfg, profile.symbol, clock, worlds=worlds, user=profile.name)
    bucket = BacktestBucket(
        profile.rate_limit.capacity,
        profile.rate_limit.refill_per_s,
        clock,
        unlimited=spec.unlimited,
        name=profile.name,
    )
    return BacktestDriver(
        profile,
        sim,
        clock,
        bucket,
        session_end=spec.session_end,
        log_level=spec.log_level,
        run_tag=run_tag,
        observer=observer,
    )


def run_path(spec: PathSpec, on_progress: Callable[[float], None] | None = None) -> PathResult:
    """Run one path to its end and measure it (``on_progress``: fraction of the horizon done,
    every :data:`PROGRESS_EVERY_S` or so)."""
    driver = build_path(spec)
    driver.on_progress = on_progress
    driver.run()
    return path_result(driver, spec.index, spec.seed, spec.start)


def path_result(driver: BacktestDriver, index: int, seed: int, start: float) -> PathResult:
    """The measures of a path ``driver`` has run (``start``: the path's start time)."""
    meter = driver.meter
    view = driver.view()
    mid = view.mid
    mark = view.mark
    pnl = view.pnl
    counters = view.counters
    stats = driver.sim.stats
    start_base = pnl.position - (pnl.buy_volume - pnl.sell_volume)
    limiter = driver.bucket
    return PathResult(
        index=index,
        seed=seed,
        final_pnl=float(pnl.net(mark)),
        final_inventory=float(view.inventory_base),
        inventory_change=float(view.inventory_base - start_base),
        final_mid=float(mid) if mid is not None else None,
        avg_spread=meter.spread_sum / meter.spread_n if meter.spread_n else None,
        avg_spread_bps=meter.spread_bps_sum / meter.spread_n if meter.spread_n else None,
        spread_samples=meter.spread_n,
        quoted_both_share=meter.spread_n / meter.book_samples if meter.book_samples else 0.0,
        fills_buy=pnl.buy_count,
        fills_sell=pnl.sell_count,
        volume_buy=float(pnl.buy_volume),
        volume_sell=float(pnl.sell_volume),
        volume_quote=float(pnl.buy_notional + pnl.sell_notional),
        fees=float(pnl.fees),
        max_drawdown=meter.max_drawdown,
        order_actions=stats.places + stats.cancels,
        orders_placed=counters.orders_placed,
        orders_cancelled=counters.orders_cancelled,
        orders_rejected=counters.orders_rejected,
        tokens_used=limiter.spent,
        rate_limit_wait_s=limiter.waited_s,
        decisions=counters.decisions,
        market_events=meter.events,
        kill_switch_trips=counters.kill_switch_trips,
        trading_state=view.trading_state.value,
        end_time_s=max(0.0, meter.last_event_at - start) if meter.events else 0.0,
        open_orders_left=view.orders_left,
        **pnl_fields(view.pnl_parts),
        **markout_fields(view.markout),
    )


def run_chunk(
    specs: Sequence[PathSpec],
    progress: Callable[[int, float], None] | None = None,
) -> list[PathResult]:
    """Run paths one after the other; ``progress(k, fraction)`` as the ``k``-th path advances
    (in a worker process, when none is given, to the pool's progress queue if there is one)."""
    if progress is None and _progress_queue is not None:
        queue = _progress_queue
        first = (specs[0].run, specs[0].index)

        def progress(k: int, fraction: float) -> None:
            queue.put((first, k, fraction))

    out = []
    with _collector_for_paths():
        for k, spec in enumerate(specs):
            report = None if progress is None else _bind_progress(progress, k)
            out.append(run_path(spec, report))
            if progress is not None:
                progress(k, 1.0)
    return out


@contextlib.contextmanager
def _collector_for_paths() -> Iterator[None]:
    """:data:`PATHS_GC_THRESHOLDS` while the paths run; the caller's settings after. (A caller
    that froze objects itself keeps them frozen, and nothing more is: unfreeze() thaws all.)"""
    before = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    gc.set_threshold(*PATHS_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        if freeze:
            gc.unfreeze()


def _bind_progress(progress: Callable[[int, float], None], k: int) -> Callable[[float], None]:
    return lambda fraction: progress(k, fraction)


def _init_worker(queue: Any) -> None:
    global _progress_queue
    _progress_queue = queue


# --- many paths ---------------------------------------------------------------------------------


def _rate_limit_info(profile: Profile, unlimited: bool) -> dict[str, Any]:
    if unlimited:
        return {"mode": "unlimited", "capacity": None, "refill_per_s": None}
    return {
        "mode": "profile",
        "capacity": profile.rate_limit.capacity,
        "refill_per_s": profile.rate_limit.refill_per_s,
    }


def _cpu_s() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run_backtest(
    profile: Profile,
    *,
    market: MarketKind | None = None,
    data: Path | None = None,
    paths: int = 1,
    horizon_s: float | None = None,
    seed: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    sweep: Mapping[str, Sequence[Any]] | None = None,
    workers: int | None = None,
    rate_limit: RateLimitMode = "auto",
    queue_position: QueuePosition = "back",
    log_level: str = "error",
    progress: Progress | None = None,
) -> BacktestResult:
    """Backtest ``profile``: ``paths`` seeded paths (``seed + i``) of every sweep point.

    :param market: ``random_walk``, ``as2008`` or ``replay`` (default: the profile's sim market,
        else ``random_walk``). The profile is moved to the simulated venue (see
        :func:`backtest_profile`).
    :param data: the replay file (``market="replay"``; see :mod:`kasmm.backtest.replay`).
    :param horizon_s: virtual seconds per path (default 1 for ``as2008``, 3600 for
        ``random_walk``, the whole file for ``replay``).
    :param seed: seed of path 0 (default: the profile's ``venue.seed``, else 1).
    :param overrides: dotted profile keys set for every run (``{"strategy.gamma": 0.1}``).
    :param sweep: dotted key -> values; one run per combination (cartesian product).
    :param workers: processes (default: one per core; 1 runs in this process).
    :param rate_limit: see the module docstring.
    :param queue_position: replay only: ``back`` or ``front`` (see :mod:`.replay`).
    :param log_level: the bots' log level (``error`` drops fills and warnings of every path).
    :param progress: called with (paths done, paths total) right away and then about every
        quarter second; ``done`` counts running paths' fractions.
    :raises BacktestError: the backtest cannot run as asked.
    """
    if paths < 1:
        raise BacktestError("paths must be at least 1")
    kind: MarketKind = market if market is not None else _profile_market(profile)
    if kind not in MARKETS:
        raise BacktestError(f"market must be one of {', '.join(MARKETS)}, got {kind!r}")
    if log_level.lower() not in LEVELS:
        raise BacktestError(f"unknown log level {log_level!r}")
    sim_market = getattr(profile.venue, "market", None)
    if kind == "replay" and data is None and getattr(sim_market, "model", None) == "replay":
        data = Path(getattr(sim_market, "path"))  # noqa: B009 - the schema's replay market
        queue_position = getattr(sim_market, "queue_position", queue_position)
    base = backtest_profile(profile, kind)
    if seed is None:
        seed = base.venue.seed if isinstance(base.venue, SimVenueConfig) else 1
    start = 0.0
    end: float | None
    data_str: str | None = None
    if kind == "replay":
        if data is None:
            raise BacktestError("market 'replay' needs a data file")
        try:
            info = scan(data)
        except (OSError, ValueError) as exc:
            raise BacktestError(f"{data}: {exc}") from None
        if info.header.symbol is not None and info.header.symbol != profile.symbol:
            raise BacktestError(f"{data} records {info.header.symbol}, not {profile.symbol}")
        data_str = str(data)
        start = info.first_ts
        end = start + horizon_s if horizon_s is not None else info.last_ts
        if paths > 1:
            paths = 1  # a replay is one path: every seed would give the same result
    else:
        if data is not None:
            raise BacktestError(f"market {kind!r} takes no data file")
        if horizon_s is None:
            horizon_s = DEFAULT_HORIZON_S[kind]
        end = start + horizon_s
    if horizon_s is not None and not (horizon_s > 0 and math.isfinite(horizon_s)):
        raise BacktestError("horizon_s must be positive")
    unlimited = rate_limit == "unlimited" or (rate_limit == "auto" and kind == "as2008")
    level_no = LEVELS[log_level.lower()]

    points = grid(sweep or {})
    run_profiles: list[Profile] = []
    try:
        for point in points:
            run_profiles.append(apply_overrides(base, {**(overrides or {}), **point}))
    except OverrideError as exc:
        raise BacktestError(str(exc)) from None
    session_end = end
    if end is not None:
        # Events exactly at the end belong to the run, whatever float rounding did to them.
        end += max(1e-9 * max(1.0, end - start), 4 * math.ulp(end))
    specs: list[PathSpec] = []
    for r, run_profile in enumerate(run_profiles):
        venue_cfg = run_profile.venue
        assert isinstance(venue_cfg, SimVenueConfig)
        for i in range(paths):
            path_seed = seed + i
            path_profile = run_profile.model_copy(
                update={"venue": venue_cfg.model_copy(update={"seed": path_seed})}
            )
            specs.append(
                PathSpec(
                    run=r,
                    index=i,
                    seed=path_seed,
                    profile=path_profile,
                    market=kind,
                    data=data_str,
                    queue_position=queue_position,
                    start=start,
                    end=end,
                    session_end=session_end,
                    unlimited=unlimited,
                    log_level=level_no,
                )
            )

    wall0, cpu0 = time.perf_counter(), _cpu_s()
    n_workers = min(workers if workers is not None else (os.cpu_count() or 1), len(specs))
    results = _execute(specs, max(1, n_workers), progress)
    wall, cpu = time.perf_counter() - wall0, _cpu_s() - cpu0

    runs = []
    for r, point in enumerate(points):
        mine = [res for spec, res in zip(specs, results, strict=True) if spec.run == r]
        runs.append(RunResult.build(label(point), {**(overrides or {}), **point}, mine))
    return BacktestResult(
        profile=profile.name,
        market=kind,
        data=data_str,
        paths=paths,
        horizon_s=horizon_s,
        seed=seed,
        rate_limit=_rate_limit_info(base, unlimited),
        sweep={k: list(v) for k, v in (sweep or {}).items()},
        runs=tuple(runs),
        timing=Timing(
            wall_s=wall,
            cpu_s=cpu,
            workers=max(1, n_workers),
            decisions=sum(r.decisions for r in results),
            market_events=sum(r.market_events for r in results),
        ),
    )


def _execute(
    specs: Sequence[PathSpec], workers: int, progress: Progress | None
) -> list[PathResult]:
    """Results in the order of ``specs``: in this process, or in ``workers`` processes."""
    total = len(specs)
    if progress is not None:
        progress(0.0, total)  # at once: the run has started
    if workers <= 1:
        done = [0.0] * total

        def local(k: int, fraction: float) -> None:
            done[k] = fraction
            if progress is not None:
                progress(sum(done), total)

        return run_chunk(specs, local)
    size = max(1, math.ceil(total / (workers * CHUNKS_PER_WORKER)))
    chunks = [list(specs[i : i + size]) for i in range(0, total, size)]
    by_chunk: dict[int, list[PathResult]] = {}
    # Paths report how far they got through a queue the parent drains while it waits.
    manager = multiprocessing.get_context().Manager() if progress is not None else None
    queue = manager.Queue() if manager is not None else None
    start_of = {(chunk[0].run, chunk[0].index): n for n, chunk in enumerate(chunks)}
    fractions: dict[tuple[int, int], float] = {}
    try:
        with ProcessPoolExecutor(
            max_workers=workers, initializer=_init_worker, initargs=(queue,)
        ) as pool:
            futures: dict[Future[list[PathResult]], int] = {
                pool.submit(run_chunk, chunk): n for n, chunk in enumerate(chunks)
            }
            pending = set(futures)
            while pending:
                finished, pending = wait(
                    pending, timeout=PROGRESS_EVERY_S, return_when=FIRST_COMPLETED
                )
                for future in finished:
                    n = futures[future]
                    by_chunk[n] = future.result()
                    for k in range(len(chunks[n])):
                        fractions[(n, k)] = 1.0
                if queue is not None and progress is not None:
                    while not queue.empty():
                        first, k, fraction = queue.get_nowait()
                        key = (start_of[tuple(first)], k)
                        fractions[key] = max(fractions.get(key, 0.0), fraction)
                    progress(sum(fractions.values()), total)
    finally:
        if manager is not None:
            manager.shutdown()
    return [res for n in range(len(chunks)) for res in by_chunk[n]]
