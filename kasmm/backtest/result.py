"""Backtest results: per path, aggregated per run, and the versioned JSON document.

JSON document (``schema_version`` 2; the JSON Schema is ``kasmm/backtest/schema.json``)::

    {
      "schema_version": 2,
      "kind": "kasmm-backtest",
      "kasmm_version": "0.1.0",
      "profile": "as",                 # profile name
      "market": "as2008",              # random_walk | as2008 | replay
      "data": null,                    # replay file, else null
      "paths": 1000, "horizon_s": 1.0, "seed": 1,
      "rate_limit": {"mode": "unlimited", "capacity": null, "refill_per_s": null},
      "sweep": {"strategy.gamma": [0.01, 0.1]},   # {} without a sweep
      "runs": [                        # one per sweep point (one without a sweep)
        {
          "label": "strategy.gamma=0.1",          # "base" without a sweep
          "overrides": {"strategy.gamma": 0.1},
          "summary": {"paths": 1000, "final_pnl": {"mean": .., "std": .., "min": .., "max": ..},
                      ...one such object per metric in PATH_METRICS...},
          "paths": [ {"index": 0, "seed": 1, "final_pnl": .., ...}, ... ]   # PathResult fields
        }
      ],
      "timing": {"wall_s": .., "cpu_s": .., "workers": 2, "decisions": .., "market_events": ..,
                 "decisions_per_s": .., "events_per_s": ..}
    }

Everything but ``timing`` is a pure function of the profile, the options and the seed: two runs
with the same inputs produce the same document apart from ``timing``. Money is in the profile's
quote currency, sizes in its base currency, as JSON numbers (floats). ``std`` is the sample
standard deviation (n - 1; 0 for one path). A metric that no path has (``avg_spread`` when a
path never quoted both sides) is left out of that path's mean; its summary is ``null`` when no
path has it.

Compatibility: fields may be added within a version; renaming, removing or changing the meaning
or type of a field bumps ``schema_version``. Version 2 added the PnL attribution per path and in
the summary (``spread_capture``, ``revaluation``, ``hold``, ``vs_hold``; ``final_pnl`` is the
net and ``fees`` the fees of the same split), so that a run says whether market making earned
anything beyond the market's move. Markout (:mod:`kasmm.core.markout`) was added within
version 2: per path and in the summary, at 1 s and 10 s, ``markout_<h>_fills`` (fills marked
out), ``markout_<h>_bps`` (size-weighted, bps of the fill price), ``markout_<h>_mean_bps`` (per
fill) and ``markout_<h>_quote`` (the sum of move x size); ``null`` where no fill was marked.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypedDict

from kasmm import __version__
from kasmm.core.markout import HorizonMarkout, horizon_label
from kasmm.core.pnl import PnlParts

#: Version of the JSON document; bump on incompatible changes.
SCHEMA_VERSION = 2
#: The document's ``kind``.
DOCUMENT_KIND = "kasmm-backtest"


@dataclass(frozen=True, slots=True)
class PathResult:
    """One simulated path (one seed) of one run.

    * ``final_pnl``: mark-to-market PnL at the end, marked to the last mid the bot saw
      (average-cost realized + unrealized - fees; equals the change of equity
      ``quote + base * mid`` with the opening inventory carried at the first mid).
    * ``final_inventory``: base held at the end; ``inventory_change``: minus the base at start.
    * ``avg_spread`` / ``avg_spread_bps``: mean of (lowest live ask - highest live bid) of the
      bot's own resting orders, sampled after the bot has reacted to each market book update,
      over the samples with both sides quoted (price units / bps of the mid); ``spread_samples``
      counts them (``quoted_both_share`` = their share of all samples).
    * ``fills_*``, ``volume_*``: fills (partial fills count one each) and base volume per side;
      ``volume_quote``: notional of both sides.
    * ``max_drawdown``: largest fall of the PnL curve from its running peak (quote currency),
      the curve sampled after every event the bot handled.
    * ``order_actions``: place and cancel requests the bot sent (``orders_placed`` +
      ``orders_cancelled`` + ``orders_rejected`` + ``cancel_not_found``);
      ``tokens_used``: rate-limit weight drawn (every request, market data included).
    * ``decisions``: quoting decisions (one per event handled); ``market_events``: events the
      venue produced within the horizon; ``end_time_s``: virtual seconds covered.
    * PnL attribution at the same mark as ``final_pnl`` (:class:`~kasmm.core.pnl.PnlParts`):
      ``final_pnl = spread_capture + revaluation - fees``; ``spread_capture`` is the realized
      PnL of round trips (average cost, before fees), ``revaluation`` the open position (the
      starting inventory included) against its average cost; ``hold`` what the starting
      inventory gained by only being held, ``vs_hold = final_pnl - hold``. ``None`` only from a
      caller that did not measure them (see :func:`pnl_fields`).
    * Markout at 1 s and 10 s (:data:`MARKOUT_HORIZONS_S`): the mid the horizon after each of
      the bot's fills (the first book at or after it) against the fill's price, signed for the
      bot (negative: adverse selection); ``markout_<h>_fills`` fills marked out (a fill too
      close to the end for a later book is not), ``markout_<h>_bps`` their size-weighted
      average and ``markout_<h>_mean_bps`` the mean per fill, in bps of the fill price,
      ``markout_<h>_quote`` the sum of move x size (quote). ``None`` without a marked fill (see
      :func:`markout_fields`).
    """

    index: int
    seed: int
    final_pnl: float
    final_inventory: float
    inventory_change: float
    final_mid: float | None
    avg_spread: float | None
    avg_spread_bps: float | None
    spread_samples: int
    quoted_both_share: float
    fills_buy: int
    fills_sell: int
    volume_buy: float
    volume_sell: float
    volume_quote: float
    fees: float
    max_drawdown: float
    order_actions: int
    orders_placed: int
    orders_cancelled: int
    orders_rejected: int
    tokens_used: float
    rate_limit_wait_s: float
    decisions: int
    market_events: int
    kill_switch_trips: int
    trading_state: str
    end_time_s: float
    open_orders_left: int
    spread_capture: float | None = None
    revaluation: float | None = None
    hold: float | None = None
    vs_hold: float | None = None
    markout_1s_fills: int = 0
    markout_1s_bps: float | None = None
    markout_1s_mean_bps: float | None = None
    markout_1s_quote: float | None = None
    markout_10s_fills: int = 0
    markout_10s_bps: float | None = None
    markout_10s_mean_bps: float | None = None
    markout_10s_quote: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (field order as declared)."""
        return asdict(self)


