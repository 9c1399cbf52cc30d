"""The report as one self-contained HTML page.

Nothing on the page is fetched: styles are inline, charts are inline SVG (text as paths), there is
no script, and a Content-Security-Policy forbids any fetch but ``data:`` images, so even a
browser that found a stray URL would not load it. Every piece of text from the ledger or the
profile files (profile names, rules, reasons, details) goes through :func:`html.escape`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path
from typing import Any

from kasmm import __version__
from kasmm.obs.money import NumberFormat
from kasmm.report.analysis import SideSummary, base_share, max_drawdown, merge_fees
from kasmm.report.daily import DayPnl
from kasmm.report.daily import total as daily_total
from kasmm.report.gather import ProfileData
from kasmm.report.mm import market_making
from kasmm.report.period import fmt_utc

#: How many of the period's latest fills the collapsible fill list shows.
RECENT_FILLS = 50

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0; background: #f4f5f7; color: #1d1f23; font-size: 14px; line-height: 1.45; }
header, main, footer { max-width: 1180px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 18px; }
h1 { font-size: 24px; margin: 0 0 8px; }
h2 { font-size: 20px; margin: 0 0 10px; padding-bottom: 6px; border-bottom: 2px solid #d5d9e0; }
h3 { font-size: 15px; margin: 18px 0 6px; color: #39404d; }
section.profile { background: #fff; border: 1px solid #d5d9e0; border-radius: 6px;
                  padding: 16px 20px; margin: 18px 0; }
table { border-collapse: collapse; margin: 4px 0 8px; }
th, td { border: 1px solid #d5d9e0; padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: #eef0f4; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { width: 16em; }
tr.total td { font-weight: 600; background: #f7f8fa; }
tr.breach td { background: #fdecea; color: #8a1c14; font-weight: 600; }
h4 { font-size: 14px; margin: 12px 0 4px; color: #39404d; }
.buy { color: #157a40; } .sell { color: #b8281f; }
.muted { color: #667085; }
.empty { padding: 10px 14px; background: #fff8e1; border: 1px solid #f0d98c; border-radius: 4px; }
.halt { padding: 8px 12px; background: #fdecea; border: 1px solid #e8a39c; border-radius: 4px;
        color: #8a1c14; font-weight: 600; }
figure { margin: 10px 0 4px; }
svg.chart { display: block; width: 100%; height: auto; }
nav a { margin-right: 12px; }
details { margin: 8px 0; }
summary { cursor: pointer; color: #39404d; font-weight: 600; }
footer { color: #667085; font-size: 12px; padding-bottom: 24px; }
"""


def e(value: object) -> str:
    """``value`` as escaped HTML text (quotes included, so it is safe in attributes too)."""
    return html.escape(str(value), quote=True)


def num(value: Decimal, places: int = 8) -> str:
    """A decimal with thousands separators, at most ``places`` decimals, no trailing zeros."""
    with localcontext() as ctx:
        ctx.prec = 60
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -places:
            value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
        text = f"{value:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def signed(value: Decimal, places: int = 8) -> str:
    """:func:`num` with a ``+`` on positive values."""
    text = num(value, places)
    return f"+{text}" if value > 0 and text != "0" else text


def money(fmt: NumberFormat, value: Decimal, *, sign: bool = False) -> str:
    """A quote amount at the profile's money precision (:mod:`kasmm.obs.money`), with
    thousands separators."""
    text = fmt.money(value, sign=sign)
    if text == "-":
        return text
    rounded = Decimal(text)
    grouped = f"{rounded:,f}"
    return f"+{grouped}" if sign and rounded > 0 else grouped


def _pct(value: float) -> str:
    return f"{value:+.2f} %"


def _fees(fees: Mapping[str, Decimal]) -> str:
    return ", ".join(f"{num(v)} {k}" for k, v in fees.items()) if fees else "0"


def _row(cells: Iterable[str], *, header: bool = False, cls: str = "") -> str:
    """A table row. Cells are HTML (escaped already); one that is a whole ``<td>``/``<th>``
    element (to carry a class) is kept as it is, any other is wrapped."""
    tag = "th" if header else "td"
    attr = f' class="{cls}"' if cls else ""
    wrapped = (c if c.startswith(("<td", "<th")) else f"<{tag}>{c}</{tag}>" for c in cells)
    return f"<tr{attr}>" + "".join(wrapped) + "</tr>"


