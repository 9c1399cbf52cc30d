"""Run a group of profiles together in virtual time, over many seeded paths.

:func:`run_group_backtest` is :func:`kasmm.backtest.run_backtest` for several profiles at once:
each path is one :class:`~.group.GroupDriver` (every profile's own bot, venue, bucket and
clock, their events merged on one timeline), paths run in worker processes, and the result
(:class:`~.group_result.GroupBacktestResult`) holds each profile's run as a single backtest
reports it plus the group's figures.

**Seeds.** Profile ``name`` with seed ``s`` (its ``venue.seed``, or the ``seed`` argument for
every profile) trades path ``k`` on a venue seeded with :func:`member_seed` ``(s, k, name)``: the
first 63 bits of SHA-256 of ``"kasmm-group/<s>/<k>/<name>"``. A pure function of the three, so a
path is reproducible on its own, in any worker, in any order; and two profiles with the same
seed (every profile's default is 1) still get independent takers and noise, as two venues would.
A single profile run through the group on the seeds of :func:`run_backtest` (``s + k``) gives
exactly its single backtest (``tests/unit/test_backtest_group.py``).

**Markets.** Every profile must be on the simulated venue (``venue.type: sim``) with a generated
market (``random_walk`` or ``as2008``); all paths start at virtual time 0 and end at the horizon
(default 3600 s). Replayed data has its own start per file, which one timeline does not have.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

from kasmm.config.portfolios import ResolvedPortfolio
from kasmm.config.schema import AS2008Market, Profile, RandomWalkMarket, SimVenueConfig
from kasmm.config.to_core import hedge_params, profile_market_key, reference_params
from kasmm.venues.sim.world import SimWorlds

from .engine import (
    DEFAULT_HORIZON_S,
    BacktestError,
    PathSpec,
    RateLimitMode,
    _collector_for_paths,
    _cpu_s,
    build_path,
    path_result,
)
from .group import GroupDriver
from .group_hedge import GroupHedge
from .group_portfolio import GroupPortfolio
from .group_result import (
    GroupBacktestResult,
    GroupPath,
    HedgePath,
    MemberPath,
    PortfolioPath,
    group_path,
    group_summary,
    member_runs,
)
from .group_routes import GroupReferenceError, reference_routes
from .plumbing import LEVELS, PROGRESS_EVERY_S
from .result import Timing

#: Samples of inventories and group equity: every virtual second.
DEFAULT_SAMPLE_S = 1.0
#: ``(paths done, paths total)``, as for a single backtest.
Progress = Callable[[float, int], None]


class GroupMemberError(BacktestError):
    """A profile cannot be part of a group backtest (``profile``: its name)."""

    def __init__(self, profile: str, message: str) -> None:
        super().__init__(message)
        self.profile = profile


def member_seed(seed: int, path: int, name: str) -> int:
    """The venue seed of profile ``name`` (seed ``seed``) on path ``path`` (module docstring)."""
    digest = hashlib.sha256(f"kasmm-group/{seed}/{path}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class GroupPathSpec:
    """Everything a worker needs to run one group path (picklable)."""

    index: int
    members: tuple[PathSpec, ...]
    sample_s: float = DEFAULT_SAMPLE_S
    #: The portfolios measured over the members (each over those of its members in the path).
    portfolios: tuple[ResolvedPortfolio, ...] = ()


def _same(values: Sequence[str]) -> bool:
    return len(set(values)) <= 1


def build_group(spec: GroupPathSpec) -> GroupDriver:
    """The group driver of one path: each member's driver on its own clock (not started), the
    members' venues in one registry of simulated worlds (``seed_offset``: the path's index, as
    for a single backtest's path)."""
    first = spec.members[0]
    quotes = [m.profile.symbol.partition("/")[2] for m in spec.members]
    # One registry for the path: members naming a world share its latent price.
    worlds = SimWorlds(seed_offset=spec.index)
    group = GroupDriver(
        [build_path(m, worlds=worlds) for m in spec.members],
        start=first.start,
        end=first.end,
        sample_s=spec.sample_s,
        same_quote=_same(quotes),
    )
    names = {m.name for m in group.members}
    for m in group.members:
        profile = m.driver.profile
        params = hedge_params(profile)
        if params is None or profile.hedge is None:
            continue
        hedge = GroupHedge(m, group.member(profile.hedge.profile), params, group.touched)
        group.add_actor(hedge)
        m.listen_fills(hedge.a_filled)
        hedge.b.listen_fills(hedge.b_filled)
    for resolved in spec.portfolios:
        members = [group.member(n) for n in resolved.members if n in names]
        if not members:
            continue
        portfolio = GroupPortfolio.of(resolved, members)
        group.add_actor(portfolio)
        for m in members:
            m.watchers = (*m.watchers, portfolio.touched)
    return group


