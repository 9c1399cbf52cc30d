"""``kasmm backtest``: run a profile's backtest, print a comparison table, write JSON."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

from kasmm import native
from kasmm.backtest.engine import MARKETS, BacktestError, RateLimitMode, run_backtest
from kasmm.backtest.overrides import OverrideError, parse_assignment, parse_sweep
from kasmm.backtest.replay import QueuePosition
from kasmm.backtest.result import BacktestResult, PathResult, RunResult, Stat, Timing
from kasmm.obs.money import NumberFormat, fixed


class ProgressBar:
    """Progress of a backtest with an ETA: a bar redrawn in place on a terminal (at most 10
    times a second), else a line at the start, every 10 % and every 30 s (logs, CI, pipes).

    The first call comes as the run starts, so something shows within a second; ``done``
    counts running paths' fractions, so the ETA is there long before the first path ends.
    """

    def __init__(self, stream: TextIO, *, tty: bool, width: int = 30) -> None:
        self.stream = stream
        self.tty = tty
        self.width = width
        self.started = time.monotonic()
        self._last = -math.inf
        self._last_share = -1.0

    def __call__(self, done: float, total: int) -> None:
        now = time.monotonic()
        elapsed = now - self.started
        share = done / max(total, 1)
        finished = done >= total
        if self.tty:
            if not finished and now - self._last < 0.1:
                return
        elif not finished and share < self._last_share + 0.1 and now - self._last < 30:
            return
        self._last, self._last_share = now, share
        eta = _duration(elapsed * (total - done) / done) if 0 < done < total else "-"
        text = f"{done:.1f}/{total} paths  {_duration(elapsed)} elapsed  ETA {eta}"
        if self.tty:
            filled = int(self.width * min(1.0, share))
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r[{bar}] {text}" + ("\n" if finished else ""))
        else:
            self.stream.write(f"backtest: {text}\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    """``42 s``, ``3 m 05 s``, ``1 h 02 m``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} m {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} m"


def _mean(stat: Stat | None) -> float | None:
    return stat.mean if stat is not None else None


def _std(stat: Stat | None) -> float | None:
    return stat.std if stat is not None else None


@dataclass(frozen=True)
class TableFormat:
    """One number format for the whole table, by unit: money and prices at the market's
    precision (:mod:`kasmm.obs.money`: KAS/USDT 2 and 6 places), base amounts at 2 places,
    bps at 2, counts (means over paths) at 1; always fixed-point, never ``-0``."""

    market: NumberFormat

    @classmethod
    def of(cls, result: BacktestResult) -> TableFormat:
        """The format of ``result``'s market (its tick is not in the result: its price level
        stands in, the first path's final mid)."""
        mids = [p.final_mid for run in result.runs for p in run.paths if p.final_mid]
        return cls(NumberFormat.for_price(mids[0] if mids else None))

    def money(self, value: float | None) -> str:
        return self.market.money(value)

    def price(self, value: float | None) -> str:
        return self.market.price(value)

    def base(self, value: float | None) -> str:
        return fixed(value, 2)

    def bps(self, value: float | None) -> str:
        return fixed(value, 2)

    def count(self, value: float | None) -> str:
        return fixed(value, 1)


Column = tuple[str, Callable[[Any, TableFormat], str]]