#: The markout horizons a path reports (seconds), each as four :class:`PathResult` fields.
MARKOUT_HORIZONS_S: tuple[float, ...] = (1.0, 10.0)
_MARKOUT_PARTS: tuple[str, ...] = ("fills", "bps", "mean_bps", "quote")
_MARKOUT_METRICS: tuple[str, ...] = tuple(
    f"markout_{horizon_label(h)}_{part}" for h in MARKOUT_HORIZONS_S for part in _MARKOUT_PARTS
)

#: Per-path metrics summarized over the paths of a run (mean, std, min, max each).
PATH_METRICS: tuple[str, ...] = (
    "final_pnl",
    "final_inventory",
    "inventory_change",
    "avg_spread",
    "avg_spread_bps",
    "fills_buy",
    "fills_sell",
    "volume_buy",
    "volume_sell",
    "volume_quote",
    "fees",
    "spread_capture",
    "revaluation",
    "hold",
    "vs_hold",
    "max_drawdown",
    "order_actions",
    "orders_placed",
    "orders_cancelled",
    "tokens_used",
    "decisions",
    "kill_switch_trips",
    *_MARKOUT_METRICS,
)


def pnl_fields(parts: PnlParts) -> dict[str, float]:
    """The :class:`PathResult` fields of a path's PnL attribution (``final_pnl`` and ``fees``
    are the parts' ``net`` and ``fees``): ``PathResult(..., **pnl_fields(view.pnl_parts))``."""
    return {
        "spread_capture": float(parts.spread_capture),
        "revaluation": float(parts.revaluation),
        "hold": float(parts.hold),
        "vs_hold": float(parts.vs_hold),
    }


class MarkoutFields(TypedDict):
    """The markout fields of a :class:`PathResult` (:func:`markout_fields`)."""

    markout_1s_fills: int
    markout_1s_bps: float | None
    markout_1s_mean_bps: float | None
    markout_1s_quote: float | None
    markout_10s_fills: int
    markout_10s_bps: float | None
    markout_10s_mean_bps: float | None
    markout_10s_quote: float | None


