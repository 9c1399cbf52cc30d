"""Market-making KPIs and obligation compliance per local day, from the ledger's KPI rows.

A bot stores its KPI counters with every equity snapshot (:mod:`kasmm.store.kpis`), cumulative
since *that bot* started, under its run id. A day's figures are the sum of the increments
between consecutive rows of one run, each booked to the local day of the later row; the first
row of a run counts from zero (the bot's start). Increments are clipped at zero, so a counter
that went backwards (it never should within a run) cannot make a day negative. Time after a
run's last row (at most one snapshot interval, ~10 s) is not counted.

From a day's sums: uptime = seconds quoted / seconds running (both sides at once, each side);
own spread = spread integral / seconds both sides were quoted; own depth = depth integral /
seconds running; fill ratio = filled / placed size; order-to-trade = order actions / fills;
compliance = seconds the obligations were met / seconds observed, against the share required
then. A day is **breached** when its compliance is below the requirement or the bot found a
rolling window breached during it. Markout sums (per horizon: fills, bps, size, quote) are
signed: their increments are not clipped, only a count that went backwards is (see
:mod:`kasmm.report.markout` for the section's table).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from kasmm.core.kpis import DEPTH_BANDS
from kasmm.core.markout import HorizonMarkout
from kasmm.report.daily import local_day
from kasmm.report.markout import markout_table
from kasmm.store.kpis import KpiRecord

__all__ = ["BANDS", "DayKpis", "daily_kpis", "market_making", "period_kpis"]

#: The depth bands' labels in percent of the mid (``0.5``, ``1``, ``2``).
BANDS: tuple[str, ...] = tuple(format((b * 100).normalize(), "f") for b in DEPTH_BANDS)


@dataclass(slots=True)
class DayKpis:
    """One local day's sums of KPI increments (or a period's)."""

    day: dt.date
    total_s: float = 0.0
    both_s: float = 0.0
    bid_s: float = 0.0
    ask_s: float = 0.0
    spread_bps_s: float = 0.0
    depth_s: list[float] = field(default_factory=lambda: [0.0] * len(DEPTH_BANDS))
    placed_size: float = 0.0
    filled_size: float = 0.0
    order_actions: int = 0
    fills: int = 0
    #: Seconds the obligations were met / observed (``None``: no obligations that day).
    met_s: float | None = None
    observed_s: float | None = None
    #: The share required (the day's last row's) and whether a window breach was reported.
    required: float | None = None
    window_breached: bool = False
    #: The markout sums of the fills marked that day, by horizon (seconds).
    markouts: dict[float, HorizonMarkout] = field(default_factory=dict)

    @property
    def uptime_both(self) -> float | None:
        return _ratio(self.both_s, self.total_s)

    @property
    def uptime_bid(self) -> float | None:
        return _ratio(self.bid_s, self.total_s)

    @property
    def uptime_ask(self) -> float | None:
        return _ratio(self.ask_s, self.total_s)

    @property
    def avg_spread_bps(self) -> float | None:
        return _ratio(self.spread_bps_s, self.both_s)

    @property
    def avg_depth(self) -> tuple[float | None, ...]:
        return tuple(_ratio(d, self.total_s) for d in self.depth_s)

    @property
    def fill_ratio(self) -> float | None:
        return _ratio(self.filled_size, self.placed_size)

    @property
    def order_to_trade(self) -> float | None:
        return _ratio(float(self.order_actions), float(self.fills))

    @property
    def compliance(self) -> float | None:
        """Seconds met / seconds observed (``None`` without obligations or observed time)."""
        if self.met_s is None or self.observed_s is None:
            return None
        return _ratio(self.met_s, self.observed_s)

    @property
    def breached(self) -> bool:
        """Compliance below the requirement, or a window breach reported during the day."""
        share, required = self.compliance, self.required
        below = share is not None and required is not None and share < required
        return below or self.window_breached

    def add(self, other: DayKpis) -> None:
        """Add ``other``'s sums to this one."""
        self.total_s += other.total_s
        self.both_s += other.both_s
        self.bid_s += other.bid_s
        self.ask_s += other.ask_s
        self.spread_bps_s += other.spread_bps_s
        self.depth_s = [a + b for a, b in zip(self.depth_s, other.depth_s, strict=True)]
        self.placed_size += other.placed_size
        self.filled_size += other.filled_size
        self.order_actions += other.order_actions
        self.fills += other.fills
        if other.met_s is not None and other.observed_s is not None:
            self.met_s = (self.met_s or 0.0) + other.met_s
            self.observed_s = (self.observed_s or 0.0) + other.observed_s
        if other.required is not None:
            self.required = other.required
        self.window_breached |= other.window_breached
        for horizon, m in other.markouts.items():
            mine = self.markouts.get(horizon)
            self.markouts[horizon] = m if mine is None else mine.plus(m)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _step(r: KpiRecord, prev: KpiRecord | None, day: dt.date) -> DayKpis:
    """The increment from ``prev`` (same run; ``None``: the run's start) to ``r``."""

    def inc(now: float, before: float) -> float:
        return max(0.0, now - before)

    p = prev
    out = DayKpis(
        day,
        total_s=inc(r.total_s, p.total_s if p else 0.0),
        both_s=inc(r.both_s, p.both_s if p else 0.0),
        bid_s=inc(r.bid_s, p.bid_s if p else 0.0),
        ask_s=inc(r.ask_s, p.ask_s if p else 0.0),
        spread_bps_s=inc(r.spread_bps_s, p.spread_bps_s if p else 0.0),
        depth_s=[inc(now, p.depth_s[i] if p else 0.0) for i, now in enumerate(r.depth_s)],
        placed_size=inc(r.placed_size, p.placed_size if p else 0.0),
        filled_size=inc(r.filled_size, p.filled_size if p else 0.0),
        order_actions=max(0, r.order_actions - (p.order_actions if p else 0)),
        fills=max(0, r.fills - (p.fills if p else 0)),
        required=r.required,
        window_breached=bool(r.breached),
    )
    if r.met_s is not None and r.observed_s is not None:
        before_met = p.met_s if p is not None and p.met_s is not None else 0.0
        before_seen = p.observed_s if p is not None and p.observed_s is not None else 0.0
        out.met_s = inc(r.met_s, before_met)
        out.observed_s = inc(r.observed_s, before_seen)
    before = {m.horizon_s: m for m in p.markouts} if p is not None else {}
    for m in r.markouts:
        step = m.since(before.get(m.horizon_s))
        if step.fills > 0:  # none marked in between (or a count that went backwards): nothing
            out.markouts[m.horizon_s] = step
    return out


