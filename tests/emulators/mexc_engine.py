"""State and matching engine of the MEXC spot emulator (no I/O, no HTTP).

Everything here is synchronous: the HTTP layer (:mod:`tests.emulators.mexc`) calls it from the event
loop, so every operation is atomic with respect to other requests.

Model
-----
* **Accounts** are keyed by API key; each has a secret and per-asset ``free``/``locked`` balances.
* **Orders** from any account rest in one book per symbol, next to a **synthetic book** (levels set
  with :meth:`Engine.set_book` / :meth:`Engine.set_mid`) that stands for everybody else's liquidity.
  ``GET depth`` shows the sum of both.
* An incoming order that crosses trades as taker, best price first; at one price the synthetic level
  goes first (it was there before), then resting API orders in time priority. Synthetic liquidity it
  takes is consumed. A resting API order can be self-matched (no self-trade prevention).
* :meth:`Engine.outside_trade` is an outside taker: it fills only resting API orders it crosses
  (price-time priority) at their prices and never touches the synthetic book, so tests decide fills.
  Moving the synthetic book (``set_mid``) never fills anything by itself, even if it crosses orders.
* Balances: a BUY locks ``price × quantity`` quote, a SELL locks ``quantity`` base (MARKET orders
  lock what their planned fills need). A fill moves the locked funds; the commission is charged
  on the asset received (base for a buy, quote for a sell) at the market's maker or taker rate,
  unrounded.
* Statuses: ``NEW``, ``PARTIALLY_FILLED``, ``FILLED``, ``CANCELED``, ``PARTIALLY_CANCELED``
  (cancelled after a partial fill), as MEXC reports them.
* ``LIMIT_MAKER`` that would cross is *accepted* (normal acknowledgement) and immediately
  ``CANCELED`` with nothing locked or filled, which is how MEXC treats it: the caller only learns it
  by querying the order.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

JsonDict = dict[str, Any]

OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
ORDER_TYPES = frozenset({"LIMIT", "LIMIT_MAKER", "IMMEDIATE_OR_CANCEL", "FILL_OR_KILL", "MARKET"})
STATE_VERSION = 1


class MexcError(Exception):
    """An error MEXC answers with ``{"code": code, "msg": msg}`` and HTTP ``status``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> JsonDict:
        return {"code": self.code, "msg": self.msg}


# Error codes and messages. Where MEXC's text is known it is used verbatim; the rest are marked.
def err_unknown_order() -> MexcError:  # cancel of an unknown / closed order
    return MexcError(-2011, "Unknown order sent.")


def err_no_such_order() -> MexcError:  # query of an unknown order
    return MexcError(-2013, "Order does not exist.")


def err_bad_symbol() -> MexcError:
    return MexcError(-1121, "Invalid symbol.")


