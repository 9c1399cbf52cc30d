"""Results of a group backtest: each profile's paths as a single backtest reports them, plus the
group's own figures per path, and the versioned JSON document.

JSON document (``schema_version`` 1; the JSON Schema is ``kasmm/backtest/group_schema.json``)::

    {
      "schema_version": 1,
      "kind": "kasmm-backtest-group",
      "kasmm_version": "0.1.0",
      "target": "profiles",            # the directory or portfolio run
      "profiles": ["deep", "thin"],    # by name: the tie order of the timeline
      "files": {"deep": "profiles/deep.yaml", ...},
      "market": "random_walk", "paths": 3, "horizon_s": 900.0, "sample_s": 1.0,
      "seeds": {"deep": 1, "thin": 7}, # each profile's seed; path k's is member_seed(seed, k, name)
      "rate_limit": {"mode": "profile"},
      "members": [ ...one run per profile, exactly the "runs" entries of kasmm-backtest,
                   label = profile name, summary + "inventory_std"... ],
      "group": {"summary": {"final_pnl": {"mean": .., "std": .., "min": .., "max": ..}, ...},
                "paths": [ {"index": 0, "final_pnl": .., "inventory_std": .., ...,
                            "portfolios": [{"name": .., "trading_state": "halted",
                                            "trips": 1, "members": [..]}],
                            "hedges": [{"profile": "thin", "hedge_profile": "deep",
                                        "sent": .., "slippage_bps": .., ...}]}, ... ]},
      "timing": {...as in kasmm-backtest...}
    }

Everything but ``timing`` is a pure function of the profiles, the options and the seeds.

A hedged profile's run summary adds ``hedges_sent``, ``hedged_base``, ``unhedged_base`` and
``hedge_slippage_bps`` (its :class:`HedgePath` per path).

Per profile, ``inventory_std`` is the standard deviation over time of the bot's net traded base
(base bought minus base sold), sampled every ``sample_s`` of virtual time; a risk measure of the
inventory a strategy carries, where the single backtest's ``inv std`` is a dispersion over paths.
The group's figures add the members' up: money only when every member has the same quote asset,
base only when every member has the same base asset (else ``null``); ``max_drawdown`` is the
drawdown of the summed PnL curve, sampled on the same grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from kasmm import __version__

from .result import PathResult, RunResult, Stat, Timing

#: Version of the group document; bump on incompatible changes.
GROUP_SCHEMA_VERSION = 1
#: The group document's ``kind``.
GROUP_DOCUMENT_KIND = "kasmm-backtest-group"
#: Group metrics summarized over paths (mean, std, min, max each).
GROUP_METRICS: tuple[str, ...] = (
    "final_pnl",
    "spread_capture",
    "vs_hold",
    "fees",
    "inventory_change",
    "inventory_std",
    "max_drawdown",
    "fills",
    "volume_quote",
)


@dataclass(frozen=True, slots=True)
class MemberPath:
    """One profile's part of one group path."""

    profile: str
    result: PathResult
    #: Std over time of the bot's net traded base (see the module docstring).
    inventory_std: float


@dataclass(frozen=True, slots=True)
class PortfolioPath:
    """One portfolio at the end of a group path: its own state and how often it tripped."""

    name: str
    trading_state: str
    trips: int
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HedgePath:
    """One hedged profile's hedging over a group path (:mod:`.group_hedge`)."""

    profile: str
    hedge_profile: str
    #: IOCs sent on the hedge profile, and those refused or unanswered.
    sent: int
    failures: int
    #: Base the IOCs offset, and what stayed unhedged at the end (signed: + A holds more).
    hedged_base: float
    unhedged_base: float
    #: Mean slippage of the filled IOCs through the hedge venue's mid at send (bps; a cost).
    slippage_bps: float | None
    #: Trips of the ``max_unhedged_base`` rule.
    trips: int


@dataclass(frozen=True, slots=True)
class GroupPath:
    """One group path: every member's result and the group's figures (``None``: the members'
    assets differ, see the module docstring)."""

    index: int
    members: tuple[MemberPath, ...]
    final_pnl: float | None
    spread_capture: float | None
    vs_hold: float | None
    fees: float | None
    inventory_change: float | None
    inventory_std: float | None
    max_drawdown: float | None
    fills: int
    volume_quote: float | None
    portfolios: tuple[PortfolioPath, ...] = ()
    hedges: tuple[HedgePath, ...] = ()

    def member(self, profile: str) -> MemberPath:
        """The part of ``profile``."""
        for m in self.members:
            if m.profile == profile:
                return m
        raise KeyError(profile)

    def to_json(self) -> dict[str, Any]:
        """The group's figures of this path (the members' are in their runs)."""
        out = {name: getattr(self, name) for name in GROUP_METRICS}
        portfolios = [asdict(p) for p in self.portfolios]
        hedges = [asdict(h) for h in self.hedges]
        return {"index": self.index, **out, "portfolios": portfolios, "hedges": hedges}

    def hedge(self, profile: str) -> HedgePath | None:
        """The hedging of ``profile`` (``None``: it has no ``hedge:``)."""
        return next((h for h in self.hedges if h.profile == profile), None)