def daily_kpis(
    records: Sequence[KpiRecord],
    timezone: str = "UTC",
    *,
    since: float | None = None,
    until: float | None = None,
) -> list[DayKpis]:
    """The days (oldest first, only days with a row) of ``records`` (in insertion order).

    Pass every row, not only the period's: a row's increment needs the previous row of its
    run. With ``since``/``until``, only increments of rows within them are booked.
    """
    tz = ZoneInfo(timezone)
    last: dict[str, KpiRecord] = {}
    days: dict[dt.date, DayKpis] = {}
    for r in records:
        prev = last.get(r.run_id)
        last[r.run_id] = r
        if (since is not None and r.ts < since) or (until is not None and r.ts > until):
            continue
        day = local_day(r.ts, tz)
        step = _step(r, prev, day)
        days.setdefault(day, DayKpis(day)).add(step)
    return [days[d] for d in sorted(days)]


def period_kpis(days: Sequence[DayKpis]) -> DayKpis:
    """The sum of ``days``, dated with the last one."""
    out = DayKpis(days[-1].day if days else dt.date.min)
    for d in days:
        out.add(d)
    out.window_breached = any(d.window_breached for d in days)
    return out


# --- the report's section -------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _fixed(value: float | None, places: int = 2) -> str:
    return "-" if value is None else f"{value:,.{places}f}"


