"""The market-making KPIs and obligation compliance of a ``/status`` profile row.

``kpis`` holds the figures since the bot started (:mod:`kasmm.core.kpis`): quote uptime (both
sides at once, and each side), the own spread now and time-weighted, the own depth within each
band of the mid (keyed by the band in percent: ``"0.5"``, ``"1"``, ``"2"``), now and
time-weighted, the fill ratio, the order-to-trade ratio, and the markout of the bot's fills per
horizon (``"1s"``, ``"10s"``: fills marked, mean and size-weighted bps, the quote sum as exact
decimal text; :mod:`kasmm.core.markout`). ``obligation`` is the profile's
compliance over its rolling window (:mod:`kasmm.core.obligations`), ``None`` when it has no
``obligations:``. These are statistics, not money that is traded: JSON floats rounded to what a
reader compares (ratios to 4 decimals, bps and quote depth to 2), ``None`` before they exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kasmm.core.markout import horizon_label
from kasmm.obs.kpi_series import BAND_LABELS, own_spread_now_bps

if TYPE_CHECKING:
    from kasmm.bot.view import BotView

__all__ = ["kpi_fields"]


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def kpi_fields(view: BotView) -> dict[str, Any]:
    """``{"kpis": {...}, "obligation": {...} | None}`` for ``view``'s status row."""
    k = view.kpis
    kpis: dict[str, Any] | None = None
    if k is not None:
        kpis = {
            "seconds": round(k.seconds, 1),
            "uptime_both": _r(k.uptime_both, 4),
            "uptime_bid": _r(k.uptime_bid, 4),
            "uptime_ask": _r(k.uptime_ask, 4),
            "spread_bps_now": _r(own_spread_now_bps(view), 2),
            "spread_bps_avg": _r(k.avg_spread_bps, 2),
            "depth_now": {b: round(v, 2) for b, v in zip(BAND_LABELS, k.depth_now, strict=True)},
            "depth_avg": {b: round(v, 2) for b, v in zip(BAND_LABELS, k.avg_depth, strict=True)},
            "fill_ratio": _r(k.fill_ratio, 4),
            "order_to_trade": _r(k.order_to_trade, 2),
            "markout": {
                horizon_label(m.horizon_s): {
                    "fills": m.fills,
                    "mean_bps": _r(m.mean_bps, 2),
                    "weighted_bps": _r(m.weighted_bps, 2),
                    "quote": str(m.quote),
                }
                for m in view.markout
            },
        }
    ob = view.obligation
    obligation = None
    if ob is not None:
        obligation = {
            "share": _r(ob.share, 4),
            "required": round(ob.required, 4),
            "window_s": ob.window_s,
            "observed_s": round(ob.observed_s, 1),
            "breached": ob.breached,
        }
    return {"kpis": kpis, "obligation": obligation}
