"""The ccxt venue's event stream: websockets when they work, REST polling when they do not.

The stream always starts with a REST book snapshot, so its first event is a ``BookUpdated``.
Then, where the instance is a ``ccxt.pro`` exchange with ``watchOrderBook`` and ``watchMyTrades``,
books and fills come from websockets; any websocket failure falls back to REST polling and the
websockets are retried with exponential backoff (reset once they stayed up for a while). A
``NotSupported`` (MEXC without the protobuf runtime) turns them off for good.

Timers shared by both modes: the open-orders listing (which triggers a trade-history read when
something changed, and reports orders the venue closed), a periodic trade-history safety read,
and the dead man's switch refresh at a third of its timeout. The listing also runs early, every
``confirm_after_s``, while placements await confirmation (an exchange that accepts a crossing
post-only order and then cancels it: the listing, not a query per order, tells). Transient
errors of a poll are logged and backed off; authentication and fatal errors end the stream (the
bot fails and is restarted).
The websocket mode runs two ``asyncio`` tasks (ccxt is asyncio-only), cancelled on exit.

Websocket health (the failures market makers meet most: a feed that stays "connected" but stops
updating, a snapshot merged into a stale book after a reconnect):

* **first book**: until the websocket delivers its first book (ccxt's MEXC fetches its snapshot
  only after 25 pushes, and a quiet pair may push nothing for a while), REST polls the book.
* **no progress**: when the websocket book has not *changed* for ``feed_stall_s``, one REST
  snapshot decides. The same levels: a quiet market, carry on. Different levels: the feed is
  stalled (``feed_stalled``); the REST book is passed on, the session ends, REST polling takes
  over and the websockets are retried with the backoff above.
* **every session starts clean**: ccxt's websocket connections are closed and its cached book
  dropped before subscribing, so a resubscription rebuilds the book from a fresh snapshot
  instead of merging updates into the book of a dead connection.
* **sequence gaps** end the session the same way: those ccxt raises, and those it does not
  check (Gate ``spot.obu``, MEXC depth, KuCoin level 2), which
  :mod:`~kasmm.venues.ccxt.sequence` catches before the update reaches ccxt's book
  (``feed_gap``). On MEXC, the push that straddles the snapshot is applied as MEXC documents
  (:mod:`~kasmm.venues.ccxt.mexc_book`; ccxt drops it).
* **shared books**: a venue given a ``book_feed`` (the supervisor's hub) takes its books from
  it (:mod:`~kasmm.venues.ccxt.shared_book`) and this stream delivers only the account's fills,
  order closes and listings: no book requests, no book websocket, no stall check of its own.
* **private streams**: fills and order closes missed while a session was down or starting are
  read by REST right away (the trade history is forced at both ends of a session); fills are
  keyed by trade id, so one seen on both paths counts once.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Awaitable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import ccxt.async_support as ccxt

from kasmm.core.types import Book, VenueEvent
from kasmm.errors import AuthenticationFailed, FatalVenueError, VenueError
from kasmm.venues.ccxt.mexc_book import repair_mexc_book_sync
from kasmm.venues.ccxt.sequence import guard_book_sequence
from kasmm.venues.ccxt.ws_trades import repaired

if TYPE_CHECKING:
    from kasmm.venues.ccxt.venue import CcxtVenue

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Polling and reconnect timing of the event stream (seconds)."""

    #: REST order book poll interval (every poll is one ``BookUpdated``).
    book_interval_s: float = 0.5
    #: Open-orders listing interval in REST mode (fills are read when the listing changed).
    orders_interval_s: float = 1.0
    #: Open-orders listing interval while websockets deliver books and fills.
    ws_orders_interval_s: float = 5.0
    #: The trade history is read at least this often, changed listing or not.
    trades_safety_s: float = 10.0
    #: A placement whose answer cannot tell resting from cancelled-on-arrival is confirmed by a
    #: listing this soon after it (and again as often until a listing shows it or it closes).
    confirm_after_s: float = 0.5
    book_depth: int = 20
    trades_limit: int = 100
    ws_backoff_s: float = 1.0
    ws_backoff_max_s: float = 60.0
    #: A websocket session that lasted this long resets the reconnect backoff.
    ws_stable_s: float = 60.0
    #: Longest pause after consecutive failed polls.
    error_backoff_max_s: float = 10.0
    #: A websocket book unchanged this long is checked against a REST snapshot (see the
    #: module docstring): a stalled feed is resubscribed, a quiet market is left alone.
    feed_stall_s: float = 5.0


