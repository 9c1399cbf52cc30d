"""``CcxtVenue``: a live exchange account on one spot symbol through ccxt.

Requests go through ccxt's ``async_support`` (or ``ccxt.pro``, a superset, when websockets are
wanted) with its throttle routed into the profile's token bucket (see :mod:`.client`). Every ccxt
exception is translated once, in :meth:`CcxtVenue.call`. Orders are validated against the market
rules before anything is sent (kasmm never lets ccxt round a price or size), and an order request
whose outcome is unknown is looked up by client id before anyone may try again. Batch requests
live in :mod:`.batch`, the native amend in :mod:`.amend`. The event stream lives in
:mod:`.stream`; this module provides the polls it is made of.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import structlog
from pydantic import SecretStr

from kasmm.clock import Clock
from kasmm.config.schema import CcxtVenueConfig
from kasmm.config.secrets import ResolvedCredentials
from kasmm.core.types import (
    Balances,
    Book,
    BookUpdated,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderClosed,
    OrderFilled,
    OrderRequest,
    VenueEvent,
)
from kasmm.errors import FatalVenueError, VenueError
from kasmm.limiter import TokenBucket
from kasmm.market.book import MarketBook
from kasmm.venues.base import BatchLimits, CancelOutcome, IocOutcome, PlaceOutcome
from kasmm.venues.batch import ConcurrentBatch
from kasmm.venues.ccxt import amend, batch, ioc, ops
from kasmm.venues.ccxt.client import build_exchange, configure_exchange
from kasmm.venues.ccxt.convert import (
    market_rules,
    timestamp_s,
    to_balances,
    to_book,
    to_open_order,
)
from kasmm.venues.ccxt.errors import translate
from kasmm.venues.ccxt.exchanges import (
    call_dead_man_switch,
    client_id_from_native,
    flavour_for,
)
from kasmm.venues.ccxt.shared_book import BookFeed, shared_book_stream
from kasmm.venues.ccxt.stream import StreamSettings, event_stream
from kasmm.venues.ccxt.tracker import OrderTracker

T = TypeVar("T")
ExchangeFactory = Callable[[], Any]

#: Default dead man's switch timeout; it is refreshed every third of it.
DEAD_MAN_SWITCH_S = 60.0
#: Trade history is re-read this far back (ms) from the newest trade seen, and from connect().
TRADES_OVERLAP_MS = 5_000
#: The first trade read after connect goes this far back (ms): fills of this account that
#: happened while no bot ran (a crash, a restart) are delivered too. The bot stores those its
#: ledger lacks and does not move its inventory for them (the balances it read hold them).
TRADES_BACKFILL_MS = 3_600_000
#: How far the local clock may run ahead of the exchange's before trade polls could miss a
#: trade (only until the first own trade is seen: then exchange times are compared).
CLOCK_SKEW_ALLOWANCE_MS = 300_000
#: Pages (of ``trades_limit`` trades) the backfill read may take.
TRADES_BACKFILL_PAGES = 10
#: Fields exchanges put an order's client id in, in their trade (fill) records.
_TRADE_CLIENT_ID_FIELDS = ("clientOrderId", "clientOid", "text")

log = structlog.get_logger("kasmm.venues.ccxt")


class CcxtVenue(ConcurrentBatch):
    """One exchange account trading one spot symbol; implements the ``Venue`` protocol."""

    def __init__(
        self,
        config: CcxtVenueConfig,
        symbol: str,
        clock: Clock,
        limiter: TokenBucket,
        *,
        credentials: ResolvedCredentials,
        exchange_factory: ExchangeFactory | None = None,
        use_websocket: bool = True,
        stream: StreamSettings | None = None,
        dead_man_switch_s: float | None = DEAD_MAN_SWITCH_S,
        book_feed: BookFeed | None = None,
    ) -> None:
        """Build the venue; nothing is sent before :meth:`connect`.

        :param exchange_factory: returns a ready ccxt instance (tests: one pointed at an
            emulator or with ``fetch`` replaced); default: built from ``config``.
        :param use_websocket: try ``ccxt.pro`` streams before falling back to REST polling.
        :param dead_man_switch_s: cancel-all-after timeout kept armed while ``events()`` runs
            (``None``: never arm it).
        :param book_feed: take the public book from this shared feed (the supervisor's hub)
            instead of requesting it (:mod:`.shared_book`); ``None``: the venue's own.
        """
        self.config = config
        self.symbol = symbol
        self.flavour = flavour_for(config.exchange)
        self.clock = clock
        self.limiter = limiter
        self.settings = stream or StreamSettings()
        self.use_websocket = use_websocket
        self.dead_man_switch_s = dead_man_switch_s
        self.book_feed = book_feed
        self.tracker = OrderTracker()
        rate = self.flavour.batch_place_per_s
        #: The exchange's own cap on batch placements (MEXC: 2 r/s), apart from the budget.
        self.batch_gate = TokenBucket(rate, rate, clock, name="batch") if rate else None
        self._credentials = credentials
        self._factory = exchange_factory
        self._exchange: Any = None
        self._rules: MarketRules | None = None
        self._market_id = ""
        self._book: Book | None = None
        self._book_at = -math.inf
        self._connected_ms = 0
        self._newest_trade_ms = 0
        self._backfilled = False
        self._dms_armed = False
        self._dms_unavailable_logged = False
        self.log = log.bind(venue=config.exchange, symbol=symbol)

    def __repr__(self) -> str:
        return f"CcxtVenue({self.config.exchange!r}, {self.symbol!r})"

    # --- plumbing -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The ccxt exchange id (``mexc``, ``gate``, ...)."""
        return self.config.exchange

    @property
    def exchange(self) -> Any:
        """The ccxt instance (built on first use)."""
        if self._exchange is None:
            if self._factory is not None:
                exchange = self._factory()
            else:
                exchange = build_exchange(
                    self.config, self._credentials, self.flavour, websocket=self.use_websocket
                )
            configure_exchange(exchange, self.config, self.flavour, self.limiter)
            self._exchange = exchange
        return self._exchange

    @property
    def market_id(self) -> str:
        """The exchange's id of the symbol (``KASUSDT``, ``KAS_USDT``, ``KAS-USDT``)."""
        return self._market_id

    @property
    def rules(self) -> MarketRules:
        """The market rules (after :meth:`connect`)."""
        if self._rules is None:
            raise FatalVenueError(f"{self.name} venue used before connect()")
        return self._rules

    @property
    def book(self) -> Book | None:
        """The newest book the event stream saw."""
        return self._book

    @property
    def book_age_s(self) -> float:
        """Seconds since the last book update (``inf`` before the first)."""
        return self.clock.now() - self._book_at

    @property
    def secrets(self) -> list[SecretStr]:
        """This account's credentials, to scrub from error messages."""
        secrets = [self._credentials.api_key, self._credentials.secret]
        if self._credentials.password is not None:
            secrets.append(self._credentials.password)
        return secrets

    def translate(self, exc: BaseException, action: str) -> VenueError:
        """``exc`` (from ccxt) as a kasmm error, scrubbed of this account's secrets."""
        return translate(exc, self.name, action=action, secrets=self.secrets)

    async def call(self, action: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one ccxt call; translate its failure (once: kasmm errors pass through)."""
        try:
            return await call()
        except VenueError:
            raise
        except Exception as exc:
            raise self.translate(exc, action) from exc

    # --- Venue protocol -----------------------------------------------------------------

    async def connect(self) -> MarketRules:
        """Load the market once and return its rules (later calls return the same rules)."""
        if self._rules is not None:
            return self._rules
        exchange = self.exchange
        method = self.flavour.spot_markets_method
        if exchange.markets:
            pass  # an injected instance that already has its markets
        elif method is not None:
            params = dict(self.flavour.markets_params)
            markets = await self.call("load_markets", lambda: getattr(exchange, method)(params))
            exchange.set_markets(markets)
        else:
            params = dict(self.flavour.markets_params)
            await self.call("load_markets", lambda: exchange.load_markets(False, params))
        market = await self.call("market", _awaitable(lambda: exchange.market(self.symbol)))
        try:
            rules = market_rules(market, int(exchange.precisionMode))
        except ValueError as exc:
            raise FatalVenueError(f"{self.name}: {exc}") from exc
        self._market_id = str(market["id"])
        # Exchange time is compared with exchange time where it can be (trade timestamps);
        # the local clock only anchors the first reads, with a skew allowance below.
        self._connected_ms = int(self.clock.wall() * 1000)
        self._newest_trade_ms = 0
        self._backfilled = False
        self._rules = rules
        self.log.info("venue_connected", tick=str(rules.tick), lot=str(rules.lot))
        return rules

    async def close(self) -> None:
        """Disarm the dead man's switch and release ccxt's sessions and sockets.

        Idempotent; a later :meth:`connect` starts over with a new ccxt instance.
        """
        exchange, self._exchange = self._exchange, None
        self._rules = None
        if exchange is None:
            return
        try:
            if self._dms_armed:
                self._dms_armed = False
                await call_dead_man_switch(exchange, self.flavour, self._market_id, None)
        except Exception as exc:  # best effort: the switch times out harmlessly if it stays
            self.log.warning("dead_mans_switch_disarm_failed", error=type(exc).__name__)
        finally:
            await exchange.close()

    def events(self) -> AsyncGenerator[VenueEvent, None]:
        """Books, fills and venue-side closes (websockets where possible, else REST polls;
        the books from ``book_feed`` when given)."""
        if self.book_feed is not None:
            return shared_book_stream(self, self.book_feed)
        return event_stream(self, self.settings, websocket=self.use_websocket)

    async def fetch_balances(self) -> Balances:
        """Free and locked balances of the account."""
        raw = await self.call("fetch_balances", lambda: self.exchange.fetch_balance())
        return to_balances(raw)

    async def fetch_open_orders(self) -> list[OpenOrder]:
        """Every open order on the symbol (the listing also refreshes the id map)."""
        started = self.clock.now()
        raw = await self.call(
            "fetch_open_orders", lambda: self.exchange.fetch_open_orders(self.symbol)
        )
        orders = [o for o in (self.to_open_order(r) for r in raw) if o is not None]
        self.tracker.observe_listing(orders, started)
        return orders

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        """Validate, place a limit order, and make sure a lost answer never duplicates it."""
        return await ops.place_order(self, request)

    async def place_ioc(self, request: OrderRequest) -> IocOutcome:
        """The exchange's own immediate-or-cancel order and its outcome (see :mod:`.ioc`)."""
        return await ioc.place_ioc(self, request)

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        """Cancel by client id (exchange id when known, else the client-id form)."""
        await ops.cancel_order(self, client_id)

    async def cancel_all(self, prefix: str) -> int:
        """Cancel the orders whose client id starts with ``prefix`` (never a symbol-wide cancel)."""
        return await ops.cancel_all(self, prefix)

    @property
    def batch_limits(self) -> BatchLimits:
        """Orders per batch request on this exchange (1: concurrent single requests)."""
        return self.flavour.batch

    async def place_orders(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        """Place several orders in one batch request where the exchange has one (see
        :mod:`.batch`); one outcome per request, in order."""
        return await batch.place_orders(self, requests)

    async def cancel_orders(self, client_ids: Sequence[ClientOrderId]) -> list[CancelOutcome]:
        """Cancel several orders in one batch request where the exchange has one; one outcome
        per client id, in order (``OrderNotFound`` for one already gone)."""
        return await batch.cancel_orders(self, client_ids)

    @property
    def supports_amend(self) -> bool:
        """True where :meth:`amend_order` changes an order in place (Gate spot)."""
        return self.flavour.supports_amend

    async def amend_order(
        self, client_id: ClientOrderId, price: Decimal, size: Decimal
    ) -> OpenOrder:
        """Move a resting order to ``price`` / total ``size`` in one request, keeping its ids
        (see :mod:`.amend` for the outcomes)."""
        return await amend.amend_order(self, client_id, price, size)

    # --- polls the event stream is made of ----------------------------------------------

    async def poll_book(self) -> BookUpdated:
        """Fetch the order book."""
        raw = await self.call(
            "fetch_order_book",
            lambda: self.exchange.fetch_order_book(self.symbol, self.settings.book_depth),
        )
        return self.on_book(raw)

    def on_book(self, raw: Mapping[str, Any]) -> BookUpdated:
        """Record a ccxt order book (REST or websocket) as the current book."""
        # The exchange's timestamp when it sends one; the local wall clock otherwise. The age
        # (stale-book rule, poll scheduling) is measured on the monotonic clock.
        book = to_book(raw, self.clock.wall(), self.settings.book_depth)
        self._book, self._book_at = book, self.clock.now()
        return BookUpdated(book)

    def on_shared_book(self, shared: MarketBook) -> BookUpdated:
        """Record a book of the shared feed as the current book, aged from its arrival (the
        feed reads deeper books than the venue's ``book_depth``: cut to it)."""
        depth = self.settings.book_depth
        book = shared.book
        if len(book.bids) > depth or len(book.asks) > depth:
            book = Book(book.bids[:depth], book.asks[:depth], book.ts)
        self._book, self._book_at = book, shared.received_at
        return BookUpdated(book)

    async def poll_orders(self, *, force_trades: bool = False) -> list[VenueEvent]:
        """List open orders; read new trades if anything changed; report venue-side closes.

        IOCs whose answer was lost are looked up first (:func:`.ioc.resolve_lost`): found,
        their trades read next are their fills."""
        if self.tracker.lost_iocs:
            await ioc.resolve_lost(self)
        await self.fetch_open_orders()
        events: list[VenueEvent] = []
        if force_trades or self.tracker.trades_due:
            events.extend(await self.poll_trades())
        now = self.clock.wall()
        for cid, reason in self.tracker.take_closed():
            self.log.info("order_closed_by_venue", client_id=cid, reason=reason)
            events.append(OrderClosed(ClientOrderId(cid), reason, now))
        return events

    async def poll_trades(self) -> list[VenueEvent]:
        """New own trades since the last poll, as fills (deduplicated by trade id)."""
        self.tracker.trades_due = False
        if not self._backfilled:
            events = await self._backfill_trades()
            self._backfilled = True
            return events
        # Re-read a few seconds (trades can be indexed late; duplicates are dropped by id).
        # The newest trade's exchange time once one was seen; before that the local connect
        # time, less the largest clock skew tolerated (a local clock running ahead of the
        # exchange's must not hide the trades in between).
        since = (
            max(self._newest_trade_ms, self._connected_ms - CLOCK_SKEW_ALLOWANCE_MS)
            - TRADES_OVERLAP_MS
        )
        raw = await self.call(
            "fetch_my_trades",
            lambda: self.exchange.fetch_my_trades(self.symbol, since, self.settings.trades_limit),
        )
        return self.on_trades(raw)

    async def _backfill_trades(self) -> list[VenueEvent]:
        """The first read: trades since ``TRADES_BACKFILL_MS`` before connect, page by page."""
        limit = self.settings.trades_limit
        since = self._connected_ms - TRADES_BACKFILL_MS
        events: list[VenueEvent] = []
        for _ in range(TRADES_BACKFILL_PAGES):
            raw = await self.call(
                "fetch_my_trades",
                lambda since=since: self.exchange.fetch_my_trades(  # type: ignore[misc]
                    self.symbol, since, limit
                ),
            )
            events.extend(self.on_trades(raw))
            stamps = [
                int(t["timestamp"]) for t in raw if isinstance(t.get("timestamp"), int | float)
            ]
            if len(raw) < limit or not stamps or max(stamps) <= since:
                break
            since = max(stamps)  # the same millisecond again: duplicates are dropped by id
        return events

    def on_trades(self, trades: list[Mapping[str, Any]]) -> list[VenueEvent]:
        """Fills for the trades not seen before (REST or websocket), oldest first."""
        now = self.clock.wall()  # a fill's timestamp when the trade carries none
        events: list[VenueEvent] = []
        ordered = sorted(trades, key=lambda t: t.get("timestamp") or 0)
        for trade in ordered:
            ts = trade.get("timestamp")
            if isinstance(ts, int | float):
                self._newest_trade_ms = max(self._newest_trade_ms, int(ts))
            fill = self.tracker.fill_from_trade(trade, now, self._trade_client_id(trade))
            if fill is not None:
                events.append(OrderFilled(fill))
        return events

    def _trade_client_id(self, trade: Mapping[str, Any]) -> str | None:
        """The client id an exchange trade carries, if any (for orders the tracker does not
        know: a previous run's, or one whose placement answer was lost).

        The field a trade uses is not always the one an order is placed with: MEXC places
        with ``newClientOrderId`` and reports ``clientOrderId`` in ``myTrades``.
        """
        info = trade.get("info")
        if not isinstance(info, Mapping):
            return None
        for key in (self.flavour.client_id_field, *_TRADE_CLIENT_ID_FIELDS):
            value = info.get(key)
            if isinstance(value, str) and value:
                return client_id_from_native(self.flavour, value)
        return None

    async def refresh_dead_man_switch(self) -> bool:
        """(Re)arm the exchange's cancel-all-after timer; False where there is none."""
        if self.dead_man_switch_s is None:
            return False
        if self.flavour.dead_man_switch == "none":
            if not self._dms_unavailable_logged:
                self._dms_unavailable_logged = True
                self.log.info("dead_mans_switch_unavailable")
            return False
        await self.call(
            "dead_mans_switch",
            lambda: call_dead_man_switch(
                self.exchange, self.flavour, self._market_id, self.dead_man_switch_s
            ),
        )
        self._dms_armed = True
        return True

    # --- conversions --------------------------------------------------------------------

    def to_open_order(self, raw: Mapping[str, Any]) -> OpenOrder | None:
        """A ccxt order as kasmm's ``OpenOrder`` (client id from the order or the id map)."""
        now = self.clock.wall()
        vid = raw.get("id")
        client_id = client_id_from_native(self.flavour, raw.get("clientOrderId"))
        if client_id is None:
            client_id = self.tracker.client_id_for(str(vid) if vid is not None else None) or ""
        tracked = self.tracker.get(client_id) if client_id else None
        created = tracked.created_at if tracked else timestamp_s(raw.get("timestamp"), now)
        return to_open_order(raw, client_id, created)


def _awaitable(call: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    """Wrap a synchronous ccxt call (``market()``) so that ``call`` translates its errors."""

    async def run() -> T:
        return call()

    return run