#: Columns of the run table: (header, function of a run and the format).
RUN_COLUMNS: tuple[Column, ...] = (
    ("paths", lambda r, f: str(len(r.paths))),
    ("net mean", lambda r, f: f.money(_mean(r.stat("final_pnl")))),
    ("net std", lambda r, f: f.money(_std(r.stat("final_pnl")))),
    ("spread capture", lambda r, f: f.money(_mean(r.stat("spread_capture")))),
    ("vs hold", lambda r, f: f.money(_mean(r.stat("vs_hold")))),
    ("vs hold std", lambda r, f: f.money(_std(r.stat("vs_hold")))),
    ("inv mean", lambda r, f: f.base(_mean(r.stat("inventory_change")))),
    ("inv std", lambda r, f: f.base(_std(r.stat("inventory_change")))),
    ("spread", lambda r, f: f.price(_mean(r.stat("avg_spread")))),
    ("spread bps", lambda r, f: f.bps(_mean(r.stat("avg_spread_bps")))),
    ("markout 1s bps", lambda r, f: f.bps(_mean(r.stat("markout_1s_bps")))),
    ("markout 10s bps", lambda r, f: f.bps(_mean(r.stat("markout_10s_bps")))),
    ("fills buy", lambda r, f: f.count(_mean(r.stat("fills_buy")))),
    ("fills sell", lambda r, f: f.count(_mean(r.stat("fills_sell")))),
    ("vol buy", lambda r, f: f.base(_mean(r.stat("volume_buy")))),
    ("vol sell", lambda r, f: f.base(_mean(r.stat("volume_sell")))),
    ("max dd", lambda r, f: f.money(_mean(r.stat("max_drawdown")))),
    ("actions", lambda r, f: f.count(_mean(r.stat("order_actions")))),
)

#: Columns of the per-path table.
PATH_COLUMNS: tuple[Column, ...] = (
    ("path", lambda p, f: str(p.index)),
    ("seed", lambda p, f: str(p.seed)),
    ("net", lambda p, f: f.money(p.final_pnl)),
    ("spread capture", lambda p, f: f.money(p.spread_capture)),
    ("vs hold", lambda p, f: f.money(p.vs_hold)),
    ("inventory", lambda p, f: f.base(p.final_inventory)),
    ("spread", lambda p, f: f.price(p.avg_spread)),
    ("spread bps", lambda p, f: f.bps(p.avg_spread_bps)),
    ("markout 1s bps", lambda p, f: f.bps(p.markout_1s_bps)),
    ("markout 10s bps", lambda p, f: f.bps(p.markout_10s_bps)),
    ("fills b/s", lambda p, f: f"{p.fills_buy}/{p.fills_sell}"),
    ("vol buy", lambda p, f: f.base(p.volume_buy)),
    ("vol sell", lambda p, f: f.base(p.volume_sell)),
    ("max dd", lambda p, f: f.money(p.max_drawdown)),
    ("actions", lambda p, f: str(p.order_actions)),
    ("state", lambda p, f: p.trading_state),
)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    first = 0
    print(
        "  ".join(
            h.ljust(w) if i == first else h.rjust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        ),
        file=out,
    )
    print("  ".join("-" * w for w in widths), file=out)
    for row in rows:
        print(
            "  ".join(
                c.ljust(w) if i == first else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ),
            file=out,
        )


def print_result(result: BacktestResult, out: TextIO, *, per_path: bool = False) -> None:
    """The run table (one row per sweep point) and, with ``per_path``, every path."""
    rl = result.rate_limit
    limit = (
        "unlimited"
        if rl["mode"] == "unlimited"
        else f"profile bucket {rl['capacity']:g} burst, {rl['refill_per_s']:g}/s"
    )
    horizon = f"{result.horizon_s:g} s" if result.horizon_s is not None else "whole file"
    print(
        f"{result.profile}: market {result.market}"
        + (f" ({result.data})" if result.data else "")
        + f", {result.paths} path(s) x {horizon}, seeds {result.seed}.."
        f"{result.seed + result.paths - 1}, rate limit: {limit}",
        file=out,
    )
    fmt = TableFormat.of(result)
    headers = ["run", *(h for h, _ in RUN_COLUMNS)]
    rows = [[run.label, *(f(run, fmt) for _, f in RUN_COLUMNS)] for run in result.runs]
    _table(headers, rows, out)
    if per_path:
        for run in result.runs:
            print(f"\n{run.label}:", file=out)
            _table(
                [h for h, _ in PATH_COLUMNS],
                [[f(p, fmt) for _, f in PATH_COLUMNS] for p in run.paths],
                out,
            )
    print_timing(result.timing, out)


