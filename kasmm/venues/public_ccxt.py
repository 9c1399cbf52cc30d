"""A real exchange's public data as kasmm values: market rules, books, trades seen once.

Shared by the public feed (:mod:`kasmm.venues.paper_feed`) of paper venues, the supervisor's
market hub and the recorder: a credential-less ccxt instance with the live venue's options and
URL overrides, and the conversions of what it answers. No I/O here.
"""

from __future__ import annotations

import importlib.util
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, Final

import ccxt.async_support as ccxt
import ccxt.pro as ccxtpro

from kasmm.core.types import Book, MarketRules, Side
from kasmm.errors import FatalVenueError
from kasmm.venues.ccxt.convert import dec0, market_rules, timestamp_s, to_book
from kasmm.venues.ccxt.decimal_context import isolate_decimal_context
from kasmm.venues.ccxt.exchanges import (
    Flavour,
    constructor_options,
    flavour_for,
    rest_urls,
    ws_urls,
)
from kasmm.venues.public_data import PublicTrade

__all__ = [
    "BOOK_DEPTH",
    "DEFAULT_FEE",
    "TradeFilter",
    "book_from_ccxt",
    "build_exchange",
    "flavour_of",
    "protobuf_available",
    "rules_from_market",
]

#: Book levels per side requested from REST (KuCoin's public endpoint serves 20 or 100).
BOOK_DEPTH: Final = 100
#: Fee rate assumed when ccxt knows none for the market (10 bps).
DEFAULT_FEE: Final = Decimal("0.001")


# --- ccxt values -> kasmm values ----------------------------------------------------------


def rules_from_market(symbol: str, market: Mapping[str, Any], precision_mode: int) -> MarketRules:
    """Trading rules of a ccxt spot market; fee rates ccxt does not know default to 10 bps.

    :raises FatalVenueError: not a spot market, or no usable price or amount precision.
    """
    if not market.get("spot"):
        raise FatalVenueError(f"{symbol} is not a spot market")
    try:
        rules = market_rules(market, precision_mode)
    except ValueError as exc:
        raise FatalVenueError(f"{symbol}: {exc}") from exc
    maker, taker = market.get("maker"), market.get("taker")
    return replace(
        rules,
        symbol=symbol,
        min_size=max(rules.min_size, rules.lot),
        maker_fee=DEFAULT_FEE if maker is None else rules.maker_fee,
        taker_fee=DEFAULT_FEE if taker is None else rules.taker_fee,
    )


def book_from_ccxt(order_book: Mapping[str, Any]) -> Book:
    """A ccxt order book (REST or websocket) as a ``Book`` of :data:`BOOK_DEPTH` levels a side,
    stamped with the exchange's time (now when it sends none)."""
    return to_book(order_book, timestamp_s(order_book.get("timestamp"), time.time()), BOOK_DEPTH)


def protobuf_available() -> bool:
    """Whether the protobuf runtime MEXC's spot websocket needs is installed."""
    try:
        return importlib.util.find_spec("google.protobuf") is not None
    except ImportError:  # no ``google`` package at all
        return False


def build_exchange(
    exchange_id: str,
    *,
    websocket: bool,
    rest_url: str | None = None,
    timeout_s: float = 10.0,
    enable_rate_limit: bool = True,
    ws_url: str | None = None,
) -> Any:
    """A credential-less ccxt (``ccxt.pro`` when ``websocket``) instance for public data, with
    the live venue's options and ``rest_url`` (and ``ws_url``) overrides.

    :raises FatalVenueError: kasmm does not support ``exchange_id``.
    """
    flavour = flavour_of(exchange_id)
    module: Any = ccxtpro if websocket else ccxt
    exchange = getattr(module, exchange_id)(
        {
            "enableRateLimit": enable_rate_limit,
            "timeout": int(timeout_s * 1000),
            "options": constructor_options(flavour),
        }
    )
    isolate_decimal_context(exchange)
    if rest_url is not None:
        exchange.urls = {**exchange.urls, "api": rest_urls(flavour, exchange.urls["api"], rest_url)}
    if ws_url is not None and websocket:
        exchange.urls = {**exchange.urls, "api": ws_urls(flavour, exchange.urls["api"], ws_url)}
    return exchange


def flavour_of(exchange_id: str) -> Flavour:
    """The live venue's facts about ``exchange_id``.

    :raises FatalVenueError: kasmm does not support it.
    """
    try:
        return flavour_for(exchange_id)
    except KeyError:
        raise FatalVenueError(f"paper trading does not support exchange {exchange_id!r}") from None


class TradeFilter:
    """Turns ccxt trade lists into new :class:`PublicTrade` values, each reported once."""

    def __init__(self, memory: int = 4096) -> None:
        self._since_ms: int | None = None
        self._seen: set[str] = set()
        self._order: deque[str] = deque()
        self._memory = memory

    @property
    def primed(self) -> bool:
        """True once a first batch set the starting point."""
        return self._since_ms is not None

    def accept(
        self, raw: Sequence[Mapping[str, Any]], book: Book | None, *, report: bool = True
    ) -> list[PublicTrade]:
        """The trades of ``raw`` not seen before and not older than the newest seen, oldest
        first. With ``report=False`` they are only remembered."""
        out: list[PublicTrade] = []
        for trade in sorted(raw, key=lambda t: t.get("timestamp") or 0):
            stamp = int(trade.get("timestamp") or time.time() * 1000)
            price, size = dec0(trade.get("price")), dec0(trade.get("amount"))
            tid = str(trade.get("id") or f"{stamp}-{trade.get('side')}-{price}-{size}")
            if tid in self._seen or (self._since_ms is not None and stamp < self._since_ms):
                continue
            self._remember(tid)
            self._since_ms = max(self._since_ms or stamp, stamp)
            side = _taker_side(trade.get("side"), price, book)
            if report and side is not None and size > 0 and price > 0:
                out.append(PublicTrade(price, size, side, stamp / 1000, tid))
        return out

    def _remember(self, tid: str) -> None:
        self._seen.add(tid)
        self._order.append(tid)
        if len(self._order) > self._memory:
            self._seen.discard(self._order.popleft())


def _taker_side(side: Any, price: Decimal, book: Book | None) -> Side | None:
    if side in ("buy", "sell"):
        return Side(side)
    if book is not None:
        if book.best_bid is not None and price <= book.best_bid:
            return Side.SELL
        if book.best_ask is not None and price >= book.best_ask:
            return Side.BUY
    return None
