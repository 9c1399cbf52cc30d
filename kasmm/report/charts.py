"""The report's charts: matplotlib figures rendered to inline SVG strings.

This is the only module that imports matplotlib (the optional ``report`` extra). It never uses
pyplot: each chart is a bare :class:`~matplotlib.figure.Figure`, so no GUI backend and no global
figure state are involved; SVG output goes through matplotlib's own SVG backend.

Every SVG is made to live inside one HTML page next to the others: no XML prolog, no metadata,
text drawn as paths (no font needed, none fetched), and every ``id`` prefixed per chart so two
charts never share one. Dense layers (thousands of resting orders or fills) are rasterized into
an embedded ``data:`` PNG so the page stays small.
"""

from __future__ import annotations

import html
import io
import itertools
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import matplotlib as mpl
import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from kasmm.core.types import Side
from kasmm.report.analysis import base_share
from kasmm.report.gather import ProfileData

#: Above this many elements a layer is rasterized (an embedded PNG) instead of vector shapes.
RASTER_THRESHOLD = 2000

BUY = "#1a9850"
SELL = "#d73027"
MID = "#303030"
TARGET = "#ff7f0e"
EQUITY = "#1f77b4"
REALIZED = "#2ca02c"
UNREALIZED = "#9467bd"

_WIDTH_IN = 11.0
_MARGINS = {"left": 0.085, "right": 0.985}
# matplotlib.dates is not annotated: call it through Any rather than silence each call.
_dates: Any = mdates
_EPOCH_NUM = float(_dates.date2num(datetime(1970, 1, 1, tzinfo=UTC)))
_STYLE: dict[str, Any] = {
    "svg.fonttype": "path",
    "font.size": 9.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8.0,
    "legend.framealpha": 0.85,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True, slots=True)
class Chart:
    """One rendered chart: its heading and its inline SVG markup."""

    key: str
    title: str
    svg: str


def _x(times: Sequence[float]) -> list[float]:
    """Matplotlib date numbers of epoch seconds."""
    return [_EPOCH_NUM + t / 86400.0 for t in times]


@contextmanager
def _style(salt: str) -> Iterator[None]:
    style: Any = {**_STYLE, "svg.hashsalt": salt}
    with mpl.rc_context(style):
        yield


def _figure(
    height_in: float, rows: int = 1, ratios: Sequence[float] | None = None
) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(_WIDTH_IN, height_in), dpi=100)
    grid = fig.add_gridspec(rows, 1, height_ratios=ratios, hspace=0.12)
    axes: list[Axes] = []
    for row in range(rows):
        ax = fig.add_subplot(grid[row, 0], sharex=axes[0] if axes else None)
        axes.append(ax)
    bottom = 0.55 / height_in
    top = 1 - 0.12 / height_in
    fig.subplots_adjust(bottom=bottom, top=top, **_MARGINS)
    return fig, axes


def _time_axis(axes: Sequence[Axes], span: tuple[float, float]) -> None:
    low, high = span
    if high - low < 60:
        low, high = low - 30, high + 30
    pad = (high - low) * 0.01
    locator = _dates.AutoDateLocator(tz=UTC, minticks=4, maxticks=10)
    for ax in axes:
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(_dates.ConciseDateFormatter(locator, tz=UTC))
        ax.set_xlim(_x([low - pad])[0], _x([high + pad])[0])
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time (UTC)")


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", ncols=4)


_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_COMMENT = re.compile(r"<!--.*?-->\s*", re.S)
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r"(?<=[\"(])#([A-Za-z_][\w.:-]*)(?=[\")])")
# Namespace declarations are implied for <svg> inside HTML (the parser puts xlink:href in the
# xlink namespace by itself), so the page carries no URL at all.
_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_SIZE = re.compile(r'<svg\b([^>]*?)\swidth="[^"]*"\s+height="[^"]*"')


def _to_svg(fig: Figure, prefix: str, label: str) -> str:
    """The figure as SVG markup fit for inlining in HTML (see the module docstring)."""
    buffer = io.StringIO()
    metadata: dict[str, str | None] = {"Creator": None, "Date": None, "Format": None, "Type": None}
    fig.savefig(buffer, format="svg", metadata=metadata, dpi=150)
    svg = _PROLOG.sub("", buffer.getvalue(), count=1)
    svg = _METADATA.sub("", svg)
    svg = _COMMENT.sub("", svg)
    svg = _XMLNS.sub("", svg)
    ids = set(_ID.findall(svg))
    svg = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: f"#{prefix}-{m.group(1)}" if m.group(1) in ids else m.group(0), svg)
    # Scale with the page: the viewBox keeps the aspect ratio.
    svg = _SIZE.sub(r'<svg\1 class="chart" role="img"', svg, count=1)
    return svg.replace("<svg ", f'<svg aria-label="{_attr(label)}" ', 1).strip()


