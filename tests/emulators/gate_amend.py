"""Gate spot amend, ``PATCH /spot/orders/{order_id}``, on the emulator's :class:`GateVenue`.

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
``ORDER_CLOSED`` / ``ORDER_CANCELLED`` like a cancel. The order itself changes in the matching
engine (``MatchingEngine.amend``); this module checks the request the way Gate does.
"""

from __future__ import annotations

from decimal import Decimal

from .gate_requests import check_precision, check_size
from .gate_shapes import GateError, GateOrder, refused
from .gate_venue import ACCOUNT, GateVenue
from .matching_types import MatchingError

_MISSING = (None, "")


def amend(venue: GateVenue, pair: str | None, ref: str, body: object) -> GateOrder:
    """Apply the amend ``body`` to order ``ref``; the order afterwards (possibly finished).

    :raises GateError: Gate's error for a refused amend (the order is then unchanged).
    """
    if not isinstance(body, dict):
        raise GateError(400, "INVALID_REQUEST_BODY", "request body must be a JSON object")
    body_pair = body.get("currency_pair")
    order = venue.find(body_pair if isinstance(body_pair, str) and body_pair else pair, ref)
    if order.status == "closed":
        raise GateError(400, "ORDER_CLOSED", "Order already closed")
    if order.status == "cancelled":
        raise GateError(400, "ORDER_CANCELLED", "Order already cancelled")
    raw_amount, raw_price = body.get("amount"), body.get("price")
    if raw_amount in _MISSING and raw_price in _MISSING:
        raise GateError(400, "MISSING_REQUIRED_PARAM", "amount or price is required")
    market = venue.markets[order.pair]
    amount = order.amount if raw_amount in _MISSING else _positive(raw_amount, "amount")
    price = order.price if raw_price in _MISSING else _positive(raw_price, "price")
    check_precision(market, price, amount)
    check_size(market, order.type, order.side, amount, price)
    amend_text = body.get("amend_text")
    if isinstance(amend_text, str) and amend_text:
        venue.amend_texts[order.id] = amend_text
    try:
        amended = venue.engine.amend(ACCOUNT, order.id, price=price, size=amount)
    except MatchingError as exc:
        raise refused(exc) from None
    venue.changed()
    return venue.view(amended)


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
