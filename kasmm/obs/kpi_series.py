"""The market-making KPIs and obligation compliance of one bot view, as metric samples.

Kept out of :mod:`kasmm.obs.metrics` (which calls :func:`fill_kpis` once per bot) so the
collector stays readable. A KPI that has no value yet (no time has passed, nothing placed, no
fill, no fill marked out yet) is left out rather than exported as 0, which would read as "never
quoted", "nothing filled" or "no adverse selection"; the obligation series exist only for
profiles that have obligations. The markout series carry a ``horizon`` label (``1s``, ``10s``:
:func:`~kasmm.core.markout.horizon_label`), their fill counter is exported from 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from kasmm.core.kpis import DEPTH_BANDS
from kasmm.core.markout import horizon_label

if TYPE_CHECKING:
    from kasmm.bot.view import BotView
    from kasmm.obs.families import Families

__all__ = ["BAND_LABELS", "band_label", "fill_kpis", "own_spread_now_bps"]


def band_label(band: Decimal) -> str:
    """The ``band`` label of a depth band: its width in percent of the mid (``0.5``, ``1``)."""
    return format((band * 100).normalize(), "f")


#: Values of ``kasmm_own_depth_quote{band=...}``, in :data:`DEPTH_BANDS` order.
BAND_LABELS: tuple[str, ...] = tuple(band_label(b) for b in DEPTH_BANDS)


def own_spread_now_bps(view: BotView) -> float | None:
    """The own spread now (best ask - best bid) in bps of the mid, as :mod:`kasmm.core.kpis`
    measures it (``None`` unless both sides are quoted around a usable mid)."""
    mid = view.mid
    if not view.bids or not view.asks or mid is None or not mid.is_finite() or mid <= 0:
        return None
    return float((view.asks[0].price - view.bids[0].price) / mid) * 1e4


def fill_kpis(fam: Families, labels: Sequence[str], view: BotView) -> None:
    """Add ``view``'s KPI and obligation samples to ``fam`` under the profile ``labels``."""
    k = view.kpis
    if k is not None:
        for side, share in (("both", k.uptime_both), ("bid", k.uptime_bid), ("ask", k.uptime_ask)):
            if share is not None:
                fam.uptime.add_metric((*labels, side), share)
        if k.avg_spread_bps is not None:
            fam.own_spread.add_metric(labels, k.avg_spread_bps)
        for band, now, avg in zip(BAND_LABELS, k.depth_now, k.avg_depth, strict=True):
            fam.own_depth.add_metric((*labels, band, "now"), now)
            fam.own_depth.add_metric((*labels, band, "avg"), avg)
        if k.fill_ratio is not None:
            fam.fill_ratio.add_metric(labels, k.fill_ratio)
        if k.order_to_trade is not None:
            fam.order_to_trade.add_metric(labels, k.order_to_trade)
    for m in view.markout:
        horizon = (*labels, horizon_label(m.horizon_s))
        fam.markout_fills.add_metric(horizon, float(m.fills))
        if m.fills:
            fam.markout_quote.add_metric(horizon, float(m.quote))
        weighted = m.weighted_bps
        if weighted is not None:
            fam.markout.add_metric(horizon, weighted)
    spread_now = own_spread_now_bps(view)
    if spread_now is not None:
        fam.own_spread_now.add_metric(labels, spread_now)
    ob = view.obligation
    if ob is not None:
        if ob.share is not None:
            fam.obligation_compliance.add_metric(labels, ob.share)
        fam.obligation_required.add_metric(labels, ob.required)
        fam.obligation_breached.add_metric(labels, 1.0 if ob.breached else 0.0)