class FeedStalled(Exception):
    """The websocket book stopped changing while the market (a REST snapshot) did not."""


class FeedGap(Exception):
    """A websocket book update skipped ahead of the last one applied (see ``sequence.py``)."""


class _Timers:
    """When each periodic task is next due, and the backoff after failed polls."""

    def __init__(self, now: float) -> None:
        self.book = now
        self.orders = now
        self.trades = now
        self.dms = now
        self.confirm = now
        self.paused_until = -math.inf
        self.error_backoff = 0.0

    def failed(self, now: float, limit: float) -> None:
        self.error_backoff = min(limit, max(0.5, self.error_backoff * 2))
        self.paused_until = now + self.error_backoff

    def succeeded(self) -> None:
        self.error_backoff = 0.0


async def _guarded(venue: CcxtVenue, what: str, call: Awaitable[T], timers: _Timers) -> T | None:
    """Await one poll; log and back off on a non-fatal venue error (``None`` then)."""
    try:
        result = await call
    except (AuthenticationFailed, FatalVenueError):
        raise
    except VenueError as exc:
        timers.failed(venue.clock.now(), venue.settings.error_backoff_max_s)
        venue.log.warning(
            "poll_failed", poll=what, error=type(exc).__name__, backoff_s=timers.error_backoff
        )
        return None
    timers.succeeded()
    return result


async def _periodic(
    venue: CcxtVenue, timers: _Timers, *, websocket: bool
) -> AsyncGenerator[VenueEvent, None]:
    """Run whatever is due: book (REST mode), orders listing + trades, dead man's switch."""
    settings = venue.settings
    now = venue.clock.now()
    if now < timers.paused_until:
        return
    if not websocket and venue.book_feed is None and now >= timers.book:
        timers.book = now + settings.book_interval_s
        book = await _guarded(venue, "book", venue.poll_book(), timers)
        if book is not None:
            yield book
    confirm = now >= timers.confirm and venue.tracker.confirmation_due(
        now, settings.confirm_after_s
    )
    if now >= timers.orders or confirm:
        force = now >= timers.trades
        timers.orders = now + (
            settings.ws_orders_interval_s if websocket else settings.orders_interval_s
        )
        timers.confirm = now + settings.confirm_after_s
        events = await _guarded(venue, "orders", venue.poll_orders(force_trades=force), timers)
        if events is not None:
            if force:
                timers.trades = now + settings.trades_safety_s
            for event in events:
                yield event
    if now >= timers.dms:
        dms = venue.dead_man_switch_s
        timers.dms = now + (dms / 3 if dms else math.inf)
        await _guarded(venue, "dead_mans_switch", venue.refresh_dead_man_switch(), timers)


def _next_due(venue: CcxtVenue, timers: _Timers, *, websocket: bool) -> float:
    confirm_after = venue.settings.confirm_after_s
    confirm = max(timers.confirm, venue.tracker.next_confirmation(confirm_after))
    due = min(timers.orders, timers.dms, confirm)
    if not websocket and venue.book_feed is None:
        due = min(due, timers.book)
    return max(due, timers.paused_until)


def supports_websocket(exchange: Any) -> bool:
    """True for a ``ccxt.pro`` instance with order book and own-trade streams."""
    has = getattr(exchange, "has", {}) or {}
    return bool(has.get("watchOrderBook")) and bool(has.get("watchMyTrades"))