def err_mandatory(name: str) -> MexcError:
    return MexcError(
        700004, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def err_insufficient() -> MexcError:
    return MexcError(30004, "Insufficient position")


def err_min_volume(what: str) -> MexcError:
    return MexcError(30002, f"The minimum transaction volume cannot be less than:{what}")


def err_max_volume(what: str) -> MexcError:
    return MexcError(30003, f"The maximum transaction volume cannot be greater than:{what}")


def err_duplicate_client_id() -> MexcError:
    # Not verified against MEXC (its docs do not list one); modelled on Binance's -2010.
    return MexcError(-2010, "Duplicate order sent.")


def fmt(value: Decimal) -> str:
    """A decimal as MEXC writes numbers in JSON: plain notation, no trailing zeros."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def dec(value: object) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a decimal: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    return result


def _decimals_of_step(step: Decimal, name: str) -> int:
    """``10**-n`` → ``n``. ccxt reads MEXC precisions as decimal-place counts, so steps must be
    powers of ten."""
    raw_exponent = step.normalize().as_tuple().exponent
    if step <= 0 or not isinstance(raw_exponent, int) or Decimal(1).scaleb(raw_exponent) != step:
        raise ValueError(
            f"{name} must be a power of ten (MEXC precision is a decimal count): {step}"
        )
    return -raw_exponent


@dataclass(frozen=True)
class MarketSpec:
    """One spot market; ``tick`` and ``lot`` must be powers of ten (MEXC publishes decimals)."""

    symbol: str = "KASUSDT"
    base: str = "KAS"
    quote: str = "USDT"
    tick: Decimal = Decimal("0.000001")
    lot: Decimal = Decimal("0.01")
    #: Minimum order quantity (``baseSizePrecision``, ccxt's ``limits.amount.min``); default lot.
    min_qty: Decimal | None = None
    #: Minimum order value in quote (``quoteAmountPrecision``, ccxt's ``limits.cost.min``).
    min_notional: Decimal = Decimal("1")
    #: Maximum order value in quote (``maxQuoteAmount``).
    max_notional: Decimal = Decimal("2000000")
    maker_fee: Decimal = Decimal("0")
    taker_fee: Decimal = Decimal("0.0005")

    def __post_init__(self) -> None:
        _decimals_of_step(self.tick, "tick")
        _decimals_of_step(self.lot, "lot")

    @property
    def price_decimals(self) -> int:
        return _decimals_of_step(self.tick, "tick")

    @property
    def qty_decimals(self) -> int:
        return _decimals_of_step(self.lot, "lot")

    @property
    def min_quantity(self) -> Decimal:
        return self.lot if self.min_qty is None else self.min_qty

    def exchange_info(self) -> JsonDict:
        """The ``exchangeInfo`` entry, with the fields ccxt's ``fetch_spot_markets`` parses."""
        return {
            "symbol": self.symbol,
            "status": "1",
            "baseAsset": self.base,
            "baseAssetPrecision": self.qty_decimals,
            "quoteAsset": self.quote,
            "quotePrecision": self.price_decimals,
            "quoteAssetPrecision": self.price_decimals,
            "baseCommissionPrecision": self.qty_decimals,
            "quoteCommissionPrecision": self.price_decimals,
            "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"],
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "quoteAmountPrecision": fmt(self.min_notional),
            "baseSizePrecision": fmt(self.min_quantity),
            "permissions": ["SPOT"],
            "filters": [],
            "maxQuoteAmount": fmt(self.max_notional),
            "makerCommission": fmt(self.maker_fee),
            "takerCommission": fmt(self.taker_fee),
            "quoteAmountPrecisionMarket": fmt(self.min_notional),
            "maxQuoteAmountMarket": fmt(self.max_notional),
            "fullName": self.base,
            "tradeSideType": 1,
        }


@dataclass
class Balance:
    free: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)


@dataclass
class Account:
    api_key: str
    secret: str
    balances: dict[str, Balance] = field(default_factory=dict)

    def bal(self, asset: str) -> Balance:
        return self.balances.setdefault(asset, Balance())


@dataclass
class Order:
    order_id: str
    seq: int
    account: str
    symbol: str
    side: str  # BUY | SELL
    type: str
    price: Decimal | None
    orig_qty: Decimal
    orig_quote_qty: Decimal | None
    client_order_id: str | None
    time: int
    update_time: int
    status: str = "NEW"
    executed_qty: Decimal = Decimal(0)
    cum_quote: Decimal = Decimal(0)
    #: Funds still locked for this order (quote for a BUY, base for a SELL).
    locked: Decimal = Decimal(0)

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def ack(self) -> JsonDict:
        """``POST /api/v3/order`` answer: no ``clientOrderId``, no ``status`` (as MEXC)."""
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "price": fmt(self.price or Decimal(0)),
            "origQty": fmt(self.orig_qty),
            "type": self.type,
            "side": self.side,
            "transactTime": self.time,
        }

    def query(self) -> JsonDict:
        """``GET order`` / ``openOrders`` / ``allOrders`` entry."""
        quote_qty = self.orig_quote_qty
        if quote_qty is None and self.price is not None:
            quote_qty = self.price * self.orig_qty
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": fmt(self.price or Decimal(0)),
            "origQty": fmt(self.orig_qty),
            "executedQty": fmt(self.executed_qty),
            "cummulativeQuoteQty": fmt(self.cum_quote),
            "status": self.status,
            "timeInForce": None,
            "type": self.type,
            "side": self.side,
            "stopPrice": None,
            "icebergQty": None,
            "time": self.time,
            "updateTime": self.update_time,
            "isWorking": True,
            "origQuoteOrderQty": fmt(quote_qty or Decimal(0)),
        }

    def cancel_answer(self) -> JsonDict:
        """``DELETE order`` / ``DELETE openOrders`` entry."""
        return {
            "symbol": self.symbol,
            "origClientOrderId": self.client_order_id,
            "orderId": self.order_id,
            "clientOrderId": self.client_order_id,
            "price": fmt(self.price or Decimal(0)),
            "origQty": fmt(self.orig_qty),
            "executedQty": fmt(self.executed_qty),
            "cummulativeQuoteQty": fmt(self.cum_quote),
            "status": self.status,
            "timeInForce": None,
            "type": self.type,
            "side": self.side,
        }

    def to_json(self) -> JsonDict:
        data = asdict(self)
        for key in ("price", "orig_qty", "orig_quote_qty", "executed_qty", "cum_quote", "locked"):
            if data[key] is not None:
                data[key] = str(data[key])
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Order:
        values = dict(data)
        for key in ("price", "orig_qty", "orig_quote_qty", "executed_qty", "cum_quote", "locked"):
            if values.get(key) is not None:
                values[key] = Decimal(values[key])
        return cls(**values)