def _num(text: str, header: bool = False) -> str:
    tag = "th" if header else "td"
    return f'<{tag} class="num">{_e(text)}</{tag}>'


def _table(head: Sequence[str], rows: Sequence[tuple[Sequence[str], str]]) -> str:
    out = ["<table>", "<thead><tr>", *head, "</tr></thead>", "<tbody>"]
    for cells, cls in rows:
        attr = f' class="{cls}"' if cls else ""
        out.append(f"<tr{attr}>" + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def market_making(days: Sequence[DayKpis], timezone: str, quote: str) -> str:
    """The report's "Market making" section: KPIs per day and for the period, and when the
    profile had obligations, their compliance per day (breached days highlighted)."""
    if not days:
        return (
            '<p class="muted">No KPI records in this period (the bot stores them with its '
            "equity snapshots since ledger schema 5).</p>"
        )
    head = [
        f"<th>day ({_e(timezone)})</th>",
        _num("running", True),
        _num("uptime both", True),
        _num("bid", True),
        _num("ask", True),
        _num("spread (bps)", True),
        *(_num(f"depth ±{b} %" if i == 0 else f"±{b} %", True) for i, b in enumerate(BANDS)),
        _num("fill ratio", True),
        _num("order-to-trade", True),
    ]

    def cells(d: DayKpis, label: str) -> list[str]:
        hours = d.total_s / 3600
        return [
            f"<td>{_e(label)}</td>",
            _num(f"{hours:.2f} h"),
            _num(_pct(d.uptime_both)),
            _num(_pct(d.uptime_bid)),
            _num(_pct(d.uptime_ask)),
            _num(_fixed(d.avg_spread_bps)),
            *(_num(_fixed(v)) for v in d.avg_depth),
            _num(_pct(d.fill_ratio)),
            _num(_fixed(d.order_to_trade, 1)),
        ]

    period = period_kpis(days)
    rows = [(cells(d, d.day.isoformat()), "") for d in days]
    rows.append((cells(period, "period"), "total"))
    out = [
        _table(head, rows),
        '<p class="muted">Uptime: share of the running time the bot quoted both sides at '
        "once (and each side); own spread: best ask − best bid in bps of the mid, time-weighted "
        f"while both sides were quoted; depth: the value ({_e(quote)}) of the bot's own orders "
        "within each band of the mid, time-weighted; fill ratio: filled / placed size; "
        "order-to-trade: placements and cancels per fill.</p>",
    ]
    with_obligations = [d for d in days if d.compliance is not None]
    if with_obligations:
        ob_head = [
            f"<th>day ({_e(timezone)})</th>",
            _num("observed", True),
            _num("met", True),
            _num("required", True),
            "<th>verdict</th>",
        ]
        ob_rows = []
        for d in with_obligations:
            verdict = "BREACHED" if d.breached else "met"
            ob_rows.append(
                (
                    [
                        f"<td>{_e(d.day.isoformat())}</td>",
                        _num(f"{(d.observed_s or 0.0) / 3600:.2f} h"),
                        _num(_pct(d.compliance)),
                        _num(_pct(d.required)),
                        f"<td>{verdict}</td>",
                    ],
                    "breach" if d.breached else "",
                )
            )
        breached = sum(d.breached for d in with_obligations)
        out += [
            "<h4>Obligations: compliance per day</h4>",
            _table(ob_head, ob_rows),
            f'<p class="muted">{breached} of {len(with_obligations)} days breached: met share '
            "below the required share, or a rolling window breached during the day.</p>",
        ]
    markouts = markout_table(
        [(d.day.isoformat(), d.markouts) for d in days], period.markouts, timezone, quote
    )
    if markouts:
        out.append(markouts)
    return "\n".join(out)
