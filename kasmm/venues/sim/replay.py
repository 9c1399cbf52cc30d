"""The ``replay`` market: a recorded file (:mod:`.replay_format`) replayed against the bot's orders.

Matching (the paper venue's rules, :mod:`kasmm.venues.paper`)
=============================================================

The recorded market does not contain the bot's orders; they are matched against it with the
paper venue's functions, so a replay fills exactly like paper trading would have:

* **Trades.** A resting bid fills when a trade prints at or below its price with the taker
  selling (an ask: at or above, taker buying). An order priced better than the trade was traded
  through: it fills up to the trade's size. An order *at* the trade's price fills only with the
  part of the trade that got past the queue ahead of it. One trade fills at most its own size
  across the bot's orders, best price first, then first placed first.
* **Queue position** (``queue_position``). ``back`` (default, conservative): ahead of a new order
  is the size the recorded book displayed at its price when the order was placed (zero at a new
  price inside the displayed depth; unknown, hence unbounded, beyond it); each later snapshot
  caps it at the size then displayed at that price (cancellations ahead move the order up).
  ``front``: nobody is ahead.
* **The book moving through the order.** A snapshot whose best ask is at or below a resting bid
  (best bid at or above a resting ask) fills that order in full at its own price, before the
  snapshot is published.

Events: every snapshot is published as ``BookUpdated`` (the recorded levels merged with the
bot's own resting orders, as the simulator publishes its book); fills as ``OrderFilled`` in the
order they happened. A trade that fills nothing produces no event. When the data ends the venue's
event stream ends, and the bot stops (cancelling its orders).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Literal, TextIO

from kasmm.clock import Clock
from kasmm.config.schema import RandomWalkMarket, SimVenueConfig
from kasmm.core.types import Book, BookUpdated, Side, VenueEvent
from kasmm.venues.public_data import FeedItem, PublicTrade
from kasmm.venues.queue_matching import cap_queues, crossed_by_book, displayed_queue, match_trade
from kasmm.venues.sim.ioc import Take, take_from_book
from kasmm.venues.sim.matching import SyntheticLevel, merged_levels
from kasmm.venues.sim.replay_format import ReplayFormatError, ReplayHeader, iter_items, read_header
from kasmm.venues.sim.state import SimState
from kasmm.venues.sim.venue import SimVenue

QueuePosition = Literal["back", "front"]


class ReplayEnded(Exception):
    """The recorded data is exhausted (raised by :meth:`ReplayModel.poll`)."""


# --- the market model --------------------------------------------------------------------------


class ReplayModel:
    """Replays a file against the bot's orders in ``state`` (a ``MarketModel`` of the simulator).

    Orders are matched with the paper venue's functions (see the module docstring). The queue
    ahead of a new order is set when the next row is processed, from the snapshot in force when
    the order was placed (no row is processed between the placement and then, so it is the
    same snapshot).
    """

    enforces_post_only = True

    def __init__(
        self,
        path: Path,
        state: SimState,
        *,
        queue_position: QueuePosition = "back",
    ) -> None:
        self._path = path
        self._state = state
        self._front = queue_position == "front"
        self._handle: TextIO | None = None
        self._items: Iterator[tuple[int, FeedItem]] = iter(())
        self._book = Book(bids=(), asks=(), ts=0.0)
        self._offset = 0.0  # added to the file's times to pace a real-clock replay (monotonic)
        self._wall_offset = 0.0  # added to its trade times to stamp them (wall clock)
        self._queued_seq = 0  # orders up to this seq have their queue position
        self._pending: deque[VenueEvent | None] = deque()
        #: The next row and its time, read by :meth:`poll` and processed by :meth:`step`.
        self._next: tuple[float, FeedItem] | None = None
        self.items = 0  # rows processed (a snapshot counts one)

    @property
    def mid(self) -> float:
        """The recorded book's mid (NaN before the first snapshot)."""
        mid = self._book.mid
        return float(mid) if mid is not None else math.nan

    @property
    def recorded_book(self) -> Book:
        """The latest recorded snapshot (without the bot's orders)."""
        return self._book

    def start(self) -> None:
        """Open the file. On a virtual clock the replay runs on the file's own times (the clock
        should stand at or before the first row); on a real clock it is shifted to start now and
        plays at the recorded pace."""
        self._handle = open(self._path, encoding="utf-8", newline="")  # noqa: SIM115 - closed by close()
        _, items = iter_items(self._handle)
        clock = self._state.clock
        first = next(items, None)
        if first is None:
            self._items = iter(())
            return
        if not clock.is_virtual:
            # Paced on the interval clock; trades restamped on the calendar, like the orders
            # they are matched with (a trade before an order's time never fills it).
            self._offset = clock.now() - first[1].ts
            self._wall_offset = clock.wall() - first[1].ts
        self._items = itertools.chain((first,), items)

    def close(self) -> None:
        """Close the file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def best(self, side: Side) -> Decimal | None:
        """Best recorded price on ``side`` (other traders' liquidity)."""
        return self._book.best_bid if side is Side.BUY else self._book.best_ask

    def snapshot(self) -> Book:
        """The recorded levels merged with the bot's resting orders, at the clock's time."""
        orders = self._state.orders
        book = self._book
        bids = [SyntheticLevel(lv.price, lv.size) for lv in book.bids]
        asks = [SyntheticLevel(lv.price, lv.size) for lv in book.asks]
        return Book(
            bids=merged_levels(bids, orders.side(Side.BUY), Side.BUY),
            asks=merged_levels(asks, orders.side(Side.SELL), Side.SELL),
            ts=self._state.clock.wall(),
        )

    def poll(self) -> VenueEvent | float:
        """The next event if one is ready, else the time of the next row (see
        :class:`~kasmm.venues.sim.state.MarketModel`).

        :raises ReplayEnded: the data is exhausted.
        """
        if self._pending:
            event = self._pending.popleft()
            return BookUpdated(self.snapshot()) if event is None else event
        self._assign_queues()
        if self._next is None:
            nxt = next(self._items, None)
            if nxt is None:
                self.close()
                raise ReplayEnded(str(self._path))
            item = nxt[1]
            self.items += 1
            at = item.ts + self._offset
            if self._wall_offset and isinstance(item, PublicTrade):
                item = replace(item, ts=item.ts + self._wall_offset)
            self._next = (at, item)
        return self._next[0]

    def step(self) -> None:
        """Process the row :meth:`poll` timed (the clock stands at its time)."""
        assert self._next is not None, "step() without a timed row from poll()"
        _, item = self._next
        self._next = None
        self._process(item)

    def take(self, taker_side: Side, limit: Decimal, size: Decimal) -> list[Take]:
        """An immediate-or-cancel order's executions against the recorded book (see
        :class:`~.state.MarketModel`): what it takes is gone from the book until the next
        snapshot, and the queue ahead of the bot's orders is capped to what is left."""
        own_best = self._state.orders.best(taker_side.opposite)
        takes, self._book = take_from_book(self._book, own_best, taker_side, limit, size)
        if takes:
            cap_queues(self._book, self._state.orders)
        return takes

    def publish(self, events: Sequence[VenueEvent]) -> None:
        """Queue ``events``, then the book as it is when handed out."""
        self._pending.extend(events)
        self._pending.append(None)

    def _assign_queues(self) -> None:
        """Queue ahead of orders placed since the last row (see the class docstring)."""
        for order in self._state.orders:
            if order.seq > self._queued_seq:
                order.queue_ahead = (
                    Decimal(0)
                    if self._front
                    else displayed_queue(self._book, order.side, order.price)
                )
                self._queued_seq = order.seq

    def _process(self, item: FeedItem) -> None:
        state = self._state
        if isinstance(item, PublicTrade):
            for ex in match_trade(state.orders, item):
                self._pending.append(state.fill(ex.order, ex.price, ex.size))
            return
        book = Book(bids=item.bids, asks=item.asks, ts=state.clock.wall())
        for order in crossed_by_book(book, state.orders):
            self._pending.append(state.fill(order, order.price, order.remaining))
        cap_queues(book, state.orders)
        self._book = book
        self._pending.append(None)


# --- the venue ---------------------------------------------------------------------------------


def replay_rules_config(config: SimVenueConfig, header: ReplayHeader) -> SimVenueConfig:
    """The sim venue config with the recorded market's grid (header values win)."""
    update: dict[str, object] = {"market": RandomWalkMarket()}
    if header.tick is not None and header.tick > 0:
        update["tick"] = header.tick
    if header.lot is not None and header.lot > 0:
        update["lot"] = header.lot
    if header.min_notional is not None:
        update["min_notional"] = header.min_notional
    return config.model_copy(update=update)


class ReplayVenue(SimVenue):
    """The simulated venue serving a replay file instead of a synthetic market.

    Order admission, balances, fees and settlement are the simulator's (``config``: balances,
    fees, and tick/lot/min_notional unless the file's metadata gives them); the market is a
    :class:`ReplayModel`. :meth:`events` ends when the data ends.

    :raises ReplayFormatError: the file's header is malformed, or names another symbol.
    """

    def __init__(
        self,
        config: SimVenueConfig,
        symbol: str,
        clock: Clock,
        path: Path,
        *,
        queue_position: QueuePosition = "back",
        name: str = "replay",
    ) -> None:
        header = read_header(path)
        if header.symbol is not None and header.symbol != symbol:
            raise ReplayFormatError(f"{path}: the file records {header.symbol}, not {symbol}")
        super().__init__(replay_rules_config(config, header), symbol, clock, name=name)
        self.replay = ReplayModel(path, self._state, queue_position=queue_position)
        self.exchange.model = self.replay
        self.ended = False

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        """Replay until the data ends (then the stream ends) or the venue is closed."""
        exchange = self.exchange
        exchange.require_connected()
        while exchange.connected:
            try:
                event = await self._next_event()
            except ReplayEnded:
                self.ended = True
                return
            yield event

    def close_now(self) -> None:
        """Stop serving requests and close the file (a replay cannot resume after a close)."""
        super().close_now()
        self.replay.close()
