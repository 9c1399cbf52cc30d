"""Gate.io spot order entry, cancels and the countdown on the emulator's :class:`GateVenue`.

``POST /spot/orders`` and ``/spot/batch_orders``, ``DELETE /spot/orders[/{id}]``, ``POST
/spot/cancel_batch_orders`` and ``POST /spot/countdown_cancel_all``: each request is checked as
Gate checks it (:mod:`tests.emulators.gate_requests`), then carried out by the matching engine
behind the venue (``MatchingEngine.place`` / ``cancel`` / ``cancel_all`` / ``arm_cancel_all``),
whose refusals become Gate's errors (:func:`~tests.emulators.gate_shapes.refused`). Amends are
in :mod:`tests.emulators.gate_amend`.
"""

from __future__ import annotations

from typing import Any

from .gate_requests import check_batch, check_cancel_batch, parse_countdown, parse_place
from .gate_shapes import DEFAULT_TEXT, GateError, GateOrder, refused
from .gate_venue import ACCOUNT, TIF_IN, GateVenue
from .matching_types import LIMIT, MARKET, MatchingError


def place(venue: GateVenue, body: object, *, batch: bool = False) -> GateOrder:
    """``POST /spot/orders`` (one element of ``POST /spot/batch_orders`` when ``batch``).

    Raises :class:`GateError` for a rejected order; returns the order (possibly already
    finished: filled, ioc/fok remainder cancelled, or ``finish_as="poc"`` in
    ``poc_cross="cancel"`` mode).
    """
    req = parse_place(body, venue.market, batch=batch)
    currency, need = req.lock
    if venue.engine.balance(ACCOUNT, currency).available < need:  # before the post-only check
        raise GateError(400, "BALANCE_NOT_ENOUGH", "Not enough balance")
    venue.placing_text = req.text if req.text != DEFAULT_TEXT else None
    try:
        order = venue.engine.place(
            ACCOUNT,
            req.market.id,
            req.side,
            type=LIMIT if req.type == "limit" else MARKET,
            price=req.price if req.type == "limit" else None,
            size=None if req.market_buy else req.amount,
            funds=req.amount if req.market_buy else None,
            tif=TIF_IN[req.tif],
        )
    except MatchingError as exc:
        venue.texts = {k: v for k, v in venue.texts.items() if k in venue.engine.orders}
        raise refused(exc) from None
    finally:
        venue.placing_text = None
    venue.changed()
    return venue.view(order)


def place_batch(venue: GateVenue, body: object) -> list[dict[str, Any]]:
    """``POST /spot/batch_orders``: per-order results, failures as ``succeeded: false``.

    Gate: ``text`` required on each order, at most 4 pairs and 10 orders per pair, one
    ``account`` for all.
    """
    results: list[dict[str, Any]] = []
    for item in check_batch(body):
        try:
            order = place(venue, item, batch=True)
        except GateError as err:
            results.append(
                {
                    "text": item.get("text", ""),
                    "currency_pair": item.get("currency_pair", ""),
                    "account": item.get("account", "spot"),
                    "succeeded": False,
                    "label": err.label,
                    "message": err.message,
                }
            )
        else:
            row = venue.order_json(order)
            row = {"order_id": order.id, **row, "succeeded": True, "label": "", "message": ""}
            results.append(row)
    return results


def cancel(venue: GateVenue, pair: str | None, ref: str) -> GateOrder:
    """``DELETE /spot/orders/{order_id}`` (an id, or the ``t-`` text of an open order)."""
    order = venue.find(pair, ref)
    if order.status == "closed":
        raise GateError(400, "ORDER_CLOSED", "Order already closed")
    if order.status == "cancelled":
        raise GateError(400, "ORDER_CANCELLED", "Order already cancelled")
    cancelled = venue.engine.cancel(ACCOUNT, order.id)
    venue.changed()
    return venue.view(cancelled)


def cancel_all(venue: GateVenue, pair: str | None, side: str | None = None) -> list[GateOrder]:
    """``DELETE /spot/orders``: every open order of ``pair`` (all pairs when empty)."""
    if pair:
        venue.market(pair)
    if side not in (None, "buy", "sell"):
        raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: side")
    cancelled = venue.engine.cancel_all(ACCOUNT, pair or None, side)
    if cancelled:
        venue.changed()
    return [venue.view(o) for o in cancelled]


def cancel_batch(venue: GateVenue, body: object) -> list[dict[str, Any]]:
    """``POST /spot/cancel_batch_orders``: ``[{currency_pair, id, account?}]``."""
    out: list[dict[str, Any]] = []
    for raw in check_cancel_batch(body):
        item = raw if isinstance(raw, dict) else {}
        pair, ref = str(item.get("currency_pair", "")), str(item.get("id", ""))
        row: dict[str, Any] = {
            "currency_pair": pair,
            "id": ref,
            "text": "",
            "account": str(item.get("account", "")),
            "succeeded": True,
            "label": "",
            "message": "",
        }
        try:
            order = cancel(venue, pair, ref)
        except GateError as err:
            row.update(succeeded=False, label=err.label, message=err.message)
        else:
            row.update(id=order.id, text=order.text)
        out.append(row)
    return out


def set_countdown(venue: GateVenue, body: object) -> int:
    """``POST /spot/countdown_cancel_all`` ``{timeout, currency_pair?}``: (re)arms the engine's
    dead man's switch for the pair (every pair for none); returns the trigger time in ms, 0
    when ``timeout`` is 0, which removes the countdown."""
    seconds, pair = parse_countdown(body, venue.market)
    deadline = venue.engine.arm_cancel_all(ACCOUNT, pair or None, seconds or None)
    venue.changed()
    return 0 if deadline is None else int(deadline * 1000)
