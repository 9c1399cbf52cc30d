"""The PnL attribution where a running supervisor shows it: ``/status`` rows and ``/metrics``.

A real supervisor runs a sim profile; once it quotes, its bot is swapped for one whose view
holds a known PnL state (1,000 KAS opened at 0.08, a buy at 0.079 and a sell at 0.0812 of 100
KAS, 0.01 USDT fee each, marked at 0.0825), so every figure is known to the cent:
spread capture 0.13 (0.129090...), revaluation 2.59, fees 0.02, net 2.70 (2.6999...9 exactly),
hold 2.50, vs hold 0.20.
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
from kasmm.core.pnl import PnlState, apply_fill
from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.obs.metrics import build_registry
from kasmm.supervisor import Supervisor
from tests.support import eventually

D = Decimal


def known_pnl() -> PnlState:
    state = PnlState.opening(D(1000), D("0.08"))
    for i, (side, price) in enumerate(((Side.BUY, "0.079"), (Side.SELL, "0.0812"))):
        fill = Fill(
            TradeId(f"t{i}"), ClientOrderId(f"c{i}"), side, D(price), D(100), D("0.01"), "USDT", i
        )
        state = apply_fill(state, fill, "USDT")
    return state


class FixedBot:
    """Stands in for a bot: its view is fixed."""

    def __init__(self, view: BotView) -> None:
        self._view = view

    def view(self) -> BotView:
        return self._view


PROFILE = textwrap.dedent(
    """\
    name: p1
    venue:
      type: sim
      tick: 0.000001
      market: {book_interval_s: 0.05}
    symbol: KAS/USDT
    modes:
      aggressive: {spread_bps: 20, size: 1000, levels: 1}
      passive: {spread_bps: 20, size: 1000, levels: 1}
    refresh: {fallback_interval_s: 0.2}
    """
)


async def _status_and_metrics(directory: Path) -> tuple[dict[str, Any], str]:
    (directory / "p1.yaml").write_text(PROFILE)
    sup = Supervisor(directory)
    registry = build_registry(sup, runtime=False)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        slot = sup.slots["p1"]
        await eventually(lambda: slot.bot is not None and slot.bot.view().tick is not None)
        assert slot.bot is not None
        real = slot.bot.view()
        view = dataclasses.replace(real, mid=D("0.0825"), pnl=known_pnl())
        slot.bot = FixedBot(view)  # type: ignore[assignment]
        status = sup.status()
        text = generate_latest(registry).decode()
        slot.bot = None  # the supervisor's own bot stops with the group
        tg.cancel_scope.cancel()
    return status, text


def test_status_rows_and_metrics_show_the_parts(tmp_path: Path) -> None:
    status, text = anyio.run(_status_and_metrics, tmp_path)
    row = next(r for r in status["profiles"] if r["name"] == "p1")
    assert row["pnl"] == {
        "spread_capture": "0.13",
        "revaluation": "2.59",
        "fees": "0.02",
        "net": "2.70",
        "hold": "2.50",
        "vs_hold": "0.20",
    }
    # The existing keys stay, rounded the same way (they were 28-digit strings).
    assert row["net_pnl"] == "2.70"
    assert row["realized_pnl"] == "0.13"

    parts = {
        s.labels["part"]: s.value
        for family in text_string_to_metric_families(text)
        if family.name == "kasmm_pnl_quote"
        for s in family.samples
        if s.labels["profile"] == "p1"
    }
    assert set(parts) == {"spread_capture", "revaluation", "fees", "net", "hold", "vs_hold"}
    expected = {
        "spread_capture": 0.12909,
        "revaluation": 2.59091,
        "fees": 0.02,
        "net": 2.7,
        "hold": 2.5,
        "vs_hold": 0.2,
    }
    for part, value in expected.items():
        assert abs(parts[part] - value) < 1e-5, part
    # The older series keep their names and agree with the parts.
    net = next(
        s.value
        for family in text_string_to_metric_families(text)
        if family.name == "kasmm_net_pnl_quote"
        for s in family.samples
        if s.labels["profile"] == "p1"
    )
    assert abs(net - parts["net"]) < 1e-12
