"""The ccxt venue's order tracker: id mapping, fill progress, vanished orders (pure, no I/O)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kasmm.core.types import ClientOrderId, OpenOrder, Side, VenueOrderId
from kasmm.venues.ccxt.tracker import OrderTracker

D = Decimal


def order(cid: str, vid: str, size: str = "100", remaining: str = "100") -> OpenOrder:
    return OpenOrder(
        ClientOrderId(cid), Side.BUY, D("0.09"), D(size), D(remaining), 10.0, VenueOrderId(vid)
    )


def trade(tid: str, vid: str, amount: float) -> dict[str, Any]:
    return {
        "id": tid,
        "order": vid,
        "side": "buy",
        "price": 0.09,
        "amount": amount,
        "timestamp": 20_000,
        "fee": {"cost": 0.01, "currency": "KAS"},
        "takerOrMaker": "maker",
    }


def test_fills_count_down_remaining_and_are_deduplicated() -> None:
    tracker = OrderTracker()
    tracker.placed(order("a1", "V1"), now=10.0)
    first = tracker.fill_from_trade(trade("T1", "V1", 40.0), now=20.0)
    assert first is not None and (first.client_id, first.remaining) == ("a1", D(60))
    assert tracker.fill_from_trade(trade("T1", "V1", 40.0), now=21.0) is None
    last = tracker.fill_from_trade(trade("T2", "V1", 60.0), now=22.0)
    assert last is not None and last.remaining == 0 and last.ts == 20.0
    assert not tracker.is_open("a1")


def test_unknown_order_fill_uses_the_listing_or_zero() -> None:
    tracker = OrderTracker()
    tracker.observe_listing([order("", "V9", remaining="70")], started_at=5.0)
    fill = tracker.fill_from_trade(trade("T1", "V9", 30.0), now=6.0)
    assert fill is not None and (fill.client_id, fill.remaining) == ("", D(70))
    other = tracker.fill_from_trade(trade("T2", "V8", 1.0), now=6.0, client_id_hint="zz1")
    assert other is not None and (other.client_id, other.remaining) == ("zz1", D(0))


def test_vanished_order_closes_after_two_listings_that_started_after_its_ack() -> None:
    tracker = OrderTracker()
    tracker.placed(order("a1", "V1"), now=10.0)
    # A listing requested before the acknowledgement does not count.
    assert tracker.observe_listing([], started_at=9.0).vanished == []
    first = tracker.observe_listing([], started_at=11.0)
    assert first.fetch_trades and first.vanished == []
    assert tracker.take_closed() == []
    assert tracker.observe_listing([], started_at=12.0).vanished == ["a1"]
    assert tracker.take_closed() == [("a1", "closed_by_venue")]
    assert not tracker.is_open("a1")


def test_reappearing_order_resets_and_ours_or_filled_are_not_reported() -> None:
    tracker = OrderTracker()
    tracker.placed(order("a1", "V1"), now=10.0)
    tracker.placed(order("a2", "V2"), now=10.0)
    tracker.placed(order("a3", "V3"), now=10.0)
    tracker.observe_listing([order("a2", "V2")], started_at=11.0)
    tracker.observe_listing([order("a1", "V1"), order("a2", "V2")], started_at=12.0)  # a1 back
    tracker.cancel_requested("a2")
    tracker.fill_from_trade(trade("T1", "V3", 100.0), now=12.5)  # a3 filled completely
    tracker.observe_listing([], started_at=13.0)
    tracker.observe_listing([], started_at=14.0)
    assert tracker.take_closed() == [("a1", "closed_by_venue")]  # a2 we cancelled, a3 filled


def test_listing_adopts_unknown_outcomes_and_signals_fill_growth() -> None:
    tracker = OrderTracker()
    tracker.unknown.add("a1")
    tracker.observe_listing([order("a1", "V1")], started_at=5.0)
    assert tracker.venue_id("a1") == "V1" and "a1" not in tracker.unknown
    tracker.trades_due = False
    grown = tracker.observe_listing([order("a1", "V1", remaining="90")], started_at=6.0)
    assert grown.fetch_trades and tracker.trades_due


def test_placements_awaiting_confirmation_are_confirmed_or_closed_on_arrival() -> None:
    tracker = OrderTracker()
    tracker.placed(order("a1", "V1"), now=10.0, post_only=True, confirm=True)
    tracker.placed(order("a2", "V2"), now=10.0, post_only=True, confirm=True)
    tracker.placed(order("a3", "V3"), now=10.2)  # its answer said it rests
    assert tracker.awaiting.keys() == {"a1", "a2"}
    assert not tracker.confirmation_due(10.4, delay=0.5)
    assert tracker.next_confirmation(delay=0.5) == 10.5
    assert tracker.confirmation_due(10.5, delay=0.5)
    tracker.observe_listing([order("a2", "V2"), order("a3", "V3")], started_at=10.5)
    assert tracker.awaiting.keys() == {"a1"}  # a2 rests: confirmed
    tracker.observe_listing([order("a2", "V2"), order("a3", "V3")], started_at=11.0)
    assert tracker.take_closed() == [("a1", "cancelled_on_arrival")]
    assert tracker.awaiting == {} and tracker.next_confirmation(delay=0.5) == float("inf")
    tracker.observe_listing([order("a3", "V3")], started_at=12.0)
    tracker.observe_listing([order("a3", "V3")], started_at=13.0)
    assert tracker.take_closed() == [("a2", "closed_by_venue")]  # it had been seen resting
