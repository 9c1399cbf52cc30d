"""Gate spot amend, ``PATCH /spot/orders/{order_id}``, on the emulator's :class:`GateEngine`.

Gate's documented rules (APIv4 "Amend single order", gateapi ``OrderPatch``):

* ``order_id`` is the order id, or the ``t-`` text while the order is open; ``currency_pair``
  may come in the body (which wins) or the query. The order keeps its id and ``text``; an
  ``amend_text`` given is stored on it.
* ``amount`` (the new total, filled part included) and/or ``price``; at least one of them.
* Priority: only reducing the amount keeps the order's place in the queue; a new price or a
  larger amount puts it at the back of the (new) price level, like a new order.
* An amount below the filled amount cancels the order (one equal to it completes it).
* Amend and creation share the "place orders" rate limit.

Not documented, modelled like a placement: a post-only (``poc``) order moved across the book is
refused with ``POC_FILL_IMMEDIATELY`` and left as it was (``poc_cross="reject"``), or cancelled
with ``finish_as="poc"`` (``poc_cross="cancel"``); a ``gtc`` order moved across trades as taker;
a larger order needs the extra funds free (``BALANCE_NOT_ENOUGH``); a finished order answers
``ORDER_CLOSED`` / ``ORDER_CANCELLED`` like a cancel.
"""

from __future__ import annotations

from decimal import Decimal

from .gate_engine import GateEngine, GateError, Order, decimals_of

_MISSING = (None, "")


def amend(engine: GateEngine, pair: str | None, ref: str, body: object) -> Order:
    """Apply the amend ``body`` to order ``ref``; the order afterwards (possibly finished).

    :raises GateError: Gate's error for a refused amend (the order is then unchanged).
    """
    if not isinstance(body, dict):
        raise GateError(400, "INVALID_REQUEST_BODY", "request body must be a JSON object")
    body_pair = body.get("currency_pair")
    order = engine.find(body_pair if isinstance(body_pair, str) and body_pair else pair, ref)
    if order.status == "closed":
        raise GateError(400, "ORDER_CLOSED", "Order already closed")
    if order.status == "cancelled":
        raise GateError(400, "ORDER_CANCELLED", "Order already cancelled")
    raw_amount, raw_price = body.get("amount"), body.get("price")
    if raw_amount in _MISSING and raw_price in _MISSING:
        raise GateError(400, "MISSING_REQUIRED_PARAM", "amount or price is required")
    market = engine.markets[order.pair]
    amount = order.amount if raw_amount in _MISSING else _positive(raw_amount, "amount")
    price = order.price if raw_price in _MISSING else _positive(raw_price, "price")
    if decimals_of(price) > market.precision:
        raise GateError(
            400, "INVALID_PRECISION", f"Price precision of {market.id} is {market.precision}"
        )
    if decimals_of(amount) > market.amount_precision:
        raise GateError(
            400,
            "INVALID_PRECISION",
            f"Amount precision of {market.id} is {market.amount_precision}",
        )
    engine._check_size(market, order.type, order.side, amount, price)
    amend_text = body.get("amend_text")
    if isinstance(amend_text, str) and amend_text:
        order.amend_text = amend_text
    if amount <= order.filled_amount:
        if amount == order.filled_amount:
            engine._finish(order, "closed", "filled")
        else:
            engine._finish(order, "cancelled", "cancelled")
        engine._changed()
        return order
    left = amount - order.filled_amount
    currency = market.quote if order.side == "buy" else market.base
    need = left * price if order.side == "buy" else left
    if need - order.locked > engine._balance(currency).available:
        raise GateError(400, "BALANCE_NOT_ENOUGH", "Not enough balance")
    moved = price != order.price
    if order.tif == "poc" and moved and _crosses(engine, order, price):
        if engine.poc_cross == "reject":
            raise GateError(
                400,
                "POC_FILL_IMMEDIATELY",
                "Order would match and take immediately so its cancelled",
            )
        engine._finish(order, "cancelled", "poc")
        engine._changed()
        return order
    # Re-lock for the new terms, then apply them.
    engine._release(order)
    engine._lock(currency, need)
    order.locked = need
    if moved or amount > order.amount:
        engine._seq += 1
        order.seq = engine._seq  # the back of the queue at its price
    order.amount, order.left, order.price = amount, left, price
    order.update_ms = engine.now_ms()
    if moved and order.tif != "poc":
        engine._match_incoming(order)
    engine._changed()
    return order


def _crosses(engine: GateEngine, order: Order, price: Decimal) -> bool:
    best_bid, best_ask = engine.best_prices(order.pair)
    if order.side == "buy":
        return best_ask is not None and price >= best_ask
    return best_bid is not None and price <= best_bid


def _positive(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: {name}")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: {name}") from None
    if not number.is_finite() or number <= 0:
        raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: {name}")
    return number
