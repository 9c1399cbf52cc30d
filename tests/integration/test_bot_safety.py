"""Regression tests for the bot's safety defects found by the outside review (issue 13).

Each test fails on the code before its fix: a wall clock stepped back, fills of a skewed
exchange clock, a stop that busy-loops, the two fill-acceptance paths, orders left ``open`` in
the ledger, a venue that never connected, and a profile that silently quotes nothing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import pytest
import structlog.testing

from kasmm.bot import Bot
from kasmm.clock import RealClock, VirtualClock
from kasmm.config.schema import Profile, SimVenueConfig
from kasmm.core.types import (
    Balances,
    Book,
    BookUpdated,
    ClientOrderId,
    Fill,
    MarketRules,
    OpenOrder,
    OrderFilled,
    OrderRequest,
    Side,
    TradeId,
    VenueEvent,
)
from kasmm.errors import InsufficientFunds, LedgerLost, OrderNotFound, TransientVenueError
from kasmm.store import AsyncLedger, Ledger, OrderOpened
from kasmm.venues.batch import ConcurrentBatch
from kasmm.venues.decorator import VenueDecorator
from kasmm.venues.sim import SimVenue
from tests.integration.test_bot_sim import make_bot
from tests.support import demo_profile, eventually, kill_switch_only

T = TypeVar("T")


class Wrapped(ConcurrentBatch, VenueDecorator):
    """A sim venue with hooks: a feed that stalls after the first book, a stop that keeps
    listing an order, a connect that fails. Counts the requests it serves (batch calls go
    through the single calls: each order counts one)."""

    inner: SimVenue

    def __init__(self, inner: SimVenue, *, stall: bool = False) -> None:
        super().__init__(inner)
        self.stall = stall
        self.sticky: OpenOrder | None = None
        self.fail_connect = False
        self.not_found: set[str] = set()
        #: The next cancel is answered "unknown order" (after cancelling it all the same).
        self.not_found_once = False
        self.calls = 0

    async def _call(
        self,
        method: str,
        call: Callable[[], Awaitable[T]],
        *,
        weight: float = 1.0,
        arg: object = None,
    ) -> T:
        if method != "connect":
            self.calls += 1
        return await call()

    async def connect(self) -> MarketRules:
        if self.fail_connect:
            raise TransientVenueError("sim: connection refused")
        return await super().connect()

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        async for event in self.inner.events():
            yield event
            if self.stall and isinstance(event, BookUpdated):
                await anyio.sleep_forever()  # the feed dies: no more books, ever

    async def fetch_open_orders(self) -> list[OpenOrder]:
        listed = await super().fetch_open_orders()
        return [*listed, self.sticky] if self.sticky is not None else listed

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        if self.not_found_once:
            self.not_found_once = False
            self.not_found.add(client_id)
        await super().cancel_order(client_id)
        if client_id in self.not_found:
            raise OrderNotFound(client_id)

    async def cancel_all(self, prefix: str) -> int:
        await anyio.lowlevel.checkpoint()
        return await super().cancel_all(prefix)


def sim_of(profile: Profile, clock: Any) -> SimVenue:
    assert isinstance(profile.venue, SimVenueConfig)
    return SimVenue(profile.venue, profile.symbol, clock)


@pytest.mark.anyio
async def test_stale_book_trips_when_the_wall_clock_steps_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen: the wall clock stepping back 600 s with the feed stalled, `stale_book` never
    tripped and the orders stayed on a dead book (intervals were measured on the wall clock)."""
    profile = demo_profile(
        kill_switch=kill_switch_only(stale_book={"seconds": 1, "action": "halt"}), schedule=[]
    )
    clock = RealClock()
    venue = Wrapped(sim_of(profile, clock), stall=True)
    bot = Bot(profile, venue, clock=clock)
    async with anyio.create_task_group() as tg:
        await tg.start(bot.run)
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() - 600.0)  # NTP steps it back
        await eventually(lambda: bot.risk.halt is not None, within_s=8.0)
        assert bot.risk.halt is not None and bot.risk.halt.rule == "stale_book"
        await eventually(lambda: not bot.open_orders)
        assert await venue.inner.fetch_open_orders() == []
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_fills_count_when_the_exchange_clock_is_behind_the_local_one(tmp_path: Path) -> None:
    """Exchange stamps 10 minutes behind the local clock: the first run's fills of its own
    orders are stored (they were dropped as "history"), and a fill executed after the balances
    were read moves the inventory (it was taken as already in the balances)."""
    skew = 600.0
    clock = VirtualClock(1_000_000.0)
    profile = demo_profile()
    venue = sim_of(profile, clock)
    with Ledger(tmp_path / "kasmm.sqlite") as ledger:
        bot = Bot(profile, venue, clock=clock, ledger=AsyncLedger(ledger))
        bot.rules = await venue.connect()
        await bot._restore()  # first run on this ledger
        # The exchange stamps its book in its own time, 600 s behind the local clock.
        sim_book = venue.book
        bot.on_book(Book(sim_book.bids, sim_book.asks, clock.now() - skew))
        await bot._sync_balances(force=True)
        base_before = bot.inventory.base
        clock.advance_to(clock.now() + 1.0)
        fill = Fill(
            trade_id=TradeId("t-1"),
            client_id=bot._ids.next(),  # an order of this run
            side=Side.BUY,
            price=Decimal("0.08"),
            size=Decimal(100),
            fee=Decimal(0),
            fee_asset="USDT",
            ts=clock.now() - skew,  # executed a second after the balances were read
        )
        await bot.on_event(OrderFilled(fill))
        assert [f.trade_id for f in ledger.fills(profile.name)] == ["t-1"]
        assert bot.inventory.base == base_before + 100
        await venue.close()


