"""How the executor sends a wave: every call in flight at once, the first without delay."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import anyio
import anyio.abc
import anyio.lowlevel
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


class Buggy(Recording):
    """The placement raises a bug (not a venue error) once, after the cancel is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = True

    async def place_orders(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        if self.fail_next:
            self.fail_next = False
            self.placement_sent.set()
            raise ZeroDivisionError("a bug in the venue layer")
        return await super().place_orders(requests)


async def test_with_its_lane_running_a_wave_spawns_no_task_for_its_second_call() -> None:
    """The bot runs Executor.serve beside its intake: a wave's second call goes to that one
    waiting task (the lane) instead of a task spawned per wave, still in flight at the same
    time as the first (the venue answers the cancel only once the placement was sent)."""
    e = engine()
    venue = Recording()
    executor = Executor(e, venue, VirtualClock(0.0), read_balances=_no_balances)
    lanes: set[int] = set()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(executor.serve)
            for n, price in enumerate(("0.0790", "0.0789")):
                old = rest(e, f"b{n}", Side.BUY, price, 1000)
                venue.placement_sent = anyio.Event()
                await executor.execute((CancelOrder(old), place(Side.SELL, f"0.080{5 + n}", 1000)))
                assert venue.tasks["cancel"] == anyio.get_current_task().id
                assert venue.tasks["place"] != anyio.get_current_task().id
                lanes.add(venue.tasks["place"])
                assert old not in e.open_orders
            tg.cancel_scope.cancel()
    assert len(lanes) == 1  # the same task both times: nothing was spawned per wave
    assert [o.side for o in e.open_orders.values()] == [Side.SELL, Side.SELL]


async def test_a_bug_in_the_lanes_call_is_raised_in_the_deciding_task_and_the_lane_goes_on() -> (
    None
):
    e = engine()
    venue = Buggy()
    executor = Executor(e, venue, VirtualClock(0.0), read_balances=_no_balances)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(executor.serve)
            old = rest(e, "b", Side.BUY, "0.0790", 1000)
            with pytest.raises(ZeroDivisionError, match="a bug in the venue layer"):
                await executor.execute((CancelOrder(old), place(Side.SELL, "0.0805", 1000)))
            # The lane is idle again and carries the next wave.
            venue.placement_sent = anyio.Event()
            other = rest(e, "c", Side.BUY, "0.0789", 1000)
            await executor.execute((CancelOrder(other), place(Side.SELL, "0.0806", 1000)))
            assert other not in e.open_orders
            assert any(o.price == Decimal("0.0806") for o in e.open_orders.values())
            tg.cancel_scope.cancel()


async def test_a_lane_stopped_during_a_wave_does_not_leave_the_wave_waiting() -> None:
    e = engine()
    lane_scope = anyio.CancelScope()

    class StopsTheLane(Recording):
        async def cancel_orders(self, client_ids: Sequence[ClientOrderId]) -> list[CancelOutcome]:
            lane_scope.cancel()  # the lane will get its job and not run it
            await anyio.lowlevel.checkpoint()
            return [None for _ in client_ids]

    executor = Executor(e, StopsTheLane(), VirtualClock(0.0), read_balances=_no_balances)

    async def lane(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        with lane_scope:
            await executor.serve(task_status=task_status)

    old = rest(e, "b", Side.BUY, "0.0790", 1000)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(lane)
            # The lane stops before it starts the call it was handed: the wave makes it.
            await executor.execute((CancelOrder(old), place(Side.SELL, "0.0805", 1000)))
    assert lane_scope.cancelled_caught
    assert old not in e.open_orders
    assert [o.side for o in e.open_orders.values()] == [Side.SELL]


async def test_a_call_answered_without_waiting_is_followed_by_the_next_in_the_same_task() -> None:
    """A simulated venue answers at once: the second call follows the first from the deciding
    task, without a hand-over to the lane (nothing was in flight to overlap with)."""

    class Instant(Recording):
        async def cancel_orders(self, client_ids: Sequence[ClientOrderId]) -> list[CancelOutcome]:
            self.tasks["cancel"] = anyio.get_current_task().id
            self.order.append("cancel")
            return [None for _ in client_ids]

    e = engine()
    venue = Instant()
    executor = Executor(e, venue, VirtualClock(0.0), read_balances=_no_balances)
    old = rest(e, "b", Side.BUY, "0.0790", 1000)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(executor.serve)
            await executor.execute((CancelOrder(old), place(Side.SELL, "0.0805", 1000)))
            tg.cancel_scope.cancel()
    me = anyio.get_current_task().id
    assert venue.order == ["cancel", "place"]
    assert venue.tasks == {"cancel": me, "place": me}
    assert old not in e.open_orders
    assert [o.side for o in e.open_orders.values()] == [Side.SELL]
