"""The market-making KPIs and obligation where a running supervisor shows them.

A real supervisor runs a sim profile with obligations until it has quoted both sides for a
while; its bot's view at that instant is then frozen (the same values for every reader), and
``/status`` and ``/metrics`` must both show it: the own spread and depth recomputed here from
the view's own orders with Decimals, the uptime and compliance as the engine integrated them.
"""

from __future__ import annotations

import dataclasses
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kasmm.bot import BotView
from kasmm.core.markout import horizon_label
from kasmm.obs.metrics import build_registry
from kasmm.supervisor import Supervisor
from tests.support import eventually

PROFILE = textwrap.dedent(
    """\
    name: p1
    venue:
      type: sim
      tick: 0.000001
      market: {book_interval_s: 0.05}
    symbol: KAS/USDT
    modes:
      aggressive: {spread_bps: 20, size: 1000, levels: 2, level_step_bps: 60}
      passive: {spread_bps: 20, size: 1000, levels: 2, level_step_bps: 60}
    refresh: {fallback_interval_s: 0.2}
    obligations:
      max_spread_bps: 50
      min_depth: {band_pct: 1, quote: 50}
      min_uptime_pct: 90
      window_s: 600
    """
)


class FixedBot:
    """Stands in for a bot: its view is fixed."""

    def __init__(self, view: BotView) -> None:
        self._view = view

    def view(self) -> BotView:
        return self._view


