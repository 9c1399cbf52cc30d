"""EventIntake in real time: the pump's channel to the bot (order, coalescing, room, end)."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from decimal import Decimal

import anyio
import pytest

from kasmm.bot.intake import CHANNEL_LIMIT, EventIntake
from kasmm.clock import RealClock
from kasmm.core.types import (
    Book,
    BookLevel,
    BookUpdated,
    ClientOrderId,
    Fill,
    OrderFilled,
    Side,
    TradeId,
    VenueEvent,
)

pytestmark = pytest.mark.anyio


def book(n: int) -> BookUpdated:
    bid, ask = Decimal("0.0124"), Decimal("0.0126")
    return BookUpdated(Book((BookLevel(bid, Decimal(n)),), (BookLevel(ask, Decimal(n)),), n))


def filled(n: int) -> OrderFilled:
    return OrderFilled(
        Fill(
            TradeId(f"t{n}"),
            ClientOrderId("kab1200000a"),
            Side.BUY,
            Decimal("0.0124"),
            Decimal(1),
            Decimal(0),
            "USDT",
            float(n),
        )
    )


class Stream:
    """A venue whose stream yields ``events`` once ``release`` is set, then raises ``error``
    (or ends); ``pulled`` counts the events taken from it."""

    name = "fake"

    def __init__(self, events: list[VenueEvent], error: Exception | None = None) -> None:
        self.events_ = events
        self.error = error
        self.pulled = 0
        self.release = anyio.Event()

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        await self.release.wait()
        for event in self.events_:
            self.pulled += 1
            yield event
        if self.error is not None:
            raise self.error


class Recorder:
    def __init__(self, stream: Stream, *, block: anyio.Event | None = None) -> None:
        self.handled: list[VenueEvent] = []
        self.ticks = 0
        self.stored: list[Fill] = []
        self.block = block
        self.intake = EventIntake(
            stream,  # type: ignore[arg-type]
            RealClock(),
            handle=self.handle,
            tick=self.tick,
            store_queued=self.store,
            fallback_s=0.05,
            stop_at=None,
        )

    async def handle(self, event: VenueEvent) -> None:
        self.handled.append(event)
        if self.block is not None:
            await self.block.wait()
            self.block = None

    async def tick(self) -> None:
        self.ticks += 1

    async def store(self, fills: list[Fill]) -> None:
        self.stored.extend(fills)


async def test_events_are_handled_in_order_and_books_queued_meanwhile_coalesce() -> None:
    events: list[VenueEvent] = [book(1), filled(2), book(3), book(4), book(5), filled(6), book(7)]
    stream = Stream(events)
    block = anyio.Event()
    bot = Recorder(stream, block=block)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(bot.intake.run, lambda: None)
            stream.release.set()
            while not bot.handled:
                await anyio.sleep(0.001)
            while stream.pulled < 7:  # the pump queues the rest while the bot is busy
                await anyio.sleep(0.001)
            block.set()
    assert bot.handled == [book(1), filled(2), book(5), filled(6), book(7)]


async def test_a_stream_failure_comes_after_every_event_before_it() -> None:
    stream = Stream([book(1), filled(2)], error=RuntimeError("gone"))
    bot = Recorder(stream)
    stream.release.set()
    with anyio.fail_after(5), pytest.raises(RuntimeError, match="gone"):
        await bot.intake.run(lambda: None)
    assert bot.handled == [book(1), filled(2)]


async def test_a_quiet_stream_ticks_and_an_ended_one_returns() -> None:
    stream = Stream([book(1)])
    bot = Recorder(stream)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(bot.intake.run, lambda: None)
            while bot.ticks < 2:
                await anyio.sleep(0.01)
            stream.release.set()  # one event, then the stream ends: run returns
    assert bot.handled == [book(1)]
    assert bot.ticks >= 2


async def test_no_fill_taken_from_the_stream_is_lost_at_a_stop() -> None:
    count = CHANNEL_LIMIT + 50
    stream = Stream([book(0), *(filled(n) for n in range(1, count))])
    bot = Recorder(stream, block=anyio.Event())  # never set: the bot never finishes
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(bot.intake.run, lambda: None)
            stream.release.set()
            while stream.pulled < CHANNEL_LIMIT:
                await anyio.sleep(0.001)
            tg.cancel_scope.cancel()
    assert bot.handled == [book(0)]
    assert bot.stored == [filled(n).fill for n in range(1, stream.pulled)]


async def test_the_pump_waits_for_room_while_the_bot_is_busy() -> None:
    # The bot is stuck on its first event: the pump queues CHANNEL_LIMIT items and then takes
    # no more from the venue (the stream checks it) until the bot makes room.
    count = CHANNEL_LIMIT * 3
    block = anyio.Event()
    # The first event and the one the bot looked at behind it (is it a newer book?) have left
    # the channel: the pump may take CHANNEL_LIMIT + 2 before the bot goes on.
    at_limit = CHANNEL_LIMIT + 2

    class Checked(Stream):
        async def events(self) -> AsyncGenerator[VenueEvent, None]:
            async for event in super().events():
                assert self.pulled <= at_limit or block.is_set(), "pulled past the limit"
                yield event

    stream = Checked([book(0), *(filled(n) for n in range(1, count))])
    bot = Recorder(stream, block=block)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(bot.intake.run, lambda: None)
            stream.release.set()
            while stream.pulled < at_limit:
                await anyio.sleep(0.001)
            block.set()
    assert bot.handled == [book(0), *(filled(n) for n in range(1, count))]


class Paced(Stream):
    """Yields ``events`` ``gap`` seconds apart (real time), then ends."""

    def __init__(self, events: list[VenueEvent], gap: float) -> None:
        super().__init__(events)
        self.gap = gap
        self.release.set()

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        for event in self.events_:
            await anyio.sleep(self.gap)
            self.pulled += 1
            yield event


async def test_no_tick_while_events_come_faster_than_the_fallback() -> None:
    # 30 events 10 ms apart with a 50 ms fallback: every wait ends with an event.
    stream = Paced([book(n) for n in range(30)], gap=0.01)
    bot = Recorder(stream)
    with anyio.fail_after(5):
        await bot.intake.run(lambda: None)
    assert bot.handled == [book(n) for n in range(30)]
    assert bot.ticks == 0


async def test_a_tick_comes_a_fallback_after_the_bot_began_to_wait() -> None:
    stream = Paced([book(1), book(2)], gap=0.125)  # 125 ms apart, fallback 50 ms
    bot = Recorder(stream)
    times: list[tuple[str, float]] = []

    async def handle(event: VenueEvent) -> None:
        times.append(("event", time.monotonic()))

    async def tick() -> None:
        times.append(("tick", time.monotonic()))

    bot.intake._handle = handle
    bot.intake._tick = tick
    with anyio.fail_after(5):
        await bot.intake.run(lambda: None)
    kinds = [kind for kind, _ in times]
    assert kinds.count("event") == 2
    # Before the first event and between the two: ticks 50 ms apart (two per 125 ms gap).
    assert kinds == ["tick", "tick", "event", "tick", "tick", "event"]
    assert times[1][1] - times[0][1] >= 0.05 * 0.9  # tick after tick: one fallback apart
    assert times[3][1] - times[2][1] >= 0.05 * 0.9  # event, then a tick a fallback later
