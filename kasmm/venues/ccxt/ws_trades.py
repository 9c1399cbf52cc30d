"""Own trades from ccxt.pro websockets, repaired where ccxt 4.5.90 parses them wrongly.

Found by the loopback emulators speaking each exchange's private stream (issue 17), and pinned by
their tests (``tests/unit/test_emulator_{bingx,mexc}_ws.py``):

* **BingX** spot ``executionReport``: ccxt takes a fill's amount and price from the order's
  ``q``/``p`` instead of the fill's ``l``/``L`` (it does so only for linear swaps): a fill of 40
  on an order of 100 arrives as a fill of 100 at the limit price.
* **MEXC** protobuf private deals: ccxt reads the maker flag from ``m`` (the old JSON field);
  protobuf sends ``isMaker`` (omitted when false), so every fill arrives as a taker fill.

REST trades are parsed correctly and pass through unchanged, as do trades of the other
exchanges. A repaired trade is a new dict; ccxt's cached one is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any


def _bingx(trade: Mapping[str, Any]) -> Mapping[str, Any]:
    info = trade.get("info")
    if not isinstance(info, Mapping) or info.get("x") != "TRADE":
        return trade
    last_size, last_price = info.get("l"), info.get("L")
    try:
        size, price = Decimal(str(last_size)), Decimal(str(last_price))
    except (InvalidOperation, ValueError):
        return trade
    if not (size.is_finite() and price.is_finite() and size > 0 and price > 0):
        return trade
    return {**trade, "amount": str(size), "price": str(price), "cost": str(size * price)}


def _mexc(trade: Mapping[str, Any]) -> Mapping[str, Any]:
    info = trade.get("info")
    if not isinstance(info, Mapping) or "tradeType" not in info:  # not the protobuf shape
        return trade
    maker = info.get("isMaker") in (True, 1, "true", "1")
    return {**trade, "takerOrMaker": "maker" if maker else "taker"}


_REPAIRS: Mapping[str, Callable[[Mapping[str, Any]], Mapping[str, Any]]] = {
    "bingx": _bingx,
    "mexc": _mexc,
}


def repaired(exchange_id: str, trade: Mapping[str, Any]) -> Mapping[str, Any]:
    """``trade`` (a ccxt.pro own trade of ``exchange_id``) with ccxt's known misreadings fixed."""
    repair = _REPAIRS.get(exchange_id)
    return repair(trade) if repair is not None else trade
