"""Taking a venue's events to the bot: directly in virtual time, through a pump in real time.

In virtual time the venue's generator is iterated directly: it only advances when the bot has
finished acting on the previous event, which makes runs deterministic. In real time a pump task
feeds a channel, so a quiet stream can time out (a fallback tick) without cancelling the venue's
generator mid-await, and book updates that queued up while the bot was busy are coalesced to
the newest. Fills are never dropped: the ones still queued when the bot stops are handed to
``store_queued`` (the venue will not deliver them again).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

import anyio
import anyio.lowlevel

from kasmm.clock import Clock
from kasmm.core.types import BookUpdated, Fill, OrderFilled, VenueEvent
from kasmm.venues.base import Venue


@dataclass(frozen=True, slots=True)
class _StreamFailed:
    """The venue's event stream raised ``error`` (queued after the events before it)."""

    error: Exception


_Item = VenueEvent | _StreamFailed

#: Items the pump queues before it waits for the bot (a bot this far behind is stalled).
CHANNEL_LIMIT = 256


class _Channel:
    """The pump's queue to the bot: one producer, one consumer, on one event loop.

    What an anyio memory object stream of ``CHANNEL_LIMIT`` items did here, without what it
    costs on every event: its ``receive`` takes a checkpoint (a whole turn of the event loop)
    before it looks, and each wait builds a receiver object and a dict entry. The bot waits on
    an :class:`anyio.Event` only when the queue is empty; the pump waits for room only when it
    is full. ``put`` never awaits: an event taken from the venue is queued before anything can
    cancel the pump.
    """

    __slots__ = ("_arrived", "_room", "ended", "items", "quiet", "wait_began")

    def __init__(self) -> None:
        self.items: deque[_Item] = deque()
        #: The pump is done (the stream ended, failed, or the pump was cancelled).
        self.ended = False
        #: When the bot's current wait for an item began (``anyio.current_time``); ``None``
        #: while it works.
        self.wait_began: float | None = None
        #: The ticker found the current wait as long as the fallback interval.
        self.quiet = False
        self._arrived: anyio.Event | None = None  # the bot waits for an item
        self._room: anyio.Event | None = None  # the pump waits for room

    def put(self, item: _Item) -> None:
        """Queue ``item`` (synchronous) and wake the bot if it waits."""
        self.items.append(item)
        self._wake_bot()

    def end(self) -> None:
        """No more items will come."""
        self.ended = True
        self._wake_bot()

    def wake_quiet(self) -> None:
        """End the bot's current wait without an item: the stream was quiet too long."""
        self.quiet = True
        self._wake_bot()

    def _wake_bot(self) -> None:
        arrived = self._arrived
        if arrived is not None:
            self._arrived = None
            arrived.set()

    async def wait_for_room(self) -> None:
        """Return once the queue holds fewer than ``CHANNEL_LIMIT`` items."""
        while len(self.items) >= CHANNEL_LIMIT:
            self._room = room = anyio.Event()
            await room.wait()

    async def wait_for_item(self, began: float) -> None:
        """Return once an item is queued, the pump has ended, or the wait that began at
        ``began`` was found quiet (:meth:`wake_quiet`)."""
        self.wait_began = began
        try:
            while not self.items and not self.ended and not self.quiet:
                self._arrived = arrived = anyio.Event()
                await arrived.wait()
        finally:
            self.wait_began = None
            self.quiet = False

    def take(self) -> _Item:
        """The oldest item (the queue must not be empty); wakes the pump if it waits for room."""
        item = self.items.popleft()
        room = self._room
        if room is not None and len(self.items) < CHANNEL_LIMIT:
            self._room = None
            room.set()
        return item


