"""The ``kasmm_portfolio_*`` series: one ``portfolio`` label, a measured group's figures."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.obs.families import Families, MetricBackend
from kasmm.obs.portfolio_metrics import fill_portfolios
from tests.unit.test_portfolio_manager import DRAWDOWN, World

pytestmark = pytest.mark.anyio


def samples(world: World) -> dict[str, dict[tuple[str, ...], float]]:
    backend = MetricBackend()
    fill_portfolios(Families(backend), world.manager.groups.values(), world.clock.now())
    out: dict[str, dict[tuple[str, ...], float]] = {}
    for family in backend.metrics:
        for sample in family.samples:
            if sample.name.startswith("kasmm_portfolio_"):
                key = tuple(sample.labels[k] for k in sorted(sample.labels))
                out.setdefault(sample.name, {})[key] = sample.value
    return out


async def test_a_measured_group_exports_its_inventory_equity_and_state(tmp_path: Path) -> None:
    world = World(tmp_path, DRAWDOWN)
    await world.recompute()
    for member in world.members.values():
        member.mid = Decimal("0.8")
    await world.recompute()  # 1100 base at 0.8 + 900 quote; peak 2000: halted
    got = samples(world)
    assert got["kasmm_portfolio_base"] == {("kas",): 1100.0}
    assert got["kasmm_portfolio_value_quote"] == {("kas",): 880.0}
    assert got["kasmm_portfolio_equity_quote"] == {("kas",): 1780.0}
    assert got["kasmm_portfolio_drawdown_quote"] == {("kas",): 220.0}
    assert got["kasmm_portfolio_daily_pnl_quote"] == {("kas",): -220.0}
    assert got["kasmm_portfolio_share_ratio"][("kas",)] == pytest.approx(880 / 1780)
    assert got["kasmm_portfolio_target_share_ratio"] == {("kas",): 0.5}
    assert got["kasmm_portfolio_deviation_ratio"][("kas",)] < 0  # short of 50 %
    assert got["kasmm_portfolio_pnl_quote"] == {("kas",): 0.0}
    assert got["kasmm_portfolio_members"] == {("kas",): 2.0}
    assert got["kasmm_portfolio_trading_state"] == {
        ("kas", "active"): 0.0,
        ("kas", "paused"): 0.0,
        ("kas", "halted"): 1.0,
    }


async def test_a_group_not_measured_yet_exports_no_figures(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.members["b"].ready = False
    await world.recompute()
    got = samples(world)
    assert got["kasmm_portfolio_members"] == {("kas",): 2.0}
    assert ("kas", "active") in got["kasmm_portfolio_trading_state"]
    assert "kasmm_portfolio_equity_quote" not in got
