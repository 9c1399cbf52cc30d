"""A first run shows trading: each default sim profile, in each mode its schedule can select
(so at any hour of any weekday), quotes and fills on both sides within its first 20 s
(issue 16, point 9). Virtual time: the same seeded market as `make run`, in milliseconds."""

from __future__ import annotations

import pytest

from kasmm.clock import VirtualClock
from kasmm.commands.run import run_profile
from tests.support import demo_profile

FIRST_SECONDS = 20.0
#: Fills per side required in the first 20 s: more than one, so that a slightly different
#: timing (the real clock of `make run`) still shows trading on both sides.
MIN_FILLS_PER_SIDE = 3


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["passive", "aggressive"])
@pytest.mark.parametrize("name", ["kas-usdt-sim.yaml", "kas-usdt-sim-as.yaml"])
async def test_a_default_profile_fills_both_sides_within_20_s(name: str, mode: str) -> None:
    scheduled = {entry.mode for entry in demo_profile(name).schedule}
    assert scheduled <= {"passive", "aggressive"}
    profile = demo_profile(name, mode=mode, schedule=[])
    summary = await run_profile(profile, duration=FIRST_SECONDS, clock=VirtualClock(1_000_000.0))
    fills = (summary.fills_buy, summary.fills_sell)
    assert min(fills) >= MIN_FILLS_PER_SIDE, f"{name} {mode}: fills buy/sell {fills}"
    assert summary.open_orders_left == 0


def test_the_world_pair_fills_both_sides_within_20_s() -> None:
    """The deep and thin venues of the default profiles run together (the thin one prices off
    the deep one and hedges there), so they are checked together, as a group, on the seeds
    `make run` uses."""
    from kasmm.backtest.group_run import run_group_backtest

    pair = [demo_profile(f"sim-{venue}-kas-usdt.yaml") for venue in ("deep", "thin")]
    result = run_group_backtest(pair, paths=1, horizon_s=FIRST_SECONDS, workers=1)
    for run in result.members:
        [path] = run.paths
        fills = (path.fills_buy, path.fills_sell)
        assert min(fills) >= MIN_FILLS_PER_SIDE, f"{run.label}: fills buy/sell {fills}"
        assert path.open_orders_left == 0
