"""A hedge IOC sent through a bot: recorded as the bot's order, its fills the bot's own.

The order never rests: its row ends ``filled`` or ``cancelled`` (what the venue did with the
rest), its fills pass the engine's one fill gate as this profile's (its client id prefix), and
the open-order audit never sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from kasmm.bot.commands import RecordOrder
from kasmm.bot.engine import FillVerdict
from kasmm.bot.executor import Executor
from kasmm.clock import VirtualClock
from kasmm.core.types import ClientOrderId, Fill, OrderRequest, Side, TradeId
from kasmm.errors import InsufficientFunds, RequestTimedOut, VenueError
from kasmm.store import OrderStatusChanged
from kasmm.venues.base import IocOutcome
from tests.unit.test_engine_rounds import engine
from tests.unit.test_venue_decorator import Fake

pytestmark = pytest.mark.anyio
D = Decimal


class IocVenue(Fake):
    """Fills ``share`` of each IOC, or raises ``error``."""

    def __init__(self, share: str = "1", error: VenueError | None = None) -> None:
        super().__init__()
        self.share = D(share)
        self.error = error

    async def place_ioc(self, request: OrderRequest) -> IocOutcome:
        if self.error is not None:
            raise self.error
        filled = request.size * self.share
        return IocOutcome.of(request.client_id, request.size, filled, filled * request.price)


async def _no_balances() -> None:
    raise AssertionError("no balance read expected")


def _records(commands: Sequence[object]) -> list[tuple[str, str | None]]:
    return [
        (c.entry.status, c.entry.reason)
        for c in commands
        if isinstance(c, RecordOrder) and isinstance(c.entry, OrderStatusChanged)
    ]


@pytest.mark.parametrize(
    ("share", "record"),
    [
        ("1", ("filled", None)),
        ("0.5", ("cancelled", "ioc_partial")),
        ("0", ("cancelled", "ioc_expired")),
    ],
)
async def test_the_answer_ends_the_orders_row(share: str, record: tuple[str, str | None]) -> None:
    e = engine()
    executor = Executor(e, IocVenue(share), VirtualClock(5.0), read_balances=_no_balances)
    request = OrderRequest.ioc(e.ids.next(), Side.SELL, D("0.0790"), D("100"))
    outcome = await executor.place_ioc(request)
    assert outcome.filled == D("100") * D(share)
    assert _records(e.take()) == [record]
    assert not e.open_orders  # it never rests
    assert (e.stats.orders_placed, e.stats.placed_size) == (1, D("100"))


@pytest.mark.parametrize(
    ("error", "record", "counted"),
    [
        (InsufficientFunds("no KAS"), ("rejected", "funds"), 0),
        (RequestTimedOut("lost"), ("unknown", "timeout"), 1),
        (VenueError("boom"), ("rejected", "VenueError"), 1),
    ],
)
async def test_a_failure_is_recorded_then_raised(
    error: VenueError, record: tuple[str, str | None], counted: int
) -> None:
    e = engine()
    executor = Executor(e, IocVenue(error=error), VirtualClock(5.0), read_balances=_no_balances)
    request = OrderRequest.ioc(e.ids.next(), Side.BUY, D("0.0810"), D("100"))
    with pytest.raises(type(error)):
        await executor.place_ioc(request)
    assert _records(e.take()) == [record]
    assert e.stats.consecutive_errors == counted


def test_an_ioc_fill_is_the_profiles_own_although_it_never_rested() -> None:
    e = engine(base=10_000, quote=1_000)
    cid = e.ids.next()
    fill = Fill(TradeId("x1"), cid, Side.SELL, D("0.0790"), D("100"), D("0.004"), "USDT", 5.0,
                is_maker=False)  # fmt: skip
    assert e.fill_verdict(fill, 5.0) is FillVerdict.OWN
    e.on_fill(fill)
    assert e.account.inventory.base == D("9900")
    assert e.stats.fills == 1 and e.recent_fills[-1] == fill
    assert _records(e.take()) == [("filled", None)]
    # The open-order audit leaves alone what it never saw resting (nothing to cancel).
    assert e.orders.untracked([]) == ()
    assert (
        e.fill_verdict(
            Fill(
                TradeId("x2"),
                ClientOrderId("other_1"),
                Side.SELL,
                D("1"),
                D("1"),
                D(0),
                "USDT",
                5.0,
            ),
            5.0,
        )
        is not FillVerdict.OWN
    )


async def test_a_partial_fill_reported_after_the_answer_keeps_the_row_closed() -> None:
    e = engine()
    executor = Executor(e, IocVenue("0.5"), VirtualClock(5.0), read_balances=_no_balances)
    request = OrderRequest.ioc(e.ids.next(), Side.SELL, D("0.0790"), D("100"))
    await executor.place_ioc(request)
    assert _records(e.take()) == [("cancelled", "ioc_partial")]
    fill = Fill(TradeId("x1"), request.client_id, Side.SELL, D("0.0790"), D("50"), D(0), "USDT",
                5.0, remaining=D("50"), is_maker=False)  # fmt: skip
    e.on_fill(fill)
    assert _records(e.take()) == []  # not "partially_filled": it does not rest
