"""A fill the venue delivered reaches the ledger, even when the bot stops at the worst moment.

Two ways the real-time bot lost a delivered fill when it was stopped (the soak's remaining
"1 fill lost"): the book-coalescing loop held the next event (a fill) in a local variable while
it handled the book before it, so a stop during that book's requote dropped the fill; and the
ledger write of a fill was not shielded, so a stop while it waited for the ledger (shared by
every profile) dropped it after the journal had marked it seen. Both are fixed (events taken
from the channel wait in ``EventIntake._backlog`` in ``kasmm/bot/intake.py``, which the stop
drains; the fill's ledger write is shielded in the driver).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from kasmm.bot import Bot
from kasmm.clock import RealClock
from kasmm.config.schema import SimVenueConfig
from kasmm.core.types import (
    Book,
    BookLevel,
    BookUpdated,
    ClientOrderId,
    Fill,
    OpenOrder,
    OrderFilled,
    OrderRequest,
    Side,
    TradeId,
    VenueEvent,
)
from kasmm.store import AsyncLedger, Ledger
from kasmm.venues.batch import ConcurrentBatch
from kasmm.venues.decorator import VenueDecorator
from kasmm.venues.sim import SimVenue
from tests.support import make_profile

pytestmark = pytest.mark.anyio


PROFILE = make_profile(
    name="delivery",
    venue={"market": {"book_interval_s": 0.05}},
    modes={
        "aggressive": {"spread_bps": 20, "size": 1000, "levels": 2},
        "passive": {"spread_bps": 20, "size": 1000, "levels": 2},
    },
    refresh={"fallback_interval_s": 0.2},
)


def own_fill(client_id: ClientOrderId, n: int) -> Fill:
    return Fill(
        trade_id=TradeId(f"late-{n}"),
        client_id=client_id,
        side=Side.BUY,
        price=Decimal("0.0799"),
        size=Decimal(10),
        fee=Decimal(0),
        fee_asset="USDT",
        ts=RealClock().wall(),
    )


class SlowRequote(ConcurrentBatch, VenueDecorator):
    """A sim venue with slow placements. While the bot places its first quotes, the stream
    sends a moved book and right behind it a fill; both queue up, and the bot then handles the
    book (a slow requote) with the fill taken from the queue and not handled yet. (Batch calls
    go through the single calls: each placement is slow.)"""

    inner: SimVenue

    def __init__(self, inner: SimVenue) -> None:
        super().__init__(inner)
        self.bot: Bot | None = None
        self.placing = anyio.Event()
        self.requoting = anyio.Event()
        #: The bot's first order: the late fill is one of its own orders' fills.
        self.first_client_id: ClientOrderId | None = None

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        book = self.inner.book
        yield BookUpdated(book)
        await self.placing.wait()
        yield BookUpdated(
            Book(
                tuple(BookLevel(lv.price * Decimal("1.01"), lv.size) for lv in book.bids),
                tuple(BookLevel(lv.price * Decimal("1.01"), lv.size) for lv in book.asks),
                book.ts,
            )
        )
        assert self.first_client_id is not None
        yield OrderFilled(own_fill(self.first_client_id, 1))
        await anyio.sleep_forever()

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        if self.first_client_id is None:
            self.first_client_id = request.client_id
        self.placing.set()
        if request.price > Decimal(repr(self.inner.mid)) * Decimal("1.005"):
            self.requoting.set()  # quoting around the moved book: the fill is behind it
        await anyio.sleep(0.1)
        return await self.inner.place_order(request)


async def test_a_fill_queued_behind_a_book_is_stored_when_the_bot_stops(tmp_path: Path) -> None:
    assert isinstance(PROFILE.venue, SimVenueConfig)
    clock = RealClock()
    venue = SlowRequote(SimVenue(PROFILE.venue, PROFILE.symbol, clock))
    with Ledger(tmp_path / "kasmm.sqlite") as ledger:
        bot = Bot(PROFILE, venue, clock=clock, ledger=AsyncLedger(ledger))
        venue.bot = bot
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(bot.run)
                await venue.requoting.wait()
                tg.cancel_scope.cancel()  # the supervisor stops the profile
        assert [f.trade_id for f in ledger.fills(PROFILE.name)] == ["late-1"]


async def test_a_fill_waiting_for_the_ledger_is_stored_when_the_bot_stops(tmp_path: Path) -> None:
    clock = RealClock()
    assert isinstance(PROFILE.venue, SimVenueConfig)
    with Ledger(tmp_path / "kasmm.sqlite") as ledger:
        shared = AsyncLedger(ledger)
        bot = Bot(
            PROFILE,
            SimVenue(PROFILE.venue, PROFILE.symbol, clock),
            clock=clock,
            ledger=shared,
        )
        bot.rules = await bot.venue.connect()
        fill = own_fill(bot._ids.next(), 2)  # an id of this run, like a placed order's
        borrower = object()
        limiter = shared._limiter
        scope = anyio.CancelScope()

        async def handle() -> None:
            with scope:
                await bot.on_event(OrderFilled(fill))

        async with anyio.create_task_group() as tg:
            # Another profile's ledger call is in progress: this bot's write has to wait.
            await limiter.acquire_on_behalf_of(borrower)
            tg.start_soon(handle)
            await anyio.sleep(0.1)  # waiting for the ledger
            scope.cancel()  # the supervisor stops the profile
            await anyio.sleep(0.05)
            limiter.release_on_behalf_of(borrower)
        await bot.venue.close()
        assert [f.trade_id for f in ledger.fills(PROFILE.name)] == ["late-2"]
