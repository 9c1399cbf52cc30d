"""The risk gate inside the bot: halts cancel everything, a stale book pulls the quotes."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from kasmm.bot import Bot
from kasmm.clock import RealClock, VirtualClock
from kasmm.config.schema import SimVenueConfig
from kasmm.core.risk import TradingState
from kasmm.core.types import Book, BookLevel, BookUpdated, VenueEvent
from kasmm.venues.sim import SimVenue
from tests.integration.test_bot_sim import make_bot
from tests.support import demo_profile, kill_switch_only


@pytest.mark.anyio
async def test_drawdown_halt_cancels_all_orders_and_stops_quoting() -> None:
    profile = demo_profile(
        kill_switch=kill_switch_only(max_drawdown={"quote": "0.5", "action": "halt"}), schedule=[]
    )
    clock = VirtualClock(0.0)
    bot, venue = make_bot(profile, clock, stop_at=3600.0)
    placed_at_halt: list[int] = []

    async def watch() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(bot.run)
            while bot.risk.halt is None:
                await anyio.lowlevel.checkpoint()
            placed_at_halt.append(bot.stats.orders_placed)
            # Halted: let the market run a while longer; nothing may be placed.
            while clock.now() < (bot.risk.halt.ts + 60):
                await anyio.lowlevel.checkpoint()
            assert venue.open_order_count == 0
            assert bot.stats.orders_placed == placed_at_halt[0]
            assert bot.view().trading_state.value == "halted"
            tg.cancel_scope.cancel()

    await watch()
    halt = bot.risk.halt
    assert halt is not None and halt.rule == "max_drawdown" and halt.value > 0.5
    assert bot.stats.kill_switch_trips == 1


class FreezingVenue:
    """A simulated venue whose market data stops after ``books`` updates (a dead feed)."""

    def __init__(self, inner: SimVenue, books: int, clock: RealClock | None = None) -> None:
        self.inner = inner
        self.books = books
        self.name = inner.name
        self.clock = clock or RealClock()

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        seen = 0
        async for event in self.inner.events():
            yield event
            if isinstance(event, BookUpdated):
                seen += 1
                if seen >= self.books:
                    break
        await anyio.sleep_forever()


class RepeatingVenue(FreezingVenue):
    """A simulated venue whose feed keeps re-sending its last book, unchanged, after ``books``
    updates: a websocket that stays "connected" and repeats itself, or a frozen REST answer."""

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        last: Book | None = None
        async for event in super().events():
            if isinstance(event, BookUpdated):
                last = event.book
            if isinstance(event, BookUpdated) and self.repeating:
                break
            yield event
        assert last is not None
        while True:
            await anyio.sleep(0.02)
            # Equal levels, new objects and a new time stamp: only the content says "no change".
            yield BookUpdated(
                Book(
                    tuple(BookLevel(lv.price, lv.size) for lv in last.bids),
                    tuple(BookLevel(lv.price, lv.size) for lv in last.asks),
                    ts=self.clock.wall(),
                )
            )

    @property
    def repeating(self) -> bool:
        return self.inner.open_order_count > 0


async def run_until_quotes_pulled(
    make_venue: Callable[[SimVenue, RealClock], Any],
    check: Callable[[Bot, RealClock], None],
) -> None:
    """A bot whose stale-book rule pauses after 0.3 s, on ``make_venue(sim)``: wait until its
    quotes are gone, then ``check`` it while it still runs."""
    profile = demo_profile(
        kill_switch=kill_switch_only(stale_book={"seconds": 0.3, "action": "pause", "pause_s": 60}),
        schedule=[],
        refresh={"fallback_interval_s": 0.05, "min_requote_interval_s": 0},
    )
    assert isinstance(profile.venue, SimVenueConfig)
    clock = RealClock()
    sim = SimVenue(profile.venue, profile.symbol, clock)
    bot = Bot(profile, make_venue(sim, clock), clock=clock)
    async with anyio.create_task_group() as tg:
        await tg.start(bot.run)
        assert sim.open_order_count > 0
        with anyio.fail_after(3):
            while sim.open_order_count > 0:
                await anyio.sleep(0.02)
        check(bot, clock)
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_stale_book_reads_the_last_change_not_the_last_message() -> None:
    def check(bot: Bot, clock: RealClock) -> None:
        assert bot.risk.pause_trip is not None and bot.risk.pause_trip.rule == "stale_book"
        # Books kept arriving all along: the age is the time since the last change.
        assert bot.stats.book_updates > 3

    await run_until_quotes_pulled(
        lambda sim, clock: RepeatingVenue(sim, books=10**9, clock=clock), check
    )


@pytest.mark.anyio
async def test_stale_book_pulls_quotes() -> None:
    def check(bot: Bot, clock: RealClock) -> None:
        assert bot.risk.trading_state(clock.now()) is TradingState.PAUSED
        assert bot.risk.pause_trip is not None and bot.risk.pause_trip.rule == "stale_book"

    await run_until_quotes_pulled(lambda sim, clock: FreezingVenue(sim, books=3), check)
