"""Immediate-or-cancel orders through ccxt: the exchange's own IOC, its outcome, its fills.

ccxt maps ``params={'timeInForce': 'IOC'}`` on a limit order to each exchange's IOC (checked in
ccxt 4.5.90, pinned by ``tests/unit/test_ccxt_ioc.py``): MEXC ``type=IMMEDIATE_OR_CANCEL``,
Gate ``time_in_force=ioc``, KuCoin ``timeInForce=IOC``, BingX ``timeInForce=IOC``.

**The outcome.** Gate and BingX answer a placement with the order's final state (status, filled
amount, cost). MEXC's acknowledgement carries neither status nor fill, and KuCoin HF's only the
ids: the order is then read back once (by exchange id where the answer gave one, else by client
id), and again after a short pause while the exchange still reports it working (an IOC is done
within its matching pass, so this is rare). A lost answer (timeout, dropped connection, 5xx) is
resolved the same way, by client id; not found, the call raises ``RequestTimedOut`` and the
client id stays taken (the order may still appear): the event stream keeps looking it up by
client id at each open-orders poll (:func:`resolve_lost`), so that once found its trades are
still attributed to it.

**The fills** come from the trade history and the private trade stream like every fill
(:mod:`.stream`): the tracker learns the order's exchange id from the outcome and asks for a
trade read. A trade pushed before the answer named its order is held back and read again by
REST (:meth:`~.tracker.OrderTracker.ioc_done`), so no fill is ever attributed to nobody.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kasmm.core.types import ClientOrderId, OrderRequest, VenueOrderId
from kasmm.errors import (
    AuthenticationFailed,
    FatalVenueError,
    OrderNotFound,
    OrderRejected,
    RequestTimedOut,
    VenueError,
)
from kasmm.venues.base import IocOutcome, require_ioc
from kasmm.venues.ccxt import ops
from kasmm.venues.ccxt.convert import dec, plain
from kasmm.venues.ccxt.tracker import LostIoc

if TYPE_CHECKING:
    from kasmm.venues.ccxt.venue import CcxtVenue

#: ccxt statuses of an order that is done (Gate's ``finish_as=ioc`` is ``canceled`` in ccxt).
_DONE = frozenset({"closed", "canceled", "cancelled", "expired", "ioc"})
#: Read-backs of an order the exchange still reports working, and the first pause between them
#: (doubled each time).
LOOKUPS = 4
LOOKUP_PAUSE_S = 0.05
#: How long an IOC whose answer was lost is looked up (at each open-orders poll) before the
#: venue gives up on linking its trades to it.
LOST_IOC_LOOKUP_S = 120.0


def ioc_params(request: OrderRequest) -> dict[str, Any]:
    """ccxt ``params`` of an immediate-or-cancel limit order: the client id and ``IOC``."""
    return {"clientOrderId": request.client_id, "timeInForce": "IOC"}


async def place_ioc(venue: CcxtVenue, request: OrderRequest) -> IocOutcome:
    """Send ``request`` as the exchange's IOC and return its outcome (see the module docs).

    :raises OrderRejected: not an IOC request, a rule violation, or the exchange rejected it.
    :raises RequestTimedOut: the outcome is unknown: the answer was lost and the order could not
        be found, or the order was taken and could not be read back.
    """
    require_ioc(request)
    ops.check_order(venue, request, venue.rules)
    cid = request.client_id
    tracker = venue.tracker
    tracker.ioc_sending(cid)
    try:
        raw = await venue.exchange.create_order(
            venue.symbol,
            "limit",
            request.side.value,
            plain(request.size),
            plain(request.price),
            ioc_params(request),
        )
    except BaseException as exc:
        if not isinstance(exc, Exception):  # cancelled: the order may exist
            tracker.ioc_failed(cid, outcome_unknown=True, lost=_lost(venue, request))
            raise
        error = venue.translate(exc, "place_ioc")
        if not ops.outcome_unknown(exc, error):
            tracker.ioc_failed(cid, outcome_unknown=False)
            raise error from exc
        return await _resolve_lost(venue, request, error)
    answer = raw if isinstance(raw, Mapping) else {}
    try:
        return await _settled(venue, request, answer)
    except OrderRejected:
        raise  # rejected unfilled: _outcome forgot it
    except BaseException:
        tracker.ioc_failed(cid, outcome_unknown=True, lost=_lost(venue, request))
        raise


async def _settled(
    venue: CcxtVenue, request: OrderRequest, answer: Mapping[str, Any]
) -> IocOutcome:
    """The outcome from the placement's answer, or from reading the order back."""
    vid = answer.get("id")
    order: Mapping[str, Any] | None = answer
    for attempt in range(LOOKUPS + 1):
        if order is not None and _is_done(order):
            return _outcome(venue, request, order)
        if attempt == LOOKUPS:
            break
        if attempt > 0:
            await venue.clock.sleep_until(venue.clock.now() + LOOKUP_PAUSE_S * 2 ** (attempt - 1))
        try:
            order = await _read_back(venue, request.client_id, None if vid is None else str(vid))
        except (AuthenticationFailed, FatalVenueError):
            raise
        except VenueError as exc:
            # The exchange took the order: a transient error here must not read as "not placed".
            venue.log.warning("ioc_outcome_unknown", client_id=request.client_id)
            raise RequestTimedOut(f"{venue.name}: IOC {request.client_id} placed: {exc}") from exc
    venue.log.warning("ioc_outcome_unknown", client_id=request.client_id)
    raise RequestTimedOut(f"{venue.name}: IOC {request.client_id} still working after lookups")