def _num_cell(text: str, *, header: bool = False) -> str:
    tag = "th" if header else "td"
    return f'<{tag} class="num">{text}</{tag}>'


def _table(
    head: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "", row_cls: Sequence[str] = ()
) -> str:
    """A table; cells are HTML already (escape before). Cells starting ``<t`` are full cells."""
    attr = f' class="{cls}"' if cls else ""
    out = [f"<table{attr}>", "<thead>", _row(head, header=True), "</thead>", "<tbody>"]
    for i, row in enumerate(rows):
        out.append(_row(row, cls=row_cls[i] if i < len(row_cls) else ""))
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


@dataclass(frozen=True)
class PageInput:
    """What the page shows besides the profiles."""

    ledger: Path
    generated: float
    since: float | None
    until: float
    profiles_dir: Path | None = None
    config_issues: Sequence[str] = ()
    notes: Sequence[str] = field(default_factory=tuple)
    #: Rendered portfolio sections (:mod:`kasmm.report.portfolio`), after the profiles.
    portfolios: Sequence[str] = ()


@dataclass(frozen=True)
class ProfileSection:
    """One profile's data and its rendered charts (``(title, svg)`` pairs)."""

    data: ProfileData
    charts: Sequence[tuple[str, str]]


def fills_summary(data: ProfileData) -> str:
    """Count, maker count, volume, notional, average price and fees per side, and the total."""
    base, quote = e(data.base_asset), e(data.quote_asset)
    head = [
        "side",
        _num_cell("fills", header=True),
        _num_cell("maker", header=True),
        _num_cell(f"volume ({base})", header=True),
        _num_cell(f"notional ({quote})", header=True),
        _num_cell(f"avg price ({quote})", header=True),
        "fees",
    ]

    def side_row(s: SideSummary, label: str) -> list[str]:
        avg = s.avg_price
        return [
            f'<td class="{label}">{label}</td>',
            _num_cell(str(s.count)),
            _num_cell(str(s.maker)),
            _num_cell(num(s.volume)),
            _num_cell(num(s.notional)),
            _num_cell(num(avg) if avg is not None else "—"),
            e(_fees(s.fees)),
        ]

    b, s = data.buys, data.sells
    total = [
        "total",
        _num_cell(str(b.count + s.count)),
        _num_cell(str(b.maker + s.maker)),
        _num_cell(num(b.volume + s.volume)),
        _num_cell(num(b.notional + s.notional)),
        _num_cell("—"),
        e(_fees(merge_fees(b, s))),
    ]
    table = _table(
        head, [side_row(b, "buy"), side_row(s, "sell"), total], row_cls=("", "", "total")
    )
    net = b.volume - s.volume
    cash = s.notional - b.notional
    extra = (
        f'<p class="muted">Net: {e(signed(net))} {base} bought, '
        f"{e(signed(cash))} {quote} received (before fees).</p>"
    )
    return table + "\n" + extra


def attribution(data: ProfileData) -> str:
    """The period's PnL split per local day into spread capture, revaluation and fees, against
    the hold benchmark (:mod:`kasmm.report.daily`), with the period's total and a verdict."""
    daily = data.daily
    shown = list(daily.days) if daily is not None else []
    if daily is None or not shown:
        return '<p class="muted">No fills or equity snapshots in this period.</p>'
    fmt, quote = data.fmt, e(data.quote_asset)
    head = [
        f"day ({e(daily.timezone)})",
        _num_cell("fills", header=True),
        _num_cell(f"volume ({quote})", header=True),
        _num_cell("spread capture", header=True),
        _num_cell("fees", header=True),
        _num_cell("revaluation", header=True),
        _num_cell("net", header=True),
        _num_cell("hold", header=True),
        _num_cell("net vs hold", header=True),
    ]

    def cells(day: DayPnl, label: str) -> list[str]:
        return [
            e(label),
            _num_cell(str(day.fills)),
            _num_cell(e(money(fmt, day.volume_quote))),
            _num_cell(e(money(fmt, day.spread_capture, sign=True))),
            _num_cell(e(money(fmt, day.fees))),
            _num_cell(e(money(fmt, day.revaluation, sign=True))),
            _num_cell(e(money(fmt, day.net, sign=True))),
            _num_cell(e(money(fmt, day.hold, sign=True))),
            _num_cell(e(money(fmt, day.vs_hold, sign=True))),
        ]

    period = daily_total(shown)
    rows = [cells(d, d.day.isoformat()) for d in shown] + [cells(period, "period")]
    table = _table(head, rows, row_cls=[""] * len(shown) + ["total"])
    edge = period.vs_hold
    verdict = "earned" if edge > 0 else ("lost" if edge < 0 else "neither earned nor lost")
    amount = f" {money(fmt, abs(edge))} {data.quote_asset}" if edge else ""
    explain = (
        '<p class="muted">Net = spread capture (realized, average cost, before fees) + '
        "revaluation (the open position, starting inventory included, marked at the "
        "snapshots' mid) − fees. Hold: what the starting portfolio gained by only being held. "
        f"Over the period, market making {e(verdict)}{e(amount)} against holding.</p>"
    )
    return table + "\n" + explain


