"""The console's detail panes as text: the selected profile's and the supervisor's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kasmm.console import rows
from kasmm.console.settlement_lines import settlement_lines

__all__ = ["profile_detail", "profile_errors", "supervisor_detail"]


def profile_errors(doc: Mapping[str, Any], row: Mapping[str, Any]) -> list[str]:
    """The config errors of the row's file (``file:line:col: ...`` lines naming it)."""
    errors = rows.supervisor(doc).get("config_errors")
    path = row.get("file")
    if not isinstance(errors, list) or not path:
        return []
    return [str(e) for e in errors if str(e).startswith(str(path))]


#: Fills listed in the detail pane (the status row carries up to 20).
RECENT_SHOWN = 8


def profile_detail(doc: Mapping[str, Any], row: Mapping[str, Any]) -> list[str]:
    """The selected profile: its market's book (source, age), PnL parts, market-making KPIs and
    obligation, every own order
    (price, size, age, distance from mid), the kill-switch rules in force with value vs limit,
    its config errors."""
    fmt = rows.number_format(row)
    name = rows.cell(row.get("name"))
    head = f"{name}  {rows.cell(row.get('symbol'))} on {rows.cell(row.get('venue'))}"
    if row.get("shard"):
        head += f"  shard {row['shard']}"
    lines = [head, f"state {rows.cell(row.get('state'))}"]
    reason = rows.why(row)
    if reason:
        lines[-1] += f": {rows.cell(reason)}"
    key = row.get("market")
    market = rows.markets(doc).get(str(key)) if key else None
    if market is not None:
        lines.append("market " + rows.market_line(str(key), market))
    pnl = rows.pnl_parts(row, fmt)
    if pnl:
        lines.append("pnl " + "  ".join(f"{k} {v}" for k, v in pnl.items()))
    lines.extend(rows.kpi_lines(row))
    lines.extend(rows.reference_lines(row))
    lines.extend(rows.shaping_lines(row))
    lines.extend(rows.rebalance_lines(row))
    lines.extend(rows.hedge_lines(row))
    orders = row.get("orders")
    orders = orders if isinstance(orders, list) else []
    lines.append(f"own orders ({len(orders)}):  side  price  remaining  age  from mid")
    for order in orders:
        o = order if isinstance(order, Mapping) else {}
        distance = o.get("distance_bps")
        lines.append(
            f"  {rows.cell(o.get('side')):4}  {fmt.price(rows.decimal(o.get('price')))}"
            f"  {fmt.size(rows.decimal(o.get('remaining')))}  {rows.duration(o.get('age_s'))}"
            f"  {'-' if distance is None else f'{distance:+.1f} bps'}"
        )
    fills = row.get("recent_fills")
    fills = fills if isinstance(fills, list) else []
    lines.append(f"recent fills ({len(fills)}, newest first):  time  side  price  size  fee")
    for fill in fills[:RECENT_SHOWN]:
        f = fill if isinstance(fill, Mapping) else {}
        lines.append(
            f"  {rows.clock_time(f.get('ts'))}  {rows.cell(f.get('side')):4}"
            f"  {fmt.price(rows.decimal(f.get('price')))}  {fmt.size(rows.decimal(f.get('size')))}"
            f"  {fmt.money(rows.decimal(f.get('fee')))} {rows.cell(f.get('fee_asset'))}"
        )
    engaged = row.get("engaged")
    engaged = engaged if isinstance(engaged, list) else []
    lines.append(f"kill-switch rules in force ({len(engaged)}):")
    for rule in engaged:
        r = rule if isinstance(rule, Mapping) else {}
        lines.append(
            f"  {rows.cell(r.get('rule'))} ({rows.cell(r.get('action'))}): value vs limit "
            f"{rows.cell(r.get('why'))}"
        )
    errors = profile_errors(doc, row)
    if errors:
        lines.append(f"config errors ({len(errors)}; the last good version keeps running):")
        lines.extend(f"  {rows.cell(e)}" for e in errors)
    if row.get("last_error"):
        lines.append(f"last error: {rows.cell(row['last_error'])}")
    return lines


def group_detail(row: Mapping[str, Any]) -> list[str]:
    """The selected portfolio: its state and why, each member's state, its inventory against
    target, equity, PnL today and drawdown (a group halt is cleared by resetting members)."""
    lines = [f"portfolio {rows.cell(row.get('name'))}", f"state {rows.group_state(row)}"]
    members = row.get("members")
    members = members if isinstance(members, Mapping) else {}
    lines.append(
        "members: " + ", ".join(f"{rows.cell(n)} {rows.cell(st)}" for n, st in members.items())
    )
    split = row.get("other_shards")
    if isinstance(split, list) and split:
        lines.append(f"members in other shards (not measured): {rows.cell(', '.join(split))}")
    lines.append(
        f"base {rows.cell(row.get('base'))}  target {rows.cell(row.get('target_base'))}"
        f"  excess {rows.cell(row.get('excess_base'))}  share {rows.cell(rows.group_share(row))}"
        f"  deviation {rows.cell(row.get('deviation'))}"
    )
    lines.append(
        f"equity {rows.cell(row.get('equity'))}  peak {rows.cell(row.get('peak_equity'))}"
        f"  drawdown {rows.cell(row.get('drawdown'))}  today {rows.cell(row.get('daily_pnl'))}"
        f"  pnl {rows.cell(row.get('pnl'))}"
    )
    if row.get("state") == "halted":
        lines.append("a group halt holds every member: reset each member (r on its row)")
    return lines


def supervisor_detail(doc: Mapping[str, Any]) -> list[str]:
    """The supervisor: health, config errors, failed profiles, shared markets (each book's
    source and age), shards (when sharded)."""
    sup = rows.supervisor(doc)
    lines = [
        f"supervisor pid {rows.cell(sup.get('pid'))}  up {rows.duration(sup.get('uptime_s'))}"
        f"  reloads {rows.cell(sup.get('reloads'))}  health: {rows.cell(sup.get('health'))}"
    ]
    if sup.get("ledger_lost"):
        lines.append(f"LEDGER LOST: {rows.cell(sup.get('ledger_lost'))}")
    failed = [str(r.get("name")) for r in rows.profiles(doc) if r.get("state") == "failed"]
    if failed:
        lines.append("failed profiles: " + ", ".join(failed))
    errors = sup.get("config_errors")
    if isinstance(errors, list) and errors:
        lines.append(f"config errors ({len(errors)}):")
        lines.extend(f"  {rows.cell(e)}" for e in errors)
    markets = rows.markets(doc)
    if markets:
        lines.append(f"shared markets ({len(markets)}):")
        lines.extend(f"  {rows.market_line(k, m)}" for k, m in markets.items())
    lines.extend(settlement_lines(doc))
    shards = doc.get("shards")
    if isinstance(shards, list) and shards:
        lines.append("shards:")
        for shard in shards:
            s = shard if isinstance(shard, Mapping) else {}
            lines.append(
                f"  {rows.cell(s.get('shard'))} {rows.cell(s.get('state'))} pid "
                f"{rows.cell(s.get('pid'))} profiles {rows.cell(s.get('profiles_total'))} "
                f"restarts {rows.cell(s.get('restarts'))}"
            )
    return lines
