"""MEXC spot v3 shapes of the emulator: errors, markets, and orders / trades / deals / depth
changes as MEXC shows them (no matching, no I/O).

:mod:`tests.emulators.mexc_venue` renders the shared matching engine's values
(:mod:`tests.emulators.matching_types`) into these views; the REST layer
(:mod:`tests.emulators.mexc`) answers with their JSON and the websocket layer
(:mod:`tests.emulators.mexc_ws`) encodes them as protobuf. The views keep MEXC's vocabulary
(``BUY``/``SELL``, ``LIMIT_MAKER``, ``PARTIALLY_CANCELED``, ``origQty``) so that neither layer
needs to know the engine's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from tests.emulators.matching_types import (
    BUY,
    FILLED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    Fill,
    Order,
)

JsonDict = dict[str, Any]
Levels = Iterable[tuple[object, object]]
#: ``(price, quantity)`` levels; a quantity of 0 removes the level.
LevelChanges = tuple[tuple[Decimal, Decimal], ...]

OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
#: MEXC's order types and the engine's ``(type, time in force)`` of each.
ORDER_TYPES: Mapping[str, tuple[str, str]] = {
    "LIMIT": (LIMIT, GTC),
    "LIMIT_MAKER": (LIMIT, POST_ONLY),
    "IMMEDIATE_OR_CANCEL": (LIMIT, IOC),
    "FILL_OR_KILL": (LIMIT, FOK),
    "MARKET": (MARKET, IOC),
}
_TYPE_OF = {engine: mexc for mexc, engine in ORDER_TYPES.items()}
#: MEXC's per-side trade ids: this plus twice the engine's match number, plus 1 for the taker.
TRADE_ID_BASE = 700000000000000000
#: MEXC's order ids look like ``C02__342252993005723644225``: this prefix and number.
ORDER_ID_BASE = 500000000000000000


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


def err_illegal(name: str) -> MexcError:
    return MexcError(700008, f"Illegal characters found in parameter '{name}'; legal range is ''.")


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
    """A finite decimal from a parameter or a test's value; ``ValueError`` otherwise."""
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a decimal: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    return result


def int_param(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not re.fullmatch(r"-?\d+", raw):
        raise err_illegal(name)
    return int(raw)


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


def mexc_status(order: Order) -> str:
    """MEXC's status of an engine order. An order whose whole size has just matched is
    ``FILLED`` in the push of that match; one cancelled after a fill is ``PARTIALLY_CANCELED``,
    except a market order by quote amount, which MEXC closes as ``FILLED``."""
    if order.is_open:
        if order.size is not None and order.remaining <= 0:
            return "FILLED"
        return "PARTIALLY_FILLED" if order.filled > 0 else "NEW"
    if order.status == FILLED:
        return "FILLED"
    return "PARTIALLY_CANCELED" if order.filled > 0 else "CANCELED"


@dataclass(frozen=True)
class MexcOrder:
    """An order as MEXC shows it (a snapshot of an engine order)."""

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
    status: str
    executed_qty: Decimal
    cum_quote: Decimal
    #: Funds still locked for this order (quote for a BUY, base for a SELL).
    locked: Decimal

    @classmethod
    def of(cls, order: Order) -> MexcOrder:
        return cls(
            order_id=order.id,
            seq=order.arrival,
            account=order.account,
            symbol=order.symbol,
            side=order.side.upper(),
            type=_TYPE_OF[(order.type, order.tif)],
            price=order.price,
            orig_qty=order.size if order.size is not None else Decimal(0),
            orig_quote_qty=order.funds,
            client_order_id=order.client_id,
            time=order.created_ms,
            update_time=order.updated_ms,
            status=mexc_status(order),
            executed_qty=order.filled,
            cum_quote=order.filled_funds,
            locked=order.locked,
        )

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
        """The order in the emulator's state document (``/_emu/state`` ``orders``)."""
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class MexcTrade:
    """One account's side of a match (``myTrades`` entry); each side has its own id, the
    maker's first."""

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

    @classmethod
    def of(cls, fill: Fill) -> MexcTrade:
        return cls(
            trade_id=str(TRADE_ID_BASE + 2 * int(fill.trade_id) + (fill.role == "taker")),
            order_id=fill.order_id,
            client_order_id=fill.client_id,
            account=fill.account,
            symbol=fill.symbol,
            price=fill.price,
            qty=fill.size,
            commission=fill.fee,
            commission_asset=fill.fee_asset,
            time=fill.time_ms,
            is_buyer=fill.side == BUY,
            is_maker=fill.role == "maker",
        )

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
        """The trade in the emulator's state document (``/_emu/state`` ``trades``)."""
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Deal:
    """One match, as the public trade feed shows it: ``taker_side`` took ``qty`` at ``price``.

    ``trades`` are the accounts' sides of it (the API maker and/or the API taker), maker first.
    """

    symbol: str
    price: Decimal
    qty: Decimal
    taker_side: str  # BUY | SELL
    time: int
    trades: tuple[MexcTrade, ...]


@dataclass(frozen=True)
class DepthChange:
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


class VenueObserver(Protocol):
    """Told of every change (the websocket layer is one), in the order it happened."""

    def on_order_changed(self, order: MexcOrder, fill: MexcTrade | None) -> None:
        """``order`` was accepted, filled (``fill``: its side of the match) or closed."""

    def on_trade(self, fill: Deal) -> None:
        """A match happened (after ``on_order_changed`` for the orders in it)."""

    def on_book_changed(self, change: DepthChange) -> None:
        """The visible book changed (at the end of the operation that changed it)."""
