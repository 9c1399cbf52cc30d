"""The report's markout table: how far the market moved against the bot's fills, per day.

Per horizon (``1s``, ``10s``: :mod:`kasmm.core.markout`) the fills marked out that day, the
mean markout per fill and the size-weighted average in bps of the fill price, and the sum in
quote currency (what the day's fills were worth at the mid the horizon later, against their
prices). Negative is adverse selection: the market kept moving through the bot's quotes.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from kasmm.core.markout import HorizonMarkout, horizon_label

__all__ = ["markout_table"]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(text: str, header: bool = False) -> str:
    tag = "th" if header else "td"
    return f'<{tag} class="num">{_e(text)}</{tag}>'


def _bps(value: float | None) -> str:
    return "-" if value is None else f"{value:+,.2f}"


def _cells(m: HorizonMarkout | None) -> list[str]:
    if m is None or m.fills <= 0:
        return [_num("-"), _num("-"), _num("-"), _num("-")]
    return [
        _num(f"{m.fills:,}"),
        _num(_bps(m.mean_bps)),
        _num(_bps(m.weighted_bps)),
        _num(f"{float(m.quote):+,.4f}"),
    ]


def markout_table(
    days: Sequence[tuple[str, Mapping[float, HorizonMarkout]]],
    period: Mapping[float, HorizonMarkout],
    timezone: str,
    quote: str,
) -> str:
    """The table (``""`` when no fill was marked out in the period): one row per day, then
    the period's; four columns per horizon."""
    horizons = sorted(period)
    if not horizons:
        return ""
    head = [f"<th>day ({_e(timezone)})</th>"]
    for h in horizons:
        label = horizon_label(h)
        head += [
            _num(f"{label} fills", True),
            _num(f"{label} mean (bps)", True),
            _num(f"{label} weighted (bps)", True),
            _num(f"{label} ({quote})", True),
        ]
    rows = ["<table>", "<thead><tr>", *head, "</tr></thead>", "<tbody>"]
    for label, sums, cls in [*((d, m, "") for d, m in days), ("period", period, "total")]:
        cells = [f"<td>{_e(label)}</td>"]
        for h in horizons:
            cells += _cells(sums.get(h))
        attr = f' class="{cls}"' if cls else ""
        rows.append(f"<tr{attr}>" + "".join(cells) + "</tr>")
    rows += ["</tbody>", "</table>"]
    return "\n".join(
        [
            "<h4>Markout (adverse selection)</h4>",
            *rows,
            '<p class="muted">Markout: the own book\'s mid the horizon after each fill against '
            "the fill's price, signed for the bot (a buy gains when the mid rises); negative is "
            "adverse selection. Mean per fill and size-weighted, in bps of the fill price; "
            f"the sum of move × size in {_e(quote)}. A fill counts once a book came after its "
            "horizon.</p>",
        ]
    )