@dataclass
class Trade:
    """One account's side of a fill (``myTrades`` entry)."""

    trade_id: str
    order_id: str
    client_order_id: str | None
    account: str
    symbol: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool

    def my_trade(self) -> JsonDict:
        return {
            "symbol": self.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "price": fmt(self.price),
            "qty": fmt(self.qty),
            "quoteQty": fmt(self.price * self.qty),
            "commission": fmt(self.commission),
            "commissionAsset": self.commission_asset,
            "time": self.time,
            "isBuyer": self.is_buyer,
            "isMaker": self.is_maker,
            "isBestMatch": True,
            "isSelfTrade": False,
            "clientOrderId": self.client_order_id,
        }

    def to_json(self) -> JsonDict:
        data = asdict(self)
        for key in ("price", "qty", "commission"):
            data[key] = str(data[key])
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Trade:
        values = dict(data)
        for key in ("price", "qty", "commission"):
            values[key] = Decimal(values[key])
        return cls(**values)


@dataclass
class Level:
    price: Decimal
    qty: Decimal


@dataclass
class Book:
    """The synthetic (non-API) liquidity of one symbol; bids best first, asks best first."""

    bids: list[Level] = field(default_factory=list)
    asks: list[Level] = field(default_factory=list)


@dataclass
class _Liquidity:
    price: Decimal
    rank: tuple[int, int]  # (0 synthetic | 1 api order, sequence)
    level: Level | None = None
    order: Order | None = None

    @property
    def qty(self) -> Decimal:
        if self.order is not None:
            return self.order.remaining
        assert self.level is not None
        return self.level.qty


Levels = Iterable[tuple[object, object]]

#: ``(price, quantity)`` levels; a quantity of 0 removes the level.
LevelChanges = tuple[tuple[Decimal, Decimal], ...]


@dataclass(frozen=True)
class BookChange:
    """The visible book of ``symbol`` changed: its depth version became ``version``.

    ``bids``/``asks`` hold every level whose total quantity changed, with the new total (0: the
    level is gone), bids best first, asks best first. Versions are per symbol and contiguous (one
    per change), and ``GET depth`` reports the current one as ``lastUpdateId``.
    """

    symbol: str
    version: int
    bids: LevelChanges
    asks: LevelChanges
    time: int


@dataclass(frozen=True)
class Fill:
    """One match, as the public trade feed shows it: ``taker_side`` took ``qty`` at ``price``.

    ``trades`` are the accounts' sides of it (the API maker and/or the API taker; none when
    an outside taker takes synthetic liquidity, which never happens).
    """

    symbol: str
    price: Decimal
    qty: Decimal
    taker_side: str  # BUY | SELL
    time: int
    trades: tuple[Trade, ...]


class EngineObserver(Protocol):
    """Told of every change as it happens (the websocket layer is one), after REST's effect."""

    def on_order_changed(self, order: Order, fill: Trade | None) -> None:
        """``order`` was accepted, filled (``fill``: its side of the match) or closed."""

    def on_trade(self, fill: Fill) -> None:
        """A match happened (after ``on_order_changed`` for the orders in it)."""

    def on_book_changed(self, change: BookChange) -> None:
        """The visible book changed (at the end of the operation that changed it)."""