class EventIntake:
    """Runs one venue's event stream into the bot's handlers until it ends or ``stop_at``."""

    def __init__(
        self,
        venue: Venue,
        clock: Clock,
        *,
        handle: Callable[[VenueEvent], Awaitable[None]],
        tick: Callable[[], Awaitable[None]],
        store_queued: Callable[[list[Fill]], Awaitable[None]],
        fallback_s: float,
        stop_at: float | None,
    ) -> None:
        self.venue = venue
        self.clock = clock
        self._handle = handle
        self._tick = tick
        self._store_queued = store_queued
        self.fallback_s = fallback_s
        self.stop_at = stop_at
        #: Events taken from the channel and not handled yet. They live here, never in a local
        #: variable across an await: if the bot stops meanwhile, their fills are still stored.
        self._backlog: deque[_Item] = deque()

    def _done(self) -> bool:
        return self.stop_at is not None and self.clock.now() >= self.stop_at

    async def run(self, on_handled: Callable[[], None]) -> None:
        """Handle events (and ticks when the stream is quiet) until the stream ends or the
        bot's ``stop_at``; raise the stream's error after every event delivered before it."""
        if self.clock.is_virtual:
            async with aclosing(self.venue.events()) as events:
                async for direct in events:
                    await self._handle(direct)
                    on_handled()
                    if self._done():
                        return
            return

        channel = _Channel()

        async def pump() -> None:
            try:
                async with aclosing(self.venue.events()) as events:
                    async for ev in events:
                        # No checkpoint between taking an event and queueing it: a pump
                        # cancelled there (a restart, a stop) would drop it, fills too.
                        channel.put(ev)
                        if len(channel.items) >= CHANNEL_LIMIT:
                            await channel.wait_for_room()  # far behind: wait for room
            except Exception as exc:
                # Queued behind the events received before it: none of them is dropped.
                channel.put(_StreamFailed(exc))
            finally:
                channel.end()

        async def ticker() -> None:
            # The fallback tick: one timer per fallback interval, where a deadline on every
            # wait (``move_on_after``) scheduled and cancelled one timer per event. A wait
            # that began at t ends quiet at t + fallback_s, as that deadline would have; on
            # the event loop's clock, as that deadline was (not the bot's clock, which a
            # test may step).
            fallback = self.fallback_s
            while True:
                began = channel.wait_began
                if began is not None and anyio.current_time() >= began + fallback:
                    channel.wake_quiet()
                    began = None
                # A wait that begins after now cannot be due before now + fallback.
                due = anyio.current_time() + fallback if began is None else began + fallback
                await anyio.sleep_until(due)

        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(pump)
                if math.isfinite(self.fallback_s):
                    tg.start_soon(ticker)
                try:
                    await self._realtime(channel, on_handled)
                except Exception as exc:
                    # Raised below, outside the task group: the supervisor sees the error
                    # itself (AuthenticationFailed stays AuthenticationFailed), not a group.
                    failure = exc
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._store_queued(self._queued_fills(channel))
        if failure is not None:
            raise failure

    async def _realtime(self, channel: _Channel, on_handled: Callable[[], None]) -> None:
        backlog = self._backlog
        while True:
            if not backlog:
                if channel.items:
                    # One turn of the loop per event, as a memory stream's receive took: a
                    # bot behind its stream does not hold the loop for its whole queue.
                    await anyio.lowlevel.checkpoint()
                elif not channel.ended:
                    await channel.wait_for_item(anyio.current_time())  # the ticker may end it
                if not channel.items:
                    if channel.ended:
                        return  # the venue ended its stream
                    await self._tick()
                    on_handled()
                    continue
                backlog.append(channel.take())
            event = backlog.popleft()
            # Book updates queued up while the bot was busy: only the newest one counts.
            while isinstance(event, BookUpdated):
                if not backlog:
                    if not channel.items:
                        break
                    backlog.append(channel.take())
                if not isinstance(backlog[0], BookUpdated):
                    break
                event = backlog.popleft()
            if isinstance(event, _StreamFailed):
                raise event.error
            await self._handle(event)
            on_handled()
            if self._done():
                return

    def _queued_fills(self, channel: _Channel) -> list[Fill]:
        """The fills delivered but not handled (books and closes in the queue are stale)."""
        fills: list[Fill] = []
        while True:
            if self._backlog:
                item = self._backlog.popleft()
            elif channel.items:
                item = channel.take()
            else:
                return fills
            if isinstance(item, OrderFilled):
                fills.append(item.fill)
