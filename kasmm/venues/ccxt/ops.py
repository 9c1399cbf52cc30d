"""Order operations of the ccxt venue: place (with unknown-outcome lookup), cancel, cancel-all.

Split from :mod:`.venue` to keep each module about one thing; these functions use the venue's
ccxt instance, tracker and ``call`` / ``translate`` (where ccxt errors become kasmm errors).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import ccxt.async_support as ccxt

from kasmm.core.types import (
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderRequest,
    Side,
    VenueOrderId,
)
from kasmm.errors import (
    AuthenticationFailed,
    FatalVenueError,
    OrderNotFound,
    OrderRejected,
    PostOnlyWouldCross,
    RequestTimedOut,
    VenueError,
)
from kasmm.venues.base import require_resting
from kasmm.venues.ccxt.convert import dec0, plain
from kasmm.venues.ccxt.exchanges import native_client_id, valid_client_id

if TYPE_CHECKING:
    from kasmm.venues.ccxt.venue import CcxtVenue

#: A post-only order is refused locally when it crosses a book at most this old.
PRECHECK_MAX_BOOK_AGE_S = 5.0
#: ccxt order statuses of an order that left the book without (full) execution.
#: Gate reports a post-only order it cancelled for crossing with status ``poc`` (unmapped).
_GONE = frozenset({"canceled", "cancelled", "rejected", "expired", "poc"})


def check_request(venue: CcxtVenue, request: OrderRequest, rules: MarketRules) -> None:
    """Refuse what the exchange would refuse (or, worse, what ccxt would round) before sending.

    :raises OrderRejected: an IOC request (``place_ioc`` sends those), bad client id, duplicate
        open client id, price or size not positive, off tick or lot, below minimum size or
        notional.
    :raises PostOnlyWouldCross: a post-only order crosses a book seen in the last few seconds.
    """
    require_resting(request)
    check_order(venue, request, rules)


def check_order(venue: CcxtVenue, request: OrderRequest, rules: MarketRules) -> None:
    """:func:`check_request` without the time-in-force check (resting and IOC orders alike)."""
    cid = request.client_id
    if not valid_client_id(venue.flavour, cid):
        raise OrderRejected(f"{venue.name}: client id {cid!r} is not [A-Za-z0-9_]{{1,24}}")
    if venue.tracker.is_open(cid):
        raise OrderRejected(f"{venue.name}: client id {cid!r} is already in use")
    check_terms(venue, request.side, request.price, request.size, request.post_only, rules)


def check_terms(
    venue: CcxtVenue,
    side: Side,
    price: Decimal,
    size: Decimal,
    post_only: bool,
    rules: MarketRules,
) -> None:
    """Price and size as the exchange accepts them unrounded; a post-only price that does not
    cross a book seen in the last few seconds (placements and amends alike)."""
    if not (price.is_finite() and size.is_finite()) or price <= 0 or size <= 0:
        raise OrderRejected(f"{venue.name}: price and size must be positive numbers")
    try:
        off_grid = price % rules.tick != 0 or size % rules.lot != 0
    except InvalidOperation:
        off_grid = True
    if off_grid:
        raise OrderRejected(f"{venue.name}: price {price} / size {size} off tick or lot")
    if size < rules.min_size or price * size < rules.min_notional:
        raise OrderRejected(f"{venue.name}: size {size} at {price} below the market minimums")
    book = venue.book
    if post_only and book is not None and venue.book_age_s <= PRECHECK_MAX_BOOK_AGE_S:
        best_ask, best_bid = book.best_ask, book.best_bid
        if (side is Side.BUY and best_ask is not None and price >= best_ask) or (
            side is Side.SELL and best_bid is not None and price <= best_bid
        ):
            raise PostOnlyWouldCross(f"{venue.name}: post-only {side} at {price} crosses")


def order_params(request: OrderRequest) -> dict[str, Any]:
    """ccxt ``params`` of a limit order: the client id, and post-only when asked."""
    params: dict[str, Any] = {"clientOrderId": request.client_id}
    if request.post_only:
        params["postOnly"] = True
    return params


def outcome_unknown(exc: BaseException, error: VenueError) -> bool:
    """A timeout, a dropped connection or a 5xx: the exchange may have acted on the request."""
    return isinstance(error, RequestTimedOut) or (
        isinstance(exc, ccxt.ExchangeNotAvailable) and not isinstance(exc, ccxt.OnMaintenance)
    )


async def place_order(venue: CcxtVenue, request: OrderRequest) -> OpenOrder:
    """Place ``request``; on an unknown outcome look it up by client id, never place it twice.

    One request: where the answer carries no status (MEXC, KuCoin), the order counts as resting
    and the next open-orders listing confirms it (see :mod:`.tracker`); one cancelled on arrival
    is then reported as ``OrderClosed``.
    """
    check_request(venue, request, venue.rules)
    cid = request.client_id
    exchange = venue.exchange
    venue.tracker.unknown.add(cid)  # until the outcome is known (also if we are cancelled)
    try:
        raw = await exchange.create_order(
            venue.symbol,
            "limit",
            request.side.value,
            plain(request.size),
            plain(request.price),
            order_params(request),
        )
    except Exception as exc:
        error = venue.translate(exc, "place_order")
        if not outcome_unknown(exc, error):
            venue.tracker.forget(cid)
            raise error from exc
        return await resolve_lost(venue, request, error)
    return accepted(venue, request, raw if isinstance(raw, Mapping) else {})


def accepted(venue: CcxtVenue, request: OrderRequest, raw: Mapping[str, Any]) -> OpenOrder:
    """The order the exchange acknowledged with ``raw`` (a ccxt order), now tracked.

    :raises PostOnlyWouldCross: the answer says it was cancelled at once, unfilled (post-only).
    :raises OrderRejected: likewise for an order that was not post-only.
    """
    cid = request.client_id
    if _left_unfilled(raw):  # accepted, then cancelled at once
        venue.tracker.forget(cid)
        kind = PostOnlyWouldCross if request.post_only else OrderRejected
        raise kind(f"{venue.name}: order {cid} was cancelled on arrival")
    vid = raw.get("id")
    filled = dec0(raw.get("filled"))
    order = OpenOrder(
        client_id=cid,
        side=request.side,
        price=request.price,
        size=request.size,
        remaining=request.size - filled,
        created_at=venue.clock.wall(),
        venue_id=VenueOrderId(str(vid)) if vid is not None else None,
    )
    # Where a crossing post-only order is accepted and then cancelled, the answer cannot say
    # it rests: a listing soon confirms it (or reports it closed), not a second request here.
    confirm = venue.flavour.post_only_silently_cancelled and request.post_only
    venue.tracker.placed(order, venue.clock.now(), post_only=request.post_only, confirm=confirm)
    return order


async def resolve_lost(venue: CcxtVenue, request: OrderRequest, error: VenueError) -> OpenOrder:
    """After a lost answer: the order if the exchange has it, else ``RequestTimedOut``.

    :raises PostOnlyWouldCross: it exists but the venue cancelled it unfilled (post-only).
    :raises OrderRejected: likewise for an order that was not post-only.
    :raises RequestTimedOut: not found (it may still appear: the client id stays reserved).
    """
    cid = request.client_id
    found = await find_order(venue, request)
    if found is not None:
        venue.log.warning("order_found_after_unknown_outcome", client_id=cid)
        return found
    venue.log.warning("order_outcome_unknown", client_id=cid)
    raise RequestTimedOut(str(error)) from error


def _left_unfilled(raw: Mapping[str, Any]) -> bool:
    status = str(raw.get("status") or "").lower()
    return status in _GONE and dec0(raw.get("filled")) == 0


async def fetch_by_client_id(venue: CcxtVenue, client_id: str) -> Mapping[str, Any] | None:
    """The ccxt order with ``client_id`` (any status), ``None`` if the venue does not know it."""
    exchange = venue.exchange
    if venue.flavour.client_id_prefix:  # Gate: the text is accepted where the order id goes
        native = native_client_id(venue.flavour, client_id)

        async def call() -> Any:
            return await exchange.fetch_order(native, venue.symbol)

    else:

        async def call() -> Any:
            return await exchange.fetch_order(None, venue.symbol, {"clientOrderId": client_id})

    try:
        raw = await venue.call("fetch_order", call)
    except OrderNotFound:
        return None
    return raw if isinstance(raw, Mapping) and raw.get("id") is not None else None


async def find_order(venue: CcxtVenue, request: OrderRequest) -> OpenOrder | None:
    """After an unknown outcome: the order if it exists (by client id query, then by listing).

    :raises PostOnlyWouldCross: it exists but the venue cancelled it unfilled (post-only cross).
    :raises OrderRejected: likewise for an order that was not post-only.
    """
    cid = request.client_id
    if venue.flavour.fetch_by_client_id:
        try:
            raw = await fetch_by_client_id(venue, cid)
        except (AuthenticationFailed, FatalVenueError):
            raise
        except VenueError:
            raw = None
        if raw is not None:
            if _left_unfilled(raw):
                venue.tracker.forget(cid)
                kind = PostOnlyWouldCross if request.post_only else OrderRejected
                raise kind(f"{venue.name}: order {cid} was cancelled by the venue")
            found = venue.to_open_order({**raw, "clientOrderId": raw.get("clientOrderId") or cid})
            if found is not None:
                now = venue.clock.now()
                found = replace(found, client_id=ClientOrderId(cid), created_at=venue.clock.wall())
                venue.tracker.placed(found, now, post_only=request.post_only)
                return found
    try:
        listed = await venue.fetch_open_orders()
    except (AuthenticationFailed, FatalVenueError):
        raise
    except VenueError:
        return None
    for order in listed:
        if order.client_id == cid:
            venue.tracker.unknown.discard(cid)
            return order
    return None


async def cancel_order(venue: CcxtVenue, client_id: ClientOrderId) -> None:
    """Cancel by exchange id when known, else by client id; ``OrderNotFound`` when gone."""
    if not valid_client_id(venue.flavour, client_id):
        raise OrderNotFound(f"{venue.name}: no order with client id {client_id!r}")
    tracker = venue.tracker
    vid = tracker.venue_id(client_id)
    if vid is None and not venue.flavour.cancel_by_client_id:
        await venue.fetch_open_orders()  # refreshes the id map
        vid = tracker.venue_id(client_id)
        if vid is None:
            tracker.closed(client_id)
            raise OrderNotFound(f"{venue.name}: no open order with client id {client_id!r}")
    exchange = venue.exchange
    tracker.cancel_requested(client_id)

    async def call() -> Any:
        if vid is not None:
            return await exchange.cancel_order(vid, venue.symbol)
        if venue.flavour.client_id_prefix:
            return await exchange.cancel_order(
                native_client_id(venue.flavour, client_id), venue.symbol
            )
        return await exchange.cancel_order(None, venue.symbol, {"clientOrderId": client_id})

    try:
        await venue.call("cancel_order", call)
    except OrderNotFound:
        tracker.closed(client_id)
        raise
    tracker.closed(client_id)


async def cancel_all(venue: CcxtVenue, prefix: str) -> int:
    """Cancel each listed order whose client id starts with ``prefix``; return how many went.

    Uses the exchange's batch cancel by order id where ccxt has one for spot (Gate, BingX) and
    single cancels otherwise; never a cancel-all-for-symbol, which would take foreign orders too.
    The count is verified by listing again.
    """
    targets = [o for o in await venue.fetch_open_orders() if o.client_id.startswith(prefix)]
    if not targets:
        return 0
    batch = venue.flavour.batch_cancel
    with_ids = [o for o in targets if o.venue_id is not None]
    singles = [o for o in targets if o.venue_id is None]
    if batch > 1 and with_ids:
        for start in range(0, len(with_ids), batch):
            chunk = with_ids[start : start + batch]
            for order in chunk:
                venue.tracker.cancel_requested(order.client_id)
            try:
                await venue.call(
                    "cancel_orders",
                    lambda chunk=chunk: venue.exchange.cancel_orders(  # type: ignore[misc]
                        [o.venue_id for o in chunk], venue.symbol
                    ),
                )
            except (AuthenticationFailed, FatalVenueError):
                raise
            except VenueError as exc:
                venue.log.warning("batch_cancel_failed", error=type(exc).__name__)
                singles.extend(chunk)
    else:
        singles.extend(with_ids)
    for order in singles:
        with contextlib.suppress(OrderNotFound):
            await cancel_order(venue, order.client_id)
    remaining = {o.client_id for o in await venue.fetch_open_orders()}
    gone = [o for o in targets if o.client_id not in remaining]
    for order in gone:
        venue.tracker.closed(order.client_id)
    return len(gone)