def _sum(values: Sequence[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def group_path(
    index: int,
    members: Sequence[MemberPath],
    *,
    same_quote: bool,
    same_base: bool,
    inventory_std: float,
    max_drawdown: float,
    portfolios: Sequence[PortfolioPath] = (),
    hedges: Sequence[HedgePath] = (),
) -> GroupPath:
    """The group's figures of one path from its members' (see the module docstring)."""
    results = [m.result for m in members]

    def money(name: str) -> float | None:
        return _sum([getattr(r, name) for r in results]) if same_quote else None

    return GroupPath(
        index=index,
        members=tuple(members),
        final_pnl=money("final_pnl"),
        spread_capture=money("spread_capture"),
        vs_hold=money("vs_hold"),
        fees=money("fees"),
        inventory_change=_sum([r.inventory_change for r in results]) if same_base else None,
        inventory_std=inventory_std if same_base else None,
        max_drawdown=max_drawdown if same_quote else None,
        fills=sum(r.fills_buy + r.fills_sell for r in results),
        volume_quote=money("volume_quote"),
        portfolios=tuple(portfolios),
        hedges=tuple(hedges),
    )


def member_runs(paths: Sequence[GroupPath]) -> tuple[RunResult, ...]:
    """One :class:`RunResult` per profile (label: its name), its summary with
    ``inventory_std`` added."""
    if not paths:
        return ()
    runs = []
    for k, first in enumerate(paths[0].members):
        parts = [p.members[k] for p in paths]
        run = RunResult.build(first.profile, {}, [m.result for m in parts])
        summary = {**run.summary, "inventory_std": Stat.of([m.inventory_std for m in parts])}
        hedged = [h for p in paths if (h := p.hedge(first.profile)) is not None]
        if hedged:
            summary.update(
                hedges_sent=Stat.of([float(h.sent) for h in hedged]),
                hedged_base=Stat.of([h.hedged_base for h in hedged]),
                unhedged_base=Stat.of([h.unhedged_base for h in hedged]),
                hedge_slippage_bps=Stat.of(
                    [h.slippage_bps for h in hedged if h.slippage_bps is not None]
                ),
            )
        runs.append(replace(run, summary=summary))
    return tuple(runs)


def group_summary(paths: Sequence[GroupPath]) -> dict[str, Stat | None]:
    """Each of :data:`GROUP_METRICS` over ``paths`` (``None`` where no path has it)."""
    out: dict[str, Stat | None] = {}
    for name in GROUP_METRICS:
        values = [float(v) for p in paths if (v := getattr(p, name)) is not None]
        out[name] = Stat.of(values)
    return out


@dataclass(frozen=True)
class GroupBacktestResult:
    """What :func:`kasmm.backtest.group_run.run_group_backtest` returns."""

    #: The directory or portfolio run.
    target: str
    profiles: tuple[str, ...]
    files: Mapping[str, str]
    market: str
    paths: int
    horizon_s: float | None
    sample_s: float
    seeds: Mapping[str, int]
    rate_limit: Mapping[str, Any]
    members: tuple[RunResult, ...]
    group_paths: tuple[GroupPath, ...]
    summary: Mapping[str, Stat | None]
    timing: Timing

    def member(self, profile: str) -> RunResult:
        """The run of ``profile``."""
        for run in self.members:
            if run.label == profile:
                return run
        raise KeyError(profile)

    def stat(self, metric: str) -> Stat | None:
        """The group's summary of ``metric``."""
        return self.summary.get(metric)

    def to_json(self) -> dict[str, Any]:
        """The versioned JSON document (see the module docstring)."""
        return {
            "schema_version": GROUP_SCHEMA_VERSION,
            "kind": GROUP_DOCUMENT_KIND,
            "kasmm_version": __version__,
            "target": self.target,
            "profiles": list(self.profiles),
            "files": dict(self.files),
            "market": self.market,
            "paths": self.paths,
            "horizon_s": self.horizon_s,
            "sample_s": self.sample_s,
            "seeds": dict(self.seeds),
            "rate_limit": dict(self.rate_limit),
            "members": [run.to_json() for run in self.members],
            "group": {
                "summary": {
                    k: (asdict(v) if v is not None else None) for k, v in self.summary.items()
                },
                "paths": [p.to_json() for p in self.group_paths],
            },
            "timing": self.timing.to_json(),
        }
