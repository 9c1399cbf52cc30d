"""KuCoin spot shapes and error codes over the neutral matching engine (no I/O).

:mod:`tests.emulators.kucoin` (REST) and :mod:`tests.emulators.kucoin_ws` (websockets) call
:class:`KucoinVenue`, which turns KuCoin request bodies into
:class:`~tests.emulators.matching.MatchingEngine` calls and engine values into KuCoin's JSON, as
KuCoin documents them (https://www.kucoin.com/docs-new, "Spot Trading" / "HF orders") and as ccxt
4.5.90 (``ccxt/kucoin.py``: ``parse_spot_order``, ``parse_spot_or_uta_trade``, ``fetch_balance``,
``fetch_markets``) reads them. Numbers are strings, times milliseconds; order ids are 24 hex
digits, trade ids decimal strings, as on KuCoin.

Error answers (``{"code": code, "msg": msg}``) and what ccxt 4.5.90 raises for them
(``handle_errors`` matches ``msg`` exactly, then ``code`` exactly, then the body broadly):

==========================================  ====  ======  ==================================
condition                                   HTTP  code    ccxt exception (matched on)
==========================================  ====  ======  ==================================
missing or malformed parameter              400   400100  BadRequest (code)
unknown symbol                              400   400100  BadSymbol ("Unsupported trading pair.")
size not a multiple of ``baseIncrement``    400   400100  InvalidOrder ("Order size increment
                                                          invalid.")
price not a multiple of ``priceIncrement``  400   400100  BadRequest (code)
size below ``baseMinSize``                  400   400100  InvalidOrder ("Order size below the
                                                          minimum requirement.")
value below ``quoteMinSize``                400   600101  InvalidOrder (code)
insufficient balance                        400   200004  InsufficientFunds (code)
reused ``clientOid`` of an open order (*)   400   400100  BadRequest (code)
cancel of an unknown or finished order      200   400100  OrderNotFound ("Order not exist or not
                                                          allow to be cancelled")
query of an unknown order (*)               200   400100  OrderNotFound ("order not exist.")
more than 5 orders in a batch               400   400100  BadRequest (code)
==========================================  ====  ======  ==================================

(*) KuCoin documents no answer for these two; the message is one ccxt knows from KuCoin.
A post-only order that would take liquidity is accepted and then cancelled, as KuCoin does.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from tests.emulators.matching import MatchingEngine
from tests.emulators.matching_types import (
    BUY,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    SELL,
    Fill,
    Market,
    MatchingError,
    Order,
    Reason,
    dec,
)

JsonDict = dict[str, Any]

#: Orders per ``POST /api/v1/hf/orders/multi`` (KuCoin: "up to 5 orders").
BATCH_MAX = 5
#: KuCoin's ``clientOid``: at most 40 characters.
CLIENT_OID_MAX = 40
#: A default market: KAS-USDT as KuCoin lists it (increments, minimums, 0.1 % fees).
KAS_USDT = Market(
    symbol="KAS-USDT",
    base="KAS",
    quote="USDT",
    tick=Decimal("0.000001"),
    lot=Decimal("0.0001"),
    min_size=Decimal("1"),
    min_notional=Decimal("0.1"),
    maker_fee=Decimal("0.001"),
    taker_fee=Decimal("0.001"),
    funds_step=Decimal("0.000001"),
    fee_in="quote",  # KuCoin charges spot fees in the quote currency (the symbol's feeCurrency)
)


class KucoinError(Exception):
    """An error KuCoin answers with ``{"code": code, "msg": msg}`` and HTTP ``status``."""

    def __init__(self, code: str, msg: str, status: int = 400) -> None:
        super().__init__(f"{status} {code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> JsonDict:
        return {"code": self.code, "msg": self.msg}


def bad_parameter(msg: str = "Parameter Error") -> KucoinError:
    return KucoinError("400100", msg)


def order_not_cancellable() -> KucoinError:
    return KucoinError("400100", "Order not exist or not allow to be cancelled", 200)


def order_not_found() -> KucoinError:
    return KucoinError("400100", "order not exist.", 200)


def fmt(value: Decimal | None) -> str:
    """KuCoin's decimal string: plain notation, no exponent, no trailing zeros."""
    if value is None or value == 0:
        return "0"
    return format(value.normalize(), "f")


def _kucoin_order_id(n: int) -> str:
    return f"6752{n:020x}"