def print_timing(t: Timing, out: TextIO) -> None:
    """A run's last lines: its size, speed and which hot path ran it."""
    print(
        f"{t.decisions} decisions, {t.market_events} market events in {t.wall_s:.2f} s "
        f"({t.decisions_per_s:,.0f} decisions/s, {t.workers} worker(s), cpu {t.cpu_s:.2f} s)",
        file=out,
    )
    # Workers inherit this process's decision (same stamp, same environment).
    print(f"hot path: {native.status().describe()}", file=out)


def backtest_command(
    path: Path,
    *,
    name: str | None = None,
    market: str | None = None,
    data: Path | None = None,
    paths: int = 1,
    horizon: float | None = None,
    seed: int | None = None,
    sets: Sequence[str] = (),
    sweeps: Sequence[str] = (),
    workers: int | None = None,
    rate_limit: str = "auto",
    queue_position: str = "back",
    json_path: Path | None = None,
    per_path: bool = False,
    bot_log_level: str = "error",
    portfolio: str | None = None,
) -> int:
    """Implement ``kasmm backtest``: exit 0 on success, 1 on errors, 2 on usage errors.

    A directory runs every enabled profile in it as one group
    (:func:`kasmm.commands.backtest_group.group_backtest_command`).
    """
    from kasmm.config.loader import load_one_for_command

    if path.is_dir():
        from kasmm.commands.backtest_group import group_backtest_command

        single_only = {
            "--name": name is not None,
            "--market": market is not None,
            "--data": data is not None,
            "--set": bool(sets),
            "--sweep": bool(sweeps),
            "--queue-position": queue_position != "back",
        }
        refused = [option for option, given in single_only.items() if given]
        if refused:
            print(
                f"{path} is a directory (a group backtest): {', '.join(refused)} "
                "only apply to one profile file",
                file=sys.stderr,
            )
            return 2
        return group_backtest_command(
            path,
            paths=paths,
            horizon=horizon,
            seed=seed,
            workers=workers,
            rate_limit=rate_limit,
            json_path=json_path,
            per_path=per_path,
            bot_log_level=bot_log_level,
            portfolio=portfolio,
        )
    if portfolio is not None:
        print("--portfolio needs a directory (its _portfolios.yaml)", file=sys.stderr)
        return 2
    loaded = load_one_for_command(path, name)
    if isinstance(loaded, int):
        return loaded
    profile = loaded
    if market is not None and market not in MARKETS:
        print(f"--market must be one of {', '.join(MARKETS)}", file=sys.stderr)
        return 2
    if rate_limit not in ("auto", "profile", "unlimited"):
        print("--rate-limit must be auto, profile or unlimited", file=sys.stderr)
        return 2
    if queue_position not in ("back", "front"):
        print("--queue-position must be back or front", file=sys.stderr)
        return 2
    try:
        overrides = dict(parse_assignment(s) for s in sets)
        sweep: dict[str, list[Any]] = {}
        for spec in sweeps:
            key, values = parse_sweep(spec)
            sweep[key] = values
    except OverrideError as exc:
        print(f"{exc}", file=sys.stderr)
        return 2
    progress = ProgressBar(sys.stderr, tty=sys.stderr.isatty())
    limit = cast(RateLimitMode, rate_limit)
    queue = cast(QueuePosition, queue_position)
    try:
        result = run_backtest(
            profile,
            market=market,
            data=data,
            paths=paths,
            horizon_s=horizon,
            seed=seed,
            overrides=overrides,
            sweep=sweep,
            workers=workers,
            rate_limit=limit,
            queue_position=queue,
            log_level=bot_log_level,
            progress=progress,
        )
    except BacktestError as exc:
        print(f"{path}: {profile.name}: {exc}", file=sys.stderr)
        return 1
    print_result(result, sys.stdout, per_path=per_path)
    if json_path is not None:
        json_path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return 0


def run_row(run: RunResult, fmt: TableFormat) -> dict[str, Any]:
    """The table row of ``run`` as a dict (header -> text); for tools and tests."""
    return {"run": run.label, **{h: f(run, fmt) for h, f in RUN_COLUMNS}}


def path_row(path: PathResult, fmt: TableFormat) -> dict[str, Any]:
    """The per-path table row of ``path`` as a dict."""
    return {h: f(path, fmt) for h, f in PATH_COLUMNS}
