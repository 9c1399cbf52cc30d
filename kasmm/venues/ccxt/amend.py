"""Native amend of the ccxt venue: a resting order's price and size changed in place.

Only where the exchange keeps the order (same exchange id, same client id) and answers with
the order's new state: Gate spot, ``PATCH /spot/orders/{id}`` (ccxt ``edit_order``). One request
instead of a cancel and a placement, and no moment without the order or with both orders'
funds locked. Gate's queue rule: reducing the size keeps the order's priority; a new price or
a larger size sends it to the back of its (new) price level, as a new order would.

KuCoin's HF "alter" and BingX's ``cancelReplace`` cancel the order and place a new one with a
new order id: they save nothing that a concurrent cancel and placement do not, so those
exchanges declare ``supports_amend = False`` and the bot cancels and places.

The amend is checked locally like a placement (tick, lot, minimums, a post-only order that
would cross a fresh book) and never sent when it changes nothing. Outcomes:

* the amended order (``remaining`` = new size - filled so far);
* ``OrderNotFound`` when the order is no longer open, or the exchange cancelled it on the amend
  (a post-only order moved across the book, or a size below what already filled);
* ``PostOnlyWouldCross`` / ``OrderRejected`` / ``InsufficientFunds`` when the amend was refused:
  the order rests unchanged;
* ``RequestTimedOut`` when the answer was lost and the order could not be looked up (it rests,
  at the old or the new price: the next listing tells).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kasmm.core.types import ClientOrderId, OpenOrder, VenueOrderId
from kasmm.errors import (
    FatalVenueError,
    OrderNotFound,
    OrderRejected,
    RequestTimedOut,
    VenueError,
)
from kasmm.venues.ccxt import ops
from kasmm.venues.ccxt.convert import dec, dec0, plain
from kasmm.venues.ccxt.exchanges import native_client_id

if TYPE_CHECKING:
    from kasmm.venues.ccxt.tracker import Tracked
    from kasmm.venues.ccxt.venue import CcxtVenue

#: ccxt statuses of an order that is still on the book.
_OPEN = frozenset({"open"})


async def amend_order(
    venue: CcxtVenue, client_id: ClientOrderId, price: Decimal, size: Decimal
) -> OpenOrder:
    """Change ``client_id``'s price and total size (filled part included) in place.

    See the module docstring for the outcomes.
    :raises FatalVenueError: the exchange has no native amend (check ``supports_amend``).
    """
    if not venue.flavour.supports_amend:
        raise FatalVenueError(f"{venue.name} has no native amend; cancel and place instead")
    tracked = venue.tracker.open.get(client_id)
    if tracked is None:
        raise OrderNotFound(f"{venue.name}: no open order with client id {client_id!r}")
    _check_amend(venue, tracked, price, size)
    if price == tracked.price and size == tracked.size:
        return tracked.as_open_order()  # nothing to change: no request
    ref = tracked.venue_id or native_client_id(venue.flavour, client_id)
    new_size = plain(size) if size != tracked.size else None
    new_price = plain(price) if price != tracked.price else None
    try:
        raw = await venue.exchange.edit_order(
            ref, venue.symbol, "limit", tracked.side.value, new_size, new_price
        )
    except Exception as exc:
        error = venue.translate(exc, "amend_order")
        if isinstance(error, OrderNotFound):
            venue.tracker.closed(client_id)
            raise error from exc
        if not ops.outcome_unknown(exc, error):
            raise error from exc
        venue.log.warning("amend_outcome_unknown", client_id=client_id)
        try:
            raw = await ops.fetch_by_client_id(venue, client_id)
        except VenueError:
            raw = None
        if raw is None:
            raise RequestTimedOut(str(error)) from exc
    return _amended(venue, tracked, raw if isinstance(raw, Mapping) else {}, price, size)


def _check_amend(venue: CcxtVenue, tracked: Tracked, price: Decimal, size: Decimal) -> None:
    """Refuse what the exchange would refuse, or what would cancel or cross, before sending."""
    moved = price != tracked.price
    ops.check_terms(venue, tracked.side, price, size, tracked.post_only and moved, venue.rules)
    if size <= tracked.filled:
        raise OrderRejected(f"{venue.name}: size {size} is not above the {tracked.filled} filled")


def _amended(
    venue: CcxtVenue, tracked: Tracked, raw: Mapping[str, Any], price: Decimal, size: Decimal
) -> OpenOrder:
    """The order after the amend, from the exchange's answer (or a lookup after a lost one)."""
    cid = tracked.client_id
    status = str(raw.get("status") or "").lower()
    if status and status not in _OPEN:
        # Finished by the amend (cancelled as crossing, or below its filled size) or filled:
        # fills still arrive through the trade history.
        venue.tracker.closed(cid)
        raise OrderNotFound(f"{venue.name}: order {cid} is no longer open ({status})")
    new_price = dec(raw.get("price")) or price
    new_size = dec(raw.get("amount")) or size
    filled = dec0(raw.get("filled"))
    venue.tracker.amended(cid, new_price, new_size, filled)
    vid = raw.get("id") or tracked.venue_id
    return OpenOrder(
        client_id=ClientOrderId(cid),
        side=tracked.side,
        price=new_price,
        size=new_size,
        remaining=max(Decimal(0), new_size - max(filled, tracked.filled)),
        created_at=tracked.created_at,
        venue_id=VenueOrderId(str(vid)) if vid is not None else None,
    )