class KucoinVenue:
    """One KuCoin spot exchange: the engine, KuCoin's shapes, and the account's API keys."""

    def __init__(
        self,
        markets: Sequence[Market] = (KAS_USDT,),
        clock: Callable[[], float] | None = None,
    ) -> None:
        # KuCoin cancels a crossing post-only order instead of rejecting it.
        self.engine = MatchingEngine(
            markets, clock, post_only_cross="cancel", order_id=_kucoin_order_id
        )
        self._trade_ids = itertools.count(11_067_996_711_960_577)
        self._trade_id_of: dict[str, str] = {}

    # ------------------------------------------------------------------ errors

    @staticmethod
    def error(err: MatchingError, market: Market | None) -> KucoinError:
        """KuCoin's answer to an engine refusal (see the module docstring's table)."""
        reason = err.reason
        if reason is Reason.UNKNOWN_MARKET:
            return bad_parameter("Unsupported trading pair.")
        if reason is Reason.BAD_SIZE_STEP:
            return bad_parameter("Order size increment invalid.")
        if reason is Reason.BAD_PRICE_STEP:
            return bad_parameter("Price increment invalid.")
        if reason is Reason.BELOW_MIN_SIZE:
            return bad_parameter("Order size below the minimum requirement.")
        if reason is Reason.BELOW_MIN_NOTIONAL:
            assert market is not None
            return KucoinError(
                "600101",
                f"The order funds should more then {fmt(market.min_notional)} {market.quote}.",
            )
        if reason is Reason.INSUFFICIENT_BALANCE:
            return KucoinError("200004", "Balance insufficient!")
        if reason is Reason.DUPLICATE_CLIENT_ID:
            return bad_parameter("The clientOid already exists.")
        if reason in (Reason.UNKNOWN_ORDER, Reason.ORDER_NOT_OPEN):
            return order_not_cancellable()
        return bad_parameter(err.message)

    def market(self, symbol: object) -> Market:
        if not isinstance(symbol, str) or not symbol:
            raise bad_parameter("symbol is required")
        market = self.engine.markets.get(symbol)
        if market is None:
            raise bad_parameter("Unsupported trading pair.")
        return market

    # ------------------------------------------------------------------ orders

    def place(self, key: str, body: object) -> Order:
        """``POST /api/v1/hf/orders``: the order (possibly already done)."""
        if not isinstance(body, dict):
            raise bad_parameter()
        market = self.market(body.get("symbol"))
        side, kwargs = _order_kwargs(body)
        try:
            return self.engine.place(key, market.symbol, side, **kwargs)
        except MatchingError as err:
            raise self.error(err, market) from None

    def place_batch(self, key: str, body: object) -> list[JsonDict]:
        """``POST /api/v1/hf/orders/multi``: one entry per order, in order."""
        if not isinstance(body, dict) or not isinstance(body.get("orderList"), list):
            raise bad_parameter("orderList is required")
        orders = body["orderList"]
        if not orders or len(orders) > BATCH_MAX:
            raise bad_parameter(f"orderList size must be between 1 and {BATCH_MAX}")
        symbol = body.get("symbol")
        out: list[JsonDict] = []
        for item in orders:
            entry = dict(item) if isinstance(item, dict) else {}
            entry.setdefault("symbol", symbol)
            try:
                order = self.place(key, entry)
            except KucoinError as err:
                out.append(
                    {"clientOid": entry.get("clientOid"), "success": False, "failMsg": err.msg}
                )
            else:
                out.append({"orderId": order.id, "clientOid": order.client_id, "success": True})
        return out

    def cancel(
        self,
        key: str,
        symbol: object,
        *,
        order_id: str | None = None,
        client_oid: str | None = None,
    ) -> Order:
        """``DELETE /api/v1/hf/orders/{orderId}`` / ``.../client-order/{clientOid}``."""
        market = self.market(symbol)
        try:
            order = self.engine.find(key, order_id, client_oid)
            if order.symbol != market.symbol:
                raise order_not_cancellable()
            return self.engine.cancel(key, order.id)
        except MatchingError as err:
            raise self.error(err, market) from None

    def find(
        self,
        key: str,
        symbol: object,
        *,
        order_id: str | None = None,
        client_oid: str | None = None,
    ) -> Order:
        """``GET /api/v1/hf/orders/{orderId}`` / ``.../client-order/{clientOid}``."""
        market = self.market(symbol)
        try:
            order = self.engine.find(key, order_id, client_oid)
        except MatchingError:
            raise order_not_found() from None
        if order.symbol != market.symbol:
            raise order_not_found()
        return order

    # ------------------------------------------------------------------ JSON shapes

    def trade_id(self, fill: Fill) -> str:
        """KuCoin's ``tradeId`` of a match (decimal; both sides of a match share it)."""
        tid = self._trade_id_of.get(fill.trade_id)
        if tid is None:
            tid = self._trade_id_of[fill.trade_id] = str(next(self._trade_ids))
        return tid

    def order_json(self, order: Order) -> JsonDict:
        """An HF order (``GET /api/v1/hf/orders/{orderId}``)."""
        size = order.size if order.size is not None else Decimal(0)
        funds = order.funds if order.funds is not None else Decimal(0)
        done = not order.is_open
        canceled = order.status == "canceled"
        remain_size = Decimal(0) if done or order.size is None else order.remaining
        remain_funds = Decimal(0) if done or order.funds is None else order.remaining
        return {
            "id": order.id,
            "clientOid": order.client_id or "",
            "symbol": order.symbol,
            "opType": "DEAL",
            "type": order.type,
            "side": order.side,
            "price": fmt(order.price),
            "size": fmt(size),
            "funds": fmt(funds),
            "dealSize": fmt(order.filled),
            "dealFunds": fmt(order.filled_funds),
            "remainSize": fmt(remain_size),
            "remainFunds": fmt(remain_funds),
            "cancelledSize": fmt(size - order.filled if canceled and order.size else None),
            "cancelledFunds": fmt(funds - order.filled_funds if canceled and order.funds else None),
            "fee": fmt(order.fee),
            "feeCurrency": order.fee_asset,
            "stp": None,
            "timeInForce": _TIF_OUT.get(order.tif, "GTC"),
            "postOnly": order.tif == POST_ONLY,
            "hidden": False,
            "iceberg": False,
            "visibleSize": "0",
            "cancelAfter": 0,
            "channel": "API",
            "remark": None,
            "tags": None,
            "cancelExist": canceled,
            "tradeType": "TRADE",
            "inOrderBook": order.resting,
            "active": not done,
            "tax": "0",
            "createdAt": order.created_ms,
            "lastUpdatedAt": order.updated_ms,
        }

    def fill_json(self, fill: Fill) -> JsonDict:
        """An HF fill (``GET /api/v1/hf/fills`` item)."""
        market = self.engine.markets[fill.symbol]
        rate = market.maker_fee if fill.role == "maker" else market.taker_fee
        order = self.engine.orders[fill.order_id]
        return {
            "id": int(fill.id),
            "orderId": fill.order_id,
            "counterOrderId": "",
            "tradeId": self.trade_id(fill),
            "symbol": fill.symbol,
            "side": fill.side,
            "liquidity": fill.role,
            "type": order.type,
            "forceTaker": False,
            "price": fmt(fill.price),
            "size": fmt(fill.size),
            "funds": fmt(fill.price * fill.size),
            "fee": fmt(fill.fee),
            "feeRate": fmt(rate),
            "feeCurrency": fill.fee_asset,
            "stop": "",
            "tradeType": "TRADE",
            "taxRate": "0",
            "tax": "0",
            "createdAt": fill.time_ms,
        }

    def symbol_json(self, market: Market) -> JsonDict:
        """A ``GET /api/v2/symbols`` entry."""
        return {
            "symbol": market.symbol,
            "name": market.symbol,
            "baseCurrency": market.base,
            "quoteCurrency": market.quote,
            "feeCurrency": market.quote,
            "market": market.quote,
            "baseMinSize": fmt(market.min_size),
            "quoteMinSize": fmt(market.min_notional),
            "baseMaxSize": "10000000000",
            "quoteMaxSize": "99999999",
            "baseIncrement": fmt(market.lot),
            "quoteIncrement": fmt(market.funds_step),
            "priceIncrement": fmt(market.tick),
            "priceLimitRate": "0.1",
            "minFunds": fmt(market.min_notional),
            "isMarginEnabled": False,
            "enableTrading": True,
            "feeCategory": 1,
            "makerFeeCoefficient": "1.00",
            "takerFeeCoefficient": "1.00",
            "st": False,
            "callauctionIsEnabled": False,
        }

    def ticker_json(self, market: Market) -> JsonDict:
        """A ``GET /api/v1/market/allTickers`` entry (ccxt reads the fee rates from it)."""
        bid, ask = self.engine.best(market.symbol)
        last = self.engine.last_price.get(market.symbol)
        return {
            "symbol": market.symbol,
            "symbolName": market.symbol,
            "buy": fmt(bid) if bid is not None else None,
            "sell": fmt(ask) if ask is not None else None,
            "changeRate": "0",
            "changePrice": "0",
            "high": fmt(last) if last is not None else None,
            "low": fmt(last) if last is not None else None,
            "vol": "0",
            "volValue": "0",
            "last": fmt(last) if last is not None else None,
            "averagePrice": fmt(last) if last is not None else None,
            "takerFeeRate": fmt(market.taker_fee),
            "makerFeeRate": fmt(market.maker_fee),
            "takerCoefficient": "1",
            "makerCoefficient": "1",
        }

    def accounts_json(
        self, key: str, currency: str | None, account_type: str | None
    ) -> list[JsonDict]:
        """``GET /api/v1/accounts``: the account's ``trade_hf`` balances."""
        if account_type not in (None, "trade_hf"):
            return []
        rows = []
        for n, (asset, bal) in enumerate(sorted(self.engine.accounts[key].items())):
            if currency is not None and asset != currency:
                continue
            rows.append(
                {
                    "id": f"5bd6e9216d99522a52e4{n:04x}",
                    "currency": asset,
                    "type": "trade_hf",
                    "balance": fmt(bal.total),
                    "available": fmt(bal.available),
                    "holds": fmt(bal.locked),
                }
            )
        return rows

    def currencies_json(self) -> list[JsonDict]:
        """``GET /api/v3/currencies``."""
        assets = sorted({a for m in self.engine.markets.values() for a in (m.base, m.quote)})
        return [
            {
                "currency": asset,
                "name": asset,
                "fullName": asset,
                "precision": 8,
                "confirms": None,
                "contractAddress": None,
                "isMarginEnabled": False,
                "isDebitEnabled": False,
                "chains": [
                    {
                        "chainName": asset,
                        "chainId": asset.lower(),
                        "withdrawalMinSize": "1",
                        "withdrawalMinFee": "0.1",
                        "isWithdrawEnabled": True,
                        "isDepositEnabled": True,
                        "confirms": 10,
                        "withdrawPrecision": 8,
                    }
                ],
            }
            for asset in assets
        ]