def markout_fields(markout: Sequence[HorizonMarkout]) -> MarkoutFields:
    """The :class:`PathResult` fields of a path's markout (``view.markout``) at
    :data:`MARKOUT_HORIZONS_S`: ``PathResult(..., **markout_fields(view.markout))``. A horizon
    the path did not measure, or where no fill was marked, is ``None`` with 0 fills."""
    short, long = (_figures(markout, h) for h in MARKOUT_HORIZONS_S)
    return MarkoutFields(
        markout_1s_fills=short[0],
        markout_1s_bps=short[1],
        markout_1s_mean_bps=short[2],
        markout_1s_quote=short[3],
        markout_10s_fills=long[0],
        markout_10s_bps=long[1],
        markout_10s_mean_bps=long[2],
        markout_10s_quote=long[3],
    )


def _figures(
    markout: Sequence[HorizonMarkout], horizon_s: float
) -> tuple[int, float | None, float | None, float | None]:
    """Fills, size-weighted bps, mean bps and the quote sum at ``horizon_s``."""
    m = next((m for m in markout if m.horizon_s == horizon_s), None)
    if m is None or m.fills <= 0:
        return 0, None, None, None
    return m.fills, m.weighted_bps, m.mean_bps, float(m.quote)


@dataclass(frozen=True, slots=True)
class Stat:
    """Mean, sample standard deviation, minimum and maximum of one metric over paths."""

    mean: float
    std: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat | None:
        """The statistics of ``values`` (``None`` when empty)."""
        if not values:
            return None
        mean = math.fsum(values) / len(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(mean, std, min(values), max(values))


@dataclass(frozen=True)
class RunResult:
    """One run (a sweep point, or the only run): its paths and their summary."""

    label: str
    overrides: Mapping[str, Any]
    paths: tuple[PathResult, ...]
    summary: Mapping[str, Stat | None] = field(default_factory=dict)

    @classmethod
    def build(
        cls, label: str, overrides: Mapping[str, Any], paths: Sequence[PathResult]
    ) -> RunResult:
        """Summarize ``paths`` (sorted by index)."""
        ordered = tuple(sorted(paths, key=lambda p: p.index))
        summary: dict[str, Stat | None] = {}
        for name in PATH_METRICS:
            values = [float(v) for p in ordered if (v := getattr(p, name)) is not None]
            summary[name] = Stat.of(values)
        return cls(label, dict(overrides), ordered, summary)

    def stat(self, metric: str) -> Stat | None:
        """The summary of ``metric``."""
        return self.summary.get(metric)

    def to_json(self) -> dict[str, Any]:
        """The run as in the JSON document."""
        summary: dict[str, Any] = {"paths": len(self.paths)}
        for name, stat in self.summary.items():
            summary[name] = asdict(stat) if stat is not None else None
        return {
            "label": self.label,
            "overrides": dict(self.overrides),
            "summary": summary,
            "paths": [p.to_json() for p in self.paths],
        }


@dataclass(frozen=True)
class Timing:
    """How long the backtest took (not reproducible, unlike everything else)."""

    wall_s: float
    cpu_s: float
    workers: int
    decisions: int
    market_events: int

    @property
    def decisions_per_s(self) -> float:
        """Bot decisions per wall-clock second."""
        return self.decisions / self.wall_s if self.wall_s > 0 else math.nan

    @property
    def events_per_s(self) -> float:
        """Market events handled per wall-clock second."""
        return self.market_events / self.wall_s if self.wall_s > 0 else math.nan

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, with the rates."""
        out = asdict(self)
        out["decisions_per_s"] = self.decisions_per_s
        out["events_per_s"] = self.events_per_s
        return out


@dataclass(frozen=True)
class BacktestResult:
    """What :func:`kasmm.backtest.run_backtest` returns."""

    profile: str
    market: str
    data: str | None
    paths: int
    horizon_s: float | None
    seed: int
    rate_limit: Mapping[str, Any]
    sweep: Mapping[str, Sequence[Any]]
    runs: tuple[RunResult, ...]
    timing: Timing

    @property
    def run(self) -> RunResult:
        """The first (without a sweep: the only) run."""
        return self.runs[0]

    def to_json(self) -> dict[str, Any]:
        """The versioned JSON document (see the module docstring)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": DOCUMENT_KIND,
            "kasmm_version": __version__,
            "profile": self.profile,
            "market": self.market,
            "data": self.data,
            "paths": self.paths,
            "horizon_s": self.horizon_s,
            "seed": self.seed,
            "rate_limit": dict(self.rate_limit),
            "sweep": {k: list(v) for k, v in self.sweep.items()},
            "runs": [r.to_json() for r in self.runs],
            "timing": self.timing.to_json(),
        }


def path_field_types() -> dict[str, str]:
    """Field name -> annotation of :class:`PathResult` (for the schema test and docs)."""
    return {f.name: str(f.type) for f in fields(PathResult)}
