"""A ``/status`` document as text for people: the cells ``kasmm status`` and ``kasmm top`` show.

Pure functions over the plain JSON values of ``/status`` (they never trust its shape: a field
may be missing, ``null`` or of another type, from an older supervisor or a shard that is down).
Numbers go through :class:`~kasmm.obs.money.NumberFormat` at the market's precision (prices
at the tick, money at a cent's worth, sizes at the lot): never ``0E-7`` or 28 digits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from kasmm.obs.money import NumberFormat

__all__ = [
    "bps",
    "cell",
    "decimal",
    "duration",
    "fills",
    "hedge_lines",
    "inventory_share",
    "kpi_lines",
    "number_format",
    "pnl_parts",
    "portfolios",
    "profiles",
    "supervisor",
    "uptime",
    "why",
]


def decimal(value: Any) -> Decimal | None:
    """``value`` (a string, int or float of ``/status``) as a finite Decimal, else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def cell(value: Any, width: int | None = None) -> str:
    """One table cell: '-' for missing, single line, printable, optionally truncated."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = format(value, ".10g")
    else:
        text = str(value)
    # Exchange error texts can hold newlines or escape sequences; keep one row per profile
    # and keep the terminal sane.
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if not text:
        return "-"
    if width is not None and len(text) > width:
        text = text[: width - 3] + "..."
    return text


def duration(seconds: Any) -> str:
    """``3723`` -> ``1h02m03s``; '-' for anything but a number."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return "-"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def clock_time(ts: Any) -> str:
    """A wall-clock timestamp (epoch seconds) as local ``HH:MM:SS``; ``-`` when unknown."""
    if not isinstance(ts, int | float) or not math.isfinite(ts):
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(ts))


