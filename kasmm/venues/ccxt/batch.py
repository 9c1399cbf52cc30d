"""Batch placement and cancellation of the ccxt venue: several orders in one request.

Where the flavour declares a batch size above 1 (:attr:`Flavour.batch`), ``place_orders`` sends
its requests as one batch request (MEXC ``batchOrders``, Gate ``batch_orders``, KuCoin HF
``orders/multi``) and ``cancel_orders`` as one batch cancel (Gate ``cancel_batch_orders``);
elsewhere both fall back to concurrent single requests (:mod:`kasmm.venues.batch`). ccxt's
throttle takes the batch endpoint's cost from the bucket once per request, not once per order.

Every order keeps the guarantees of a single placement:

* it is checked locally first (a refused one is that order's outcome, nothing is sent for it);
* each order's answer is matched to its request by client id (by position when the entry
  carries none and the answer has one entry per order) and translated on its own: a failed
  entry becomes that order's error (:func:`.errors.entry_error`), an accepted one is tracked;
* an order whose outcome is unknown, because the whole answer was lost or its entry is
  missing, is looked up by client id exactly as after a single lost answer, so it is never
  placed twice; only an answer lost with *every* order still unknown raises
  ``RequestTimedOut``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kasmm.core.types import ClientOrderId, OpenOrder, OrderRequest
from kasmm.errors import (
    AuthenticationFailed,
    FatalVenueError,
    OrderNotFound,
    OrderRejected,
    RequestTimedOut,
    VenueError,
)
from kasmm.venues.base import CancelOutcome, PlaceOutcome
from kasmm.venues.batch import cancel_concurrently, each_concurrently, place_concurrently
from kasmm.venues.ccxt import ops
from kasmm.venues.ccxt.convert import plain
from kasmm.venues.ccxt.errors import entry_error
from kasmm.venues.ccxt.exchanges import client_id_from_native, valid_client_id

if TYPE_CHECKING:
    from kasmm.venues.ccxt.venue import CcxtVenue

#: Fields a batch answer's entry carries the client id in (MEXC, Gate, KuCoin, ccxt's own).
_CLIENT_ID_FIELDS = ("clientOrderId", "newClientOrderId", "text", "clientOid")


async def place_orders(venue: CcxtVenue, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
    """One outcome per request, in order (see the module docstring).

    :raises RequestTimedOut: the answer was lost and no order could be found or ruled out.
    :raises AuthenticationFailed: the credentials were refused.
    :raises FatalVenueError: the batch request itself was refused as malformed.
    """
    limit = venue.flavour.batch.place
    if limit <= 1 or len(requests) <= 1:
        return await place_concurrently(venue, requests)
    chunks = [list(requests[i : i + limit]) for i in range(0, len(requests), limit)]
    if len(chunks) == 1:
        return await _place_chunk(venue, chunks[0])
    results = await each_concurrently(lambda chunk: _place_chunk(venue, chunk), chunks)
    outcomes: list[PlaceOutcome] = []
    for chunk, result in zip(chunks, results, strict=True):
        if isinstance(result, AuthenticationFailed | FatalVenueError):
            raise result
        outcomes.extend(result if isinstance(result, list) else [result] * len(chunk))
    return outcomes


async def _place_chunk(venue: CcxtVenue, requests: list[OrderRequest]) -> list[PlaceOutcome]:
    outcomes: dict[int, PlaceOutcome] = {}
    send: list[tuple[int, OrderRequest]] = []
    seen: set[str] = set()
    for index, request in enumerate(requests):
        try:
            if request.client_id in seen:
                raise OrderRejected(f"{venue.name}: client id {request.client_id!r} twice")
            ops.check_request(venue, request, venue.rules)
        except VenueError as exc:
            outcomes[index] = exc
            continue
        seen.add(request.client_id)
        send.append((index, request))
    if len(send) == 1:
        index, request = send[0]
        try:
            outcomes[index] = await ops.place_order(venue, request)
        except (AuthenticationFailed, FatalVenueError):
            raise
        except VenueError as exc:
            outcomes[index] = exc
    elif send:
        sent = [request for _, request in send]
        for (index, _), outcome in zip(send, await _send_batch(venue, sent), strict=True):
            outcomes[index] = outcome
    return [outcomes[i] for i in range(len(requests))]


async def _send_batch(venue: CcxtVenue, requests: list[OrderRequest]) -> list[PlaceOutcome]:
    """One batch request for ``requests`` (all checked); their outcomes, in order."""
    tracker = venue.tracker
    if venue.batch_gate is not None:
        await venue.batch_gate.acquire()
    for request in requests:
        tracker.unknown.add(request.client_id)  # until each outcome is known
    try:
        entries = await _create(venue, requests)
    except Exception as exc:
        error = venue.translate(exc, "place_orders")
        if not ops.outcome_unknown(exc, error):
            for request in requests:
                tracker.forget(request.client_id)
            if isinstance(error, AuthenticationFailed | FatalVenueError):
                raise error from exc
            return [error] * len(requests)  # refused as a whole (rate limit, maintenance)
        venue.log.warning("batch_outcome_unknown", orders=len(requests), error=type(exc).__name__)
        lost: list[PlaceOutcome] = [error] * len(requests)
        outcomes = await _resolve(venue, requests, [None] * len(requests), lost)
        if all(isinstance(o, RequestTimedOut) for o in outcomes):
            raise RequestTimedOut(str(error)) from exc
        return outcomes
    matched = _match(venue, requests, entries)
    outcomes_now: list[PlaceOutcome | None] = []
    for request, entry in zip(requests, matched, strict=True):
        try:
            outcomes_now.append(None if entry is None else _accept(venue, request, entry))
        except VenueError as exc:
            outcomes_now.append(exc)
    missing = RequestTimedOut(f"{venue.name} place_orders: no answer for the order")
    return await _resolve(venue, requests, outcomes_now, [missing] * len(requests))


async def _resolve(
    venue: CcxtVenue,
    requests: list[OrderRequest],
    outcomes: list[PlaceOutcome | None],
    errors: list[PlaceOutcome],
) -> list[PlaceOutcome]:
    """Fill each ``None`` outcome by looking the order up by client id (as after a lost
    single answer); ``errors[i]`` is the error it stands for."""
    unknown = [i for i, outcome in enumerate(outcomes) if outcome is None]

    async def lookup(index: int) -> OpenOrder:
        error = errors[index]
        assert isinstance(error, VenueError)
        return await ops.resolve_lost(venue, requests[index], error)

    found = dict(zip(unknown, await each_concurrently(lookup, unknown), strict=True))
    for outcome in found.values():
        if isinstance(outcome, AuthenticationFailed | FatalVenueError):
            raise outcome  # about the account, not this order: as a single lookup would
    return [found[i] if outcome is None else outcome for i, outcome in enumerate(outcomes)]


def _accept(venue: CcxtVenue, request: OrderRequest, entry: Mapping[str, Any]) -> OpenOrder | None:
    """The outcome of one answered entry (a ccxt order, ``status == 'rejected'`` if failed);
    ``None`` when it says neither (no order id): the order is then looked up."""
    if str(entry.get("status") or "").lower() == "rejected":
        venue.tracker.forget(request.client_id)
        info = entry.get("info")
        raise entry_error(
            venue.exchange,
            info if isinstance(info, Mapping) else entry,
            action="place_orders",
            secrets=venue.secrets,
        )
    if entry.get("id") is None:
        return None
    return ops.accepted(venue, request, entry)


def _match(
    venue: CcxtVenue, requests: list[OrderRequest], entries: list[Mapping[str, Any]]
) -> list[Mapping[str, Any] | None]:
    """Each request's answer entry: by client id, else by position (an entry without any client
    id, where the answer has one entry per request, still in request order); ``None`` when none
    belongs to it. ccxt's ``parse_orders`` sorts its result by timestamp (stable): only entries
    that all carry the same timestamp, typically none, are still in the order of the answer."""
    by_id: dict[str, Mapping[str, Any]] = {}
    for answered in entries:
        cid = _entry_client_id(venue, answered)
        if cid is not None:
            by_id.setdefault(cid, answered)
    positional = len(entries) == len(requests) and len({e.get("timestamp") for e in entries}) <= 1
    matched: list[Mapping[str, Any] | None] = []
    for index, request in enumerate(requests):
        entry: Mapping[str, Any] | None = by_id.get(request.client_id)
        if entry is None and positional and _entry_client_id(venue, entries[index]) is None:
            entry = entries[index]
        matched.append(entry)
    return matched


def _entry_client_id(venue: CcxtVenue, entry: Mapping[str, Any]) -> str | None:
    info = entry.get("info")
    sources = (entry, info) if isinstance(info, Mapping) else (entry,)
    for source in sources:
        for field in _CLIENT_ID_FIELDS:
            value = source.get(field)
            if isinstance(value, str) and value:
                return client_id_from_native(venue.flavour, value)
    return None


async def _create(venue: CcxtVenue, requests: list[OrderRequest]) -> list[Mapping[str, Any]]:
    """Send the batch; the answer as one ccxt-order-like mapping per entry."""
    exchange = venue.exchange
    if venue.flavour.batch_place == "kucoin_hf":
        return await _create_kucoin_hf(venue, requests)
    orders = [
        {
            "symbol": venue.symbol,
            "type": "limit",
            "side": request.side.value,
            "amount": plain(request.size),
            "price": plain(request.price),
            "params": ops.order_params(request),
        }
        for request in requests
    ]
    raw = await exchange.create_orders(orders)
    return [entry for entry in raw if isinstance(entry, Mapping)] if isinstance(raw, list) else []


async def _create_kucoin_hf(
    venue: CcxtVenue, requests: list[OrderRequest]
) -> list[Mapping[str, Any]]:
    """KuCoin's ``POST /api/v1/hf/orders/multi`` with the order bodies ccxt builds for single
    orders; its ``data`` list (``orderId``, ``clientOid``, ``success``, ``failMsg``) becomes
    ccxt-like entries (``id`` / ``clientOrderId``; ``status == 'rejected'`` for a failure)."""
    exchange = venue.exchange
    order_list = [
        exchange.create_spot_order_request(
            venue.symbol,
            "limit",
            request.side.value,
            plain(request.size),
            plain(request.price),
            ops.order_params(request),
        )
        for request in requests
    ]
    response = await exchange.privatePostHfOrdersMulti(
        {"symbol": venue.market_id, "orderList": order_list}
    )
    data = response.get("data") if isinstance(response, Mapping) else None
    if isinstance(data, Mapping):  # the older (non-HF) shape: {"data": {"data": [...]}}
        data = data.get("data")
    entries: list[Mapping[str, Any]] = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, Mapping):
            continue
        ok = item.get("success") is not False and item.get("status") != "fail"
        entries.append(
            {
                "id": item.get("orderId") if ok else None,
                "clientOrderId": item.get("clientOid"),
                "status": None if ok else "rejected",
                "info": item,
            }
        )
    return entries


async def cancel_orders(
    venue: CcxtVenue, client_ids: Sequence[ClientOrderId]
) -> list[CancelOutcome]:
    """One outcome per client id, in order: ``None`` (cancelled) or the error (``OrderNotFound``
    for one already gone). Orders whose exchange id is known go out in batch cancels, the rest
    as single cancels by client id, all at once.

    :raises RequestTimedOut: every answer was lost (each order stays tracked as cancel-requested;
        the next listing tells which are gone).
    """
    limit = venue.flavour.batch.cancel
    unique = list(dict.fromkeys(client_ids))
    by_id = [
        cid
        for cid in unique
        if valid_client_id(venue.flavour, cid) and venue.tracker.venue_id(cid) is not None
    ]
    if limit <= 1 or len(by_id) <= 1:
        return await cancel_concurrently(venue, client_ids)
    batches = [by_id[i : i + limit] for i in range(0, len(by_id), limit)]
    singles = [cid for cid in unique if cid not in set(by_id)]
    groups = batches + ([singles] if singles else [])

    async def run(index: int) -> list[CancelOutcome]:
        if index < len(batches):
            return await _cancel_batch(venue, groups[index])
        return await cancel_concurrently(venue, groups[index])

    outcomes: dict[str, CancelOutcome] = {}
    for group, result in zip(groups, await each_concurrently(run, range(len(groups))), strict=True):
        if isinstance(result, AuthenticationFailed | FatalVenueError):
            raise result
        for cid, outcome in zip(
            group, result if isinstance(result, list) else [result] * len(group), strict=True
        ):
            outcomes[cid] = outcome
    ordered = [outcomes[cid] for cid in client_ids]
    if all(isinstance(o, RequestTimedOut) for o in ordered):
        raise RequestTimedOut(f"{venue.name} cancel_orders: every answer was lost")
    return ordered


async def _cancel_batch(venue: CcxtVenue, client_ids: list[ClientOrderId]) -> list[CancelOutcome]:
    """One batch cancel by exchange order id; each order's outcome, in order."""
    tracker = venue.tracker
    ids = {cid: str(tracker.venue_id(cid)) for cid in client_ids}
    for cid in client_ids:
        tracker.cancel_requested(cid)
    raw = await venue.call(
        "cancel_orders",
        lambda: venue.exchange.cancel_orders(list(ids.values()), venue.symbol),
    )
    by_id: dict[str, Mapping[str, Any]] = {}
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, Mapping):
            info = entry.get("info")
            vid = entry.get("id") or (info.get("id") if isinstance(info, Mapping) else None)
            if vid is not None:
                by_id[str(vid)] = entry
    outcomes: list[CancelOutcome] = []
    for cid in client_ids:
        entry = by_id.get(ids[cid])
        if entry is None:
            outcomes.append(RequestTimedOut(f"{venue.name} cancel_orders: no answer for {cid}"))
            continue
        if str(entry.get("status") or "").lower() == "rejected":
            info = entry.get("info")
            error = entry_error(
                venue.exchange,
                info if isinstance(info, Mapping) else entry,
                action="cancel_orders",
                secrets=venue.secrets,
            )
            if isinstance(error, OrderNotFound):
                tracker.closed(cid)
            outcomes.append(error)
            continue
        tracker.closed(cid)
        outcomes.append(None)
    return outcomes
