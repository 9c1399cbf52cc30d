"""How the executor sends a wave: every call in flight at once, the first without delay."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from kasmm.bot.executor import Executor
from kasmm.clock import VirtualClock
from kasmm.core.types import CancelOrder, ClientOrderId, OpenOrder, OrderAction, OrderRequest, Side
from kasmm.venues.base import BatchLimits, CancelOutcome, PlaceOutcome
from tests.unit.test_engine_rounds import engine, place, rest
from tests.unit.test_venue_decorator import Fake

pytestmark = pytest.mark.anyio


class Recording(Fake):
    """A batch venue that notes which task made each call; the cancel answers only once the
    placement has been sent too (so the two are in flight at once, or the test times out)."""

    def __init__(self) -> None:
        super().__init__(BatchLimits(place=10, cancel=10))
        self.tasks: dict[str, int] = {}
        self.order: list[str] = []
        self.placement_sent = anyio.Event()

    async def cancel_orders(self, client_ids: Sequence[ClientOrderId]) -> list[CancelOutcome]:
        self.tasks["cancel"] = anyio.get_current_task().id
        self.order.append("cancel")
        await self.placement_sent.wait()
        return [None for _ in client_ids]

    async def place_orders(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        self.tasks["place"] = anyio.get_current_task().id
        self.order.append("place")
        self.placement_sent.set()
        return [OpenOrder(r.client_id, r.side, r.price, r.size, r.size, 0.0) for r in requests]


async def _no_balances() -> None:
    raise AssertionError("no balance read expected")


async def test_a_waves_first_call_goes_out_from_the_reacting_task_the_others_concurrently() -> None:
    """The first action of a round is the reaction to an event: sent at once from the task that
    decided, not after the event loop's next turn starts a task for it."""
    e = engine()
    old_bid = rest(e, "b", Side.BUY, "0.0790", 1000)
    new_ask = place(Side.SELL, "0.0805", 1000)
    actions: tuple[OrderAction, ...] = (CancelOrder(old_bid), new_ask)
    venue = Recording()
    executor = Executor(e, venue, VirtualClock(0.0), read_balances=_no_balances)

    with anyio.fail_after(5):
        await executor.execute(actions)

    assert venue.order == ["cancel", "place"]
    assert venue.tasks["cancel"] == anyio.get_current_task().id
    assert venue.tasks["place"] != anyio.get_current_task().id
    assert old_bid not in e.open_orders
    assert [o.side for o in e.open_orders.values()] == [Side.SELL]