async def event_stream(
    venue: CcxtVenue, settings: StreamSettings, *, websocket: bool
) -> AsyncGenerator[VenueEvent, None]:
    """The venue's events; see the module docstring."""
    clock = venue.clock
    timers = _Timers(clock.now())
    # The first event is a book, whatever it takes (a shared book: the caller's first).
    while venue.book_feed is None:
        first = await _guarded(venue, "book", venue.poll_book(), timers)
        if first is not None:
            timers.book = clock.now() + settings.book_interval_s
            yield first
            break
        await clock.sleep_until(timers.paused_until)
    ws_enabled = websocket and supports_websocket(venue.exchange)
    backoff = settings.ws_backoff_s
    next_ws = clock.now()
    while True:
        if ws_enabled and clock.now() >= next_ws:
            started = clock.now()
            try:
                async with aclosing(_websocket_events(venue, timers)) as ws_events:
                    async for event in ws_events:
                        yield event
            except ccxt.NotSupported as exc:
                ws_enabled = False
                venue.log.warning("websocket_unavailable", error=type(exc).__name__)
            except (AuthenticationFailed, FatalVenueError):
                raise  # from a REST call: the credentials or the market are unusable
            # A ccxt AuthenticationError here comes from the websocket itself (an expired listen
            # key or token): the next session renews it, and REST, whose own authentication
            # errors do end the stream, serves meanwhile.
            except Exception as exc:
                if clock.now() - started >= settings.ws_stable_s:
                    backoff = settings.ws_backoff_s
                next_ws = clock.now() + backoff
                venue.log.warning("websocket_failed", error=type(exc).__name__, retry_in_s=backoff)
                backoff = min(backoff * 2, settings.ws_backoff_max_s)
            continue
        async with aclosing(_periodic(venue, timers, websocket=False)) as due:
            async for event in due:
                yield event
        wake = _next_due(venue, timers, websocket=False)
        if ws_enabled:
            wake = min(wake, next_ws)
        await clock.sleep_until(wake)