def run_group_path(
    spec: GroupPathSpec, on_progress: Callable[[float], None] | None = None
) -> GroupPath:
    """Run one group path to its end and measure it."""
    group = build_group(spec)
    group.on_progress = on_progress
    group.run()
    portfolios = tuple(
        PortfolioPath(a.name, a.trading_state, a.trips, tuple(m.name for m in a.members))
        for a in group.actors
        if isinstance(a, GroupPortfolio)
    )
    hedges = tuple(
        HedgePath(
            a.name,
            a.b.name,
            a.state.orders_sent,
            a.failures,
            float(a.state.hedged_base),
            float(a.residual),
            a.state.average_slippage_bps,
            a.trips,
        )
        for a in group.actors
        if isinstance(a, GroupHedge)
    )
    members = []
    for m, member_spec in zip(group.members, sorted(spec.members, key=_name), strict=True):
        result = path_result(m.driver, spec.index, member_spec.seed, member_spec.start)
        members.append(MemberPath(m.name, result, m.inventory.std))
    bases = [m.profile.symbol.partition("/")[0] for m in spec.members]
    quotes = [m.profile.symbol.partition("/")[2] for m in spec.members]
    return group_path(
        spec.index,
        members,
        same_quote=_same(quotes),
        same_base=_same(bases),
        inventory_std=group.inventory.std,
        max_drawdown=group.max_drawdown,
        portfolios=portfolios,
        hedges=hedges,
    )


def _name(spec: PathSpec) -> str:
    return spec.profile.name


def check_member(profile: Profile) -> None:
    """:raises GroupMemberError: ``profile`` cannot run in a group backtest."""
    venue = profile.venue
    if not isinstance(venue, SimVenueConfig):
        raise GroupMemberError(
            profile.name,
            f"venue.type is {venue.type!r}: a group backtest runs sim profiles only "
            "(backtest it alone: kasmm backtest FILE)",
        )
    if not isinstance(venue.market, RandomWalkMarket | AS2008Market):
        raise GroupMemberError(
            profile.name,
            f"venue.market.model is {venue.market.model!r}: a group backtest needs a generated "
            "market (random_walk or as2008) on one timeline",
        )