def _attr(text: str) -> str:
    return html.escape(text, quote=True)


def price_chart(data: ProfileData, span: tuple[float, float], prefix: str) -> Chart | None:
    """Mid over time, the profile's resting quotes as horizontal segments, fills as markers."""
    if not (data.equity or data.fills or data.orders):
        return None
    title = "Mid, own resting quotes and fills"
    with _style(prefix):
        fig, (ax,) = _figure(4.4)
        for side, color, label in ((Side.BUY, BUY, "own bids"), (Side.SELL, SELL, "own asks")):
            orders = [o for o in data.orders if o.side is side]
            if not orders:
                continue
            segments = [
                [(a, float(o.price)), (b, float(o.price))]
                for o, a, b in zip(
                    orders, _x([o.start for o in orders]), _x([o.end for o in orders]), strict=True
                )
            ]
            lines = LineCollection(
                segments, colors=color, linewidths=1.4, alpha=0.35, label=f"{label} (resting)"
            )
            lines.set_rasterized(len(segments) > RASTER_THRESHOLD)
            ax.add_collection(lines)
        if data.equity:
            ax.plot(
                _x([s.ts for s in data.equity]),
                [float(s.mid) for s in data.equity],
                color=MID,
                linewidth=1.2,
                label="mid",
            )
        for side, color, marker, label in (
            (Side.BUY, BUY, "^", "buy fills"),
            (Side.SELL, SELL, "v", "sell fills"),
        ):
            fills = [f for f in data.fills if f.side is side]
            if not fills:
                continue
            dense = len(data.fills) > 300  # small markers, or they hide the mid line
            dots = ax.scatter(
                _x([f.ts for f in fills]),
                [float(f.price) for f in fills],
                s=8 if dense else 30,
                marker=marker,
                color=color,
                edgecolors="none" if dense else "black",
                linewidths=0.4,
                zorder=3,
                label=label,
            )
            dots.set_rasterized(len(fills) > RASTER_THRESHOLD)
        ax.autoscale_view(scalex=False)
        ax.set_ylabel(f"price ({data.quote_asset})")
        _legend(ax)
        _time_axis([ax], span)
        return Chart("price", title, _to_svg(fig, prefix, f"{data.name}: {title}"))


def inventory_chart(data: ProfileData, span: tuple[float, float], prefix: str) -> Chart | None:
    """Base held against the target (base amount, and base share of portfolio value)."""
    if not data.equity:
        return None
    title = "Inventory vs target" if data.targets else "Inventory"
    times = _x([s.ts for s in data.equity])
    with _style(prefix):
        fig, (top, bottom) = _figure(4.8, rows=2, ratios=(3, 2))
        top.step(
            times,
            [float(s.base) for s in data.equity],
            where="post",
            color=EQUITY,
            linewidth=1.4,
            label=f"inventory ({data.base_asset})",
        )
        shares = [base_share(s) for s in data.equity]
        bottom.plot(
            times,
            [100 * v if v is not None else float("nan") for v in shares],
            color=EQUITY,
            linewidth=1.2,
            label="base share of value",
        )
        targets = data.targets
        if any(t.target_base is not None for t in targets):
            top.plot(
                times,
                [
                    float(t.target_base) if t.target_base is not None else float("nan")
                    for t in targets
                ],
                color=TARGET,
                linestyle="--",
                linewidth=1.3,
                label="target",
            )
        if any(t.target_share is not None for t in targets):
            bottom.plot(
                times,
                [
                    100 * t.target_share if t.target_share is not None else float("nan")
                    for t in targets
                ],
                color=TARGET,
                linestyle="--",
                linewidth=1.2,
                label="target share",
            )
        params = data.config.params if data.config is not None else None
        if params is not None:
            for bound, name in ((params.min_share, "min share"), (params.max_share, "max share")):
                if bound is not None:
                    bottom.axhline(
                        100 * bound, color="grey", linestyle=":", linewidth=1.0, label=name
                    )
        top.set_ylabel(data.base_asset)
        bottom.set_ylabel("share (%)")
        _legend(top)
        _legend(bottom)
        _time_axis([top, bottom], span)
        return Chart("inventory", title, _to_svg(fig, prefix, f"{data.name}: {title}"))


