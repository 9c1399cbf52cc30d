"""BingX spot shapes and error codes over the neutral matching engine (no I/O).

:mod:`tests.emulators.bingx` (REST) and :mod:`tests.emulators.bingx_ws` (websockets) call
:class:`BingxVenue`, which turns BingX request parameters into
:class:`~tests.emulators.matching.MatchingEngine` calls and engine values into BingX's JSON, as
BingX documents them (https://bingx-api.github.io/docs/#/en-us/spot/trade-api.html, mirrored in
``rosssaunders/coincise`` ``docs/bingx/spot/``) and as ccxt 4.5.90 reads them (``ccxt/bingx.py``:
``parse_market``, ``parse_order``, ``parse_trade``, ``parse_balance``, ``fetch_order_book``).
Prices and quantities are strings, times milliseconds, order ids 19-digit integers (JSON numbers,
as BingX sends them), trade ids integers. Quantities and prices off the step are truncated to it,
as BingX documents ("it will be successfully submitted with 0.1234").

Every answer is HTTP 200; errors are BingX's body ``{"code", "msg", "debugMsg", "data": {}}``
(BingX answers errors with HTTP 200, see hummingbot PR #8385). What ccxt 4.5.90 raises
(``handle_errors``: ``msg`` exactly, then ``code`` exactly, against ``exceptions['exact']``):

==========================================  ======  ==================================
condition                                   code    ccxt exception
==========================================  ======  ==================================
bad signature / wrong secret                100001  AuthenticationError
no ``X-BX-APIKEY`` / unknown key            100413  AuthenticationError
timestamp missing or outside recvWindow     100421  BadSymbol (ccxt's mapping of 100421)
bad or missing parameter, unknown symbol    100400  BadRequest
value below ``minNotional``                 100400  BadRequest
insufficient balance                        100202  InsufficientFunds
post-only crossing, ``post_only_cross=      100400  BadRequest
"reject"`` (*)
reused ``newClientOrderId`` of an open      101481  DuplicateOrderId
order (*)
cancel of an unknown or finished order      100400  BadRequest ("the order you want to cancel
                                                    is FILLED or CANCELLED already, ...")
query of an unknown order (*)               100400  BadRequest
request rate over the limit                 100410  OperationFailed (not RateLimitExceeded)
``cancelAllAfter`` timeOut outside 10-120   100400  BadRequest
==========================================  ======  ==================================

(*) Not in BingX's spot documentation: the code/text is a guess in BingX's style. By default a
post-only order that would take liquidity is accepted and cancelled at once (its answer says
``CANCELED``), which is what kasmm's BingX flavour assumes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from tests.emulators.matching import MatchingEngine
from tests.emulators.matching_types import (
    BUY,
    FILLED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    SELL,
    ZERO,
    Fill,
    Market,
    MatchingError,
    Order,
    Reason,
)

JsonDict = dict[str, Any]

#: The market every emulator has unless told otherwise (BingX's symbol id is ``KAS-USDT``).
DEFAULT_MARKET = Market(
    symbol="KAS-USDT",
    base="KAS",
    quote="USDT",
    tick=Decimal("0.000001"),
    lot=Decimal("0.01"),
    min_size=Decimal("0.01"),
    min_notional=Decimal("1"),
    maker_fee=Decimal("0.001"),  # ccxt's static bingx spot fees (describe()['fees']['spot'])
    taker_fee=Decimal("0.001"),
)
ORDER_ID_BASE = 1_900_000_000_000_000_000
TRADE_ID_BASE = 80_000_000
CANCEL_AFTER_RANGE_S = (10, 120)
_CLIENT_ID = re.compile(r"[A-Za-z0-9_]{1,40}")
_TIME_IN_FORCE = {"GTC": GTC, "IOC": IOC, "FOK": FOK, "POSTONLY": POST_ONLY}
_SIDES = {"BUY": BUY, "SELL": SELL}


class BingxError(Exception):
    """An error answer: BingX's code and message (HTTP 200 unless ``status`` says otherwise)."""

    def __init__(self, code: int, msg: str, status: int = 200) -> None:
        super().__init__(f"{code}: {msg}")
        self.code, self.msg, self.status = code, msg, status

    def body(self) -> JsonDict:
        return {"code": self.code, "msg": self.msg, "debugMsg": "", "data": {}}