def supervisor(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """The document's ``supervisor`` section ({} when missing)."""
    sup = doc.get("supervisor")
    return sup if isinstance(sup, Mapping) else {}


def markets(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The document's shared markets by key (``exchange:symbol``; {} when missing)."""
    found = doc.get("markets")
    if not isinstance(found, Mapping):
        return {}
    return {str(k): v for k, v in found.items() if isinstance(v, Mapping)}


def market_line(key: str, market: Mapping[str, Any]) -> str:
    """One shared market: where its book comes from, how old it is, who reads it."""
    age = market.get("age_s")
    shown_age = f"{age:.1f}s" if isinstance(age, int | float) else "no book yet"
    line = (
        f"{key}  book {cell(market.get('source'))} age {shown_age}"
        f"  readers {cell(market.get('subscribers'))}  feed {cell(market.get('feed'))}"
    )
    failures = market.get("failures")
    if isinstance(failures, int) and failures and market.get("last_error"):
        line += f"  failures {failures}: {cell(market.get('last_error'), 60)}"
    return line


def profiles(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The document's profile rows (anything that is not an object becomes an empty row)."""
    rows = doc.get("profiles")
    return [r if isinstance(r, Mapping) else {} for r in (rows if isinstance(rows, list) else [])]


def portfolios(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The document's portfolio rows (none from a supervisor without ``_portfolios.yaml``)."""
    rows = doc.get("portfolios")
    return [r if isinstance(r, Mapping) else {} for r in (rows if isinstance(rows, list) else [])]


def group_state(row: Mapping[str, Any]) -> str:
    """A portfolio's state and why: ``halted: portfolio_max_drawdown: 620 > 500``, or the
    members it still waits for."""
    state = cell(row.get("state"))
    if row.get("halt_reason"):
        return f"{state}: {cell(row['halt_reason'], 40)}"
    waiting = row.get("waiting_for")
    if isinstance(waiting, list) and waiting:
        return f"{state}: waiting for {cell(', '.join(map(str, waiting)), 40)}"
    return state


def group_share(row: Mapping[str, Any]) -> str | None:
    """The group's base share against its target: ``55% / 50%``."""
    return inventory_share({"inventory_share": row.get("share"), "target_share": _target(row)})


def _target(row: Mapping[str, Any]) -> Any:
    target = row.get("target_share")
    if isinstance(target, int | float) and not isinstance(target, bool):
        return target
    base, equity = decimal(row.get("target_base")), decimal(row.get("equity"))
    mark = decimal(row.get("mark"))
    if base is None or equity is None or mark is None or equity <= 0:
        return None
    return float(base * mark / equity)


def number_format(row: Mapping[str, Any]) -> NumberFormat:
    """How the row's market shows numbers (its tick and lot, else its mid's level)."""
    return NumberFormat.for_market(
        decimal(row.get("tick")), decimal(row.get("lot")), decimal(row.get("mid"))
    )


def why(row: Mapping[str, Any]) -> str | None:
    """Why the profile does not quote normally, in one phrase (None: it does)."""
    if row.get("halt_reason"):
        return str(row["halt_reason"])
    if row.get("paused_by"):
        return f"paused by {row['paused_by']}"
    engaged = row.get("engaged")
    for rule in engaged if isinstance(engaged, list) else []:
        if isinstance(rule, Mapping) and rule.get("action") in ("pause", "reduce_only"):
            return f"{rule.get('rule')}: {rule.get('why')}"
    hedge = row.get("hedge")
    if isinstance(hedge, Mapping) and hedge.get("tripped"):
        return (
            f"hedge residual {cell(hedge.get('residual'))} beyond"
            f" {cell(hedge.get('max_unhedged_base'))}"
        )
    if row.get("idle_reason"):
        return str(row["idle_reason"])
    if row.get("stale"):
        return "last known (shard not answering)"
    return None


def bps(value: Any) -> str:
    """A number of basis points to one decimal (``25.0``); '-' for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:.1f}"


def fills(row: Mapping[str, Any]) -> Any:
    """Fills so far (today's, when the row says so)."""
    return row.get("fills_today", row.get("fills"))


def inventory_share(row: Mapping[str, Any]) -> str | None:
    """The base share of the inventory against its target: ``48% / 50%``."""
    share, target = row.get("inventory_share"), row.get("target_share")
    if not isinstance(share, int | float) or isinstance(share, bool):
        return None
    text = f"{share:.0%}"
    if isinstance(target, int | float) and not isinstance(target, bool):
        text += f" / {target:.0%}"
    return text


def pnl_parts(row: Mapping[str, Any], fmt: NumberFormat) -> dict[str, str]:
    """The PnL parts the row has (``net`` at least, when it has any PnL), rounded and signed."""
    parts = row.get("pnl")
    out: dict[str, str] = {}
    if isinstance(parts, Mapping):
        for key, value in parts.items():
            number = decimal(value)
            if number is not None:
                out[str(key)] = fmt.money(number, sign=True)
    if "net" not in out and decimal(row.get("net_pnl")) is not None:
        out["net"] = fmt.money(decimal(row.get("net_pnl")), sign=True)
    return out


def uptime(row: Mapping[str, Any]) -> str:
    """Both sides' quote uptime since the bot started (``98.5%``), ``-`` before any."""
    kpis = row.get("kpis")
    return _pct(kpis.get("uptime_both") if isinstance(kpis, Mapping) else None)


def _pct(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value * 100:.1f}%"


def _markout(horizon: str, m: Any) -> str:
    """One horizon's markout: ``1s -2.35 bps (n 14, -0.42)`` (size-weighted; the quote sum)."""
    if not isinstance(m, Mapping) or not m.get("fills"):
        return f"{horizon} -"
    return f"{horizon} {bps(m.get('weighted_bps'))} bps (n {m.get('fills')}, {m.get('quote')})"


def kpi_lines(row: Mapping[str, Any]) -> list[str]:
    """The market-making KPIs and the obligation's compliance, as detail-pane lines."""
    kpis = row.get("kpis")
    lines: list[str] = []
    if isinstance(kpis, Mapping):
        depth = kpis.get("depth_now")
        bands = (
            "  ".join(f"±{band}% {cell(value)}" for band, value in depth.items())
            if isinstance(depth, Mapping)
            else "-"
        )
        lines.append(
            f"uptime both {_pct(kpis.get('uptime_both'))} (bid {_pct(kpis.get('uptime_bid'))},"
            f" ask {_pct(kpis.get('uptime_ask'))})  own spread now"
            f" {bps(kpis.get('spread_bps_now'))} bps, time-weighted"
            f" {bps(kpis.get('spread_bps_avg'))} bps"
        )
        lines.append(
            f"own depth {bands}  fill ratio {_pct(kpis.get('fill_ratio'))}"
            f"  order-to-trade {cell(kpis.get('order_to_trade'))}"
        )
        markout = kpis.get("markout")
        if isinstance(markout, Mapping) and markout:
            lines.append("markout " + "  ".join(_markout(h, m) for h, m in markout.items()))
    ob = row.get("obligation")
    if isinstance(ob, Mapping):
        verdict = "BREACHED" if ob.get("breached") else "ok"
        lines.append(
            f"obligation {verdict}: met {_pct(ob.get('share'))} of the window vs"
            f" {_pct(ob.get('required'))} required (window {duration(ob.get('window_s'))},"
            f" observed {duration(ob.get('observed_s'))})"
        )
    return lines


def reference_lines(row: Mapping[str, Any]) -> list[str]:
    """What the row's quotes price off (a profile with ``reference:``), as detail-pane lines:
    the source and price, its distance from the own mid, each referenced market's age."""
    ref = row.get("reference")
    if not isinstance(ref, Mapping):
        return []
    fmt = number_format(row)
    price = decimal(ref.get("price"))
    deviation = ref.get("deviation_pct")
    line = (
        f"priced off {cell(ref.get('source'))}"
        f" {'-' if price is None else fmt.price(price)}"
        f" ({'-' if deviation is None else f'{deviation:+.2f}'} % from own mid)"
    )
    if ref.get("problem"):
        line += f", PAUSED: {cell(ref.get('problem'))}"
    ages = ref.get("age_s")
    ages = ages if isinstance(ages, Mapping) else {}
    aged = "  ".join(
        f"{key} {f'{age:.1f}s' if isinstance(age, int | float) else 'no book yet'}"
        for key, age in ages.items()
    )
    return [line, f"reference ages  {aged}"] if aged else [line]


def shaping_lines(row: Mapping[str, Any]) -> list[str]:
    """The row's price band, fill cooldowns, ping-pong balance and hanging orders (a profile
    with any of ``pricing.price_band`` or ``after_fill:`` on), as one detail-pane line."""
    sh = row.get("shaping")
    if not isinstance(sh, Mapping):
        return []
    fmt = number_format(row)
    floor, ceiling = decimal(sh.get("band_floor")), decimal(sh.get("band_ceiling"))
    band = (
        "-"
        if floor is None and ceiling is None
        else (
            f"{'-' if floor is None else fmt.price(floor)}"
            f" .. {'-' if ceiling is None else fmt.price(ceiling)}"
        )
    )
    cool = [
        f"{side} {sh[key]:.1f}s"
        for side, key in (("bid", "bid_cooldown_s"), ("ask", "ask_cooldown_s"))
        if isinstance(sh.get(key), int | float) and sh[key] > 0
    ]
    return [
        f"band {band}  cooldown {' '.join(cool) if cool else '-'}"
        f"  ping-pong {cell(sh.get('ping_pong_balance'))}"
        f"  hanging orders {cell(sh.get('hanging_orders'))}"
    ]


def rebalance_lines(row: Mapping[str, Any]) -> list[str]:
    """The row's rebalance orders (a profile with ``inventory.rebalance``), as one detail-pane
    line: how many of each kind, and the latest with what became of it."""
    rebalance = row.get("rebalance")
    if not isinstance(rebalance, Mapping):
        return []
    orders = rebalance.get("orders")
    counts = orders if isinstance(orders, Mapping) else {}
    line = "rebalance " + " ".join(f"{kind} {cell(n)}" for kind, n in counts.items())
    last = rebalance.get("last")
    if isinstance(last, Mapping):
        fmt = number_format(row)
        share = last.get("share")
        line += (
            f"  last {cell(last.get('side'))} {fmt.size(decimal(last.get('size')))}"
            f" @ {fmt.price(decimal(last.get('price')))} {cell(last.get('order'))}:"
            f" {cell(last.get('status'))}, filled {fmt.size(decimal(last.get('filled')))}"
            f" (share {'-' if not isinstance(share, int | float) else f'{share:.3f}'},"
            f" {cell(last.get('reason'))})"
        )
    return [line]


def hedge_lines(row: Mapping[str, Any]) -> list[str]:
    """The row's hedging (a profile with ``hedge:``), as detail-pane lines."""
    hedge = row.get("hedge")
    if not isinstance(hedge, Mapping):
        return []
    fmt = number_format(row)
    residual = decimal(hedge.get("residual"))
    hedged = decimal(hedge.get("hedged_base"))
    flight = hedge.get("in_flight")
    lines = [
        f"hedge onto {cell(hedge.get('hedge_profile'))}: residual"
        f" {'-' if residual is None else fmt.size(residual)} (limit"
        f" {cell(hedge.get('max_unhedged_base'))}{', TRIPPED' if hedge.get('tripped') else ''}),"
        f" {cell(hedge.get('unhedged_fills'))} fills open",
        f"hedges sent {cell(hedge.get('hedges_sent'))}, hedged"
        f" {'-' if hedged is None else fmt.size(hedged)}, slippage"
        f" {bps(hedge.get('avg_slippage_bps'))} bps"
        + (f", in flight {cell(flight)}" if flight else ""),
    ]
    if hedge.get("hedge_profile_unavailable"):
        lines.append(f"hedge profile unavailable: {cell(hedge.get('hedge_profile_unavailable'))}")
    if hedge.get("last_error"):
        lines.append(f"hedge error: {cell(hedge.get('last_error'), 80)}")
    return lines
