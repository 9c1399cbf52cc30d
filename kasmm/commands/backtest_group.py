"""``kasmm backtest DIR``: every enabled profile of a directory as one group, in virtual time.

The tables are the single backtest's (:mod:`kasmm.commands.backtest`): one row per profile with
the run columns (PnL split, inventory, spread, fills, volume, drawdown, actions) plus
``inv std t`` (the inventory's standard deviation over time), then the group's row; ``--json``
writes the ``kasmm-backtest-group`` document (:mod:`kasmm.backtest.group_result`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO, cast

from kasmm.backtest.engine import BacktestError, RateLimitMode
from kasmm.backtest.group_result import GroupBacktestResult, GroupPath
from kasmm.backtest.group_run import GroupMemberError, run_group_backtest
from kasmm.backtest.result import Stat
from kasmm.obs.money import NumberFormat

from .backtest import (
    PATH_COLUMNS,
    RUN_COLUMNS,
    ProgressBar,
    TableFormat,
    _mean,
    _std,
    _table,
    print_timing,
)

Column = tuple[str, Callable[[Any, TableFormat], str]]

#: The extra column of the profile table: the inventory's std over time (mean over paths).
MEMBER_COLUMNS: tuple[Column, ...] = (
    *RUN_COLUMNS,
    ("inv std t", lambda r, f: f.base(_mean(r.stat("inventory_std")))),
)


def _g(result: GroupBacktestResult, name: str) -> Stat | None:
    return result.stat(name)


#: Columns of the group table: (header, function of the result and the format).
GROUP_COLUMNS: tuple[Column, ...] = (
    ("paths", lambda r, f: str(r.paths)),
    ("net mean", lambda r, f: f.money(_mean(_g(r, "final_pnl")))),
    ("net std", lambda r, f: f.money(_std(_g(r, "final_pnl")))),
    ("spread capture", lambda r, f: f.money(_mean(_g(r, "spread_capture")))),
    ("vs hold", lambda r, f: f.money(_mean(_g(r, "vs_hold")))),
    ("inv mean", lambda r, f: f.base(_mean(_g(r, "inventory_change")))),
    ("inv std", lambda r, f: f.base(_std(_g(r, "inventory_change")))),
    ("inv std t", lambda r, f: f.base(_mean(_g(r, "inventory_std")))),
    ("fills", lambda r, f: f.count(_mean(_g(r, "fills")))),
    ("max dd", lambda r, f: f.money(_mean(_g(r, "max_drawdown")))),
)

#: Columns of the group's per-path table.
GROUP_PATH_COLUMNS: tuple[Column, ...] = (
    ("path", lambda p, f: str(p.index)),
    ("net", lambda p, f: f.money(p.final_pnl)),
    ("spread capture", lambda p, f: f.money(p.spread_capture)),
    ("vs hold", lambda p, f: f.money(p.vs_hold)),
    ("inventory", lambda p, f: f.base(p.inventory_change)),
    ("inv std t", lambda p, f: f.base(p.inventory_std)),
    ("fills", lambda p, f: str(p.fills)),
    ("max dd", lambda p, f: f.money(p.max_drawdown)),
)


def _format(result: GroupBacktestResult) -> TableFormat:
    mids = [p.final_mid for run in result.members for p in run.paths if p.final_mid]
    return TableFormat(NumberFormat.for_price(mids[0] if mids else None))


def print_group_result(result: GroupBacktestResult, out: TextIO, *, per_path: bool = False) -> None:
    """The profile table, the group table and, with ``per_path``, every path."""
    horizon = f"{result.horizon_s:g} s" if result.horizon_s is not None else "-"
    seeds = ", ".join(f"{name} {seed}" for name, seed in result.seeds.items())
    print(
        f"{result.target}: {len(result.profiles)} profile(s) on one timeline, market "
        f"{result.market}, {result.paths} path(s) x {horizon}, seeds {seeds} (per path: "
        f"member_seed(seed, path, name)), rate limit: {result.rate_limit['mode']}",
        file=out,
    )
    fmt = _format(result)
    _table(
        ["profile", *(h for h, _ in MEMBER_COLUMNS)],
        [[run.label, *(f(run, fmt) for _, f in MEMBER_COLUMNS)] for run in result.members],
        out,
    )
    print("", file=out)
    _table(
        ["group", *(h for h, _ in GROUP_COLUMNS)],
        [[result.target, *(f(result, fmt) for _, f in GROUP_COLUMNS)]],
        out,
    )
    names = sorted({p.name for path in result.group_paths for p in path.portfolios})
    for name in names:
        ends = [p for path in result.group_paths for p in path.portfolios if p.name == name]
        states = ", ".join(
            f"{state} {sum(p.trading_state == state for p in ends)}"
            for state in sorted({p.trading_state for p in ends})
        )
        trips = sum(p.trips for p in ends) / len(ends)
        print(
            f"portfolio {name} ({', '.join(ends[0].members)}): at the end of the paths: "
            f"{states}; trips per path {trips:.1f}",
            file=out,
        )
    for run in result.members:
        sent = run.stat("hedges_sent")
        if sent is None:
            continue
        slip = run.stat("hedge_slippage_bps")
        left = run.stat("unhedged_base")
        target = next(h.hedge_profile for p in result.group_paths if (h := p.hedge(run.label)))
        print(
            f"hedge {run.label} -> {target}: {sent.mean:.1f} IOCs per path, "
            f"{fmt.base(_mean(run.stat('hedged_base')))} base hedged, slippage "
            f"{fmt.bps(_mean(slip))} bps, unhedged at the end {fmt.base(_mean(left))}",
            file=out,
        )
    if per_path:
        for run in result.members:
            print(f"\n{run.label}:", file=out)
            _table(
                [h for h, _ in PATH_COLUMNS],
                [[f(p, fmt) for _, f in PATH_COLUMNS] for p in run.paths],
                out,
            )
        print("\ngroup:", file=out)
        paths: Sequence[GroupPath] = result.group_paths
        _table(
            [h for h, _ in GROUP_PATH_COLUMNS],
            [[f(p, fmt) for _, f in GROUP_PATH_COLUMNS] for p in paths],
            out,
        )
    print_timing(result.timing, out)


def group_backtest_command(
    directory: Path,
    *,
    paths: int = 1,
    horizon: float | None = None,
    seed: int | None = None,
    workers: int | None = None,
    rate_limit: str = "auto",
    json_path: Path | None = None,
    per_path: bool = False,
    bot_log_level: str = "error",
    portfolio: str | None = None,
) -> int:
    """Implement ``kasmm backtest DIR``: exit 0 on success, 1 on errors, 2 on usage errors.

    The directory's ``_portfolios.yaml`` applies as in a supervisor (each portfolio measured
    over its members, its skew and trips told to them); ``portfolio`` runs only that
    portfolio's (enabled) members.
    """
    from kasmm.config.loader import load_paths

    if rate_limit not in ("auto", "profile", "unlimited"):
        print("--rate-limit must be auto, profile or unlimited", file=sys.stderr)
        return 2
    loaded = load_paths([directory])
    for warning in loaded.warnings:
        print(warning, file=sys.stderr)
    if loaded.issues:
        for issue in loaded.issues:
            print(issue, file=sys.stderr)
        return 1
    groups = loaded.portfolios or ()
    chosen = [lp for lp in loaded.profiles.values() if lp.profile.enabled]
    target = str(directory)
    if portfolio is not None:
        found = [g for g in groups if g.name == portfolio]
        if not found:
            known = ", ".join(g.name for g in groups) or "none"
            print(f"{directory}: no portfolio {portfolio!r} (known: {known})", file=sys.stderr)
            return 2
        chosen = [lp for lp in chosen if lp.profile.name in found[0].members]
        groups, target = tuple(found), portfolio
    if not chosen:
        print(f"{directory}: no enabled profile to backtest", file=sys.stderr)
        return 1
    files = {lp.profile.name: str(lp.path) for lp in chosen}
    progress = ProgressBar(sys.stderr, tty=sys.stderr.isatty())
    try:
        result = run_group_backtest(
            [lp.profile for lp in chosen],
            target=target,
            portfolios=groups,
            files=files,
            paths=paths,
            horizon_s=horizon,
            seed=seed,
            workers=workers,
            rate_limit=cast(RateLimitMode, rate_limit),
            log_level=bot_log_level,
            progress=progress,
        )
    except GroupMemberError as exc:
        print(f"{files[exc.profile]}: {exc.profile}: {exc}", file=sys.stderr)
        return 1
    except BacktestError as exc:
        print(f"{directory}: {exc}", file=sys.stderr)
        return 1
    print_group_result(result, sys.stdout, per_path=per_path)
    if json_path is not None:
        json_path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return 0