async def _run(directory: Path) -> tuple[BotView, dict[str, Any], str, str]:
    (directory / "p1.yaml").write_text(PROFILE)
    sup = Supervisor(directory)
    registry = build_registry(sup, runtime=False)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        slot = sup.slots["p1"]

        def quoted_a_while() -> bool:
            bot = slot.bot
            if bot is None:
                return False
            view = bot.view()
            k = view.kpis
            return k is not None and k.seconds > 1.0 and bool(view.bids and view.asks)

        await eventually(quoted_a_while, within_s=20)
        assert slot.bot is not None
        view = slot.bot.view()
        slot.bot = FixedBot(view)  # type: ignore[assignment]
        status = sup.status()
        text = generate_latest(registry).decode()
        # The same view with the obligation breached: the 0/1 series follows it.
        assert view.obligation is not None
        breached = dataclasses.replace(
            view, obligation=dataclasses.replace(view.obligation, breached=True)
        )
        slot.bot = FixedBot(breached)  # type: ignore[assignment]
        text_breached = generate_latest(registry).decode()
        slot.bot = None  # the supervisor's own bot stops with the group
        tg.cancel_scope.cancel()
    return view, status, text, text_breached


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """``{extra labels: value}`` of family ``name`` for profile p1."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                assert s.labels.pop("profile") == "p1"
                assert s.labels.pop("venue") == "sim"
                assert s.labels.pop("symbol") == "KAS/USDT"
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def one(text: str, name: str) -> float:
    values = samples(text, name)
    assert list(values) == [()], (name, values)
    return values[()]


def test_status_and_metrics_show_the_kpis_of_a_quoting_profile(tmp_path: Path) -> None:
    view, status, text, text_breached = anyio.run(_run, tmp_path)
    k, ob = view.kpis, view.obligation
    assert k is not None and ob is not None
    mid = view.mid
    assert mid is not None
    # Recomputed from the view's orders, exactly, then compared as floats.
    orders = [*view.bids, *view.asks]
    spread_now = float((view.asks[0].price - view.bids[0].price) / mid * 10_000)
    depth = {
        band: float(
            sum(
                (o.price * o.remaining for o in orders if abs(o.price - mid) <= mid * pct / 100),
                Decimal(0),
            )
        )
        for band, pct in (("0.5", Decimal("0.5")), ("1", Decimal(1)), ("2", Decimal(2)))
    }
    # Two levels 60 bps apart around a 20 bps spread: level 0 inside 0.5 %, level 1 inside 1 %.
    assert 15 < spread_now < 30
    assert 0 < depth["0.5"] < depth["1"] == depth["2"]

    uptime = samples(text, "kasmm_quote_uptime_ratio")
    assert uptime == {
        (("side", "both"),): k.uptime_both,
        (("side", "bid"),): k.uptime_bid,
        (("side", "ask"),): k.uptime_ask,
    }
    assert k.uptime_both is not None and 0.5 < k.uptime_both <= 1.0
    assert abs(one(text, "kasmm_own_spread_now_bps") - spread_now) < 1e-9
    assert k.avg_spread_bps is not None
    assert abs(one(text, "kasmm_own_spread_bps") - k.avg_spread_bps) < 1e-9
    assert 15 < k.avg_spread_bps < 30
    own_depth = samples(text, "kasmm_own_depth_quote")
    for band, value in depth.items():
        assert abs(own_depth[(("band", band), ("window", "now"))] - value) < 1e-9, band
        assert own_depth[(("band", band), ("window", "avg"))] > 0
    if k.fill_ratio is None:
        assert samples(text, "kasmm_fill_ratio") == {}
    else:
        assert abs(one(text, "kasmm_fill_ratio") - k.fill_ratio) < 1e-12
    placed, cancelled = view.counters.orders_placed, view.counters.orders_cancelled
    assert placed >= 4  # both sides, two levels
    fills = view.pnl.buy_count + view.pnl.sell_count
    if fills:
        otr = one(text, "kasmm_order_to_trade_ratio")
        assert abs(otr - (placed + cancelled) / fills) < 1e-9

    # Obligation: spread 20 < 50 bps and ~80 USDT a level within 1 %: met while quoted.
    assert ob.share is not None and ob.share > 0.5
    assert abs(one(text, "kasmm_obligation_compliance_ratio") - ob.share) < 1e-12
    assert one(text, "kasmm_obligation_required_ratio") == 0.9
    assert one(text, "kasmm_obligation_breached") == 0.0
    assert one(text_breached, "kasmm_obligation_breached") == 1.0

    row = next(r for r in status["profiles"] if r["name"] == "p1")
    assert row["kpis"] == {
        "seconds": round(k.seconds, 1),
        "uptime_both": round(k.uptime_both, 4),
        "uptime_bid": round(k.uptime_bid or 0, 4),
        "uptime_ask": round(k.uptime_ask or 0, 4),
        "spread_bps_now": round(spread_now, 2),
        "spread_bps_avg": round(k.avg_spread_bps, 2),
        "depth_now": {band: round(v, 2) for band, v in depth.items()},
        "depth_avg": {b: round(v, 2) for b, v in zip(("0.5", "1", "2"), k.avg_depth, strict=True)},
        "fill_ratio": None if k.fill_ratio is None else round(k.fill_ratio, 4),
        "order_to_trade": None if k.order_to_trade is None else round(k.order_to_trade, 2),
        "markout": {
            horizon_label(m.horizon_s): {
                "fills": m.fills,
                "mean_bps": None if m.mean_bps is None else round(m.mean_bps, 2),
                "weighted_bps": None if m.weighted_bps is None else round(m.weighted_bps, 2),
                "quote": str(m.quote),
            }
            for m in view.markout
        },
    }
    assert [m.horizon_s for m in view.markout] == [1.0, 10.0]
    for m in view.markout:  # the same figures in the metrics
        horizon = (("horizon", horizon_label(m.horizon_s)),)
        assert samples(text, "kasmm_markout_fills_total")[horizon] == m.fills
        if m.weighted_bps is None:
            assert horizon not in samples(text, "kasmm_markout_bps")
        else:
            assert abs(samples(text, "kasmm_markout_bps")[horizon] - m.weighted_bps) < 1e-9
            assert abs(samples(text, "kasmm_markout_quote")[horizon] - float(m.quote)) < 1e-9
    assert row["obligation"] == {
        "share": round(ob.share, 4),
        "required": 0.9,
        "window_s": 600.0,
        "observed_s": round(ob.observed_s, 1),
        "breached": False,
    }
