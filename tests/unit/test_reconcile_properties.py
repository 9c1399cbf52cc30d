"""Property tests of reconcile: bounded, consistent and idempotent."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from kasmm.core.params import RefreshParams
from kasmm.core.reconcile import reconcile, safety_reason
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
NOW = 10_000.0
SETTINGS = settings(max_examples=300, deadline=None)

# Prices on a 0.01 grid around 100: desired bids below 100, asks above, so desired quotes never
# cross (as compute_quotes guarantees); open orders may sit anywhere, crossing included.
tick_prices = st.integers(9_900, 10_100).map(lambda n: D(n) / 100)
sizes = st.sampled_from([D("0.5"), D(1), D("1.2"), D(2), D(5)])


@st.composite
def desired_st(draw: st.DrawFn) -> Quotes:
    bids = sorted(draw(st.lists(st.integers(9_900, 9_999), max_size=6)), reverse=True)
    asks = sorted(draw(st.lists(st.integers(10_001, 10_100), max_size=6)))
    return Quotes(
        bids=tuple(OrderIntent(Side.BUY, D(n) / 100, draw(sizes), i) for i, n in enumerate(bids)),
        asks=tuple(OrderIntent(Side.SELL, D(n) / 100, draw(sizes), i) for i, n in enumerate(asks)),
    )


@st.composite
def open_orders_st(draw: st.DrawFn) -> list[OpenOrder]:
    n = draw(st.integers(0, 8))
    orders = []
    for i in range(n):
        size = draw(sizes)
        remaining = size * D(draw(st.sampled_from(["0", "0.3", "0.5", "0.8", "1"])))
        orders.append(
            OpenOrder(
                client_id=ClientOrderId(f"o{i}"),
                side=draw(st.sampled_from(Side)),
                price=draw(tick_prices),
                size=size,
                remaining=remaining,
                created_at=NOW - draw(st.floats(0.0, 600.0)),
            )
        )
    return orders


params_st = st.builds(
    RefreshParams,
    tolerance_bps=st.sampled_from([0.0, 1.0, 5.0, 20.0]),
    max_order_age_s=st.sampled_from([60.0, 300.0]),
    min_requote_interval_s=st.sampled_from([0.0, 1.0]),
    levels=st.integers(1, 5),
)


def apply(
    open_orders: Sequence[OpenOrder], actions: Sequence[OrderAction], now: float
) -> list[OpenOrder]:
    """What a perfect venue would hold after executing ``actions``."""
    gone = {a.client_id for a in actions if isinstance(a, CancelOrder)}
    after = [o for o in open_orders if o.client_id not in gone]
    for k, a in enumerate(actions):
        if isinstance(a, PlaceOrder):
            i = a.intent
            cid = ClientOrderId(f"new{k}")
            after.append(OpenOrder(cid, i.side, i.price, i.size, i.size, now, level=i.level))
    return after


@SETTINGS
@given(desired_st(), open_orders_st(), params_st)
def test_reconcile_is_bounded_and_idempotent(
    desired: Quotes, open_orders: list[OpenOrder], params: RefreshParams
) -> None:
    actions = reconcile(desired, open_orders, NOW, None, params)
    cancels = [a for a in actions if isinstance(a, CancelOrder)]
    places = [a for a in actions if isinstance(a, PlaceOrder)]
    # cancels first, each of a resting order, each once
    assert list(actions) == [*cancels, *places]
    ids = [c.client_id for c in cancels]
    assert len(ids) == len(set(ids))
    assert set(ids) <= {o.client_id for o in open_orders if o.remaining > 0}
    after = apply(open_orders, actions, NOW)
    for side in Side:
        resting = [o for o in after if o.side is side and o.remaining > 0]
        assert len(resting) <= params.levels
        assert len(resting) == min(len(desired.side(side)), params.levels)
    # Reconciling the outcome again asks for nothing.
    assert reconcile(desired, after, NOW, None, params) == ()


@SETTINGS
@given(desired_st(), open_orders_st(), params_st)
def test_throttled_round_only_sends_cancels_that_cannot_wait(
    desired: Quotes, open_orders: list[OpenOrder], params: RefreshParams
) -> None:
    if params.min_requote_interval_s == 0:
        return  # never throttled
    last = NOW - params.min_requote_interval_s / 2
    actions = reconcile(desired, open_orders, NOW, last, params)
    by_id = {o.client_id: o for o in open_orders}
    bids, asks = desired.bids[: params.levels], desired.asks[: params.levels]
    for a in actions:
        assert isinstance(a, CancelOrder)
        safety = safety_reason(by_id[a.client_id], bids, asks)
        assert a.reason == (safety or "surplus")
    after = apply(open_orders, actions, NOW)
    for side in Side:
        assert len([o for o in after if o.side is side and o.remaining > 0]) <= params.levels
    # Whatever the throttled round left, a full round afterwards converges in one step.
    full = reconcile(desired, after, NOW, None, params)
    assert reconcile(desired, apply(after, full, NOW), NOW, None, params) == ()