def _period_text(since: float | None, first: float | None, until: float) -> str:
    start = (
        fmt_utc(since)
        if since is not None
        else (f"{fmt_utc(first)} (first record)" if first is not None else "the first record")
    )
    return f"{start} → {fmt_utc(until)}"


def overview(data: ProfileData, page: PageInput) -> str:
    """The profile's key figures over the period."""
    base, quote = data.base_asset, data.quote_asset
    fmt = data.fmt
    rows: list[tuple[str, str]] = []
    span = data.time_range()
    if span is not None:
        rows.append(("Records in period", e(f"{fmt_utc(span[0])} → {fmt_utc(span[1])}")))
    rows.append(
        (
            "Counts",
            e(
                f"{len(data.equity)} equity snapshots, {len(data.fills)} fills, "
                f"{len(data.orders)} orders resting, {len(data.risk_events)} kill-switch events, "
                f"{len(data.mode_changes)} mode changes"
            ),
        )
    )
    if data.equity:
        first, last = data.equity[0], data.equity[-1]
        change = (last.mid / first.mid - 1) * 100 if first.mid else None
        mid = f"{fmt.price(first.mid)} → {fmt.price(last.mid)} {quote}"
        rows.append(("Mid", e(mid + (f" ({_pct(float(change))})" if change is not None else ""))))
        inv = f"{num(first.base)} → {num(last.base)} {base}"
        share = base_share(last)
        if share is not None:
            inv += f" ({100 * share:.1f} % of value at the end)"
        rows.append(("Inventory", e(inv)))
        if data.targets and data.targets[-1].target_base is not None:
            t = data.targets[-1]
            target = f"{num(t.target_base or Decimal(0))} {base}"
            if t.target_share is not None:
                target += f" ({100 * t.target_share:.1f} % of value)"
            rows.append(("Target at the end", e(target)))
        rows.append(
            (
                "Equity",
                e(
                    f"{money(fmt, first.equity)} → {money(fmt, last.equity)} {quote} "
                    f"({money(fmt, last.equity - first.equity, sign=True)})"
                ),
            )
        )
    rows.append(
        (
            "Realized PnL in period",
            e(f"{money(fmt, data.pnl.realized, sign=True)} {quote} (average cost, before fees)"),
        )
    )
    if data.config is not None:
        rows.append(("Fees in period", e(f"{money(fmt, data.pnl.fees)} {quote}")))
    else:
        rows.append(("Fees in period", e(_fees(merge_fees(data.buys, data.sells)))))
    if data.equity:
        last = data.equity[-1]
        unrealized = data.pnl.unrealized(last.ts, last.mid)
        text = f"{money(fmt, unrealized, sign=True)} {quote} (position at mid)"
        rows.append(("Unrealized at the end", e(text)))
    total = data.pnl.total
    # Without the profile the quote asset is unknown, so fees cannot be summed into one figure.
    fees = f", fees {money(fmt, total.fees)}" if data.config is not None else ""
    since_start = (
        f"realized {money(fmt, total.realized, sign=True)} {quote}{fees}, "
        f"position {num(total.position)} {base} at average cost {fmt.price(total.avg_cost)}"
    )
    rows.append(("Since accounting started", e(since_start)))
    deepest = max_drawdown(data.drawdown)
    if deepest is not None:
        text = f"{money(fmt, deepest.drawdown)} {quote}"
        if deepest.pct is not None:
            text += f" ({deepest.pct:.2f} % of peak {money(fmt, deepest.peak)})"
        if deepest.drawdown > 0:
            text += f" at {fmt_utc(deepest.ts)}"
        rows.append(("Max drawdown in period", e(text)))
    trips = sum(1 for ev in data.risk_events if ev.kind == "trip")
    resets = sum(1 for ev in data.risk_events if ev.kind == "reset")
    rows.append(("Kill switch", e(f"{trips} trips, {resets} resets in period")))
    modes = [*([data.mode_before] if data.mode_before else []), *data.mode_changes]
    if modes:
        rows.append(("Mode at the end", e(f"{modes[-1].mode} (since {fmt_utc(modes[-1].ts)})")))
    if data.config is not None:
        rows.append(("Profile file", e(str(data.config.path))))
    elif page.profiles_dir is not None:
        rows.append(
            ("Profile file", e(f"no valid profile named {data.name} in {page.profiles_dir}"))
        )
    else:
        rows.append(
            ("Profile file", "not given (<code>--profiles DIR</code> adds the inventory target)")
        )
    return _kv(rows)


