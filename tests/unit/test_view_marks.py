"""The marks a backtest samples after every event: the bot's best resting prices."""

from __future__ import annotations

import random
from decimal import Decimal

from kasmm.bot.engine import Engine
from kasmm.bot.view import marks
from kasmm.core.types import ClientOrderId, MarketRules, OpenOrder, Side
from tests.support import demo_profile

RULES = MarketRules(
    symbol="KAS/USDT", base="KAS", quote="USDT", tick=Decimal("0.00001"), lot=Decimal(1)
)


def test_own_bid_and_ask_are_the_best_prices_whether_in_ticks_or_not() -> None:
    """marks() compares orders on the engine's grid in ticks: the same best bid (highest) and
    best ask (lowest) as comparing every price, for orders on the grid, off it (no ticks), and
    mixed, ties included (the first order met wins, as with ``>``)."""
    rng = random.Random(3)
    e = Engine(demo_profile(), venue_name="sim", run_tag="t0000000")
    e.connected(RULES)
    grid = e.orders.grid
    assert grid is not None
    for _ in range(300):
        e.open_orders.clear()
        for i in range(rng.randrange(0, 7)):
            ticks = rng.randrange(7990, 8010)
            price = Decimal(ticks) * RULES.tick
            if rng.random() < 0.5:
                price = price.normalize()  # equal, spelled differently
            on_grid = rng.random() < 0.7
            order = OpenOrder(
                ClientOrderId(f"o{i}"),
                rng.choice((Side.BUY, Side.SELL)),
                price,
                Decimal(5),
                Decimal(5),
                0.0,
                ticks=ticks if on_grid else -1,
                grid=grid if on_grid else None,
            )
            e.open_orders[order.client_id] = order
        bids = [o.price for o in e.open_orders.values() if o.side is Side.BUY]
        asks = [o.price for o in e.open_orders.values() if o.side is Side.SELL]
        got = marks(e)
        # The very price object of the first best order met (max() and min() keep the first).
        assert got.own_bid is (max(bids) if bids else None)
        assert got.own_ask is (min(asks) if asks else None)