def run_group_backtest(
    profiles: Sequence[Profile],
    *,
    target: str = "group",
    files: Mapping[str, str] | None = None,
    paths: int = 1,
    horizon_s: float | None = None,
    seed: int | None = None,
    seeds: Sequence[Mapping[str, int]] | None = None,
    workers: int | None = None,
    rate_limit: RateLimitMode = "auto",
    log_level: str = "error",
    sample_s: float = DEFAULT_SAMPLE_S,
    portfolios: Sequence[ResolvedPortfolio] = (),
    progress: Progress | None = None,
) -> GroupBacktestResult:
    """Backtest ``profiles`` together: ``paths`` seeded group paths.

    :param target: the directory or portfolio name, for the result.
    :param files: profile name -> its file, for the result.
    :param seed: every profile's seed (default: each profile's ``venue.seed``).
    :param seeds: explicit venue seeds, one mapping (profile name -> seed) per path, instead of
        :func:`member_seed` (``paths`` is then their count); what the equivalence with a single
        backtest uses.
    :param rate_limit: ``auto``/``profile``: each profile's bucket (unlimited on ``as2008``);
        ``unlimited``: none.
    :param portfolios: ``_portfolios.yaml``'s groups: each is measured over those of its
        members that run here, and tells them its skew and trips (:mod:`.group_portfolio`).
    :raises BacktestError: the group cannot run as asked (:class:`GroupMemberError` names the
        profile).
    """
    if not profiles:
        raise BacktestError("no enabled profile to backtest")
    if seeds is not None:
        paths = len(seeds)
    if paths < 1:
        raise BacktestError("paths must be at least 1")
    if log_level.lower() not in LEVELS:
        raise BacktestError(f"unknown log level {log_level!r}")
    if not (sample_s > 0 and math.isfinite(sample_s)):
        raise BacktestError("sample_s must be positive")
    ordered = sorted(profiles, key=lambda p: p.name)
    names = [p.name for p in ordered]
    if len(set(names)) != len(names):
        raise BacktestError(f"profile names must be unique: {names}")
    for profile in ordered:
        check_member(profile)
    for p in ordered:
        if p.hedge is not None and p.hedge.profile not in names:
            raise GroupMemberError(
                p.name,
                f"hedge.profile {p.hedge.profile!r} is not in the group: a group backtest "
                "hedges on its own members' venues only",
            )
    try:
        reference_routes(
            [(p.name, profile_market_key(p), reference_params(p).keys) for p in ordered]
        )
    except GroupReferenceError as exc:
        raise GroupMemberError(exc.profile, str(exc)) from None
    kinds = {p.venue.market.model for p in ordered if isinstance(p.venue, SimVenueConfig)}
    if len(kinds) > 1:
        first_as = next(
            p
            for p in ordered
            if isinstance(p.venue, SimVenueConfig) and isinstance(p.venue.market, AS2008Market)
        )
        raise GroupMemberError(
            first_as.name,
            "venue.market.model is 'as2008' (the Avellaneda-Stoikov experiment, one trader on "
            "its own exact market), which does not mix with other markets in one group",
        )
    kind = "as2008" if kinds == {"as2008"} else "random_walk"
    if horizon_s is None:
        horizon_s = DEFAULT_HORIZON_S[kind]
    if not (horizon_s > 0 and math.isfinite(horizon_s)):
        raise BacktestError("horizon_s must be positive")
    start = 0.0
    session_end = start + horizon_s
    # Events exactly at the end belong to the run, whatever float rounding did to them.
    end = session_end + max(1e-9 * max(1.0, horizon_s), 4 * math.ulp(session_end))
    level_no = LEVELS[log_level.lower()]
    base_seeds = {
        p.name: (seed if seed is not None else p.venue.seed)
        for p in ordered
        if isinstance(p.venue, SimVenueConfig)
    }
    specs: list[GroupPathSpec] = []
    for k in range(paths):
        members = []
        for profile in ordered:
            venue = profile.venue
            assert isinstance(venue, SimVenueConfig)
            if seeds is not None:
                path_seed = seeds[k][profile.name]
            else:
                path_seed = member_seed(base_seeds[profile.name], k, profile.name)
            unlimited = rate_limit == "unlimited" or (
                rate_limit == "auto" and isinstance(venue.market, AS2008Market)
            )
            members.append(
                PathSpec(
                    run=0,
                    index=k,
                    seed=path_seed,
                    profile=profile.model_copy(
                        update={"venue": venue.model_copy(update={"seed": path_seed})}
                    ),
                    market=venue.market.model,
                    data=None,
                    queue_position="back",
                    start=start,
                    end=end,
                    session_end=session_end,
                    unlimited=unlimited,
                    log_level=level_no,
                )
            )
        specs.append(GroupPathSpec(k, tuple(members), sample_s, tuple(portfolios)))

    wall0, cpu0 = time.perf_counter(), _cpu_s()
    n_workers = max(1, min(workers if workers is not None else (os.cpu_count() or 1), paths))
    results = _execute(specs, n_workers, progress)
    wall, cpu = time.perf_counter() - wall0, _cpu_s() - cpu0
    every = [m.result for r in results for m in r.members]
    return GroupBacktestResult(
        target=target,
        profiles=tuple(names),
        files=dict(files or {}),
        market=kind,
        paths=paths,
        horizon_s=horizon_s,
        sample_s=sample_s,
        seeds=base_seeds,
        rate_limit={
            "mode": "unlimited"
            if rate_limit == "unlimited" or (rate_limit == "auto" and kind == "as2008")
            else "profile"
        },
        members=member_runs(results),
        group_paths=tuple(results),
        summary=group_summary(results),
        timing=Timing(
            wall_s=wall,
            cpu_s=cpu,
            workers=n_workers,
            decisions=sum(r.decisions for r in every),
            market_events=sum(r.market_events for r in every),
        ),
    )


def run_group_chunk(specs: Sequence[GroupPathSpec]) -> list[GroupPath]:
    """Run group paths one after the other (in a worker process)."""
    with _collector_for_paths():
        return [run_group_path(spec) for spec in specs]


def _execute(
    specs: Sequence[GroupPathSpec], workers: int, progress: Progress | None
) -> list[GroupPath]:
    """Results in the order of ``specs``: in this process, or one path a task in ``workers``
    processes (a group path is long: progress counts finished paths)."""
    total = len(specs)
    if progress is not None:
        progress(0.0, total)
    if workers <= 1:
        out: list[GroupPath] = []
        with _collector_for_paths():
            for spec in specs:

                def report(fraction: float, done: int = len(out)) -> None:
                    if progress is not None:
                        progress(done + fraction, total)

                out.append(run_group_path(spec, report))
                if progress is not None:
                    progress(float(len(out)), total)
        return out
    results: dict[int, GroupPath] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures: dict[Future[list[GroupPath]], int] = {
            pool.submit(run_group_chunk, [spec]): n for n, spec in enumerate(specs)
        }
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=PROGRESS_EVERY_S, return_when=FIRST_COMPLETED)
            for future in finished:
                results[futures[future]] = future.result()[0]
            if progress is not None and finished:
                progress(float(len(results)), total)
    return [results[n] for n in range(total)]


__all__ = [
    "DEFAULT_SAMPLE_S",
    "GroupMemberError",
    "GroupPathSpec",
    "build_group",
    "check_member",
    "member_seed",
    "run_group_backtest",
    "run_group_path",
]
