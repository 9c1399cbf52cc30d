"""The report's portfolio section: each group's equity, drawdown and kill-switch events.

Read from the ledger rows a supervisor stores under ``portfolio:<name>``
(:mod:`kasmm.supervisor.portfolios`): equity snapshots every 10 s with the group's base, quote
and mark, and the group's trips and resets. With ``--profiles``, ``_portfolios.yaml`` adds the
members and the target.

The members' settlement sweeps the group counted (:mod:`kasmm.store.group_transfers`) lower
its running peak from the first snapshot after each on, as they lowered the live group's peak:
a sweep is no drawdown of the group.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from kasmm.report.page import _kv, _num_cell, _table, e, num
from kasmm.report.period import fmt_utc
from kasmm.store import EquitySnapshot, HaltRecord, Ledger, RiskEvent
from kasmm.store.group_transfers import GroupTransfer, group_transfers

__all__ = ["PortfolioData", "gather_portfolios", "portfolio_members", "portfolio_sections"]

_KEY = "portfolio:"


@dataclass(frozen=True)
class PortfolioData:
    """One portfolio over the report's period."""

    name: str
    equity: Sequence[EquitySnapshot]
    events: Sequence[RiskEvent]
    active_halt: HaltRecord | None
    #: Members and target from ``_portfolios.yaml`` (empty without ``--profiles``).
    members: Sequence[str] = ()
    target: str | None = None
    #: The members' settlement sweeps the group counted (every one: those before the period
    #: lower nothing).
    transfers: Sequence[GroupTransfer] = ()

    @property
    def peak(self) -> Decimal | None:
        """The highest equity of the period."""
        return max((s.equity for s in self.equity), default=None)

    def running_peaks(self) -> list[Decimal]:
        """The running peak at each snapshot, lowered by the value each counted sweep took
        out from the first snapshot after it on (one of the snapshot's time is in its
        balances already, as in :func:`kasmm.report.analysis.drawdown_series`)."""
        moves = sorted(self.transfers, key=lambda t: t.ts)
        out: list[Decimal] = []
        peak: Decimal | None = None
        i = 0
        for snap in self.equity:
            while i < len(moves) and moves[i].ts <= snap.ts:
                if peak is not None:
                    peak -= moves[i].value
                i += 1
            peak = snap.equity if peak is None or snap.equity > peak else peak
            out.append(peak)
        return out

    @property
    def max_drawdown(self) -> Decimal | None:
        """The largest fall from a running peak within the period (a sweep is none)."""
        drops = [p - s.equity for p, s in zip(self.running_peaks(), self.equity, strict=True)]
        return max(drops, default=None)


def gather_portfolios(
    ledger: Ledger,
    since: float | None,
    members: Mapping[str, tuple[Sequence[str], str | None]] | None = None,
) -> list[PortfolioData]:
    """Every portfolio the ledger holds rows of, its events from ``since`` on."""
    out = []
    for name in ledger.portfolios():
        key = _KEY + name
        events = [ev for ev in ledger.risk_events(key) if since is None or ev.ts >= since]
        group, target = (members or {}).get(name, ((), None))
        out.append(
            PortfolioData(
                name,
                ledger.equity_series(key, since),
                events,
                ledger.active_halt(key),
                tuple(group),
                target,
                group_transfers(ledger, key),
            )
        )
    return out


def portfolio_members(profiles_dir: Path) -> dict[str, tuple[Sequence[str], str | None]]:
    """Members and target of each portfolio of ``profiles_dir/_portfolios.yaml`` (none when
    the file is absent or invalid: the report shows the ledger's figures without them)."""
    from kasmm.config.loader import load_paths

    groups = load_paths([profiles_dir], env={}).portfolios or ()
    out: dict[str, tuple[Sequence[str], str | None]] = {}
    for group in groups:
        target = group.config.target
        text = (
            f"{target.share:.0%} of the group's value"
            if target.share is not None
            else f"{num(target.base or Decimal(0))} {group.base}"
        )
        out[group.name] = (group.members, text)
    return out


def portfolio_sections(groups: Sequence[PortfolioData]) -> list[str]:
    """One HTML section per portfolio (none without portfolio rows in the ledger), each with
    its equity chart (matplotlib: imported here, as the report command does)."""
    charts = importlib.import_module("kasmm.report.charts")
    out = []
    for i, g in enumerate(groups, 1):
        chart = charts.group_equity_chart(
            g.name,
            [(s.ts, float(s.equity)) for s in g.equity],
            [(ev.ts, ev.kind) for ev in g.events],
            f"g{i}",
            [float(p) for p in g.running_peaks()],
        )
        out.append(_section(i, g, None if chart is None else (chart.title, chart.svg)))
    return out


def _section(index: int, g: PortfolioData, chart: tuple[str, str] | None) -> str:
    out = [f'<section class="portfolio" id="portfolio-{index}" data-portfolio="{e(g.name)}">']
    out.append(f"<h2>Portfolio {e(g.name)}</h2>")
    if g.active_halt is not None:
        halt = g.active_halt
        out.append(
            f'<p class="halt">HALTED since {e(fmt_utc(halt.ts))} by {e(halt.rule)}: every '
            "member was halted; <code>kasmm reset MEMBER</code> of each member clears it.</p>"
        )
    rows: list[tuple[str, str]] = []
    if g.members:
        rows.append(("Members", e(", ".join(g.members))))
    if g.target is not None:
        rows.append(("Target", e(g.target)))
    if g.equity:
        first, last = g.equity[0], g.equity[-1]
        value = last.base * last.mid
        share = value / last.equity if last.equity > 0 else None
        rows += [
            ("Equity", f"{num(last.equity, 2)} (from {num(first.equity, 2)})"),
            ("Change", num(last.equity - first.equity, 2)),
            ("Peak equity", num(g.peak or Decimal(0), 2)),
            ("Largest drawdown", num(g.max_drawdown or Decimal(0), 2)),
            ("Base held", num(last.base)),
            ("Quote held", num(last.quote, 2)),
            ("Base share", "-" if share is None else f"{float(share):.1%}"),
            ("Mark", num(last.mid)),
        ]
    else:
        out.append('<p class="empty">No equity snapshots in this period.</p>')
    if rows:
        out.append(_kv(rows))
    if chart is not None:
        out.append(f"<h3>{e(chart[0])}</h3>")
        out.append(f"<figure>{chart[1]}</figure>")
    out.append("<h3>Group kill-switch events</h3>")
    if g.events:
        head = ["time", "event", "rule", "action", _num_cell("value", header=True), "detail"]
        body = [
            [
                e(fmt_utc(ev.ts)),
                e(ev.kind),
                e(ev.rule),
                e(ev.action),
                _num_cell(e(ev.details.get("value", ""))),
                e(ev.details.get("detail", ev.details.get("operator", ""))),
            ]
            for ev in g.events
        ]
        out.append(_table(head, body))
    else:
        out.append('<p class="empty">None in this period.</p>')
    out.append("</section>")
    return "\n".join(out)