def err_param(msg: str = "miss arguments") -> BingxError:
    return BingxError(100400, msg)


def err_signature() -> BingxError:
    return BingxError(100001, "Signature verification failed")


def err_api_key(missing: bool = False) -> BingxError:
    return BingxError(100413, "Null apiKey" if missing else "Incorrect apiKey")


def err_timestamp() -> BingxError:
    return BingxError(
        100421,
        "Null timestamp or timestamp mismatch, try to run our sample code from the link "
        "https://bingx-api.github.io/docs/#/en-us/spot/account-api.html#Query%20Assets",
    )


def err_rate_limited() -> BingxError:
    return BingxError(100410, "rate limited")


def err_cancel_gone() -> BingxError:
    return err_param(
        "the order you want to cancel is FILLED or CANCELLED already, or is not a valid order id"
        " ,please verify"
    )


def fmt(value: Decimal | None) -> str:
    """A plain decimal string (no exponent, no trailing zeros): what BingX sends."""
    if value is None:
        return "0"
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise err_param(f"{name} is invalid") from None
    if not value.is_finite():
        raise err_param(f"{name} is invalid")
    return value


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_FLOOR) * step


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise err_param(f"{name} is invalid") from None


# ---------------------------------------------------------------------------- rendering
def status_of(order: Order) -> str:
    """BingX's status: PENDING (resting, unfilled), PARTIALLY_FILLED, FILLED, CANCELED."""
    if order.status == FILLED or (order.size is not None and order.remaining == 0):
        return "FILLED"
    if not order.is_open:
        return "CANCELED"
    return "PARTIALLY_FILLED" if order.filled > 0 else "PENDING"


def order_row(order: Order) -> JsonDict:
    """An order as ``trade/query``, ``openOrders`` and ``historyOrders`` list it."""
    return {
        "symbol": order.symbol,
        "orderId": int(order.id),
        "price": fmt(order.price),
        "StopPrice": "0",
        "origQty": fmt(order.size),
        "executedQty": fmt(order.filled),
        "cummulativeQuoteQty": fmt(order.filled_funds),
        "status": status_of(order),
        "type": order.type.upper(),
        "side": order.side.upper(),
        "time": order.created_ms,
        "updateTime": order.updated_ms,
        "origQuoteOrderQty": fmt(order.funds),
        "fee": fmt(-order.fee),
        "feeAsset": order.fee_asset,
        "clientOrderID": order.client_id or "",
    }


def placed_row(order: Order) -> JsonDict:
    """The ``trade/order`` answer."""
    return {
        "symbol": order.symbol,
        "orderId": int(order.id),
        "transactTime": order.created_ms,
        "price": fmt(order.price),
        "origQty": fmt(order.size),
        "executedQty": fmt(order.filled),
        "cummulativeQuoteQty": fmt(order.filled_funds),
        "status": status_of(order),
        "type": order.type.upper(),
        "side": order.side.upper(),
        "clientOrderID": order.client_id or "",
    }


def cancelled_row(order: Order) -> JsonDict:
    """An order as ``trade/cancel``, ``cancelOrders`` and ``cancelOpenOrders`` answer it."""
    return {**placed_row(order), "stopPrice": "0"}


def trade_row(fill: Fill) -> JsonDict:
    """A fill as ``trade/myTrades`` lists it (the commission is negative, as BingX sends it)."""
    return {
        "symbol": fill.symbol,
        "id": int(fill.trade_id),
        "orderId": int(fill.order_id),
        "price": fmt(fill.price),
        "qty": fmt(fill.size),
        "quoteQty": fmt(fill.price * fill.size),
        "commission": fmt(-fill.fee),
        "commissionAsset": fill.fee_asset,
        "time": fill.time_ms,
        "isBuyer": fill.side == BUY,
        "isMaker": fill.role == "maker",
    }


