"""The ccxt venue's memory of orders: client id <-> exchange id, fills so far, what vanished.

Exchanges answer with their own order ids and some (MEXC) never echo the client id back on
placement, so the venue keeps the mapping itself: from its own placements, and from every open
orders listing. The tracker is synchronous (no awaits), so its updates are atomic between the
bot's requests and the event stream's polls. It decides three things the venue turns into events:

* which new trades are fills (deduplicated by trade id) and how much of their order remains;
* when the trade history is worth fetching (an order's filled amount grew or an order vanished);
* which orders left the book without a fill and without us asking (``OrderClosed``): missing
  from two consecutive listings that both started after the order was acknowledged.

Where a placement's answer carries no status (MEXC, KuCoin: a post-only order that would cross
is accepted, then cancelled), the order is *awaiting confirmation* until a listing shows it;
the event stream lists open orders soon after such a placement instead of the venue querying
each order (a second round trip per placement), and one that vanishes before any listing saw
it is reported closed as ``cancelled_on_arrival``.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kasmm.core.types import ZERO, ClientOrderId, Fill, OpenOrder, Side, VenueOrderId
from kasmm.venues.ccxt.convert import dec0, timestamp_s, to_fill

#: Listings an order must be missing from before it counts as closed by the venue.
MISSING_LISTINGS_TO_CLOSE = 2
#: Trade ids remembered for deduplication.
SEEN_TRADES = 5_000
#: Closed orders remembered (for late fills and for cancel-by-id).
RECENT_ORDERS = 2_000
#: ``OrderClosed`` reasons: left the book after a listing showed it resting; vanished before
#: any listing confirmed it (a crossing post-only order the venue accepted, then cancelled).
CLOSED_BY_VENUE = "closed_by_venue"
CANCELLED_ON_ARRIVAL = "cancelled_on_arrival"


@dataclass
class Tracked:
    """One order the venue knows by client id."""

    client_id: str
    side: Side
    price: Decimal
    size: Decimal
    created_at: float
    venue_id: str | None
    #: Local time the order was known to rest (acknowledged or listed).
    known_since: float
    filled: Decimal = ZERO
    cancel_requested: bool = False
    missing: int = 0
    #: Placed through this venue (not merely listed: a leftover or someone else's order).
    placed_here: bool = False
    #: Placed as post-only (an amend must not make it cross).
    post_only: bool = False
    #: An immediate-or-cancel order: never rests, so no listing ever shows it.
    ioc: bool = False

    def as_open_order(self) -> OpenOrder:
        """The order as the bot sees it."""
        return OpenOrder(
            client_id=ClientOrderId(self.client_id),
            side=self.side,
            price=self.price,
            size=self.size,
            remaining=max(ZERO, self.size - self.filled),
            created_at=self.created_at,
            venue_id=VenueOrderId(self.venue_id) if self.venue_id is not None else None,
        )


@dataclass(frozen=True, slots=True)
class LostIoc:
    """An immediate-or-cancel order whose answer was lost: what was sent, and when (monotonic)."""

    side: Side
    price: Decimal
    size: Decimal
    lost_at: float


@dataclass
class ListingResult:
    """What one open-orders listing changed."""

    #: New trades are likely: an order's fill grew, or an order vanished.
    fetch_trades: bool = False
    #: Orders missing long enough to be closed (decided after their trades were read).
    vanished: list[str] = field(default_factory=list)


class OrderTracker:
    """Client ids, exchange ids and fill progress of the account's orders on one symbol."""

    def __init__(self) -> None:
        self.open: dict[str, Tracked] = {}
        self._recent: OrderedDict[str, Tracked] = OrderedDict()
        self._by_venue_id: OrderedDict[str, str] = OrderedDict()
        #: Placements whose outcome is unknown (timed out and not found yet).
        self.unknown: set[str] = set()
        #: Acknowledged placements no listing has shown yet (client id -> ack time), where the
        #: acknowledgement cannot tell resting from cancelled on arrival.
        self.awaiting: dict[str, float] = {}
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        self._listed_filled: dict[str, Decimal] = {}
        self._listed_remaining: dict[str, Decimal] = {}
        self._vanished: set[str] = set()
        #: A listing saw a change that trades explain: read the trade history next.
        self.trades_due = False
        #: Immediate-or-cancel orders sent and not answered yet: their trades may arrive (on a
        #: private websocket) before the answer that names their exchange id.
        self._ioc_in_flight: set[str] = set()
        #: A trade of an unknown order was held back while an IOC was in flight.
        self._held_back = False
        #: IOCs whose outcome is unknown (answer lost, order not found yet), by client id: the
        #: order as sent and when it was lost. The stream looks them up until found (their
        #: exchange id is what links their trades to them) or too old.
        self.lost_iocs: dict[str, LostIoc] = {}

    # --- placements and cancels -------------------------------------------------------------

    def is_open(self, client_id: str) -> bool:
        """True when ``client_id`` is believed to rest on the book (or may, after a timeout)."""
        return client_id in self.open or client_id in self.unknown

    def placed(
        self, order: OpenOrder, now: float, *, post_only: bool = False, confirm: bool = False
    ) -> None:
        """Record an acknowledged order.

        :param confirm: the acknowledgement does not say whether the order rests (it may have
            been cancelled on arrival): await a listing that shows it.
        """
        self.unknown.discard(order.client_id)
        if confirm:
            self.awaiting[order.client_id] = now
        tracked = Tracked(
            client_id=order.client_id,
            side=order.side,
            price=order.price,
            size=order.size,
            created_at=order.created_at,
            venue_id=order.venue_id,
            known_since=now,
            filled=order.size - order.remaining,
            placed_here=True,
            post_only=post_only,
        )
        self.open[order.client_id] = tracked
        self._remember(tracked)

    def ioc_sending(self, client_id: str) -> None:
        """An immediate-or-cancel order is about to be sent: its client id is taken, and
        trades of orders not known yet are held back until it is answered (they may be its)."""
        self.unknown.add(client_id)
        self._ioc_in_flight.add(client_id)

    def ioc_failed(
        self, client_id: str, *, outcome_unknown: bool, lost: LostIoc | None = None
    ) -> None:
        """The IOC was refused (``outcome_unknown=False``: forgotten) or its answer was lost
        (the client id stays taken: the order may exist; with ``lost``, the stream keeps
        looking it up, :attr:`lost_iocs`)."""
        self._ioc_in_flight.discard(client_id)
        if not outcome_unknown:
            self.unknown.discard(client_id)
        elif lost is not None:
            self.lost_iocs[client_id] = lost
        if self._held_back and not self._ioc_in_flight:
            self._held_back = False
            self.trades_due = True  # the held-back trades: read again (someone else's, then)

    def ioc_done(
        self,
        client_id: str,
        side: Side,
        price: Decimal,
        size: Decimal,
        venue_id: str | None,
        filled: Decimal,
        now: float,
        created_at: float,
    ) -> None:
        """The IOC's outcome is known (``filled`` of ``size``): remember it (not as open: it
        never rests) so that its trades are attributed to it, and have them read soon.

        Trades held back while it was in flight are read again by REST once a listing (the
        confirmation mechanism, :meth:`confirmation_due`) has run, right after this.
        """
        self._ioc_in_flight.discard(client_id)
        self.unknown.discard(client_id)
        self.lost_iocs.pop(client_id, None)
        tracked = Tracked(
            client_id=client_id,
            side=side,
            price=price,
            size=size,
            created_at=created_at,
            venue_id=venue_id,
            known_since=now,
            placed_here=True,
            ioc=True,
        )
        self._remember(tracked)
        if filled > ZERO:
            self.trades_due = True
        if self._held_back and not self._ioc_in_flight:
            self._held_back = False
            self.trades_due = True
            self.awaiting[client_id] = now

    def amended(self, client_id: str, price: Decimal, size: Decimal, filled: Decimal) -> None:
        """The order now rests at ``price`` for ``size`` (same ids), ``filled`` of it so far."""
        tracked = self.open.get(client_id)
        if tracked is not None:
            tracked.price, tracked.size = price, size
            tracked.filled = max(tracked.filled, filled)

    def forget(self, client_id: str) -> None:
        """The order was never placed (rejected): drop it."""
        self.unknown.discard(client_id)
        self.awaiting.pop(client_id, None)
        self.open.pop(client_id, None)

    def cancel_requested(self, client_id: str) -> None:
        """We asked for a cancel: its disappearance is not news."""
        tracked = self.open.get(client_id)
        if tracked is not None:
            tracked.cancel_requested = True

    def closed(self, client_id: str) -> None:
        """The order is gone (cancelled by us or not found)."""
        self.unknown.discard(client_id)
        self.awaiting.pop(client_id, None)
        self.open.pop(client_id, None)

    def confirmation_due(self, now: float, delay: float) -> bool:
        """True when an order awaiting confirmation was acknowledged ``delay`` or more ago."""
        return any(at <= now - delay for at in self.awaiting.values())

    def next_confirmation(self, delay: float) -> float:
        """When :meth:`confirmation_due` next becomes true (``inf``: nothing awaits)."""
        return min(self.awaiting.values(), default=math.inf) + delay

    def venue_id(self, client_id: str) -> str | None:
        """The exchange id of ``client_id``, if known."""
        tracked = self.open.get(client_id) or self._recent.get(client_id)
        return tracked.venue_id if tracked is not None else None

    def placed_here(self, venue_id: Any) -> bool:
        """True when exchange order ``venue_id`` was placed through this venue."""
        client_id = self.client_id_for(str(venue_id)) if venue_id is not None else None
        tracked = self.get(client_id) if client_id else None
        return tracked is not None and tracked.placed_here

    def get(self, client_id: str) -> Tracked | None:
        """The tracked order ``client_id`` (open or recently closed)."""
        return self.open.get(client_id) or self._recent.get(client_id)

    def _remember(self, tracked: Tracked) -> None:
        self._recent[tracked.client_id] = tracked
        self._recent.move_to_end(tracked.client_id)
        while len(self._recent) > RECENT_ORDERS:
            self._recent.popitem(last=False)
        if tracked.venue_id is not None:
            self._by_venue_id[tracked.venue_id] = tracked.client_id
            self._by_venue_id.move_to_end(tracked.venue_id)
            while len(self._by_venue_id) > RECENT_ORDERS:
                self._by_venue_id.popitem(last=False)

    # --- listings ---------------------------------------------------------------------------

    def observe_listing(self, orders: Iterable[OpenOrder], started_at: float) -> ListingResult:
        """Fold one complete open-orders listing (requested at ``started_at``) into the state."""
        result = ListingResult()
        listed_ids: set[str] = set()
        listed_venue_ids: set[str] = set()
        filled: dict[str, Decimal] = {}
        remaining: dict[str, Decimal] = {}
        for cid in [c for c in self.awaiting if (t := self._recent.get(c)) is not None and t.ioc]:
            del self.awaiting[cid]  # the listing an IOC awaited: it never shows the order
        for order in orders:
            vid = order.venue_id
            if vid is not None:
                listed_venue_ids.add(vid)
                filled[vid] = order.filled
                remaining[vid] = order.remaining
                if order.filled > self._listed_filled.get(vid, ZERO):
                    result.fetch_trades = True
            if not order.client_id:
                continue
            listed_ids.add(order.client_id)
            self.awaiting.pop(order.client_id, None)
            tracked = self.open.get(order.client_id)
            if tracked is None:
                # Unknown outcome resolved, a leftover from a previous run, or someone else's.
                self.unknown.discard(order.client_id)
                tracked = Tracked(
                    client_id=order.client_id,
                    side=order.side,
                    price=order.price,
                    size=order.size,
                    created_at=order.created_at,
                    venue_id=vid,
                    known_since=started_at,
                    filled=order.filled,
                )
                self.open[order.client_id] = tracked
                self._remember(tracked)
            elif tracked.venue_id is None and vid is not None:
                tracked.venue_id = vid
                self._remember(tracked)
            tracked.missing = 0
        if any(vid not in listed_venue_ids for vid in self._listed_filled):
            result.fetch_trades = True
        self._listed_filled, self._listed_remaining = filled, remaining
        for cid, tracked in list(self.open.items()):
            if cid in listed_ids or (tracked.venue_id in listed_venue_ids):
                tracked.missing = 0
                self.awaiting.pop(cid, None)
                continue
            if tracked.known_since >= started_at:
                continue  # acknowledged after the listing was requested: not missing yet
            tracked.missing += 1
            result.fetch_trades = True
            if tracked.missing >= MISSING_LISTINGS_TO_CLOSE:
                result.vanished.append(cid)
                self._vanished.add(cid)
        self.trades_due = self.trades_due or result.fetch_trades
        return result

    def take_closed(self) -> list[tuple[str, str]]:
        """Close the vanished orders (call after reading trades); return those to report."""
        vanished, self._vanished = self._vanished, set()
        return self.close_vanished(sorted(vanished))

    def close_vanished(self, client_ids: Iterable[str]) -> list[tuple[str, str]]:
        """Drop vanished orders; return ``(client id, reason)`` of those that left unfilled and
        unasked (``OrderClosed``): ``cancelled_on_arrival`` when no listing ever showed one
        that awaited confirmation, else ``closed_by_venue``."""
        closed: list[tuple[str, str]] = []
        for cid in client_ids:
            tracked = self.open.pop(cid, None)
            unconfirmed = self.awaiting.pop(cid, None) is not None
            if tracked is None:
                continue
            if not tracked.cancel_requested and tracked.filled < tracked.size:
                closed.append((cid, CANCELLED_ON_ARRIVAL if unconfirmed else CLOSED_BY_VENUE))
        return closed

    # --- trades -----------------------------------------------------------------------------

    def client_id_for(self, venue_id: str | None) -> str | None:
        """The client id of exchange order ``venue_id``, if known."""
        return self._by_venue_id.get(venue_id) if venue_id is not None else None

    def fill_from_trade(
        self, trade: Mapping[str, Any], now: float, client_id_hint: str | None = None
    ) -> Fill | None:
        """A ``Fill`` for a trade not seen before (``None`` for duplicates and garbage).

        ``remaining`` comes from the tracked order (its size minus every fill so far); for an
        order the venue never tracked, from the last listing (zero once it is gone).
        """
        trade_id = trade.get("id")
        if trade_id is None:
            return None
        key = str(trade_id)
        if key in self._seen:
            return None
        self._seen.add(key)
        self._seen_order.append(key)
        while len(self._seen_order) > SEEN_TRADES:
            self._seen.discard(self._seen_order.popleft())
        order_id = trade.get("order")
        venue_id = str(order_id) if order_id is not None else None
        client_id = self.client_id_for(venue_id) or client_id_hint or ""
        if not client_id and self._ioc_in_flight:
            # Perhaps the fill of an IOC whose answer (its exchange id) is still on the way:
            # not seen yet, so the trade history delivers it again once the IOC is known.
            self._seen.discard(key)
            self._seen_order.pop()
            self._held_back = True
            return None
        tracked = self.get(client_id) if client_id else None
        size = dec0(trade.get("amount"))
        if tracked is not None:
            tracked.filled += size
            remaining = tracked.size - tracked.filled
            self.awaiting.pop(client_id, None)  # it rested: it traded
            if remaining <= 0:
                self.open.pop(client_id, None)
        else:
            remaining = self._listed_remaining.get(venue_id, ZERO) if venue_id else ZERO
        return to_fill(trade, client_id, remaining, timestamp_s(trade.get("timestamp"), now))