async def _resolve_lost(venue: CcxtVenue, request: OrderRequest, error: VenueError) -> IocOutcome:
    """After a lost answer: the outcome if the exchange knows the order, else the error."""
    cid = request.client_id
    try:
        found = await _read_back(venue, cid, None)
    except (AuthenticationFailed, FatalVenueError):
        venue.tracker.ioc_failed(cid, outcome_unknown=True, lost=_lost(venue, request))
        raise
    except VenueError:
        found = None
    if found is not None and _is_done(found):
        venue.log.warning("ioc_found_after_unknown_outcome", client_id=cid)
        return _outcome(venue, request, found)
    venue.tracker.ioc_failed(cid, outcome_unknown=True, lost=_lost(venue, request))
    venue.log.warning("ioc_outcome_unknown", client_id=cid)
    raise RequestTimedOut(str(error)) from error


def _lost(venue: CcxtVenue, request: OrderRequest) -> LostIoc:
    return LostIoc(request.side, request.price, request.size, venue.clock.now())


async def resolve_lost(venue: CcxtVenue) -> None:
    """Look up each IOC whose outcome is still unknown (the event stream calls this before it
    reads trades): one found done is recorded like an answered one, so that its trades are
    its fills; one not found after :data:`LOST_IOC_LOOKUP_S` is given up (its trades, if it
    ever traded, are then reported without their order, and logged). Exchanges that cannot
    look an order up by client id (BingX) keep the id taken and wait for the time out."""
    tracker = venue.tracker
    now = venue.clock.now()
    for cid, lost in list(tracker.lost_iocs.items()):
        found: Mapping[str, Any] | None = None
        if venue.flavour.fetch_by_client_id:
            try:
                found = await _read_back(venue, ClientOrderId(cid), None)
            except (AuthenticationFailed, FatalVenueError):
                raise
            except VenueError:
                found = None  # try again at the next poll
        if found is not None and _is_done(found):
            request = OrderRequest.ioc(ClientOrderId(cid), lost.side, lost.price, lost.size)
            try:
                outcome = _outcome(venue, request, found)
            except (OrderRejected, RequestTimedOut):
                tracker.lost_iocs.pop(cid, None)
                continue
            venue.log.warning(
                "ioc_resolved_after_unknown_outcome",
                client_id=cid,
                status=outcome.status,
                filled=str(outcome.filled),
            )
        elif now - lost.lost_at >= LOST_IOC_LOOKUP_S:
            tracker.lost_iocs.pop(cid, None)
            venue.log.warning("ioc_outcome_unresolved", client_id=cid)


async def _read_back(
    venue: CcxtVenue, client_id: ClientOrderId, venue_id: str | None
) -> Mapping[str, Any] | None:
    """The order by exchange id when known, else by client id where the exchange can look
    one up; ``None`` when it does not know it."""
    if venue_id is None:
        if not venue.flavour.fetch_by_client_id:
            return None
        return await ops.fetch_by_client_id(venue, client_id)
    exchange = venue.exchange

    async def call() -> Any:
        return await exchange.fetch_order(venue_id, venue.symbol)

    try:
        raw = await venue.call("fetch_order", call)
    except OrderNotFound:
        return None
    return raw if isinstance(raw, Mapping) else None


def _is_done(order: Mapping[str, Any]) -> bool:
    status = str(order.get("status") or "").lower()
    return status in _DONE or status == "rejected"


def _outcome(venue: CcxtVenue, request: OrderRequest, order: Mapping[str, Any]) -> IocOutcome:
    """The summary of a done order (ccxt structure), recorded in the tracker.

    :raises OrderRejected: the exchange reports it rejected unfilled.
    :raises RequestTimedOut: it reports a fill the order cannot have had (outcome unknown).
    """
    cid = request.client_id
    status = str(order.get("status") or "").lower()
    filled = _filled(order, request.size)
    if status == "rejected" and filled == 0:
        venue.tracker.ioc_failed(cid, outcome_unknown=False)
        raise OrderRejected(f"{venue.name}: IOC {cid} was rejected")
    if filled is None or filled < 0 or filled > request.size:  # placed, but what it did is unclear
        venue.tracker.ioc_failed(cid, outcome_unknown=True)
        raise RequestTimedOut(f"{venue.name}: IOC {cid} reports filled {order.get('filled')!r}")
    notional = _notional(order, filled)
    vid = order.get("id")
    venue_id = VenueOrderId(str(vid)) if vid is not None else None
    venue.tracker.ioc_done(
        cid,
        request.side,
        request.price,
        request.size,
        venue_id,
        filled,
        venue.clock.now(),
        venue.clock.wall(),
    )
    outcome = IocOutcome.of(cid, request.size, filled, notional, venue_id)
    venue.log.info(
        "ioc_done",
        client_id=cid,
        side=request.side.value,
        status=outcome.status,
        filled=str(filled),
        average_price=None if outcome.average_price is None else str(outcome.average_price),
    )
    return outcome


def _filled(order: Mapping[str, Any], size: Decimal) -> Decimal | None:
    """Base executed: ccxt's ``filled``, else amount minus ``remaining``."""
    filled = dec(order.get("filled"))
    if filled is not None:
        return filled
    remaining = dec(order.get("remaining"))
    return None if remaining is None else size - remaining


def _notional(order: Mapping[str, Any], filled: Decimal) -> Decimal | None:
    """Quote executed: ccxt's ``cost``, else ``average`` times ``filled``."""
    if filled == 0:
        return None
    cost = dec(order.get("cost"))
    if cost is not None and cost > 0:
        return cost
    average = dec(order.get("average"))
    return None if average is None else average * filled
