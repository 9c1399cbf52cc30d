"""Taking a venue's events to the bot: directly in virtual time, through a pump in real time.

In virtual time the venue's generator is iterated directly: it only advances when the bot has
finished acting on the previous event, which makes runs deterministic. In real time a pump task
feeds a channel, so a quiet stream can time out (a fallback tick) without cancelling the venue's
generator mid-await, and book updates that queued up while the bot was busy are coalesced to
the newest. Fills are never dropped: the ones still queued when the bot stops are handed to
``store_queued`` (the venue will not deliver them again).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from kasmm.clock import Clock
from kasmm.core.types import BookUpdated, Fill, OrderFilled, VenueEvent
from kasmm.venues.base import Venue


@dataclass(frozen=True, slots=True)
class _StreamFailed:
    """The venue's event stream raised ``error`` (queued after the events before it)."""

    error: Exception


_Item = VenueEvent | _StreamFailed


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

        send, receive = anyio.create_memory_object_stream[_Item](256)

        async def pump() -> None:
            async with send:
                try:
                    async with aclosing(self.venue.events()) as events:
                        async for ev in events:
                            # No checkpoint between taking an event and queueing it: a pump
                            # cancelled there (a restart, a stop) would drop it, fills too.
                            try:
                                send.send_nowait(ev)
                            except anyio.WouldBlock:
                                await send.send(ev)  # far behind: wait for room
                except Exception as exc:
                    # Queued behind the events received before it: none of them is dropped.
                    await send.send(_StreamFailed(exc))

        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(pump)
                try:
                    await self._realtime(receive, on_handled)
                except Exception as exc:
                    # Raised below, outside the task group: the supervisor sees the error
                    # itself (AuthenticationFailed stays AuthenticationFailed), not a group.
                    failure = exc
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._store_queued(self._queued_fills(receive))
            receive.close()
        if failure is not None:
            raise failure

    async def _realtime(
        self, receive: MemoryObjectReceiveStream[_Item], on_handled: Callable[[], None]
    ) -> None:
        backlog = self._backlog
        while True:
            if not backlog:
                received: _Item | None = None
                with anyio.move_on_after(self.fallback_s):
                    try:
                        received = await receive.receive()
                    except anyio.EndOfStream:
                        return  # the venue ended its stream
                if received is None:
                    await self._tick()
                    on_handled()
                    continue
                backlog.append(received)
            event = backlog.popleft()
            # Book updates queued up while the bot was busy: only the newest one counts.
            while isinstance(event, BookUpdated):
                if not backlog:
                    try:
                        backlog.append(receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                if not isinstance(backlog[0], BookUpdated):
                    break
                event = backlog.popleft()
            if isinstance(event, _StreamFailed):
                raise event.error
            await self._handle(event)
            on_handled()
            if self._done():
                return

    def _queued_fills(self, receive: MemoryObjectReceiveStream[_Item]) -> list[Fill]:
        """The fills delivered but not handled (books and closes in the queue are stale)."""
        fills: list[Fill] = []
        while True:
            if self._backlog:
                item = self._backlog.popleft()
            else:
                try:
                    item = receive.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    return fills
            if isinstance(item, OrderFilled):
                fills.append(item.fill)
