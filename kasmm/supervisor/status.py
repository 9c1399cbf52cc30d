"""What the supervisor reports: the ``/status`` document and the ``/healthz`` verdict.

A profile row (:meth:`~kasmm.supervisor.runner.ProfileRunner.status_row`) carries what ``kasmm
status`` and ``kasmm top`` show; :func:`view_fields` is its part read from the bot's view: the
bot's own best bid and ask and their spread, every resting order (side, price, remaining, age,
distance from the mid) and the kill-switch rules in force. Prices and sizes are strings (exact
Decimals), ages and distances floats. Disabled profiles are rows too (``state: disabled``),
so nothing in the directory is invisible. Each portfolio of ``_portfolios.yaml`` is a row of
``portfolios`` (:func:`group_row`): its state, members, aggregate inventory, equity and PnL.

``markets`` is the shared market data (:meth:`kasmm.market.hub.MarketHub.status`): per
``exchange:symbol``, where its newest book came from, its age, its readers and its feed; each
profile row names its own market (``market``), so a reader finds the age of the book it quotes
on.
"""

from __future__ import annotations

import os
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kasmm.market.keys import profile_market_key
from kasmm.obs.money import NumberFormat, plain
from kasmm.supervisor.state import ProfileState

if TYPE_CHECKING:
    from kasmm.bot import BotView
    from kasmm.core.types import Fill, OpenOrder
    from kasmm.supervisor.core import Supervisor
    from kasmm.supervisor.portfolios import GroupRun
    from kasmm.supervisor.runner import ProfileRunner

__all__ = ["DISABLED", "group_row", "health_verdict", "supervisor_status", "view_fields"]

#: The ``state`` of a row for a profile that is loaded but ``enabled: false``.
DISABLED = "disabled"


def supervisor_status(sup: Supervisor) -> dict[str, Any]:
    """Supervisor and per-profile state, as plain JSON-ready values (profiles by name)."""
    healthy, health_reason = sup.health()
    hedges = sup.hedging.status()
    rows = [_with_market(runner.status_row(), runner) for runner in sup.slots.values()]
    for row in rows:
        if row["name"] in hedges:
            row["hedge"] = hedges[row["name"]]
    return {
        "supervisor": {
            "pid": os.getpid(),
            "directory": str(sup.directory),
            "shard": None if sup.shard is None else str(sup.shard),
            "uptime_s": round(time.monotonic() - sup.started_monotonic, 1),
            "profiles_total": len(sup.slots),
            "reloads": sup.reloads,
            "config_errors": [str(i) for i in sup.issues],
            "directory_missing": sup.directory_missing,
            "ledger_lost": sup.ledger_lost,
            "healthy": healthy,
            "health": health_reason,
        },
        "markets": sup.market.status(sup.clock.now()),
        "profiles": sorted(
            [
                *rows,
                *(_disabled_row(name, path) for name, path in sup.disabled.items()),
            ],
            key=lambda row: str(row["name"]),
        ),
        "portfolios": [
            group_row(group, sup.clock.now()) for _, group in sorted(sup.portfolios.groups.items())
        ],
        "settlements": sup.settling.status(),
    }


def _with_market(row: dict[str, Any], runner: ProfileRunner) -> dict[str, Any]:
    row["market"] = profile_market_key(runner.loaded.profile)
    return row


def group_row(group: GroupRun, now: float) -> dict[str, Any]:
    """One portfolio's row of ``/status``: money and base amounts rounded for people (at the
    precision of a market trading at the group's mark, as a profile row's money is), the same
    figures exact under ``exact``, shares as floats."""
    agg, risk, tracker = group.agg, group.risk, group.tracker
    halt = risk.halt
    row: dict[str, Any] = {
        "name": group.spec.name,
        "state": "split" if group.split else risk.trading_state(now).value,
        "halt_reason": None if halt is None else f"{halt.rule}: {halt.value:g} > {halt.limit:g}",
        "members": {name: group.members_state.get(name, "stopped") for name in group.members},
        "waiting_for": list(group.waiting),
        "other_shards": list(group.split),
        "target_share": group.spec.target_share,
    }
    equity = None if agg is None else agg.equity
    peak, start = tracker.peak_equity, tracker.day_start_equity
    money: dict[str, Decimal | None] = {"peak_equity": peak, "day_start_equity": start}
    sizes: dict[str, Decimal | None] = {"target_base": group.spec.target_base}
    mark = None
    if agg is not None:
        mark = agg.mark
        row.update(share=agg.share, deviation=round(agg.deviation, 6))
        sizes.update(base=agg.base, excess_base=agg.excess_base, target_base=agg.target_base)
        money.update(
            quote=agg.quote,
            value=None if equity is None else equity - agg.quote,  # the base at the mids
            equity=equity,
            pnl=agg.pnl,
            daily_pnl=None if equity is None or start is None else equity - start,
            drawdown=None if equity is None or peak is None else peak - equity,
        )
    fmt = NumberFormat.for_market(None, None, mark)
    row.update({k: None if v is None else fmt.size(v) for k, v in sizes.items()})
    row.update({k: None if v is None else fmt.money(v) for k, v in money.items()})
    if mark is not None:
        row["mark"] = fmt.price(mark)
    exact = {**sizes, **money, "mark": mark}
    row["exact"] = {k: plain(v) for k, v in exact.items() if v is not None}
    return row


