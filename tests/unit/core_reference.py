"""Plain reference implementations of the core's hot paths, as they were before the fast paths
of issue 15 (kasmm 20a32b3), for the differential tests in ``test_core_fast_paths.py``.

Each is the straightforward version: it walks every level, re-derives every Decimal, calls
``keepable`` per pair. The production code must give exactly what these give (the same values
and the same Decimal representations), for every input the tests generate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from kasmm.core.params import RefreshParams
from kasmm.core.reconcile import SIZE_BAND
from kasmm.core.rules import BPS, to_decimal
from kasmm.core.types import (
    Book,
    BookLevel,
    CancelOrder,
    OpenOrder,
    OrderAction,
    OrderIntent,
    PlaceOrder,
    Quotes,
    Side,
)

# --- the bot's book handling -------------------------------------------------------------


def well_formed(book: Book) -> bool:
    """Every level has a positive finite price and size (an empty side is fine)."""
    return all(
        lv.price.is_finite() and lv.size.is_finite() and lv.price > 0 and lv.size > 0
        for lv in (*book.bids, *book.asks)
    )


def exclude_own(book: Book, open_orders: Iterable[OpenOrder]) -> Book:
    """The book without our own resting orders (every level walked)."""
    own: dict[tuple[Side, Decimal], Decimal] = {}
    for o in open_orders:
        key = (o.side, o.price)
        own[key] = own.get(key, Decimal(0)) + o.remaining

    def strip(side: Side, levels: tuple[BookLevel, ...]) -> tuple[BookLevel, ...]:
        out = []
        for lvl in levels:
            size = lvl.size - own.get((side, lvl.price), Decimal(0))
            if size > 0:
                out.append(lvl if size == lvl.size else BookLevel(lvl.price, size))
        return tuple(out)

    return Book(bids=strip(Side.BUY, book.bids), asks=strip(Side.SELL, book.asks), ts=book.ts)


# --- reconciliation ------------------------------------------------------------------------


def reconcile(
    desired: Quotes,
    open_orders: Sequence[OpenOrder],
    now: float,
    last_action_at: float | None,
    params: RefreshParams,
) -> tuple[OrderAction, ...]:
    """Actions that take ``open_orders`` to ``desired`` (empty when nothing needs to change).

    Orders with nothing remaining are not resting and are ignored. Cancels come first, in the
    order of ``open_orders``; places follow level by level, bid before ask.
    """
    resting = [o for o in open_orders if o.remaining > 0]
    wanted = {side: _best_first(side, desired.side(side))[: params.levels] for side in Side}
    kept: set[int] = set()  # indices into resting
    places: list[OrderIntent] = []
    for side in Side:
        orders = [i for i, o in enumerate(resting) if o.side is side]
        matched = _match(wanted[side], [resting[i] for i in orders], now, params, wanted)
        kept.update(orders[j] for j in matched.values())
        places.extend(intent for k, intent in enumerate(wanted[side]) if k not in matched)
    if last_action_at is not None and now - last_action_at < params.min_requote_interval_s:
        return _throttled(resting, kept, wanted, params.levels)
    cancels = [
        CancelOrder(o.client_id, _cancel_reason(o, now, params, wanted))
        for i, o in enumerate(resting)
        if i not in kept
    ]
    places.sort(key=lambda intent: (intent.level, intent.side is Side.SELL))
    return (*cancels, *(PlaceOrder(intent) for intent in places))


def _throttled(
    resting: Sequence[OpenOrder],
    kept: set[int],
    wanted: dict[Side, tuple[OrderIntent, ...]],
    levels: int,
) -> tuple[OrderAction, ...]:
    """Cancels that cannot wait for the requote interval.

    Safety cancels (see :func:`safety_reason`), plus ``surplus`` cancels when a side still
    holds more than ``levels`` orders (e.g. right after a switch to a mode with fewer levels):
    orders the full reconciliation would not keep, farthest from the touch first.
    """
    cancels: list[CancelOrder] = []
    survivors: dict[Side, list[int]] = {side: [] for side in Side}
    for i, o in enumerate(resting):
        reason = safety_reason(o, wanted[Side.BUY], wanted[Side.SELL])
        if reason:
            cancels.append(CancelOrder(o.client_id, reason))
        else:
            survivors[o.side].append(i)
    for side, idx in survivors.items():
        extra = len(idx) - levels
        if extra <= 0:
            continue
        # Sorting on price alone: bids ascending and asks descending put the farthest first.
        spare = sorted((i for i in idx if i not in kept), key=lambda i: resting[i].price)
        if side is Side.SELL:
            spare.reverse()
        cancels.extend(CancelOrder(resting[i].client_id, "surplus") for i in spare[:extra])
    return tuple(cancels)


def safety_reason(
    order: OpenOrder, bids: Sequence[OrderIntent], asks: Sequence[OrderIntent]
) -> str | None:
    """Why ``order`` must go even while requoting is throttled, or ``None``.

    ``side_off``: its side has no desired quotes at all (inventory caps, a halt). ``crossing``:
    it would cross the desired quotes of the other side.
    """
    if not (bids if order.side is Side.BUY else asks):
        return "side_off"
    if _crosses(order, bids, asks):
        return "crossing"
    return None


def keepable(
    order: OpenOrder,
    intent: OrderIntent,
    now: float,
    params: RefreshParams,
    tolerance: Decimal | None = None,
) -> bool:
    """True when ``order`` may stand in for ``intent`` (price, age and size rules above).

    ``tolerance`` is ``params.tolerance_bps`` as a Decimal, when the caller already has it.
    """
    if order.side is not intent.side or now - order.created_at >= params.max_order_age_s:
        return False
    if tolerance is None:
        tolerance = to_decimal(params.tolerance_bps)
    if abs(order.price - intent.price) * BPS > tolerance * intent.price:
        return False
    low, high = SIZE_BAND
    return low * intent.size <= order.remaining <= high * intent.size


def _best_first(side: Side, intents: Sequence[OrderIntent]) -> tuple[OrderIntent, ...]:
    return tuple(sorted(intents, key=lambda x: -x.price if side is Side.BUY else x.price))


def _crosses(order: OpenOrder, bids: Sequence[OrderIntent], asks: Sequence[OrderIntent]) -> bool:
    if order.side is Side.BUY:
        return bool(asks) and order.price >= min(a.price for a in asks)
    return bool(bids) and order.price <= max(b.price for b in bids)


def _match(
    intents: Sequence[OrderIntent],
    orders: Sequence[OpenOrder],
    now: float,
    params: RefreshParams,
    wanted: dict[Side, tuple[OrderIntent, ...]],
) -> dict[int, int]:
    """Maximum matching intent index -> order index (Kuhn's augmenting paths; tiny graphs)."""
    bids, asks = wanted[Side.BUY], wanted[Side.SELL]
    tolerance = to_decimal(params.tolerance_bps)
    usable = [j for j, o in enumerate(orders) if not _crosses(o, bids, asks)]

    def candidates_for(intent: OrderIntent) -> list[int]:
        ok = [j for j in usable if keepable(orders[j], intent, now, params, tolerance)]
        return sorted(ok, key=lambda j: (abs(orders[j].price - intent.price), orders[j].client_id))

    candidates = [candidates_for(intent) for intent in intents]
    owner: dict[int, int] = {}  # order index -> intent index

    def augment(i: int, seen: set[int]) -> bool:
        for j in candidates[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(intents)):
        augment(i, set())
    return {i: j for j, i in owner.items()}


def _cancel_reason(
    order: OpenOrder, now: float, params: RefreshParams, wanted: dict[Side, tuple[OrderIntent, ...]]
) -> str:
    safety = safety_reason(order, wanted[Side.BUY], wanted[Side.SELL])
    if safety:
        return safety
    if now - order.created_at >= params.max_order_age_s:
        return "expired"
    return "requote"