@pytest.mark.anyio
async def test_a_stop_against_a_venue_that_keeps_listing_an_order_backs_off() -> None:
    """Seen: 4.2 million calls in 5 s; the safety net retried at once with no delay."""
    profile = demo_profile()
    clock = VirtualClock(0.0)
    venue = Wrapped(sim_of(profile, clock))
    bot = Bot(profile, venue, clock=clock)
    bot.rules = await venue.connect()
    venue.sticky = OpenOrder(
        client_id=ClientOrderId(bot._ids.prefix + "zzzzzzzz1"),
        side=Side.BUY,
        price=Decimal("0.07"),
        size=Decimal(100),
        remaining=Decimal(100),
        created_at=0.0,
    )
    venue.calls = 0
    with anyio.fail_after(15):
        left = await bot.shutdown()
    assert left == 1
    await venue.close()
    # Backoff 0.1 s doubling to 0.5 s over the 5 s retry window: about a dozen tries.
    assert venue.calls <= 40, venue.calls


@pytest.mark.anyio
async def test_a_venue_that_never_connected_leaves_no_orders() -> None:
    """Seen: `orders_left=1` and exit 1 when the venue never connected (nothing was placed)."""
    profile = demo_profile()
    clock = VirtualClock(0.0)
    venue = Wrapped(sim_of(profile, clock))
    venue.fail_connect = True
    bot = Bot(profile, venue, clock=clock)
    with pytest.raises(TransientVenueError):
        await bot.run()
    assert bot.orders_left == 0


@pytest.mark.anyio
async def test_queued_fills_pass_the_same_acceptance_as_live_ones(tmp_path: Path) -> None:
    """The queue drained at a stop skipped the first-run filter that live fills get: a fill of
    an order from before this ledger (another state dir's) was booked there."""
    profile = demo_profile()
    clock = VirtualClock(0.0)
    with Ledger(tmp_path / "kasmm.sqlite") as ledger:
        bot = Bot(profile, sim_of(profile, clock), clock=clock, ledger=AsyncLedger(ledger))
        bot.rules = await bot.venue.connect()
        await bot._restore()  # first run on this ledger

        def fill(n: int, cid: str) -> OrderFilled:
            return OrderFilled(
                Fill(
                    TradeId(f"q-{n}"),
                    ClientOrderId(cid),
                    Side.BUY,
                    Decimal("0.08"),
                    Decimal(10),
                    Decimal(0),
                    "USDT",
                    clock.now(),
                )
            )

        other_tag = (
            "zzzzzzzz" if not bot._ids.is_this_run(bot._ids.prefix + "zzzzzzzz1") else "yyyyyyyy"
        )
        foreign_run = bot._ids.prefix + other_tag + "1"  # this profile, another run
        await bot._store_queued_fills([fill(1, foreign_run).fill, fill(2, bot._ids.next()).fill])
        assert [f.trade_id for f in ledger.fills(profile.name)] == ["q-2"]
        await bot.venue.close()