def _disabled_row(name: str, path: object) -> dict[str, Any]:
    return {"name": name, "file": str(path), "state": DISABLED}


def view_fields(view: BotView, now: float) -> dict[str, Any]:
    """The row fields read from the bot's view at interval-clock time ``now``."""
    bid = view.bids[0].price if view.bids else None
    ask = view.asks[0].price if view.asks else None
    own_spread = None
    if bid is not None and ask is not None and ask + bid > 0:
        own_spread = round(float((ask - bid) / ((ask + bid) / 2)) * 10_000, 2)
    return {
        "own_bid": None if bid is None else str(bid),
        "own_ask": None if ask is None else str(ask),
        "own_spread_bps": own_spread,
        "engaged": [{"rule": e.rule, "action": e.action, "why": e.why} for e in view.engaged],
        "orders": [_order(o, view.mid, now) for o in (*view.bids, *view.asks)],
        "recent_fills": [_fill(f) for f in reversed(view.recent_fills)],
        "target_share": view.target_share,
        "inventory_share": None if view.decision is None else view.decision.inventory_share,
        "base": view.base,
        "quote": view.quote,
        "tick": None if view.tick is None else str(view.tick),
        "lot": None if view.lot is None else str(view.lot),
        "price_source": None if view.decision is None else view.decision.price_source,
        "reference": _reference(view),
        "shaping": _shaping(view),
        "rebalance": _rebalance(view),
    }


def _shaping(view: BotView) -> dict[str, Any] | None:
    """The price band, the fill cooldowns, ping-pong and hanging orders (``None``: all off)."""
    sh = view.shaping
    if sh is None:
        return None
    return {
        "hanging_orders": sh.hanging,
        "bid_cooldown_s": round(sh.bid_cooldown_s, 3),
        "ask_cooldown_s": round(sh.ask_cooldown_s, 3),
        "ping_pong_balance": sh.ping_pong_balance,
        "band_floor": None if sh.band_floor is None else str(sh.band_floor),
        "band_ceiling": None if sh.band_ceiling is None else str(sh.band_ceiling),
    }


def _rebalance(view: BotView) -> dict[str, Any] | None:
    """Rebalance orders sent by kind and the latest one (``None``: no ``inventory.rebalance``)."""
    status = view.rebalance
    if status is None:
        return None
    last = status.last
    return {
        "orders": dict(status.orders),
        "last": None
        if last is None
        else {
            "at": last.at,
            "side": last.side.value,
            "price": str(last.price),
            "size": str(last.size),
            "order": last.order,
            "share": round(last.share, 6),
            "reason": last.reason,
            "status": last.status,
            "filled": str(last.filled),
            "client_id": last.client_id,
        },
    }


def _reference(view: BotView) -> dict[str, Any] | None:
    """What the profile prices off (``reference:``), ``None`` for its own book."""
    ref = view.reference
    if ref is None:
        return None
    return {
        "price": None if ref.price is None else str(ref.price),
        "source": ref.source,
        "problem": ref.problem,
        "deviation_pct": None if ref.deviation_pct is None else round(ref.deviation_pct, 4),
        "age_s": {key: None if age is None else round(age, 3) for key, age in ref.ages_s},
    }


def _fill(fill: Fill) -> dict[str, Any]:
    """A fill as the console lists it (newest first); exact strings, the reader rounds."""
    return {
        "ts": fill.ts,
        "side": fill.side.value,
        "price": str(fill.price),
        "size": str(fill.size),
        "fee": plain(fill.fee),
        "fee_asset": fill.fee_asset,
        "maker": fill.is_maker,
    }


def _order(order: OpenOrder, mid: Decimal | None, now: float) -> dict[str, Any]:
    distance = None
    if mid is not None and mid.is_finite() and mid > 0:
        distance = round(float((order.price - mid) / mid) * 10_000, 2)
    return {
        "side": order.side.value,
        "price": str(order.price),
        "remaining": str(order.remaining),
        "age_s": round(max(0.0, now - order.created_at), 1),
        "distance_bps": distance,
    }


def health_verdict(sup: Supervisor) -> tuple[bool, str]:
    """``(healthy, reason)``: unhealthy while the ledger is lost or any enabled profile is
    ``failed`` (the reason names them).

    A missing profile directory is only a warning (in the reason and the status): the running
    profiles still trade on their last good configuration, and what an unhealthy check leads
    to, a restart, could not bring the directory back but would stop them all.
    """
    if sup.ledger_lost is not None:
        return False, f"ledger lost: {sup.ledger_lost}"
    failed = sorted(
        name for name, runner in sup.slots.items() if runner.state is ProfileState.FAILED
    )
    if failed:
        return False, "failed profiles: " + ", ".join(failed)
    if sup.directory_missing:
        return True, f"ok; warning: profile directory {sup.directory} is missing"
    return True, "ok"
