"""Inventory rules of a ``target_base`` profile inside the bot, on the sim venue in virtual time.

The profile aims at an absolute amount of KAS. Starting far from it (95 % or 5 % of the
portfolio in KAS against a target worth 50 %), ``max_inventory_deviation`` must trip and the
reduce-only gate must quote only the side that works the excess off, and quote it.
"""

from __future__ import annotations

from decimal import Decimal

import anyio
import anyio.lowlevel
import pytest

from kasmm.clock import VirtualClock
from kasmm.config.schema import Profile
from kasmm.core.risk import TradingState
from kasmm.core.types import Side
from tests.integration.test_bot_sim import make_bot
from tests.support import demo_profile, kill_switch_only

D = Decimal


def target_base_profile(kas: str, usdt: str) -> Profile:
    """The demo profile aiming at 50 000 KAS, with wide share caps so only the rule acts."""
    return demo_profile(
        venue={"balances": {"KAS": kas, "USDT": usdt}},
        inventory={
            "target_share": None,
            "target_base": "50000",
            "min_share": 0.01,
            "max_share": 0.99,
        },
        kill_switch=kill_switch_only(
            max_inventory_deviation={"share": 0.35, "action": "reduce_only"}
        ),
        schedule=[],
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kas", "usdt", "reducing"),
    [
        ("95000", "400", Side.SELL),  # 95 % of 8 000 USDT in KAS; the target is worth 50 %
        ("5000", "7600", Side.BUY),  # 5 %
    ],
)
async def test_target_base_deviation_trips_and_quotes_only_the_reducing_side(
    kas: str, usdt: str, reducing: Side
) -> None:
    clock = VirtualClock(0.0)
    bot, venue = make_bot(target_base_profile(kas, usdt), clock, stop_at=600.0)
    sides_seen: list[Side] = []
    reduced_by: list[Decimal] = []

    async def watch() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(bot.run)
            # Virtual-time deadline: the rule must trip on the first decisions.
            while "max_inventory_deviation" not in bot.risk.reduce_only:
                assert clock.now() < 5.0, "max_inventory_deviation never tripped"
                await anyio.lowlevel.checkpoint()
            start_base = bot.inventory.base
            # While reduce-only holds (at most 60 virtual s), every resting order reduces.
            while bot.risk.trading_state(clock.now()) is TradingState.REDUCE_ONLY:
                if clock.now() > 60.0:
                    break
                sides_seen.extend(o.side for o in await venue.fetch_open_orders())
                await anyio.lowlevel.checkpoint()
            reduced_by.append(abs(bot.inventory.base - start_base))
            tg.cancel_scope.cancel()

    with anyio.fail_after(45):  # wall clock: a hang must fail, not stall the suite
        await watch()

    assert set(sides_seen) == {reducing}  # quoted (never nothing), and only the reducing side
    assert bot.stats.trips_by_rule.get("max_inventory_deviation", 0) >= 1
    trip_inventory_moved = reduced_by[0] > 0
    assert trip_inventory_moved, "reduce-only quotes never worked any of the excess off"
    if reducing is Side.SELL:
        assert bot.inventory.base < D(kas)
    else:
        assert bot.inventory.base > D(kas)
