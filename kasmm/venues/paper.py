"""``PaperVenue`` (``venue.type: paper``): a real market's live public data, fills simulated here.

Nothing is sent to the exchange and no keys are needed: the venue reads books and trades from a
:class:`~kasmm.venues.paper_feed.PublicFeed` (by default :class:`CcxtPublicFeed`) and runs the
bot's orders against them locally, with the simulator's order rules and balance ledger.

**Orders** are checked like the simulator checks them (:mod:`kasmm.venues.sim.orders`): tick,
lot, minimum size and notional, unique open client id, free balance (locked on placement,
unlocked on cancel). An order at or through the best opposite price of the live book (or of the
bot's own orders) is refused: ``PostOnlyWouldCross`` when post-only, ``OrderRejected`` otherwise,
since paper trading only simulates the bot as a maker. Placing before the first live book has
arrived raises ``TransientVenueError``.

**Fills** are maker fills at the order's own price, fees and settlement as in
:mod:`kasmm.venues.sim.state`:

* *Trades.* A resting bid fills when a trade prints at or below its price with the taker selling;
  an ask when a trade prints at or above its price with the taker buying. Trades that printed
  before the order was placed (``trade.ts < order.created_at``) do not count. One trade fills at
  most its own size across the bot's orders, best price first, then first placed first.
* *Queue position* (``queue_position``). An order priced better than the trade was traded
  through: it fills (up to the trade's size) whatever the queue. An order at the trade's price
  fills only with the part of the trade that got past the other traders queued ahead of it.
  ``front``: nobody is ahead. ``back`` (the default): ahead of a new order is the size the live
  book displayed at its price when it was placed (zero at a new price inside the displayed depth;
  unknown, so unbounded, beyond it). Every trade at that price then works through that volume.
  The queue ahead can never be longer than the level itself, so each live book caps it at the
  size now displayed at the order's price (zero once the level is empty): cancellations ahead of
  the order move it up too. The bot's own orders at one price queue behind each other in
  placement order.
* *The book moving through the order.* When a live book's best ask is at or below a resting bid
  (or its best bid at or above a resting ask), the order would have been taken: it fills in full
  at its own price. These fills come out before the ``BookUpdated`` of that book.

**Immediate-or-cancel orders** (``place_ioc``) take the last live book's levels at once, up to
their limit price, never the bot's own orders (self-trade prevention: the order stops there), with
the taker fee; what they took is gone from the book (and from the queue ahead of the bot's orders)
until the next live book.

**Events**: ``BookUpdated`` for every live book (stamped with the venue clock's time when it was
processed) and ``OrderFilled`` for every simulated fill, in the order they happened. Feed items
are processed only while :meth:`PaperVenue.events` is iterated; with a virtual clock, each item
first advances the clock to its timestamp (replaying recorded data drives time). One feed stream
serves every ``events()`` iterator in turn, so a new iterator continues where the last stopped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from decimal import Decimal

from kasmm.clock import Clock
from kasmm.config.schema import PaperVenueConfig
from kasmm.core.types import (
    ZERO,
    Balances,
    Book,
    BookUpdated,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.core.venue_time import VenueClock
from kasmm.errors import FatalVenueError, OrderNotFound, TransientVenueError, VenueError
from kasmm.venues.base import IocOutcome, require_ioc, require_resting
from kasmm.venues.batch import ConcurrentBatch
from kasmm.venues.paper_feed import CcxtPublicFeed
from kasmm.venues.public_data import FeedItem, PublicFeed, PublicTrade
from kasmm.venues.queue_matching import (
    cap_queues,
    crossed_by_book,
    displayed_queue,
    match_trade,
)
from kasmm.venues.sim.ioc import take_from_book
from kasmm.venues.sim.matching import combined_best
from kasmm.venues.sim.orders import bps_to_fraction, check_cross, validate_request
from kasmm.venues.sim.state import Ledger, SimState, SimStats, trade_id_prefix

# --- the venue ------------------------------------------------------------------------------


class PaperVenue(ConcurrentBatch):
    """Paper trading on a live market; implements the ``Venue`` protocol.

    :param config: the profile's ``venue`` section.
    :param symbol: ``BASE/QUOTE``.
    :param clock: ``RealClock`` live; a ``VirtualClock`` to replay recorded data or in tests.
    :param feed: the market data source (default: :class:`CcxtPublicFeed` built from ``config``).
    :param trade_id_tag: this instance's part of its trade ids (``paper-<tag>-<n>``); random by
        default, so that a rebuilt venue never repeats a trade id the ledger stored.
    """

    def __init__(
        self,
        config: PaperVenueConfig,
        symbol: str,
        clock: Clock,
        *,
        feed: PublicFeed | None = None,
        name: str | None = None,
        trade_id_tag: str | None = None,
    ) -> None:
        base, sep, quote = symbol.partition("/")
        if not (base and sep and quote) or "/" in quote:
            raise ValueError(f"symbol must look like BASE/QUOTE, got {symbol!r}")
        self._config = config
        self._clock = clock
        self._name = name or f"paper-{config.exchange}"
        self._feed: PublicFeed = feed or CcxtPublicFeed(
            config.exchange,
            symbol,
            rest_url=config.rest_url,
            use_websocket=config.use_websocket,
            poll_interval_s=config.poll_interval_s,
            timeout_s=config.timeout_s,
        )
        self._front = config.queue_position == "front"
        # Unique to this instance: the ledger keeps every trade id a previous instance stored.
        self._trade_id_prefix = trade_id_prefix("paper", trade_id_tag)
        self._state: SimState | None = None
        self._book: Book | None = None
        self._pending: deque[VenueEvent] = deque()
        self._stream: AsyncGenerator[FeedItem, None] | None = None
        self._pulling = False
        self._connected = False
        #: The exchange's clock, estimated from the feed's timestamps (real time only).
        self._exchange_clock = VenueClock()

    def _market_time(self) -> float:
        """Now, in the time the live trades are stamped with: an order is booked at it, so
        "printed before the order" compares exchange time with exchange time (a local clock
        running ahead of the exchange's would otherwise hide the trades after the order)."""
        if self._clock.is_virtual:
            return self._clock.wall()  # a replay's clock is the market's
        estimate = self._exchange_clock.at(self._clock.now())
        return self._clock.wall() if estimate is None else estimate

    # --- introspection ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """``paper-<exchange>`` unless named otherwise."""
        return self._name

    @property
    def rules(self) -> MarketRules:
        """The market's rules as :meth:`connect` returned them."""
        return self._require_state().rules

    @property
    def book(self) -> Book | None:
        """The latest live book processed (``None`` before the first)."""
        return self._book

    @property
    def closed(self) -> bool:
        """True until :meth:`connect`, and again after :meth:`close`."""
        return not self._connected

    @property
    def stats(self) -> SimStats:
        """Request and fill counters."""
        return self._require_state().stats()

    # --- restart on an existing ledger (kasmm.venues.sim.account.SimulatedAccount) -----------

    def starting_balances(self) -> dict[str, Decimal] | None:
        """The configured balances, after :meth:`connect` and until the first order."""
        return None if self._state is None else self._state.starting_balances()

    def restore_balances(self, balances: Mapping[str, Decimal]) -> None:
        """Start from the balances the ledger implies instead of the configured ones.

        :raises RuntimeError: not connected yet, or an order was placed already.
        """
        if self._state is None:
            raise RuntimeError(f"{self._name}: balances can be restored once connected")
        self._state.restore_balances(balances)

    # --- the Venue protocol -------------------------------------------------------------------

    async def connect(self) -> MarketRules:
        """Load the market (first call only: balances and orders survive a reconnect).

        :raises VenueError: the feed could not load the market.
        """
        if self._state is None:
            rules = await self._feed.load_market()
            fees = self._config.fees
            if fees is not None:
                rules = replace(
                    rules,
                    maker_fee=bps_to_fraction(fees.maker_bps),
                    taker_fee=bps_to_fraction(fees.taker_bps),
                )
            ledger = Ledger(
                rules.base, rules.quote, self._config.balances, rules.maker_fee, enforce=True
            )
            self._state = SimState(
                rules,
                self._clock,
                ledger,
                trade_id_prefix=self._trade_id_prefix,
                order_time=self._market_time,
            )
        self._connected = True
        return self._state.rules

    async def close(self) -> None:
        """Stop: ``events()`` ends and the feed's connections close. Orders stay booked."""
        self._connected = False
        stream, self._stream = self._stream, None
        if stream is not None and not self._pulling:  # a running generator cannot be closed
            await stream.aclose()
        await self._feed.close()

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        """Process feed items and yield the resulting events, until closed (or the feed ends)."""
        self._require_connected()
        while self._connected:
            if self._pending:
                yield self._pending.popleft()
                continue
            try:
                item = await self._next_item()
            except VenueError:
                if self.closed:
                    return
                raise
            if item is None:
                return
            await self._process(item)

    async def fetch_balances(self) -> Balances:
        """Virtual free and locked balances."""
        return self._require_connected().ledger.snapshot()

    async def fetch_open_orders(self) -> list[OpenOrder]:
        """All open orders in placement order, whatever their client id prefix."""
        return [o.to_open_order() for o in self._require_connected().orders]

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        """Validate, lock funds for and book a limit order (see the module docstring).

        :raises OrderRejected: a rule violation, or a crossing order that is not post-only.
        :raises PostOnlyWouldCross: a post-only order at or through the best opposite price.
        :raises InsufficientFunds: the free balance cannot back the order.
        :raises TransientVenueError: no live book has arrived yet.
        """
        state = self._require_connected()
        state.places += 1
        try:
            require_resting(request)
            validate_request(state.rules, state.orders, request)
            book = self._book
            if book is None:
                raise TransientVenueError(f"{self._name}: no live order book yet")
            opposite = request.side.opposite
            live_best = book.best_ask if opposite is Side.SELL else book.best_bid
            check_cross(request, combined_best(live_best, state.orders, opposite))
            order = state.add_order(request)
        except VenueError:
            state.rejects += 1
            raise
        order.queue_ahead = ZERO if self._front else displayed_queue(book, order.side, order.price)
        return order.to_open_order()

    async def place_ioc(self, request: OrderRequest) -> IocOutcome:
        """Take the last live book's liquidity up to ``request.price`` at once and cancel the
        rest (the simulator's IOC rules, :mod:`kasmm.venues.sim.ioc`: never against the
        account's own orders, funds for the whole order, the taker fee). What it took is gone
        from the book until the next live book; its fills (``is_maker=False``), then that
        book, come out of :meth:`events`.

        :raises OrderRejected: not an IOC request, or a rule violation.
        :raises InsufficientFunds: the free balance cannot back the whole order at its limit.
        :raises TransientVenueError: no live book has arrived yet.
        """
        state = self._require_connected()
        state.places += 1
        try:
            require_ioc(request)
            validate_request(state.rules, state.orders, request)
            book = self._book
            if book is None:
                raise TransientVenueError(f"{self._name}: no live order book yet")
            state.ledger.check_take(
                request.side, request.price, request.size, state.rules.taker_fee
            )
        except VenueError:
            state.rejects += 1
            raise
        own_best = state.orders.best(request.side.opposite)
        takes, left = take_from_book(book, own_best, request.side, request.price, request.size)
        venue_id, fills = state.take(request, takes)
        if fills:
            cap_queues(left, state.orders)
            self._book = left = replace(left, ts=self._clock.wall())
            self._pending.extend(fills)
            self._pending.append(BookUpdated(left))
        filled = sum((size for _, size in takes), ZERO)
        notional = sum((price * size for price, size in takes), ZERO)
        return IocOutcome.of(request.client_id, request.size, filled, notional, venue_id)

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        """Cancel one open order and unlock its funds.

        :raises OrderNotFound: no open order has this client id.
        """
        state = self._require_connected()
        state.cancels += 1
        if state.cancel(client_id) is None:
            raise OrderNotFound(f"no open order {client_id!r}")

    async def cancel_all(self, prefix: str) -> int:
        """Cancel every open order whose client id starts with ``prefix``; return the count."""
        state = self._require_connected()
        state.cancels += 1
        return state.cancel_prefix(prefix)

    # --- internals ----------------------------------------------------------------------------

    def _require_state(self) -> SimState:
        if self._state is None:
            raise FatalVenueError(f"{self._name}: not connected")
        return self._state

    def _require_connected(self) -> SimState:
        state = self._require_state()
        if not self._connected:
            raise FatalVenueError(f"{self._name}: not connected")
        return state

    async def _next_item(self) -> FeedItem | None:
        """The next feed item, or ``None`` when the feed ended. A stream that raised (or was
        cancelled) is finished: the next call starts a new one."""
        if self._stream is None:
            self._stream = self._feed.watch()
        self._pulling = True
        try:
            return await anext(self._stream)
        except StopAsyncIteration:
            self._stream = None
            return None
        except BaseException:
            self._stream = None
            raise
        finally:
            self._pulling = False

    async def _process(self, item: FeedItem) -> None:
        if self._clock.is_virtual:
            await self._clock.sleep_until(item.ts)
        else:
            self._exchange_clock = self._exchange_clock.observe(item.ts, self._clock.now())
        state = self._require_state()
        if isinstance(item, PublicTrade):
            for ex in match_trade(state.orders, item):
                self._pending.append(state.fill(ex.order, ex.price, ex.size))
            return
        book = replace(item, ts=self._clock.wall())
        for order in crossed_by_book(book, state.orders):
            self._pending.append(state.fill(order, order.price, order.remaining))
        cap_queues(book, state.orders)
        self._book = book
        self._pending.append(BookUpdated(book))