# ------------------------------------------------------------------------------ the venue
class BingxVenue:
    """BingX spot requests (parameters as strings) as matching-engine operations."""

    def __init__(
        self,
        markets: Sequence[Market] = (DEFAULT_MARKET,),
        clock: Callable[[], float] | None = None,
        *,
        post_only_cross: str = "cancel",
    ) -> None:
        self.engine = MatchingEngine(
            markets,
            clock,
            post_only_cross=post_only_cross,
            order_id=lambda n: str(ORDER_ID_BASE + n),
            trade_id=lambda n: str(TRADE_ID_BASE + n),
        )

    def now_ms(self) -> int:
        return self.engine.now_ms()

    def market(self, symbol: str | None) -> Market:
        if not symbol:
            raise err_param("miss arguments: symbol")
        try:
            return self.engine.market(symbol)
        except MatchingError:
            raise err_param("invalid symbol, send symbol like BTC-USDT") from None

    def _refused(self, exc: MatchingError, market: Market) -> BingxError:
        reason = exc.reason
        if reason == Reason.INSUFFICIENT_BALANCE:
            return BingxError(100202, "Insufficient assets")
        if reason in (Reason.BELOW_MIN_NOTIONAL, Reason.BELOW_MIN_SIZE):
            return err_param(
                "check limit entrust value fail, entrust volume too low, "
                f"minVolume:{fmt(market.min_notional)}"
            )
        if reason == Reason.WOULD_CROSS:
            return err_param("PostOnly order would immediately match")
        if reason == Reason.DUPLICATE_CLIENT_ID:
            return BingxError(101481, "newClientOrderId already exists")
        if reason in (Reason.UNKNOWN_ORDER, Reason.ORDER_NOT_OPEN):
            return err_cancel_gone()
        return err_param(exc.message)

    # --- market data -------------------------------------------------------------------
    def symbols(self) -> JsonDict:
        return {
            "symbols": [
                {
                    "symbol": m.symbol,
                    "minQty": float(m.min_size),  # deprecated by BingX, still sent
                    "maxQty": 100_000_000,
                    "minNotional": float(m.min_notional),
                    "maxNotional": 1_000_000,
                    "status": 1,
                    "tickSize": float(m.tick),
                    "stepSize": float(m.lot),
                    "apiStateSell": True,
                    "apiStateBuy": True,
                    "timeOnline": 0,
                    "offTime": 0,
                    "maintainTime": 0,
                }
                for m in self.engine.markets.values()
            ]
        }

    def depth(self, symbol: str, limit: int) -> JsonDict:
        """``market/depth`` data (and the depth push's): bids best first, asks highest first."""
        snap = self.engine.book(symbol, limit)
        return {
            "bids": [[fmt(p), fmt(s)] for p, s in snap.bids],
            "asks": [[fmt(p), fmt(s)] for p, s in reversed(snap.asks)],
            "ts": snap.time_ms,
            "lastUpdateId": snap.seq,
        }

    def ticker(self, symbol: str) -> JsonDict:
        best_bid, best_ask = self.engine.book(symbol, 1).bids, self.engine.book(symbol, 1).asks
        now = self.now_ms()
        recent = [
            f
            for f in self.engine.fill_log
            if f.symbol == symbol and f.time_ms >= now - 86_400_000 and f.role == "maker"
        ]
        last = recent[-1].price if recent else None
        prices = [f.price for f in recent]
        return {
            "symbol": symbol,
            "openPrice": fmt(prices[0]) if prices else "0",
            "highPrice": fmt(max(prices)) if prices else "0",
            "lowPrice": fmt(min(prices)) if prices else "0",
            "lastPrice": fmt(last),
            "volume": fmt(sum((f.size for f in recent), ZERO)),
            "quoteVolume": fmt(sum((f.size * f.price for f in recent), ZERO)),
            "openTime": now - 86_400_000,
            "closeTime": now,
            "bidPrice": fmt(best_bid[0][0]) if best_bid else "0",
            "bidQty": fmt(best_bid[0][1]) if best_bid else "0",
            "askPrice": fmt(best_ask[0][0]) if best_ask else "0",
            "askQty": fmt(best_ask[0][1]) if best_ask else "0",
            "priceChange": "0",
            "priceChangePercent": "0%",
        }

    # --- account -----------------------------------------------------------------------
    def balances(self, key: str) -> JsonDict:
        assets = self.engine.accounts.get(key, {})
        return {
            "balances": [
                {"asset": a, "free": fmt(b.available), "locked": fmt(b.locked)}
                for a, b in assets.items()
            ]
        }

    # --- orders ------------------------------------------------------------------------
    def place(self, key: str, params: Mapping[str, str]) -> Order:
        """``trade/order``: LIMIT (GTC / IOC / FOK / PostOnly) and MARKET orders."""
        market = self.market(params.get("symbol"))
        side = _SIDES.get(str(params.get("side", "")).upper())
        order_type = str(params.get("type", "")).upper()
        tif = _TIME_IN_FORCE.get(str(params.get("timeInForce") or "GTC").upper())
        if side is None or order_type not in ("LIMIT", "MARKET") or tif is None:
            raise err_param("miss arguments: side, type or timeInForce is invalid")
        client_id = params.get("newClientOrderId") or None
        if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
            raise err_param("newClientOrderId: only letters, numbers and _, 1 to 40 characters")
        quantity, funds = _decimal(params, "quantity"), _decimal(params, "quoteOrderQty")
        price = _decimal(params, "price")
        size: Decimal | None = None
        quote: Decimal | None = None
        if order_type == "LIMIT":
            if price is None or _floor(price, market.tick) <= 0:
                raise err_param("price can't be lte 0 in limit order")
            price = _floor(price, market.tick)
            if quantity is None and funds is not None:
                quantity = funds / price
            size = _floor(quantity, market.lot) if quantity is not None else None
            if size is None or size <= 0:
                raise err_param("quantity/quoteOrderQty can't both be lte 0 in limit order")
        elif side == BUY:
            if funds is None or _floor(funds, market.funds_step) <= 0:
                raise err_param("miss arguments: quoteOrderQty")
            quote = _floor(funds, market.funds_step)
        else:
            if quantity is None or _floor(quantity, market.lot) <= 0:
                raise err_param("miss arguments: quantity")
            size = _floor(quantity, market.lot)
        try:
            return self.engine.place(
                key,
                market.symbol,
                side,
                type=LIMIT if order_type == "LIMIT" else MARKET,
                price=price if order_type == "LIMIT" else None,
                size=size,
                funds=quote,
                tif=tif if order_type == "LIMIT" else IOC,
                client_id=client_id,
            )
        except MatchingError as exc:
            raise self._refused(exc, market) from None

    def _find(self, key: str, params: Mapping[str, str]) -> Order:
        """The account's order by ``orderId`` or ``clientOrderID`` (ccxt sends the latter)."""
        client_id = params.get("clientOrderID") or params.get("clientOrderId") or None
        order_id = params.get("orderId") or None
        if order_id in ("None", "null"):
            order_id = None
        if order_id is None and client_id is None:
            raise err_param("miss arguments: orderId or clientOrderID")
        if order_id is not None and not order_id.isdigit():
            raise err_param("orderId is invalid")
        try:
            return self.engine.find(key, order_id, None if order_id else client_id)
        except MatchingError:
            raise err_param("order not exist") from None

    def cancel(self, key: str, params: Mapping[str, str]) -> Order:
        """``trade/cancel`` by ``orderId`` or ``clientOrderID``."""
        market = self.market(params.get("symbol"))
        try:
            order = self._find(key, params)
        except BingxError:
            raise err_cancel_gone() from None
        if order.symbol != market.symbol or not order.is_open:
            raise err_cancel_gone()
        return self.engine.cancel(key, order.id)

    def cancel_orders(self, key: str, params: Mapping[str, str]) -> list[Order]:
        """``trade/cancelOrders``: the orders (``orderIds`` or ``clientOrderIDs``, comma
        separated) that were open and are now cancelled; others are left out of the answer."""
        market = self.market(params.get("symbol"))
        by_client = "clientOrderIDs" in params
        raw = params.get("clientOrderIDs" if by_client else "orderIds") or ""
        ids = [i for i in raw.split(",") if i]
        if not ids:
            raise err_param("miss arguments: orderIds")
        done: list[Order] = []
        for ident in ids:
            query = {"clientOrderID": ident} if by_client else {"orderId": ident}
            try:
                order = self._find(key, query)
            except BingxError:
                continue
            if order.symbol == market.symbol and order.is_open:
                done.append(self.engine.cancel(key, order.id))
        return done

    def cancel_open_orders(self, key: str, params: Mapping[str, str]) -> list[Order]:
        """``trade/cancelOpenOrders``: every open order (of ``symbol`` when given)."""
        symbol = self.market(params["symbol"]).symbol if params.get("symbol") else None
        return self.engine.cancel_all(key, symbol)

    def cancel_all_after(self, key: str, params: Mapping[str, str]) -> JsonDict:
        """``trade/cancelAllAfter``: ACTIVATE (re)arms the account's countdown, CLOSE disarms."""
        kind = str(params.get("type", "")).upper()
        timeout = _int_param(params, "timeOut")
        if kind == "CLOSE":
            self.engine.arm_cancel_all(key, None, None)
            return {"triggerTime": 0, "status": "CLOSED", "note": "closed"}
        low, high = CANCEL_AFTER_RANGE_S
        if kind != "ACTIVATE" or timeout is None or not low <= timeout <= high:
            raise err_param(f"type must be ACTIVATE or CLOSE, timeOut {low}-{high} seconds")
        deadline = self.engine.arm_cancel_all(key, None, timeout)
        assert deadline is not None
        return {
            "triggerTime": int(deadline),
            "status": "ACTIVATED",
            "note": "All your spot pending orders will be closed automatically after the "
            "countdown, before that you can cancel the timer, or extend triggerTime time by "
            "this request",
        }

    def query(self, key: str, params: Mapping[str, str]) -> Order:
        """``trade/query``."""
        market = self.market(params.get("symbol"))
        order = self._find(key, params)
        if order.symbol != market.symbol:
            raise err_param("order not exist")
        return order

    def open_orders(self, key: str, params: Mapping[str, str]) -> list[Order]:
        symbol = self.market(params["symbol"]).symbol if params.get("symbol") else None
        return self.engine.orders_of(key, symbol, True)

    def history_orders(self, key: str, params: Mapping[str, str]) -> list[Order]:
        """``trade/historyOrders``: the account's orders (``startTime``/``endTime``/``pageSize``),
        oldest first."""
        symbol = self.market(params["symbol"]).symbol if params.get("symbol") else None
        start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
        size = _int_param(params, "pageSize") or 100
        orders = [
            o
            for o in self.engine.orders_of(key, symbol)
            if (start is None or o.created_ms >= start) and (end is None or o.created_ms <= end)
        ]
        return orders[: max(1, min(size, 100))]

    def my_trades(self, key: str, params: Mapping[str, str]) -> list[Fill]:
        """``trade/myTrades``: oldest first, ``startTime``/``endTime`` (default: the last 24
        hours), ``orderId``, ``fromId``, ``limit`` (default 500, at most 1000)."""
        market = self.market(params.get("symbol"))
        start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
        if start is None and end is None:
            start = self.now_ms() - 86_400_000
        from_id = _int_param(params, "fromId")
        limit = max(1, min(_int_param(params, "limit") or 500, 1000))
        order_id = params.get("orderId") or None
        fills = [
            f
            for f in self.engine.fills(key, market.symbol, order_id)
            if (start is None or f.time_ms >= start)
            and (end is None or f.time_ms <= end)
            and (from_id is None or int(f.trade_id) >= from_id)
        ]
        return fills[:limit]