@pytest.mark.anyio
async def test_every_order_ends_with_a_final_status_in_the_ledger(tmp_path: Path) -> None:
    """Seen: 6 and 4 orders "open" in the ledger after a clean stop with `orders_left=0`, and
    orders a crash left live stayed live forever."""
    profile = demo_profile()
    clock = VirtualClock(0.0)
    with Ledger(tmp_path / "kasmm.sqlite") as ledger:
        # A previous run crashed with two orders live in the ledger (gone from the venue now).
        crashed = [ClientOrderId(profile.client_id_prefix + f"_crashed0{n}") for n in (1, 2)]
        ledger.journal_orders(
            profile.name,
            [
                OrderOpened(cid, Side.BUY, Decimal("0.07"), Decimal(10), 1.0, "open", 0, None)
                for cid in crashed
            ],
        )
        assert ledger.open_orders(profile.name) == crashed
        venue = Wrapped(sim_of(profile, clock))
        bot = Bot(profile, venue, clock=clock, ledger=AsyncLedger(ledger), stop_at=120.0)
        # One cancel answered "unknown order" mid-run: the order is gone all the same.
        venue.not_found_once = True
        await bot.run()
        assert bot.orders_left == 0 and bot.stats.orders_placed > 4
        assert ledger.open_orders(profile.name) == []
        assert {e.reason for e in ledger.order_history(profile.name, crashed[0])} >= {"leftover"}
        gone = next(iter(venue.not_found))
        assert ledger.order_history(profile.name, ClientOrderId(gone))[-1].status in (
            "cancelled",
            "filled",
        )


@pytest.mark.anyio
async def test_a_profile_that_can_quote_nothing_says_why_once() -> None:
    """Seen: a lot so coarse that no size fits quotes nothing, with no warning, while status
    says `quoting`."""
    profile = demo_profile()
    assert isinstance(profile.venue, SimVenueConfig)
    # A lot of 10 million KAS: no level's size survives rounding to the lot.
    huge_lot = profile.venue.model_copy(update={"lot": Decimal(10_000_000)})
    profile = profile.model_copy(update={"venue": huge_lot})
    clock = VirtualClock(0.0)
    bot, _ = make_bot(profile, clock, stop_at=60.0)
    with structlog.testing.capture_logs() as logs:
        await bot.run()
    nothing = [e for e in logs if e["event"] == "quoting_nothing"]
    assert len(nothing) == 1 and nothing[0]["reason"] == "no_size", nothing
    assert bot.stats.orders_placed == 0
    assert bot.view().idle_reason == "no_size"


@pytest.mark.anyio
async def test_a_deleted_ledger_stops_the_bot_with_its_orders_cancelled(tmp_path: Path) -> None:
    """Seen: deleting the ledger while running went unnoticed (later writes, a halt among them,
    were lost). The bot must stop with LedgerLost, its orders cancelled and its venue closed."""
    profile = demo_profile()
    clock = VirtualClock(0.0)
    venue = Wrapped(sim_of(profile, clock))
    path = tmp_path / "kasmm.sqlite"
    with Ledger(path) as ledger:
        bot = Bot(profile, venue, clock=clock, ledger=AsyncLedger(ledger), stop_at=600.0)

        async def delete_when_quoting() -> None:
            while not bot.open_orders:
                await anyio.lowlevel.checkpoint()
            path.unlink()

        failure: LedgerLost | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(delete_when_quoting)
            try:
                await bot.run()
            except LedgerLost as exc:
                failure = exc
    assert failure is not None and "deleted while in use" in str(failure)
    assert bot.orders_left == 0
    assert venue.inner.open_order_count == 0
    assert bot.state.value == "failed"


@pytest.mark.anyio
async def test_a_failed_balance_read_after_a_funds_rejection_does_not_fail_the_profile() -> None:
    """A placement refused for funds re-reads the balances; a transient error on that read
    is an error to count (the periodic refresh comes again), not a reason to restart the
    profile (seen in the soak: 50 restarts from injected balance-read faults)."""
    profile = demo_profile()
    clock = VirtualClock(0.0)

    class FundsShort(Wrapped):
        async def place_order(self, request: OrderRequest) -> OpenOrder:
            raise InsufficientFunds("sim: injected funds")

        async def fetch_balances(self) -> Balances:
            self.calls += 1
            if self.calls > 3:  # start-up reads work; the re-reads after a refusal fail
                raise TransientVenueError("sim fetch_balances: injected connection")
            return await self.inner.fetch_balances()

    venue = FundsShort(sim_of(profile, clock))
    bot = Bot(profile, venue, clock=clock, stop_at=30.0)
    await bot.run()  # must end at stop_at, not raise
    counters = bot.view().counters
    assert counters.orders_rejected > 0 and counters.venue_errors > 0
