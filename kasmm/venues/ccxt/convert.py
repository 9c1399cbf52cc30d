"""ccxt's structures (dicts of floats) to kasmm's domain types (Decimal), and back.

Floats from ccxt become ``Decimal(str(x))``: ``str`` gives the shortest repr that round-trips, so
``0.1`` is ``Decimal('0.1')``, not the binary expansion. Decimals go to ccxt as plain strings
(``format(d, 'f')``), never floats, so no ``0.30000000000000004`` reaches an exchange.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from kasmm.core.types import (
    ZERO,
    Balance,
    Balances,
    Book,
    BookLevel,
    ClientOrderId,
    Fill,
    MarketRules,
    OpenOrder,
    Side,
    TradeId,
    VenueOrderId,
)

#: ccxt's precision modes (``ccxt.base.decimal_to_precision``).
DECIMAL_PLACES = 2
SIGNIFICANT_DIGITS = 3
TICK_SIZE = 4


def dec(value: Any) -> Decimal | None:
    """``value`` (float, int, str or ``None``) as a finite Decimal, or ``None``."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return result if result.is_finite() else None


def dec0(value: Any) -> Decimal:
    """Like :func:`dec`, with ``0`` for missing values."""
    result = dec(value)
    return ZERO if result is None else result


def plain(value: Decimal) -> str:
    """``value`` as a plain decimal string without exponent or trailing zeros (``'0.0001'``)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def step_from_precision(value: Any, mode: int) -> Decimal | None:
    """A price/amount step from a ccxt market ``precision`` entry.

    ccxt 4 reports a tick size (``TICK_SIZE``) for mexc, gate, kucoin and bingx; an integer number
    of decimal places (``DECIMAL_PLACES``) is converted to ``10 ** -n``.
    """
    step = dec(value)
    if step is None:
        return None
    if mode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(step))
    if mode == SIGNIFICANT_DIGITS:
        return None  # not used by any supported exchange: a step depends on the price
    return step if step > 0 else None


def market_rules(market: Mapping[str, Any], precision_mode: int) -> MarketRules:
    """kasmm's rules from a ccxt market.

    :raises ValueError: the market has no usable price or amount precision.
    """
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    tick = step_from_precision(precision.get("price"), precision_mode)
    lot = step_from_precision(precision.get("amount"), precision_mode)
    if tick is None or lot is None:
        raise ValueError(f"market {market.get('symbol')} has no tick or lot size")
    return MarketRules(
        symbol=str(market["symbol"]),
        base=str(market["base"]),
        quote=str(market["quote"]),
        tick=tick,
        lot=lot,
        min_notional=dec0((limits.get("cost") or {}).get("min")),
        min_size=dec0((limits.get("amount") or {}).get("min")),
        maker_fee=dec0(market.get("maker")),
        taker_fee=dec0(market.get("taker")),
    )


def _levels(raw: Iterable[Any], depth: int) -> tuple[BookLevel, ...]:
    out: list[BookLevel] = []
    for entry in raw:
        price, size = dec(entry[0]), dec(entry[1])
        if price is None or size is None or size <= 0 or price <= 0:
            continue
        out.append(BookLevel(price, size))
        if len(out) >= depth:
            break
    return tuple(out)


def to_book(order_book: Mapping[str, Any], ts: float, depth: int) -> Book:
    """A kasmm ``Book`` from a ccxt order book (best first on each side)."""
    return Book(
        bids=_levels(order_book.get("bids") or (), depth),
        asks=_levels(order_book.get("asks") or (), depth),
        ts=ts,
    )


def side_of(value: Any) -> Side | None:
    """``Side`` from ccxt's ``'buy'``/``'sell'``."""
    text = str(value).lower() if value is not None else ""
    if text == "buy":
        return Side.BUY
    if text == "sell":
        return Side.SELL
    return None


def to_open_order(order: Mapping[str, Any], client_id: str, created_at: float) -> OpenOrder | None:
    """A kasmm ``OpenOrder`` from a ccxt order (``None`` if it lacks side, price or amount)."""
    side = side_of(order.get("side"))
    price, size = dec(order.get("price")), dec(order.get("amount"))
    if side is None or price is None or size is None:
        return None
    remaining = dec(order.get("remaining"))
    if remaining is None:
        remaining = size - dec0(order.get("filled"))
    venue_id = order.get("id")
    return OpenOrder(
        client_id=ClientOrderId(client_id),
        side=side,
        price=price,
        size=size,
        remaining=max(ZERO, remaining),
        created_at=created_at,
        venue_id=VenueOrderId(str(venue_id)) if venue_id is not None else None,
    )


def to_fill(trade: Mapping[str, Any], client_id: str, remaining: Decimal, ts: float) -> Fill | None:
    """A kasmm ``Fill`` from a ccxt trade (``None`` if it lacks id, side, price or amount)."""
    side = side_of(trade.get("side"))
    price, size = dec(trade.get("price")), dec(trade.get("amount"))
    trade_id = trade.get("id")
    if side is None or price is None or size is None or trade_id is None:
        return None
    fee = trade.get("fee") or {}
    order_id = trade.get("order")
    return Fill(
        trade_id=TradeId(str(trade_id)),
        client_id=ClientOrderId(client_id),
        side=side,
        price=price,
        size=size,
        fee=dec0(fee.get("cost")),
        fee_asset=str(fee.get("currency") or ""),
        ts=ts,
        remaining=max(ZERO, remaining),
        is_maker=trade.get("takerOrMaker") != "taker",
        venue_id=VenueOrderId(str(order_id)) if order_id is not None else None,
    )


def to_balances(balance: Mapping[str, Any]) -> Balances:
    """kasmm ``Balances`` (free / locked) from ccxt's balance structure."""
    free = balance.get("free") or {}
    used = balance.get("used") or {}
    assets: dict[str, Balance] = {}
    for asset in set(free) | set(used):
        f, u = dec0(free.get(asset)), dec0(used.get(asset))
        if f or u:
            assets[str(asset)] = Balance(f, u)
    return Balances(MappingProxyType(assets))


def timestamp_s(value: Any, default: float) -> float:
    """A ccxt millisecond timestamp in seconds, ``default`` when missing."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value) / 1000.0
    return default