def pnl_chart(data: ProfileData, span: tuple[float, float], prefix: str) -> Chart | None:
    """Equity change over the period, realized PnL of the period's fills, unrealized PnL."""
    if not (data.equity or data.pnl.points):
        return None
    title = "PnL over the period"
    with _style(prefix):
        fig, (ax,) = _figure(3.6)
        if data.equity:
            first = data.equity[0].equity
            ax.plot(
                _x([s.ts for s in data.equity]),
                [float(s.equity - first) for s in data.equity],
                color=EQUITY,
                linewidth=1.4,
                label="equity change",
            )
            ax.plot(
                _x([s.ts for s in data.equity]),
                [float(data.pnl.unrealized(s.ts, s.mid)) for s in data.equity],
                color=UNREALIZED,
                linewidth=1.1,
                label="unrealized (position at mid)",
            )
        if data.pnl.points:
            start = data.since if data.since is not None else span[0]
            times = [min(start, data.pnl.points[0].ts)] + [p.ts for p in data.pnl.points]
            realized = [0.0] + [float(p.realized) for p in data.pnl.points]
            if data.equity:
                times.append(max(data.equity[-1].ts, times[-1]))
                realized.append(realized[-1])
            ax.step(
                _x(times),
                realized,
                where="post",
                color=REALIZED,
                linewidth=1.4,
                label="realized (average cost, before fees)",
            )
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_ylabel(data.quote_asset)
        _legend(ax)
        _time_axis([ax], span)
        return Chart("pnl", title, _to_svg(fig, prefix, f"{data.name}: {title}"))


def drawdown_chart(data: ProfileData, span: tuple[float, float], prefix: str) -> Chart | None:
    """Equity below its running peak over the period; kill-switch trips and resets marked."""
    if not data.drawdown:
        return None
    title = "Drawdown from the period's peak equity"
    with _style(prefix):
        fig, (ax,) = _figure(2.9)
        times = _x([p.ts for p in data.drawdown])
        depth = [-float(p.drawdown) for p in data.drawdown]
        ax.fill_between(times, depth, 0.0, color=SELL, alpha=0.25, linewidth=0)
        ax.plot(times, depth, color=SELL, linewidth=1.1, label="drawdown")
        marks = {
            "trip": ("kill-switch trip", SELL, "--"),
            "reset": ("operator reset", "grey", "-."),
        }
        for kind, (label, color, style) in marks.items():
            when = [e.ts for e in data.risk_events if e.kind == kind]
            for i, x in enumerate(_x(when)):
                ax.axvline(
                    x, color=color, linestyle=style, linewidth=1.0, label=label if i == 0 else None
                )
        ax.set_ylabel(data.quote_asset)
        if min(depth) < 0:
            ax.set_ylim(top=0.0)
        _legend(ax)
        _time_axis([ax], span)
        return Chart("drawdown", title, _to_svg(fig, prefix, f"{data.name}: {title}"))


def group_equity_chart(
    name: str,
    points: Sequence[tuple[float, float]],
    events: Sequence[tuple[float, str]],
    prefix: str,
    peaks: Sequence[float] | None = None,
) -> Chart | None:
    """A portfolio's equity and its running peak over the period (``points``: time and
    equity; ``peaks``: the running peak at each, lowered by settlement sweeps, else the
    equity's own), the group's kill-switch trips and resets marked (``events``: time and
    kind)."""
    if not points:
        return None
    title = "Group equity and its running peak"
    with _style(prefix):
        fig, (ax,) = _figure(2.9)
        times = _x([t for t, _ in points])
        equity = [v for _, v in points]
        peak = list(peaks) if peaks is not None else list(itertools.accumulate(equity, max))
        ax.fill_between(times, equity, peak, color=SELL, alpha=0.2, linewidth=0)
        ax.plot(times, equity, color=BUY, linewidth=1.1, label="equity")
        ax.plot(times, peak, color="grey", linewidth=0.9, linestyle="--", label="running peak")
        marks = {"trip": ("group trip", SELL, "--"), "reset": ("reset", "grey", "-.")}
        for kind, (label, color, style) in marks.items():
            when = [t for t, k in events if k == kind]
            for i, x in enumerate(_x(when)):
                ax.axvline(
                    x, color=color, linestyle=style, linewidth=1.0, label=label if i == 0 else None
                )
        _legend(ax)
        _time_axis([ax], (points[0][0], points[-1][0]))
        return Chart("group-equity", title, _to_svg(fig, prefix, f"{name}: {title}"))


def profile_charts(data: ProfileData, prefix: str) -> list[Chart]:
    """Every chart the profile's data allows, sharing one time axis."""
    span = data.time_range()
    if span is None:
        return []
    charts = (
        price_chart(data, span, f"{prefix}-price"),
        inventory_chart(data, span, f"{prefix}-inv"),
        pnl_chart(data, span, f"{prefix}-pnl"),
        drawdown_chart(data, span, f"{prefix}-dd"),
    )
    return [c for c in charts if c is not None]