_TIF_IN: Mapping[str, str] = {"GTC": GTC, "IOC": IOC, "FOK": FOK}
_TIF_OUT: Mapping[str, str] = {GTC: "GTC", IOC: "IOC", FOK: "FOK", POST_ONLY: "GTC"}


def _order_kwargs(body: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The side and the other engine ``place`` arguments of a KuCoin order body (raises
    ``400100`` if malformed)."""
    side = body.get("side")
    if side not in (BUY, SELL):
        raise bad_parameter("side is invalid")
    order_type = body.get("type", LIMIT)
    if order_type not in (LIMIT, MARKET):
        raise bad_parameter("type is invalid")
    client_oid = body.get("clientOid")
    if client_oid is not None and (
        not isinstance(client_oid, str) or not 0 < len(client_oid) <= CLIENT_OID_MAX
    ):
        raise bad_parameter("clientOid is invalid")
    tif = _TIF_IN.get(str(body.get("timeInForce", "GTC")))
    if tif is None:
        raise bad_parameter("timeInForce is invalid")
    if body.get("postOnly") in (True, "true"):
        if order_type != LIMIT or tif != GTC:
            raise bad_parameter("postOnly is invalid with this timeInForce")
        tif = POST_ONLY
    kwargs: dict[str, Any] = {"type": order_type, "tif": tif, "client_id": client_oid}
    for name, field in (("price", "price"), ("size", "size"), ("funds", "funds")):
        raw = body.get(field)
        if raw is None or raw == "":
            continue
        try:
            value = dec(raw)
        except ArithmeticError:
            raise bad_parameter(f"{field} is invalid") from None
        if not value.is_finite() or value <= 0:
            raise bad_parameter(f"{field} is invalid")
        kwargs[name] = value
    if order_type == LIMIT and ("price" not in kwargs or "size" not in kwargs):
        raise bad_parameter("price and size are required for a limit order")
    if order_type == MARKET:
        kwargs.pop("price", None)
        if ("size" in kwargs) == ("funds" in kwargs):
            raise bad_parameter("one of size or funds is required for a market order")
    elif "funds" in kwargs:
        raise bad_parameter("funds is only for market orders")
    return side, kwargs
