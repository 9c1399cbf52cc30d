"""Order reconciliation: keep what is close enough, cancel the rest, place what is missing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kasmm.core.params import RefreshParams
from kasmm.core.reconcile import keepable, reconcile, safety_reason
from kasmm.core.types import (
    CancelOrder,
    ClientOrderId,
    OpenOrder,
    OrderAction,
    OrderIntent,
    PlaceOrder,
    Quotes,
    Side,
)

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
PARAMS = RefreshParams(
    tolerance_bps=5.0, max_order_age_s=300.0, min_requote_interval_s=1.0, levels=3
)
NOW = 1000.0


def intent(side: Side, price: str, size: str = "1", level: int = 0) -> OrderIntent:
    return OrderIntent(side, D(price), D(size), level)


def order(
    cid: str, side: Side, price: str, size: str = "1", remaining: str | None = None, age: float = 10
) -> OpenOrder:
    rem = D(size if remaining is None else remaining)
    return OpenOrder(ClientOrderId(cid), side, D(price), D(size), rem, created_at=NOW - age)


def quotes(bids: list[str], asks: list[str], size: str = "1") -> Quotes:
    return Quotes(
        bids=tuple(intent(BUY, p, size, i) for i, p in enumerate(bids)),
        asks=tuple(intent(SELL, p, size, i) for i, p in enumerate(asks)),
    )


def cancelled(actions: tuple[OrderAction, ...]) -> list[str]:
    return [a.client_id for a in actions if isinstance(a, CancelOrder)]


def placed(actions: tuple[OrderAction, ...]) -> list[OrderIntent]:
    return [a.intent for a in actions if isinstance(a, PlaceOrder)]


# --- zero actions when nothing changed -----------------------------------------------------


def test_unchanged_quotes_produce_zero_actions() -> None:
    desired = quotes(["99.90", "99.85"], ["100.10", "100.15"])
    open_orders = [
        order("b0", BUY, "99.90"),
        order("b1", BUY, "99.85"),
        order("a0", SELL, "100.10"),
        order("a1", SELL, "100.15"),
    ]
    assert reconcile(desired, open_orders, NOW, None, PARAMS) == ()


def test_quotes_moved_within_tolerance_produce_zero_actions() -> None:
    # 99.90 -> 99.94 is 4.0 bps, 100.10 -> 100.05 is 5.0 bps (the edge is inclusive).
    desired = quotes(["99.94"], ["100.05"])
    open_orders = [order("b0", BUY, "99.90"), order("a0", SELL, "100.10")]
    assert reconcile(desired, open_orders, NOW, None, PARAMS) == ()


def test_nothing_open_nothing_wanted() -> None:
    assert reconcile(Quotes(), [], NOW, None, PARAMS) == ()


# --- keep rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("open_order", "keep"),
    [
        (order("x", BUY, "100.00"), True),
        (order("x", BUY, "100.05"), True),  # 5 bps: inclusive
        (order("x", BUY, "99.95"), True),
        (order("x", BUY, "100.06"), False),
        (order("x", BUY, "99.94"), False),
        (order("x", SELL, "100.00"), False),  # other side
        (order("x", BUY, "100.00", age=299.9), True),
        (order("x", BUY, "100.00", age=300.0), False),  # expired
        (order("x", BUY, "100.00", size="2", remaining="1"), True),  # partial fill, 100 %
        (order("x", BUY, "100.00", remaining="0.5"), True),  # band is inclusive at 50 %
        (order("x", BUY, "100.00", remaining="0.49"), False),
        (order("x", BUY, "100.00", size="1.5"), True),
        (order("x", BUY, "100.00", size="1.51"), False),
    ],
)
def test_keepable(open_order: OpenOrder, keep: bool) -> None:
    assert keepable(open_order, intent(BUY, "100.00"), NOW, PARAMS) is keep


def test_price_outside_tolerance_is_replaced_cancel_first() -> None:
    desired = quotes(["99.80"], ["100.10"])
    open_orders = [order("b0", BUY, "99.90"), order("a0", SELL, "100.10")]
    actions = reconcile(desired, open_orders, NOW, None, PARAMS)
    assert actions == (
        CancelOrder(ClientOrderId("b0"), "requote"),
        PlaceOrder(intent(BUY, "99.80")),
    )


def test_expired_order_is_renewed() -> None:
    desired = quotes(["99.90"], [])
    actions = reconcile(desired, [order("b0", BUY, "99.90", age=301)], NOW, None, PARAMS)
    assert actions == (
        CancelOrder(ClientOrderId("b0"), "expired"),
        PlaceOrder(intent(BUY, "99.90")),
    )


def test_mostly_filled_order_is_refreshed() -> None:
    desired = quotes(["99.90"], [])
    open_orders = [order("b0", BUY, "99.90", size="1", remaining="0.2")]
    actions = reconcile(desired, open_orders, NOW, None, PARAMS)
    assert cancelled(actions) == ["b0"] and placed(actions) == [intent(BUY, "99.90")]


def test_filled_orders_are_not_resting_and_ignored() -> None:
    desired = quotes(["99.90"], [])
    open_orders = [order("done", BUY, "99.50", remaining="0"), order("b0", BUY, "99.90")]
    assert reconcile(desired, open_orders, NOW, None, PARAMS) == ()


def test_surplus_and_duplicate_orders_are_cancelled() -> None:
    desired = quotes(["99.90"], ["100.10"])
    open_orders = [
        order("b0", BUY, "99.90"),
        order("b0dup", BUY, "99.90"),
        order("b-deep", BUY, "99.00"),
        order("a0", SELL, "100.10"),
    ]
    actions = reconcile(desired, open_orders, NOW, None, PARAMS)
    assert len(cancelled(actions)) == 2 and "a0" not in cancelled(actions)
    assert {"b0", "b0dup"} - set(cancelled(actions)) != set()  # one of the two stays
    assert "b-deep" in cancelled(actions)
    assert placed(actions) == []


def test_side_without_desired_quotes_is_cancelled() -> None:
    desired = quotes([], ["100.10"])
    open_orders = [order("b0", BUY, "99.90"), order("a0", SELL, "100.10")]
    actions = reconcile(desired, open_orders, NOW, None, PARAMS)
    assert actions == (CancelOrder(ClientOrderId("b0"), "side_off"),)


def test_order_crossing_the_new_quotes_is_not_kept_even_within_tolerance() -> None:
    # The bid at 100.02 is 3 bps from the desired 99.99, but sits above the desired ask.
    desired = quotes(["99.99"], ["100.00"])
    open_orders = [order("b0", BUY, "100.02"), order("a0", SELL, "100.00")]
    actions = reconcile(desired, open_orders, NOW, None, PARAMS)
    assert actions == (
        CancelOrder(ClientOrderId("b0"), "crossing"),
        PlaceOrder(intent(BUY, "99.99")),
    )


def test_matching_keeps_the_most_orders_not_the_greedy_pairing() -> None:
    # Greedy would give the desired 100.00 its closest order (99.98, 2 bps), leaving 100.04
    # unmatchable for 99.96 (8 bps). Pairing 100.00<-100.04 and 99.96<-99.98 keeps both.
    desired = quotes(["100.00", "99.96"], [])
    open_orders = [order("o1", BUY, "99.98"), order("o2", BUY, "100.04")]
    assert reconcile(desired, open_orders, NOW, None, PARAMS) == ()


# --- levels and ordering ------------------------------------------------------------------


def test_never_more_than_levels_per_side() -> None:
    params = RefreshParams(5.0, 300.0, 0.0, levels=2)
    desired = quotes(["99.9", "99.8", "99.7", "99.6"], ["100.1", "100.2", "100.3"])
    actions = reconcile(desired, [order("b-far", BUY, "98")], NOW, None, params)
    assert cancelled(actions) == ["b-far"]
    assert [(i.side, i.price) for i in placed(actions)] == [
        (BUY, D("99.9")),
        (SELL, D("100.1")),
        (BUY, D("99.8")),
        (SELL, D("100.2")),
    ]


def test_cancels_precede_places() -> None:
    desired = quotes(["99.0", "98.9"], ["101.0", "101.1"])
    open_orders = [order(f"o{i}", BUY if i % 2 else SELL, str(90 + i)) for i in range(4)]
    actions = reconcile(desired, open_orders, NOW, None, PARAMS)
    kinds = [type(a) for a in actions]
    assert kinds == [CancelOrder] * 4 + [PlaceOrder] * 4


def test_desired_order_is_normalized_best_first() -> None:
    desired = Quotes(bids=(intent(BUY, "99.8", level=1), intent(BUY, "99.9", level=0)))
    params = RefreshParams(5.0, 300.0, 0.0, levels=1)
    assert placed(reconcile(desired, [], NOW, None, params)) == [intent(BUY, "99.9")]


# --- throttling ---------------------------------------------------------------------------


@pytest.mark.parametrize(("last", "throttled"), [(999.5, True), (999.0, False), (None, False)])
def test_requotes_are_throttled(last: float | None, throttled: bool) -> None:
    desired = quotes(["99.50"], ["100.50"])
    open_orders = [order("b0", BUY, "99.90"), order("a0", SELL, "100.10")]
    actions = reconcile(desired, open_orders, NOW, last, PARAMS)
    assert (actions == ()) is throttled


def test_throttled_still_sends_safety_cancels() -> None:
    desired = quotes([], ["100.00"])  # bids switched off; the ask moved down
    open_orders = [
        order("b0", BUY, "99.90"),  # side off
        order("a0", SELL, "100.10"),  # merely stale: waits for the interval
        order("a1", SELL, "99.95"),  # fine on its own
    ]
    actions = reconcile(desired, open_orders, NOW, NOW - 0.1, PARAMS)
    assert actions == (CancelOrder(ClientOrderId("b0"), "side_off"),)


def test_throttled_cancels_orders_that_would_cross() -> None:
    desired = quotes(["100.20"], ["100.30"])  # market jumped up
    open_orders = [order("b0", BUY, "99.90"), order("a0", SELL, "100.10")]
    actions = reconcile(desired, open_orders, NOW, NOW - 0.1, PARAMS)
    assert actions == (CancelOrder(ClientOrderId("a0"), "crossing"),)


@pytest.mark.parametrize(
    ("o", "bids", "asks", "reason"),
    [
        (order("x", BUY, "99"), ["99"], ["101"], None),
        (order("x", BUY, "99"), [], ["101"], "side_off"),
        (order("x", BUY, "101"), ["99"], ["101"], "crossing"),  # at the lowest ask
        (order("x", BUY, "102"), ["99"], ["101", "103"], "crossing"),
        (order("x", SELL, "99"), ["99"], ["101"], "crossing"),
        (order("x", SELL, "99.5"), ["99"], ["101"], None),
        (order("x", SELL, "99.5"), ["99"], [], "side_off"),
        (order("x", SELL, "98"), [], ["101"], None),  # nothing to cross
    ],
)
def test_safety_reason(o: OpenOrder, bids: list[str], asks: list[str], reason: str | None) -> None:
    q = quotes(bids, asks)
    assert safety_reason(o, q.bids, q.asks) == reason


def test_throttled_trims_a_side_holding_more_than_levels() -> None:
    # After a switch to a two-level mode: the order matching the desired bid stays, the
    # farthest spare one goes first; asks are within the limit and untouched.
    params = RefreshParams(5.0, 300.0, 1.0, levels=2)
    desired = quotes(["99.90"], ["100.10"])
    open_orders = [
        order("b0", BUY, "99.90"),
        order("b1", BUY, "99.85"),
        order("b2", BUY, "99.80"),
        order("a0", SELL, "100.10"),
        order("a1", SELL, "100.15"),
    ]
    actions = reconcile(desired, open_orders, NOW, NOW - 0.1, params)
    assert actions == (CancelOrder(ClientOrderId("b2"), "surplus"),)