def _details(details: Mapping[str, Any]) -> str:
    """``key: value; ...`` with the rule's value, limit and detail first; times as UTC."""
    order = [k for k in ("value", "limit", "detail") if k in details]
    order += sorted(k for k in details if k not in order)
    return "; ".join(f"{k}: {_detail_value(k, details[k])}" for k in order)


def _detail_value(key: str, value: Any) -> str:
    if key.endswith("_ts") and isinstance(value, int | float) and not isinstance(value, bool):
        return fmt_utc(float(value))
    return str(value)


def risk_table(data: ProfileData) -> str:
    """Kill-switch trips, clears and resets of the period, with their rule and numbers."""
    if not data.risk_events:
        return '<p class="muted">None in this period.</p>'
    rows = [
        [
            e(fmt_utc(ev.ts)),
            f'<td class="{"sell" if ev.kind == "trip" else ""}">{e(ev.kind)}</td>',
            e(ev.rule),
            e(ev.action),
            e(ev.state),
            e(_details(ev.details)),
        ]
        for ev in data.risk_events
    ]
    return _table(["time", "event", "rule", "action", "state", "numbers"], rows)


def hedging(data: ProfileData) -> str:
    """The period's hedging: fills offset, the residual, hedge orders and their slippage."""
    h = data.hedges
    if h is None:
        return ""
    fmt = data.fmt
    slip = "-" if h.avg_slippage_bps is None else f"{h.avg_slippage_bps:.1f} bps"
    worst = "-" if h.max_slippage_bps is None else f"{h.max_slippage_bps:.1f} bps"
    return _kv(
        [
            ("hedged on", e(", ".join(h.hedge_profiles) or "-")),
            ("fills taken in", e(str(h.fills))),
            ("fully offset", e(f"{h.offset} ({h.linked} linked to a hedge order)")),
            ("unhedged residual", e(f"{fmt.size(h.residual)} {data.base_asset}")),
            ("hedge orders", e(str(h.orders))),
            ("base offset", e(f"{fmt.size(h.hedged)} {data.base_asset}")),
            ("slippage vs mid at send", e(f"mean {slip}, worst {worst}")),
        ]
    )


def modes_table(data: ProfileData) -> str:
    """Mode switches of the period (and the mode in force when it began)."""
    lead = ""
    if data.mode_before is not None:
        m = data.mode_before
        lead = (
            f'<p class="muted">In force at the start: {e(m.mode)} '
            f"(since {e(fmt_utc(m.ts))}, {e(m.source)}).</p>"
        )
    if not data.mode_changes:
        return lead + '<p class="muted">None in this period.</p>'
    rows = [[e(fmt_utc(m.ts)), e(m.mode), e(m.source)] for m in data.mode_changes]
    return lead + _table(["time", "mode", "source"], rows)