class Engine:
    """Accounts, orders, fills and books of the emulated venue."""

    def __init__(
        self,
        markets: Iterable[MarketSpec],
        clock_ms: Callable[[], int],
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.markets: dict[str, MarketSpec] = {m.symbol: m for m in markets}
        if not self.markets:
            raise ValueError("at least one market is needed")
        self.clock_ms = clock_ms
        self.on_change = on_change
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.trades: list[Trade] = []
        self.books: dict[str, Book] = {s: Book() for s in self.markets}
        self.order_seq = 0
        self.trade_seq = 0
        self.update_id = 1
        #: Told of order, trade and book changes (additive: REST does not depend on them).
        self.observers: list[EngineObserver] = []
        #: Per-symbol depth version: +1 for each change of the visible book (``lastUpdateId``).
        self.depth_versions: dict[str, int] = {s: 1 for s in self.markets}
        self._levels = {s: self._aggregated(s) for s in self.markets}

    # ----------------------------------------------------------------- helpers
    def _changed(self) -> None:
        self.update_id += 1
        changes = self._book_changes()
        if self.on_change is not None:
            self.on_change()
        for change in changes:
            for observer in self.observers:
                observer.on_book_changed(change)

    def _book_changes(self) -> list[BookChange]:
        """Diff every symbol's visible levels against the last ones; bump changed versions."""
        changes: list[BookChange] = []
        for symbol in self.markets:
            before, after = self._levels[symbol], self._aggregated(symbol)
            if after == before:
                continue
            self._levels[symbol] = after
            self.depth_versions[symbol] += 1
            bids, asks = (_level_changes(old, new) for old, new in zip(before, after, strict=True))
            changes.append(
                BookChange(
                    symbol=symbol,
                    version=self.depth_versions[symbol],
                    bids=tuple(sorted(bids, key=lambda lv: -lv[0])),
                    asks=tuple(sorted(asks)),
                    time=self.clock_ms(),
                )
            )
        return changes

    def _order_changed(self, order: Order, fill: Trade | None = None) -> None:
        for observer in self.observers:
            observer.on_order_changed(order, fill)

    def add_account(self, api_key: str, secret: str, balances: Mapping[str, object]) -> Account:
        account = Account(api_key, secret, {a: Balance(dec(v)) for a, v in balances.items()})
        self.accounts[api_key] = account
        return account

    def account(self, api_key: str) -> Account:
        return self.accounts[api_key]

    def market(self, symbol: str | None) -> MarketSpec:
        if not symbol:
            raise err_mandatory("symbol")
        spec = self.markets.get(symbol)
        if spec is None:
            raise err_bad_symbol()
        return spec

    def _new_order_id(self) -> tuple[str, int]:
        self.order_seq += 1
        # MEXC spot order ids look like "C02__342252993005723644225".
        return f"C02__{500000000000000000 + self.order_seq}", self.order_seq

    def _new_trade_id(self) -> str:
        self.trade_seq += 1
        return str(700000000000000000 + self.trade_seq)

    def find_order(
        self, api_key: str, symbol: str, order_id: str | None, client_id: str | None
    ) -> Order | None:
        for order in self.orders.values():
            if order.account != api_key or order.symbol != symbol:
                continue
            if order_id is not None and order.order_id == order_id:
                return order
            if order_id is None and client_id is not None and order.client_order_id == client_id:
                return order
        return None

    # -------------------------------------------------------------- synthetic book
    def set_book(self, symbol: str, bids: Levels, asks: Levels) -> None:
        """Replace the synthetic liquidity of ``symbol`` with ``(price, qty)`` levels."""
        spec = self.market(symbol)
        book = Book(
            bids=sorted((Level(dec(p), dec(q)) for p, q in bids), key=lambda lv: -lv.price),
            asks=sorted((Level(dec(p), dec(q)) for p, q in asks), key=lambda lv: lv.price),
        )
        for level in [*book.bids, *book.asks]:
            if level.price <= 0 or level.qty <= 0:
                raise ValueError(f"bad level {level}")
            if level.price % spec.tick:
                raise ValueError(f"level price {level.price} is off the tick {spec.tick}")
        self.books[symbol] = book
        self._changed()

    def set_mid(
        self,
        symbol: str,
        mid: object,
        spread_bps: object = 20,
        levels: int = 5,
        size: object = 1000,
        step_bps: object | None = None,
    ) -> None:
        """A symmetric synthetic book: best bid/ask ``spread_bps / 2`` away from ``mid``, then one
        level every ``step_bps`` (default: ``spread_bps / 2``), ``size`` base on each level."""
        spec = self.market(symbol)
        mid_d, half = dec(mid), dec(spread_bps) / 2
        step = half if step_bps is None else dec(step_bps)
        if step <= 0:
            step = Decimal(1)
        bids: dict[Decimal, Decimal] = {}
        asks: dict[Decimal, Decimal] = {}
        for i in range(levels):
            off = (half + step * i) / Decimal(10000)
            bid = (mid_d * (1 - off) / spec.tick).to_integral_value(ROUND_FLOOR) * spec.tick
            ask = (mid_d * (1 + off) / spec.tick).to_integral_value(ROUND_CEILING) * spec.tick
            if bid > 0:
                bids[bid] = bids.get(bid, Decimal(0)) + dec(size)
            asks[ask] = asks.get(ask, Decimal(0)) + dec(size)
        self.set_book(symbol, bids.items(), asks.items())

    def _aggregated(self, symbol: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        """The visible book of ``symbol``: ``(bids, asks)`` as ``{price: total quantity}``,
        synthetic levels plus resting API orders."""
        book = self.books[symbol]
        sides: dict[str, dict[Decimal, Decimal]] = {"BUY": {}, "SELL": {}}
        for level in book.bids:
            sides["BUY"][level.price] = sides["BUY"].get(level.price, Decimal(0)) + level.qty
        for level in book.asks:
            sides["SELL"][level.price] = sides["SELL"].get(level.price, Decimal(0)) + level.qty
        for order in self.orders.values():
            if order.symbol == symbol and order.is_open and order.price is not None:
                side = sides[order.side]
                side[order.price] = side.get(order.price, Decimal(0)) + order.remaining
        return sides["BUY"], sides["SELL"]

    def depth(self, symbol: str, limit: int) -> JsonDict:
        self.market(symbol)
        bid_levels, ask_levels = self._aggregated(symbol)
        bids = sorted(bid_levels.items(), key=lambda kv: -kv[0])[:limit]
        asks = sorted(ask_levels.items(), key=lambda kv: kv[0])[:limit]
        return {
            "lastUpdateId": self.depth_versions[symbol],
            "bids": [[fmt(p), fmt(q)] for p, q in bids],
            "asks": [[fmt(p), fmt(q)] for p, q in asks],
            "timestamp": self.clock_ms(),
        }

    def best(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        data = self.depth(symbol, 1)
        bid = Decimal(data["bids"][0][0]) if data["bids"] else None
        ask = Decimal(data["asks"][0][0]) if data["asks"] else None
        return bid, ask

    # ------------------------------------------------------------------ matching
    def _liquidity(
        self, symbol: str, taker_side: str, limit: Decimal | None, synthetic: bool
    ) -> list[_Liquidity]:
        """What a ``taker_side`` order limited at ``limit`` (None: market) can take, in order."""
        crosses: Callable[[Decimal], bool]
        if taker_side == "BUY":

            def crosses(p: Decimal) -> bool:
                return limit is None or p <= limit
        else:

            def crosses(p: Decimal) -> bool:
                return limit is None or p >= limit

        maker_side = "SELL" if taker_side == "BUY" else "BUY"
        out: list[_Liquidity] = []
        if synthetic:
            book = self.books[symbol]
            for level in book.asks if taker_side == "BUY" else book.bids:
                if crosses(level.price):
                    out.append(_Liquidity(level.price, (0, 0), level=level))
        for order in self.orders.values():
            if (
                order.symbol == symbol
                and order.side == maker_side
                and order.is_open
                and order.price is not None
                and crosses(order.price)
            ):
                out.append(_Liquidity(order.price, (1, order.seq), order=order))
        sign = 1 if taker_side == "BUY" else -1
        out.sort(key=lambda liq: (sign * liq.price, liq.rank))
        return out

    def _plan(
        self,
        spec: MarketSpec,
        taker_side: str,
        limit: Decimal | None,
        qty: Decimal | None,
        quote_qty: Decimal | None,
        synthetic: bool,
    ) -> list[tuple[_Liquidity, Decimal]]:
        """The fills an order would get, ``(liquidity, qty)``, up to ``qty`` or ``quote_qty``."""
        plan: list[tuple[_Liquidity, Decimal]] = []
        left_qty, left_quote = qty, quote_qty
        for liq in self._liquidity(spec.symbol, taker_side, limit, synthetic):
            take = liq.qty
            if left_qty is not None:
                take = min(take, left_qty)
            if left_quote is not None:
                by_quote = (left_quote / liq.price / spec.lot).to_integral_value(
                    ROUND_FLOOR
                ) * spec.lot
                take = min(take, by_quote)
            if take <= 0:
                break
            plan.append((liq, take))
            if left_qty is not None:
                left_qty -= take
            if left_quote is not None:
                left_quote -= take * liq.price
        return plan

    def _fill(
        self, spec: MarketSpec, liq: _Liquidity, qty: Decimal, taker: Order | None, now: int
    ) -> list[Trade]:
        price = liq.price
        trades: list[Trade] = []
        if liq.level is not None:
            liq.level.qty -= qty
            book = self.books[spec.symbol]
            book.bids = [lv for lv in book.bids if lv.qty > 0]
            book.asks = [lv for lv in book.asks if lv.qty > 0]
        filled: list[Order] = []
        if liq.order is not None:
            trades.append(self._apply_fill(spec, liq.order, price, qty, is_maker=True, now=now))
            filled.append(liq.order)
        if taker is not None:
            trades.append(self._apply_fill(spec, taker, price, qty, is_maker=False, now=now))
            filled.append(taker)
        if self.observers:
            for order, trade in zip(filled, trades, strict=True):
                self._order_changed(order, trade)
            if taker is not None:
                taker_side = taker.side
            else:
                assert liq.order is not None
                taker_side = "SELL" if liq.order.side == "BUY" else "BUY"
            fill = Fill(spec.symbol, price, qty, taker_side, now, tuple(trades))
            for observer in self.observers:
                observer.on_trade(fill)
        return trades

    def _apply_fill(
        self,
        spec: MarketSpec,
        order: Order,
        price: Decimal,
        qty: Decimal,
        *,
        is_maker: bool,
        now: int,
    ) -> Trade:
        account = self.accounts[order.account]
        base, quote = account.bal(spec.base), account.bal(spec.quote)
        rate = spec.maker_fee if is_maker else spec.taker_fee
        value = price * qty
        if order.side == "BUY":
            quote.locked -= value
            order.locked -= value
            commission, commission_asset = qty * rate, spec.base
            base.free += qty - commission
        else:
            base.locked -= qty
            order.locked -= qty
            commission, commission_asset = value * rate, spec.quote
            quote.free += value - commission
        order.executed_qty += qty
        order.cum_quote += value
        order.update_time = now
        if order.orig_quote_qty is None and order.executed_qty >= order.orig_qty:
            order.status = "FILLED"
        else:
            order.status = "PARTIALLY_FILLED"
        if order.status == "FILLED" and order.locked != 0:
            self._unlock(order, order.locked)
        trade = Trade(
            trade_id=self._new_trade_id(),
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            account=order.account,
            symbol=spec.symbol,
            price=price,
            qty=qty,
            commission=commission,
            commission_asset=commission_asset,
            time=now,
            is_buyer=order.side == "BUY",
            is_maker=is_maker,
        )
        self.trades.append(trade)
        return trade

    def _unlock(self, order: Order, amount: Decimal) -> None:
        spec = self.markets[order.symbol]
        bal = self.accounts[order.account].bal(spec.quote if order.side == "BUY" else spec.base)
        bal.locked -= amount
        bal.free += amount
        order.locked -= amount

    def _close(self, order: Order, now: int) -> None:
        """Cancel what is left of ``order``: unlock its funds, set the final status."""
        status_before = order.status
        if order.locked:
            self._unlock(order, order.locked)
        if order.orig_quote_qty is not None:
            order.status = "FILLED" if order.executed_qty > 0 else "CANCELED"
        elif order.executed_qty >= order.orig_qty:
            order.status = "FILLED"
        else:
            order.status = "PARTIALLY_CANCELED" if order.executed_qty > 0 else "CANCELED"
        order.update_time = now
        if order.status != status_before:
            self._order_changed(order)

    # -------------------------------------------------------------------- orders
    @staticmethod
    def _param_decimal(params: Mapping[str, str], name: str) -> Decimal | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = dec(raw)
        except ValueError:
            raise MexcError(
                700008, f"Illegal characters found in parameter '{name}'; legal range is ''."
            ) from None
        if value <= 0:
            raise MexcError(400, f"{name} is invalid")  # unverified text
        return value

    def place(self, api_key: str, params: Mapping[str, str], *, dry_run: bool = False) -> Order:
        """``POST /api/v3/order`` with MEXC's parameters (strings). Raises :class:`MexcError`."""
        spec = self.market(params.get("symbol"))
        side = (params.get("side") or "").upper()
        if side not in ("BUY", "SELL"):
            raise err_mandatory("side")
        otype = (params.get("type") or "").upper()
        if not otype:
            raise err_mandatory("type")
        if otype not in ORDER_TYPES:
            raise MexcError(30041, "current order type can not place order")
        qty = self._param_decimal(params, "quantity")
        price = self._param_decimal(params, "price")
        quote_qty = self._param_decimal(params, "quoteOrderQty")
        client_id = params.get("newClientOrderId") or None
        if otype == "MARKET":
            if qty is None and quote_qty is None:
                raise err_mandatory("quantity")
            price = None
        else:
            if qty is None:
                raise err_mandatory("quantity")
            if price is None:
                raise err_mandatory("price")
            quote_qty = None
        if client_id is not None and any(
            o.account == api_key and o.client_order_id == client_id for o in self.orders.values()
        ):
            raise err_duplicate_client_id()
        # Scale: the text is MEXC's ("quantity scale is invalid" seen live, HTTP 400 code 400).
        if price is not None and price % spec.tick:
            raise MexcError(400, "price scale is invalid")
        if qty is not None and qty % spec.lot:
            raise MexcError(400, "quantity scale is invalid")
        if quote_qty is not None and quote_qty % spec.tick:
            raise MexcError(400, "amount scale is invalid")
        if qty is not None and qty < spec.min_quantity:
            raise err_min_volume(f"{fmt(spec.min_quantity)}{spec.base}")
        account = self.accounts[api_key]
        plan: list[tuple[_Liquidity, Decimal]] = []
        if otype == "MARKET":
            plan = self._plan(spec, side, None, qty, quote_qty, synthetic=True)
            if not plan:
                raise MexcError(30025, "no exist opponent order")
            notional = (
                quote_qty
                if quote_qty is not None
                else sum((q * liq.price for liq, q in plan), Decimal(0))
            )
        else:
            assert price is not None and qty is not None
            notional = price * qty
        if notional < spec.min_notional:
            raise err_min_volume(f"{fmt(spec.min_notional)}{spec.quote}")
        if notional > spec.max_notional:
            raise err_max_volume(f"{fmt(spec.max_notional)}{spec.quote}")
        if side == "BUY":
            need = (
                notional
                if otype != "MARKET"
                else sum((q * liq.price for liq, q in plan), Decimal(0))
            )
            have = account.bal(spec.quote).free
        else:
            need = qty if qty is not None else sum((q for _, q in plan), Decimal(0))
            have = account.bal(spec.base).free
        if need > have:
            raise err_insufficient()
        now = self.clock_ms()
        order_id, seq = ("", 0) if dry_run else self._new_order_id()
        order = Order(
            order_id=order_id,
            seq=seq,
            account=api_key,
            symbol=spec.symbol,
            side=side,
            type=otype,
            price=price,
            orig_qty=qty if qty is not None else Decimal(0),
            orig_quote_qty=quote_qty,
            client_order_id=client_id,
            time=now,
            update_time=now,
        )
        if dry_run:
            return order
        self.orders[order_id] = order
        if otype == "LIMIT_MAKER" and self._liquidity(spec.symbol, side, price, synthetic=True):
            order.status = "CANCELED"  # accepted, then cancelled: it would have taken liquidity
            self._order_changed(order)
            self._changed()
            return order
        # Lock, then take what crosses.
        bal = account.bal(spec.quote if side == "BUY" else spec.base)
        bal.free -= need
        bal.locked += need
        order.locked = need
        self._order_changed(order)  # accepted (NEW); fills and the close follow
        if otype == "FILL_OR_KILL":
            assert qty is not None
            plan = self._plan(spec, side, price, qty, None, synthetic=True)
            if sum((q for _, q in plan), Decimal(0)) < qty:
                plan = []
        elif otype != "MARKET":
            plan = self._plan(spec, side, price, qty, None, synthetic=True)
        for liq, take in plan:
            self._fill(spec, liq, take, order, now)
        if otype in ("LIMIT", "LIMIT_MAKER") and order.is_open:
            assert price is not None
            keep = price * order.remaining if side == "BUY" else order.remaining
            if order.locked > keep:
                self._unlock(order, order.locked - keep)
        elif order.is_open or order.locked:
            self._close(order, now)
        self._changed()
        return order

    def cancel(self, api_key: str, params: Mapping[str, str]) -> Order:
        spec = self.market(params.get("symbol"))
        order_id = params.get("orderId") or None
        client_id = params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise MexcError(
                700004,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        order = self.find_order(api_key, spec.symbol, order_id, client_id)
        if order is None or not order.is_open:
            raise err_unknown_order()
        self._close(order, self.clock_ms())
        self._changed()
        return order

    def cancel_all(self, api_key: str, symbol: str | None) -> list[Order]:
        cancelled = [
            o
            for o in self.orders.values()
            if o.account == api_key and o.is_open and (symbol is None or o.symbol == symbol)
        ]
        now = self.clock_ms()
        for order in cancelled:
            self._close(order, now)
        if cancelled:
            self._changed()
        return cancelled

    def get_order(self, api_key: str, params: Mapping[str, str]) -> Order:
        spec = self.market(params.get("symbol"))
        order_id = params.get("orderId") or None
        client_id = params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise MexcError(
                700004,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        order = self.find_order(api_key, spec.symbol, order_id, client_id)
        if order is None:
            raise err_no_such_order()
        return order

    def open_orders(self, api_key: str | None, symbol: str | None) -> list[Order]:
        return [
            o
            for o in self.orders.values()
            if (api_key is None or o.account == api_key)
            and o.is_open
            and (symbol is None or o.symbol == symbol)
        ]

    def all_orders(self, api_key: str, params: Mapping[str, str]) -> list[Order]:
        spec = self.market(params.get("symbol"))
        start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
        limit = min(_int_param(params, "limit") or 500, 1000)
        rows = [
            o
            for o in self.orders.values()
            if o.account == api_key
            and o.symbol == spec.symbol
            and (start is None or o.time >= start)
            and (end is None or o.time <= end)
        ]
        return rows[:limit] if start is not None else rows[-limit:]

    def my_trades(self, api_key: str, params: Mapping[str, str]) -> list[Trade]:
        """Oldest first; with ``startTime`` the first ``limit`` from it, else the last ``limit``."""
        spec = self.market(params.get("symbol"))
        start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
        order_id = params.get("orderId") or None
        limit = min(_int_param(params, "limit") or 100, 100)
        rows = [
            t
            for t in self.trades
            if t.account == api_key
            and t.symbol == spec.symbol
            and (order_id is None or t.order_id == order_id)
            and (start is None or t.time >= start)
            and (end is None or t.time <= end)
        ]
        return rows[:limit] if start is not None else rows[-limit:]

    def outside_trade(self, symbol: str, side: str, price: object, qty: object) -> list[Trade]:
        """An outside taker ``side`` ('buy' takes asks, 'sell' hits bids) of ``qty`` limited at
        ``price``: fills resting API orders it crosses, price-time priority, at their prices.
        Returns the makers' trades; what no API order takes vanishes (the outside world took it)."""
        spec = self.market(symbol)
        taker_side = side.upper()
        if taker_side not in ("BUY", "SELL"):
            raise ValueError(f"side must be buy or sell: {side!r}")
        now = self.clock_ms()
        trades: list[Trade] = []
        for liq, take in self._plan(spec, taker_side, dec(price), dec(qty), None, synthetic=False):
            trades.extend(self._fill(spec, liq, take, None, now))
        if trades:
            self._changed()
        return trades

    # -------------------------------------------------------------------- state
    def to_json(self) -> JsonDict:
        return {
            "version": STATE_VERSION,
            "order_seq": self.order_seq,
            "trade_seq": self.trade_seq,
            "update_id": self.update_id,
            "depth_versions": dict(self.depth_versions),
            "accounts": {
                key: {
                    "secret": acc.secret,
                    "balances": {a: [str(b.free), str(b.locked)] for a, b in acc.balances.items()},
                }
                for key, acc in self.accounts.items()
            },
            "orders": [o.to_json() for o in self.orders.values()],
            "trades": [t.to_json() for t in self.trades],
            "books": {
                s: {
                    "bids": [[str(lv.price), str(lv.qty)] for lv in b.bids],
                    "asks": [[str(lv.price), str(lv.qty)] for lv in b.asks],
                }
                for s, b in self.books.items()
            },
        }

    def load_json(self, data: Mapping[str, Any]) -> None:
        """Restore a :meth:`to_json` snapshot (accounts in it replace same-key accounts)."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported state version {data.get('version')!r}")
        self.order_seq = int(data["order_seq"])
        self.trade_seq = int(data["trade_seq"])
        self.update_id = int(data["update_id"])
        for key, acc in data["accounts"].items():
            self.accounts[key] = Account(
                key,
                acc["secret"],
                {a: Balance(Decimal(f), Decimal(lk)) for a, (f, lk) in acc["balances"].items()},
            )
        self.orders = {o["order_id"]: Order.from_json(o) for o in data["orders"]}
        self.trades = [Trade.from_json(t) for t in data["trades"]]
        for symbol, book in data.get("books", {}).items():
            if symbol in self.markets:
                self.books[symbol] = Book(
                    bids=[Level(Decimal(p), Decimal(q)) for p, q in book["bids"]],
                    asks=[Level(Decimal(p), Decimal(q)) for p, q in book["asks"]],
                )
        versions = data.get("depth_versions", {})
        for symbol in self.markets:
            # A state saved before depth versions existed continues from its update id.
            self.depth_versions[symbol] = int(versions.get(symbol, self.update_id))
            self._levels[symbol] = self._aggregated(symbol)


def _level_changes(
    before: Mapping[Decimal, Decimal], after: Mapping[Decimal, Decimal]
) -> list[tuple[Decimal, Decimal]]:
    """Levels whose quantity differs between ``before`` and ``after`` (0 where one vanished)."""
    return [
        (price, after.get(price, Decimal(0)))
        for price in before.keys() | after.keys()
        if before.get(price) != after.get(price)
    ]


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not re.fullmatch(r"-?\d+", raw):
        raise MexcError(
            700008, f"Illegal characters found in parameter '{name}'; legal range is ''."
        )
    return int(raw)


def save_state(path: Path, data: JsonDict) -> None:
    """Write ``data`` to ``path`` atomically (write a sibling, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, separators=(",", ":"))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_state(path: Path) -> JsonDict | None:
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as fh:
        data: JsonDict = json.load(fh)
    return data