def _discard(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" noise


async def fresh_websockets(exchange: Any, symbol: str) -> None:
    """Close ccxt's websocket connections and drop its cached book, so the next subscription
    opens new connections and rebuilds the book from a fresh snapshot (ccxt #29210: a
    snapshot merged into the book of a dead connection)."""
    close = getattr(exchange, "close_ws_clients", None)
    if close is not None and getattr(exchange, "clients", None):
        await close()
    books = getattr(exchange, "orderbooks", None)
    if isinstance(books, dict):
        books.pop(symbol, None)
    # MEXC and BingX keep the private stream's listen key here and reconnect with it even once
    # it expired ("invalid listen key"): a new session asks for a new one. BingX asks only when
    # its last key is older than ``listenKeyRefreshRate`` (an hour): without its time reset too,
    # every session after the first would fail for an hour ("requires ... a listen key").
    options = getattr(exchange, "options", None)
    if isinstance(options, dict) and options.get("listenKey") is not None:
        options["listenKey"] = None
        if "lastAuthenticatedTime" in options:
            options["lastAuthenticatedTime"] = 0


#: After a websocket book, the stream looks at ccxt's book once more this soon (see
#: :func:`_applied_since`): the last update of a burst reaches the bot within it.
_SETTLE_S = 0.02


def _applied_since(exchange: Any, symbol: str, nonce: Any) -> Any:
    """ccxt's book when updates were applied to it after the one read at ``nonce``, else
    ``None``.

    ccxt resolves a watch only if one is waiting when an update arrives; updates applied while
    the bot handled the previous book (before the next watch was armed) wake no one, and the
    last of a burst would reach the bot only with the next push, however late. Its book
    object holds them already.
    """
    if nonce is None:
        return None
    stored = (getattr(exchange, "orderbooks", None) or {}).get(symbol)
    latest = stored.get("nonce") if stored is not None else None
    return stored if latest is not None and latest != nonce else None


def _reconcile_now(venue: CcxtVenue, timers: _Timers) -> None:
    """Read open orders and the trade history by REST at the next chance: what a private
    stream may have missed around a session change (fills are keyed by trade id)."""
    now = venue.clock.now()
    timers.orders = min(timers.orders, now)
    timers.trades = min(timers.trades, now)


async def _websocket_events(venue: CcxtVenue, timers: _Timers) -> AsyncGenerator[VenueEvent, None]:
    """Books and fills from ``ccxt.pro``, plus the shared REST timers, until a stream fails
    or the book stalls (see the module docstring)."""
    exchange = venue.exchange
    symbol = venue.symbol
    clock = venue.clock
    stall_s = venue.settings.feed_stall_s
    await fresh_websockets(exchange, symbol)
    gap: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_gap(detail: str) -> None:
        if not gap.done():
            gap.set_result(detail)

    guard_book_sequence(exchange, venue.flavour.exchange, on_gap)
    if venue.flavour.exchange == "mexc":
        repair_mexc_book_sync(exchange)  # see mexc_book.py: ccxt drops a straddling push
    # A shared book (kasmm.venues.ccxt.shared_book) comes from the hub, which checks its
    # health: this session watches only the account's own trades.
    shared = venue.book_feed is not None
    book_task: asyncio.Future[Any] = (
        asyncio.get_running_loop().create_future()
        if shared
        else asyncio.ensure_future(exchange.watch_order_book(symbol))
    )
    trades_task: asyncio.Future[Any] = asyncio.ensure_future(exchange.watch_my_trades(symbol))
    _reconcile_now(venue, timers)
    venue.log.info("websocket_started")
    last_book: Book | None = None
    last_nonce: Any = None  # ccxt's nonce of the book last passed on
    settling = False  # look once more shortly after a book (see _applied_since)
    changed_at = clock.now()
    try:
        while True:
            # Until the websocket's first book (ccxt's MEXC waits for 25 pushes before its
            # snapshot; a quiet pair may push none), the book is polled by REST as without one.
            streaming = shared or last_book is not None
            due = _next_due(venue, timers, websocket=streaming)
            if streaming and not shared:
                due = min(due, changed_at + stall_s)
            timeout = max(0.0, due - clock.now())
            if settling:
                timeout = min(timeout, _SETTLE_S)
            done, _ = await asyncio.wait(
                {book_task, trades_task, gap}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            settling = False
            if gap.done():
                # The update that skipped ahead never reached ccxt's book: nothing built on it
                # was passed on. This session ends; the next one starts from a snapshot.
                venue.log.warning("feed_gap", detail=gap.result())
                raise FeedGap(gap.result())
            raw_book: Any = None
            if book_task in done:
                raw_book = book_task.result()
                book_task = asyncio.ensure_future(exchange.watch_order_book(symbol))
            else:
                raw_book = _applied_since(exchange, symbol, last_nonce)
            while raw_book is not None:
                last_nonce = raw_book.get("nonce")
                updated = venue.on_book(raw_book)
                if last_book is None or not updated.book.same_levels_as(last_book):
                    changed_at = clock.now()
                last_book = updated.book
                yield updated
                raw_book = _applied_since(exchange, symbol, last_nonce)
                settling = True
            if trades_task in done:
                raw_trades = trades_task.result()
                trades_task = asyncio.ensure_future(exchange.watch_my_trades(symbol))
                exchange_id = venue.flavour.exchange
                for event in venue.on_trades([repaired(exchange_id, t) for t in raw_trades]):
                    yield event
            if streaming and not shared and clock.now() - changed_at >= stall_s:
                snapshot = await _guarded(venue, "book", venue.poll_book(), timers)
                if snapshot is None or (
                    last_book is not None and snapshot.book.same_levels_as(last_book)
                ):
                    changed_at = clock.now()  # a quiet market (or no answer): look again later
                else:
                    unchanged_s = clock.now() - changed_at
                    venue.log.warning("feed_stalled", unchanged_s=round(unchanged_s, 3))
                    yield snapshot
                    raise FeedStalled(f"no book change for {unchanged_s:.1f} s")
            async with aclosing(_periodic(venue, timers, websocket=streaming)) as periodic:
                async for event in periodic:
                    yield event
    finally:
        for task in (book_task, trades_task):
            task.cancel()
            task.add_done_callback(_discard)
        _reconcile_now(venue, timers)
