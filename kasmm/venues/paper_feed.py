"""Public market data for the paper venue: a ccxt source of the :class:`PublicFeed` protocol
(:mod:`kasmm.venues.public_data`).

:class:`CcxtPublicFeed` reads one spot market of a real exchange without credentials. It shares
the live ccxt venue's per-exchange facts (:mod:`kasmm.venues.ccxt.exchanges`), so a paper
profile loads markets, interprets ``rest_url`` and converts data exactly like a live one:

* **Markets**: spot only, as the live venue loads them: MEXC and BingX through
  ``fetch_spot_markets()`` (their ``load_markets()`` also downloads every derivatives market;
  MEXC's swap list alone costs 100 request weight), Gate and KuCoin through ``load_markets()``
  restricted to ``types: ['spot']``. The account-mode options of CCXT_NOTES.md (KuCoin ``hf``
  without ``uta``, Gate ``unifiedAccount: False``) are set too, so no call needs a key.
* **Streaming**: ``watch_order_book`` and ``watch_trades`` of ``ccxt.pro`` when ``use_websocket``
  and the exchange has both (only the book with ``watch(trades=False)``). Any websocket error
  (or no book for :data:`WS_STALE_S`) switches to REST polling; the websocket is retried after a
  backoff that doubles from ``ws_backoff_s[0]`` up to ``ws_backoff_s[1]`` and resets once data
  flows again. ``NotSupported`` ends websocket use for good. MEXC's spot websocket is protobuf,
  whose runtime ccxt does not ship: without ``google.protobuf`` MEXC polls REST from the start.
* **Health**, the live venue's rules (:mod:`kasmm.venues.ccxt.stream`), reused: every session
  starts from fresh connections and a fresh snapshot; sequence gaps on the channels ccxt does
  not check end the session (``feed_gap``); a book unchanged for ``stall_s`` is compared with a
  REST snapshot, and when they differ the snapshot is passed on and the session ends
  (``feed_stalled``). Either way REST serves until the websocket is retried.
* **Polling**: every ``poll_interval_s``, ``fetch_trades(limit=...)`` then ``fetch_order_book``;
  the recent-trades list is filtered client-side by timestamp and trade id instead of ccxt's
  ``since`` (MEXC requires ``until`` with it, KuCoin and BingX ignore it). The first batch only
  primes that filter: trades printed before the feed started are never reported. Network errors
  and garbled answers are logged and retried with backoff; other errors end the stream as kasmm
  errors.
* **rest_url**: the live venue's override (``kasmm.venues.ccxt.exchanges.rest_urls``): the
  exchange's spot REST sections point at it (Gate's ``/api/v4`` and BingX's ``/openApi`` are
  appended unless present). Websockets keep the exchange's own URLs.

Trades with no taker side are classified against the last book (at or below the best bid: a
sell; at or above the best ask: a buy) and dropped when that is ambiguous.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, Final

import anyio
import ccxt.async_support as ccxt
import structlog

from kasmm.core.types import Book, MarketRules
from kasmm.errors import FatalVenueError
from kasmm.market.book import BookSource
from kasmm.venues.ccxt.decimal_context import isolate_decimal_context
from kasmm.venues.ccxt.errors import translate
from kasmm.venues.ccxt.mexc_book import repair_mexc_book_sync
from kasmm.venues.ccxt.sequence import guard_book_sequence
from kasmm.venues.ccxt.stream import FeedGap, FeedStalled, fresh_websockets
from kasmm.venues.public_ccxt import (
    BOOK_DEPTH,
    DEFAULT_FEE,
    TradeFilter,
    book_from_ccxt,
    build_exchange,
    flavour_of,
    protobuf_available,
    rules_from_market,
)
from kasmm.venues.public_data import FeedItem

__all__ = [
    "BOOK_DEPTH",
    "DEFAULT_FEE",
    "STALL_S",
    "CcxtPublicFeed",
    "TradeFilter",
    "book_from_ccxt",
    "build_exchange",
    "rules_from_market",
]

log = structlog.get_logger("kasmm.paper")

#: Recent trades requested per poll (BingX serves at most 100).
TRADES_LIMIT: Final = 100
#: A websocket book stream silent for this long counts as failed.
WS_STALE_S: Final = 30.0
#: A websocket book unchanged this long is checked against a REST snapshot (the live venue's
#: ``feed_stall_s`` default).
STALL_S: Final = 5.0
#: Longest wait between REST retries after consecutive network errors.
MAX_POLL_BACKOFF_S: Final = 30.0


class CcxtPublicFeed:
    """A :class:`PublicFeed` reading one spot market through ccxt (see the module docstring).

    :param exchange: a prebuilt ccxt instance to use instead of building one (tests).
    :param enable_rate_limit: ccxt's own request throttle (keep it on against real exchanges).
    :param ws_url: the spot websocket endpoint instead of the exchange's (an emulator).
    :param stall_s: a websocket book unchanged this long is checked against REST.
    """

    def __init__(
        self,
        exchange_id: str,
        symbol: str,
        rest_url: str | None = None,
        use_websocket: bool = True,
        poll_interval_s: float = 1.0,
        *,
        timeout_s: float = 10.0,
        enable_rate_limit: bool = True,
        ws_backoff_s: tuple[float, float] = (1.0, 60.0),
        exchange: Any = None,
        ws_url: str | None = None,
        stall_s: float = STALL_S,
    ) -> None:
        self.exchange_id = exchange_id
        self.symbol = symbol
        self.exchange: Any = exchange or build_exchange(
            exchange_id,
            websocket=use_websocket,
            rest_url=rest_url,
            timeout_s=timeout_s,
            enable_rate_limit=enable_rate_limit,
            ws_url=ws_url,
        )
        isolate_decimal_context(self.exchange)  # an injected one too
        self._poll_interval_s = poll_interval_s
        self._ws_backoff_s = ws_backoff_s
        self._stall_s = stall_s
        has = getattr(self.exchange, "has", {}) or {}
        self._ws_books = bool(use_websocket and has.get("watchOrderBook"))
        self._ws_trades = bool(has.get("watchTrades"))
        if self._ws_books and self.exchange.id == "mexc" and not protobuf_available():
            log.info("paper_feed_rest_only", exchange=exchange_id, reason="protobuf not installed")
            self._ws_books = False
        self._trades = TradeFilter()
        self._last_book: Book | None = None
        self._book_source: BookSource = "rest"
        self._closed = False

    async def load_market(self) -> MarketRules:
        """Load the spot market list only and return the rules of ``symbol``.

        :raises FatalVenueError: unknown symbol or not a spot market.
        :raises TransientVenueError: the exchange could not be reached.
        """
        self._reopen()
        ex = self.exchange
        method = flavour_of(self.exchange_id).spot_markets_method
        try:
            if method is not None:
                ex.set_markets(await getattr(ex, method)({}))
            else:
                await ex.load_markets()
            market = ex.market(self.symbol)
        except ccxt.BadSymbol as exc:
            raise FatalVenueError(f"{self.exchange_id} has no market {self.symbol}") from exc
        except ccxt.BaseError as exc:
            raise translate(exc, self.exchange_id, action="load_market") from exc
        return rules_from_market(self.symbol, market, int(ex.precisionMode))

    async def watch(self, *, trades: bool = True) -> AsyncGenerator[FeedItem, None]:
        """Books and new trades (books only without ``trades``) until :meth:`close`:
        websockets first, REST when they fail."""
        self._reopen()
        backoff = self._ws_backoff_s[0]
        while not self._closed:
            if not self._websocket_for(trades):
                async with aclosing(self._poll(until=None, trades=trades)) as polled:
                    async for item in polled:
                        yield item
                return
            try:
                async with aclosing(self._stream(trades)) as streamed:
                    async for item in streamed:
                        backoff = self._ws_backoff_s[0]
                        yield item
            except Exception as exc:  # any websocket trouble: poll REST meanwhile
                if self.closed:
                    return
                permanent = isinstance(exc, ccxt.NotSupported)
                log.warning(
                    "paper_feed_websocket_failed",
                    exchange=self.exchange_id,
                    error=f"{type(exc).__name__}: {exc}"[:300],
                    fallback="rest" if permanent else f"rest for {backoff:g}s",
                )
                if permanent:
                    self._ws_books = False
                    continue
                await self.exchange.close_ws_clients()
            until = time.monotonic() + backoff
            async with aclosing(self._poll(until=until, trades=trades)) as polled:
                async for item in polled:
                    yield item
            backoff = min(backoff * 2, self._ws_backoff_s[1])

    @property
    def uses_websocket(self) -> bool:
        """Whether :meth:`watch` streams over websockets (False: REST polling only)."""
        return self._websocket_for(True)

    @property
    def book_source(self) -> BookSource:
        """Where the last book :meth:`watch` yielded came from (``websocket`` or ``rest``)."""
        return self._book_source

    def _websocket_for(self, trades: bool) -> bool:
        return self._ws_books and (self._ws_trades or not trades)

    @property
    def closed(self) -> bool:
        """True after :meth:`close` (until the next :meth:`load_market` or :meth:`watch`)."""
        return self._closed

    async def close(self) -> None:
        """Close the exchange's HTTP session and websockets; a running :meth:`watch` ends."""
        self._closed = True
        await self.exchange.close()

    # --- internals -------------------------------------------------------------------------

    def _reopen(self) -> None:
        if self._closed:
            self._closed = False
            self.exchange.open()

    async def _poll(
        self, until: float | None, *, trades: bool = True
    ) -> AsyncGenerator[FeedItem, None]:
        """REST polling until ``until`` (``time.monotonic()``), forever when ``None``; the
        trades are read too with ``trades``."""
        failures = 0
        while not self._closed and (until is None or time.monotonic() < until):
            started = time.monotonic()
            try:
                raw_trades: list[Any] = []
                if trades:
                    raw_trades = await self.exchange.fetch_trades(self.symbol, limit=TRADES_LIMIT)
                raw_book = await self.exchange.fetch_order_book(self.symbol, BOOK_DEPTH)
            except ccxt.OperationFailed as exc:  # network trouble, garbled answer: retry
                if self.closed:
                    return
                failures += 1
                delay = min(self._poll_interval_s * 2**failures, MAX_POLL_BACKOFF_S)
                log.warning(
                    "paper_feed_poll_failed",
                    exchange=self.exchange_id,
                    error=f"{type(exc).__name__}: {exc}"[:300],
                    failures=failures,
                    retry_in_s=delay,
                )
                await anyio.sleep(delay)
                continue
            except ccxt.BaseError as exc:
                if self.closed:
                    return
                raise translate(exc, self.exchange_id, action="market data") from exc
            failures = 0
            report = self._trades.primed
            for trade in self._trades.accept(raw_trades, self._last_book, report=report):
                yield trade
            self._last_book = book_from_ccxt(raw_book)
            self._book_source = "rest"
            yield self._last_book
            await anyio.sleep(max(0.0, self._poll_interval_s - (time.monotonic() - started)))

    async def _stream(self, trades: bool = True) -> AsyncGenerator[FeedItem, None]:
        """Websocket books (and trades), merged in arrival order, checked for health as the
        live venue checks its stream (module docstring); raises the first error."""
        queue: asyncio.Queue[FeedItem | Exception] = asyncio.Queue()
        ex = self.exchange
        await fresh_websockets(ex, self.symbol)

        def on_gap(detail: str) -> None:
            log.warning("feed_gap", exchange=self.exchange_id, symbol=self.symbol, detail=detail)
            queue.put_nowait(FeedGap(detail))

        guard_book_sequence(ex, self.exchange_id, on_gap)
        if self.exchange_id == "mexc":
            repair_mexc_book_sync(ex)

        async def books() -> None:
            try:
                while True:
                    raw = await asyncio.wait_for(ex.watch_order_book(self.symbol), WS_STALE_S)
                    queue.put_nowait(book_from_ccxt(raw))
            except Exception as exc:
                queue.put_nowait(exc)

        async def trades_() -> None:
            try:
                while True:
                    raw = await ex.watch_trades(self.symbol)
                    for trade in self._trades.accept(raw, self._last_book):
                        queue.put_nowait(trade)
            except Exception as exc:
                queue.put_nowait(exc)

        tasks = [asyncio.create_task(books())]
        if trades:
            tasks.append(asyncio.create_task(trades_()))
        last: Book | None = None  # the last websocket book passed on
        changed_at = time.monotonic()
        try:
            while True:
                timeout = None
                if last is not None:
                    timeout = max(0.0, changed_at + self._stall_s - time.monotonic())
                try:
                    item = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    snapshot = book_from_ccxt(await ex.fetch_order_book(self.symbol, BOOK_DEPTH))
                    if last is not None and snapshot.same_levels_as(last):
                        changed_at = time.monotonic()  # a quiet market: look again later
                        continue
                    unchanged_s = time.monotonic() - changed_at
                    log.warning(
                        "feed_stalled",
                        exchange=self.exchange_id,
                        symbol=self.symbol,
                        unchanged_s=round(unchanged_s, 3),
                    )
                    self._last_book, self._book_source = snapshot, "rest"
                    yield snapshot
                    raise FeedStalled(f"no book change for {unchanged_s:.1f} s") from None
                if isinstance(item, Exception):
                    raise item
                if isinstance(item, Book):
                    if last is None or not item.same_levels_as(last):
                        changed_at = time.monotonic()
                    last = self._last_book = item
                    self._book_source = "websocket"
                yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
