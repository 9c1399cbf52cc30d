"""Hanging orders (issue 19, Hummingbot's ``hanging_orders_enabled``): the other side of a filled
pair stays on the book.

When one of the quotes' orders fills (partly or fully), the open order on the other side at the
same level (:attr:`OpenOrder.level`) becomes *hanging*: it is held outside the quotes
(:mod:`kasmm.core.held`: reconciliation neither keeps nor cancels it, and it takes its side's
level and balance) until it fills, the mid moves ``cancel_pct`` percent from its price
(:func:`to_cancel`), trading stops being allowed, or the bot stops.

The pairing rule (:func:`pair_of`): the bot places a level's bid and ask in the same round, so
their creation times (``OpenOrder.created_at``, the time each was sent) are the same or close;
a level's order on one side may be replaced while the other rests, and with ``place_first`` a
side briefly holds the new and the old order of a level. Of the other side's open orders at the
filled order's level that are not held already, the one created closest in time to the filled
order is its pair (the later one on a tie: the newer quote). A fill of an order that is itself
held (a hanging or rebalance order) makes no pair: hanging orders do not breed.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from decimal import Decimal

from kasmm.core.rules import to_decimal
from kasmm.core.types import ClientOrderId, OpenOrder

_HUNDRED = Decimal(100)


def pair_of(
    filled: OpenOrder, open_orders: Iterable[OpenOrder], held: Container[ClientOrderId]
) -> OpenOrder | None:
    """The open order that hangs when ``filled`` fills (``None``: none).

    :param open_orders: the open orders (``filled`` among them or not).
    :param held: the ids already held outside the quotes (never paired, and a fill of one of
        them pairs nothing).
    """
    if filled.client_id in held:
        return None
    best: OpenOrder | None = None
    best_gap = 0.0
    for order in open_orders:
        if order.side is filled.side or order.level != filled.level or order.client_id in held:
            continue
        gap = abs(order.created_at - filled.created_at)
        if (
            best is None
            or gap < best_gap
            or (gap == best_gap and order.created_at > best.created_at)
        ):
            best, best_gap = order, gap
    return best


def moved_beyond(order: OpenOrder, mid: Decimal, cancel_pct: float) -> bool:
    """The mid is more than ``cancel_pct`` percent of ``order``'s price away from it."""
    return abs(mid - order.price) * _HUNDRED > to_decimal(cancel_pct) * order.price


def to_cancel(
    hanging: Iterable[OpenOrder], mid: Decimal | None, cancel_pct: float
) -> tuple[ClientOrderId, ...]:
    """The hanging orders to cancel: those the mid ``mid`` moved more than ``cancel_pct``
    percent away from (none without a mid)."""
    if mid is None or not mid.is_finite() or mid <= 0:
        return ()
    return tuple(o.client_id for o in hanging if moved_beyond(o, mid, cancel_pct))
