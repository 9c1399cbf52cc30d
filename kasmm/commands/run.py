"""``kasmm run PROFILE.yaml``: one bot in the foreground, then a summary."""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import structlog

from kasmm.bot import Bot
from kasmm.clock import Clock, RealClock
from kasmm.commands.failure import failure_reason
from kasmm.config.loader import load_one_for_command
from kasmm.config.schema import Profile
from kasmm.obs.money import NumberFormat, plain, pnl_dict
from kasmm.store.state_dir import (
    EXIT_IN_USE,
    LockBusy,
    ProfileLocks,
    prepare_state_dir,
    resolve_state_dir,
)
from kasmm.venues.factory import build_stack

log = structlog.get_logger("kasmm.run")


@dataclass(frozen=True)
class RunSummary:
    """What a finished run reports (also written as JSON with ``--summary-json``).

    Amounts are exact decimal strings (never exponent notation): the JSON is for machines,
    which round for themselves. The printed table rounds them with :attr:`fmt`, the market's
    precision (:mod:`kasmm.obs.money`). ``pnl`` is the attribution of ``mtm_pnl``
    (:class:`~kasmm.core.pnl.PnlParts`): spread capture, revaluation, fees, net, and the hold
    benchmark with net vs hold.
    """

    profile: str
    venue: str
    symbol: str
    duration_s: float
    decisions: int
    quotes_sent: int
    orders_placed: int
    orders_cancelled: int
    orders_rejected: int
    fills_buy: int
    fills_sell: int
    volume_buy_base: str
    volume_sell_base: str
    volume_quote: str
    final_inventory_base: str
    final_inventory_quote: str
    realized_pnl: str
    unrealized_pnl: str
    fees: str
    mtm_pnl: str
    pnl: dict[str, str]
    final_mid: str | None
    open_orders_left: int
    venue_errors: int
    last_error: str | None
    #: How the table rounds (not part of the JSON).
    fmt: NumberFormat = field(default=NumberFormat(), compare=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "fmt"}
        out["pnl"] = dict(self.pnl)
        return out

    def table_rows(self) -> list[tuple[str, str]]:
        """``(key, text)`` per line of the printed summary, amounts rounded."""
        fmt = self.fmt
        rows: list[tuple[str, str]] = []
        for key, value in self.to_json().items():
            if key == "pnl":
                rows += [(f"pnl.{part}", fmt.money(Decimal(v))) for part, v in value.items()]
                continue
            kind = _AMOUNTS.get(key)
            if kind is None or value is None:
                rows.append((key, str(value)))
            elif kind == "money":
                rows.append((key, fmt.money(Decimal(value))))
            elif kind == "price":
                rows.append((key, fmt.price(Decimal(value))))
            else:
                rows.append((key, fmt.size(Decimal(value))))
        return rows


#: Summary fields that are amounts, and what kind (how the table rounds them).
_AMOUNTS = {
    "volume_buy_base": "size",
    "volume_sell_base": "size",
    "volume_quote": "money",
    "final_inventory_base": "size",
    "final_inventory_quote": "money",
    "realized_pnl": "money",
    "unrealized_pnl": "money",
    "fees": "money",
    "mtm_pnl": "money",
    "final_mid": "price",
}


def summarize(bot: Bot, duration_s: float, orders_left: int) -> RunSummary:
    """Build the summary of a finished bot."""
    view = bot.view()
    pnl, counters = view.pnl, view.counters
    mark = view.mark
    parts = view.pnl_parts
    return RunSummary(
        profile=view.profile,
        venue=view.venue,
        symbol=view.symbol,
        duration_s=round(duration_s, 3),
        decisions=counters.decisions,
        quotes_sent=counters.quotes_sent,
        orders_placed=counters.orders_placed,
        orders_cancelled=counters.orders_cancelled,
        orders_rejected=counters.orders_rejected,
        fills_buy=pnl.buy_count,
        fills_sell=pnl.sell_count,
        volume_buy_base=plain(pnl.buy_volume),
        volume_sell_base=plain(pnl.sell_volume),
        volume_quote=plain(pnl.buy_notional + pnl.sell_notional),
        final_inventory_base=plain(view.inventory_base),
        final_inventory_quote=plain(view.inventory_quote),
        realized_pnl=plain(parts.spread_capture),
        unrealized_pnl=plain(pnl.unrealized(mark)),
        fees=plain(parts.fees),
        mtm_pnl=plain(parts.net),
        pnl=pnl_dict(parts),
        final_mid=plain(view.mid) if view.mid is not None else None,
        open_orders_left=orders_left,
        venue_errors=counters.venue_errors,
        last_error=counters.last_error,
        fmt=NumberFormat.for_market(view.tick, view.lot, view.mid),
    )


async def run_profile(
    profile: Profile, *, duration: float | None, clock: Clock | None = None
) -> RunSummary:
    """Run ``profile`` until ``duration`` elapses or SIGINT/SIGTERM, then cancel its orders."""
    clock = clock or RealClock()
    venue = build_stack(profile, clock).venue
    started = clock.now()
    # In virtual time nothing can sleep "alongside" the venue: the bot stops itself at stop_at.
    stop_at = started + duration if (duration is not None and clock.is_virtual) else None
    bot = Bot(profile, venue, clock=clock, stop_at=stop_at)
    async with anyio.create_task_group() as tg:

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log.info("signal_received", signal=signal.Signals(signum).name)
                    tg.cancel_scope.cancel()
                    return

        async def stop_after(seconds: float) -> None:
            await clock.sleep_until(clock.now() + seconds)
            tg.cancel_scope.cancel()

        tg.start_soon(stop_on_signal)
        if duration is not None and not clock.is_virtual:
            tg.start_soon(stop_after, duration)
        await bot.run()
        tg.cancel_scope.cancel()
    # The bot verified with the venue, on its way out, how many of its orders remain.
    return summarize(bot, clock.now() - started, bot.orders_left)


def _print_summary(summary: RunSummary) -> None:
    rows = summary.table_rows()
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def run_command(
    path: Path,
    *,
    duration: float | None,
    summary_json: Path | None,
    name: str | None = None,
    state_dir: Path | None = None,
) -> int:
    """Implement ``kasmm run``: exit 0 on a clean stop with no orders left, 1 otherwise.

    The bot runs holding the profile's lock in the state directory (``state_dir`` resolved as
    ``kasmm supervise`` does): exit :data:`~kasmm.store.state_dir.EXIT_IN_USE` (75) at once,
    naming the holder's PID, when a supervisor or another ``kasmm run`` runs the profile.
    """
    loaded = load_one_for_command(path, name)
    if isinstance(loaded, int):
        return loaded
    profile = loaded
    state = prepare_state_dir(resolve_state_dir(state_dir))
    try:
        held = ProfileLocks(state, "kasmm run").hold(profile.name)
    except LockBusy as exc:
        print(f"kasmm run: {exc}; state dir {state}/", file=sys.stderr)
        return EXIT_IN_USE
    try:
        with held:
            summary = anyio.run(lambda: run_profile(profile, duration=duration))
    except Exception as exc:
        # One line, not the task group's ExceptionGroup; the traceback with --log-level debug.
        log.debug("run_failed", exc_info=True)
        print(f"{path}: {profile.name}: {failure_reason(exc)}", file=sys.stderr)
        return 1
    _print_summary(summary)
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    return 0 if summary.open_orders_left == 0 else 1