def recent_fills(data: ProfileData) -> str:
    """The period's latest fills, newest first, in a collapsed block."""
    fills = data.fills
    if not fills:
        return ""
    shown = list(reversed(fills[-RECENT_FILLS:]))
    rows = [
        [
            e(fmt_utc(f.ts)),
            f'<td class="{e(f.side.value)}">{e(f.side.value)}</td>',
            _num_cell(num(f.price)),
            _num_cell(num(f.size)),
            _num_cell(e(f"{num(f.fee)} {f.fee_asset}")),
            e("maker" if f.is_maker else "taker"),
            e(f.trade_id),
        ]
        for f in shown
    ]
    head = [
        "time",
        "side",
        _num_cell(f"price ({e(data.quote_asset)})", header=True),
        _num_cell(f"size ({e(data.base_asset)})", header=True),
        _num_cell("fee", header=True),
        "role",
        "trade id",
    ]
    label = (
        f"Latest {len(shown)} of {len(fills)} fills"
        if len(fills) > len(shown)
        else f"All {len(fills)} fills"
    )
    return f"<details><summary>{e(label)}</summary>\n{_table(head, rows)}\n</details>"


def profile_section(index: int, section: ProfileSection, page: PageInput) -> str:
    """One profile: overview, PnL attribution, fills, charts, market making, kill-switch events,
    mode changes."""
    data = section.data
    out = [f'<section class="profile" id="profile-{index}" data-profile="{e(data.name)}">']
    out.append(f"<h2>{e(data.name)}</h2>")
    if data.active_halt is not None:
        halt = data.active_halt
        out.append(
            f'<p class="halt">HALTED since {e(fmt_utc(halt.ts))} by {e(halt.rule)} '
            f"({e(_details(halt.details))}); <code>kasmm reset {e(data.name)}</code> clears it.</p>"
        )
    if not data.has_data:
        out.append('<p class="empty">No records in this period.</p>')
        out.append("</section>")
        return "\n".join(out)
    out.append("<h3>Overview</h3>")
    out.append(overview(data, page))
    out.append("<h3>PnL attribution</h3>")
    out.append(attribution(data))
    out.append("<h3>Fills</h3>")
    out.append(fills_summary(data))
    out.append(recent_fills(data))
    for title, svg in section.charts:
        out.append(f"<h3>{e(title)}</h3>")
        out.append(f"<figure>{svg}</figure>")
    # After the charts: the headless check screenshots the page's top, where they must be.
    out.append("<h3>Market making</h3>")
    zone = data.daily.timezone if data.daily is not None else "UTC"
    out.append(market_making(data.kpi_days, zone, data.quote_asset))
    if data.hedges is not None:
        out.append("<h3>Hedging</h3>")
        out.append(hedging(data))
    out.append("<h3>Kill-switch events</h3>")
    out.append(risk_table(data))
    out.append("<h3>Mode changes</h3>")
    out.append(modes_table(data))
    out.append("</section>")
    return "\n".join(out)


def render_page(page: PageInput, sections: Sequence[ProfileSection]) -> str:
    """The whole HTML document."""
    starts = [r[0] for r in (s.data.time_range() for s in sections) if r is not None]
    period = _period_text(page.since, min(starts) if starts else None, page.until)
    names = ", ".join(s.data.name for s in sections) or "no profiles"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>kasmm report: {e(names)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        "<h1>kasmm report</h1>",
    ]
    meta = [
        ("Period", e(period)),
        ("Generated", e(fmt_utc(page.generated))),
        ("Ledger", e(str(page.ledger))),
    ]
    if sections:
        links = " ".join(
            f'<a href="#profile-{i}">{e(s.data.name)}</a>' for i, s in enumerate(sections, 1)
        )
        meta.append(("Profiles", f"<nav>{links}</nav>"))
    if page.profiles_dir is not None:
        meta.append(("Profile files", e(str(page.profiles_dir))))
    out.append(_kv(meta))
    if page.config_issues:
        items = "".join(f"<li>{e(issue)}</li>" for issue in page.config_issues)
        out.append(
            f"<details><summary>{len(page.config_issues)} problem(s) in the profile files "
            f"(those profiles are shown without a target)</summary><ul>{items}</ul></details>"
        )
    for note in page.notes:
        out.append(f'<p class="empty">{e(note)}</p>')
    out.append("</header>")
    out.append("<main>")
    out.extend(profile_section(i, s, page) for i, s in enumerate(sections, 1))
    out.extend(page.portfolios)
    out.append("</main>")
    out.append(
        f"<footer>kasmm {e(__version__)} · times in UTC · a self-contained page: "
        "no scripts, no external resources.</footer>"
    )
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
