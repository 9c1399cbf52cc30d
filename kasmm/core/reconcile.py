"""Order reconciliation: the fewest cancels and places that turn open orders into the quotes.

An open order is *kept* for a desired intent of its side when all of these hold:

* its price is within ``tolerance_bps`` of the intent's price (relative to the intent's price);
* it is younger than ``max_order_age_s`` (``now - created_at``), so stale orders get renewed;
* its remaining size is within ``SIZE_BAND`` of the intent's size (50 % to 150 %), so a
  mostly filled order is refreshed but a small partial fill does not cost two requests;
* it does not cross the desired quotes of the other side (a bid at or above the lowest desired
  ask, or an ask at or below the highest desired bid), which a new post-only order would hit.

Matching is a maximum bipartite matching per side (augmenting paths), trying intents best price
first and, for each, the closest-priced order first. A plain greedy pass could pair an intent
with the "wrong" order when two intents lie within tolerance of each other and then cancel and
replace an order that could have stayed; the maximum matching keeps as many orders as possible,
which both minimizes actions and makes reconciliation idempotent.

Unmatched open orders are cancelled, unmatched intents placed, cancels first (they free the
balance the places need). At most ``levels`` intents per side are considered, so no side ever
ends with more than ``levels`` orders. Within ``min_requote_interval_s`` of the last action
only cancels that cannot wait go out: orders on a side that should be empty, orders crossing
the desired quotes, and the surplus of a side holding more than ``levels`` orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from kasmm.core.grid import Grid
from kasmm.core.pairing import (
    all_on_grid,
    augmenting_match,
    candidates_on_grid,
    closest_on_grid,
    maximum_matching,
    tolerance_of,
    tolerance_ratio,
)
from kasmm.core.params import RefreshParams
from kasmm.core.rules import BPS, to_decimal
from kasmm.core.types import (
    ZERO,
    CancelOrder,
    OpenOrder,
    OrderAction,
    OrderIntent,
    PlaceOrder,
    Quotes,
    Side,
)

#: Remaining size of a kept order, as a fraction of the desired size: (lowest, highest).
SIZE_BAND = (Decimal("0.5"), Decimal("1.5"))


def reconcile(
    desired: Quotes,
    open_orders: Sequence[OpenOrder],
    now: float,
    last_action_at: float | None,
    params: RefreshParams,
    grid: Grid | None = None,
) -> tuple[OrderAction, ...]:
    """Actions that take ``open_orders`` to ``desired`` (empty when nothing needs to change).

    Orders with nothing remaining are not resting and are ignored. Cancels come first, in the
    order of ``open_orders``; places follow level by level, bid before ask.

    :param grid: the grid the intents' ticks and lots are on (the quoted rules'): a side whose
        intents and orders are all measured on it is matched in integers, with the same result.
    """
    resting = _resting(open_orders)
    levels = params.levels
    bids = _best_first(Side.BUY, desired.bids)[:levels]
    asks = _best_first(Side.SELL, desired.asks)[:levels]
    tolerance = tolerance_of(params)  # raises on NaN/inf, every round
    bounds = _Bounds(bids, asks, grid)
    kept: set[int] = set()  # indices into resting
    places: list[OrderIntent] = []
    for side in _SIDES:
        intents = bids if side is Side.BUY else asks
        orders = [i for i, o in enumerate(resting) if o.side is side]
        if not intents or not orders:
            # Nothing to match: every order of the side goes, every intent is placed.
            places.extend(intents)
            continue
        side_orders = [resting[i] for i in orders]
        if grid is not None and all_on_grid(intents, side_orders, grid):
            ratio = tolerance_ratio(params)
            usable = _usable(side_orders, now, params, bounds, on_grid=True)
            closest = closest_on_grid(side, intents, side_orders, usable, ratio)
            matched = (
                closest
                if closest is not None  # else two intents share their closest order
                else augmenting_match(candidates_on_grid(side, intents, side_orders, usable, ratio))
            )
        else:
            candidates = _candidates(side, intents, side_orders, now, params, bounds, tolerance)
            matched = maximum_matching(candidates)
        for k, j in enumerate(matched):
            if j >= 0:
                kept.add(orders[j])
            else:
                places.append(intents[k])
    if not places and len(kept) == len(resting):
        # Nothing to change (most decisions): a kept order neither crosses nor sits on a side
        # without quotes, nor beyond the side's levels, so throttled or not there is no cancel.
        return ()
    if last_action_at is not None and now - last_action_at < params.min_requote_interval_s:
        return _throttled(resting, kept, bounds, params.levels)
    actions: list[OrderAction] = [
        CancelOrder(o.client_id, _cancel_reason(o, now, params, bounds))
        for i, o in enumerate(resting)
        if i not in kept
    ]
    if not _by_level(places):
        _sort_by_level(places)
    for intent in places:
        actions.append(PlaceOrder(intent))
    return tuple(actions)


def _resting(open_orders: Sequence[OpenOrder]) -> tuple[OpenOrder, ...]:
    """The orders with something remaining, as a tuple (compiled, a tuple is iterated by
    index, a ``Sequence`` through the iterator protocol): the engine's own tuple when every
    order rests, as in most rounds."""
    orders = tuple(open_orders)  # no copy of a tuple
    for o in orders:
        # An order measured on the grid has its remaining size in lots: an integer test.
        if not (o.lots > 0 if o.lots >= 0 else o.remaining > ZERO):
            return tuple(o for o in orders if (o.lots > 0 if o.lots >= 0 else o.remaining > ZERO))
    return orders


def _sort_by_level(places: list[OrderIntent]) -> None:
    """Level by level, bid before ask. (A function of its own: compiled, a function holding a
    lambda builds an environment object on every call, sorting or not.)"""
    places.sort(key=lambda intent: (intent.level, intent.side is Side.SELL))


def _by_level(places: Sequence[OrderIntent]) -> bool:
    """``places`` is already in the order of the sort key ``(level, side is SELL)`` (a stable
    sort would keep it): most rounds place one intent, or one per side of the same level."""
    prev_level, prev_sell = -1, False
    for i, intent in enumerate(places):
        level, sell = intent.level, intent.side is Side.SELL
        if i > 0 and (level < prev_level or (level == prev_level and prev_sell and not sell)):
            return False
        prev_level, prev_sell = level, sell
    return True


#: ``Side`` in its definition order, as a plain tuple (iterating an enum class is slow).
#: ``Final``: compiled, a constant rather than a lookup in the module's dict; of variable
#: length to mypyc, which stores a fixed-length tuple unboxed and boxes it again to iterate.
_SIDES: Final[tuple[Side, ...]] = (Side.BUY, Side.SELL)


class _Bounds:
    """What the safety rules read of one round's desired quotes, computed once per round.

    The lowest desired ask and the highest desired bid, taken on first use (as
    :func:`_crosses` would): an order at or beyond them crosses. ``grid``: the grid the
    intents' ticks are on (:func:`reconcile`'s), if any: orders on it are compared in ticks.
    """

    __slots__ = (
        "_max_bid",
        "_max_bid_ticks",
        "_min_ask",
        "_min_ask_ticks",
        "asks",
        "bids",
        "grid",
    )

    def __init__(
        self,
        bids: tuple[OrderIntent, ...],
        asks: tuple[OrderIntent, ...],
        grid: Grid | None = None,
    ) -> None:
        self.bids, self.asks = bids, asks
        self.grid = grid
        self._max_bid: Decimal | None = None
        self._min_ask: Decimal | None = None
        #: The same bounds in ticks (-2: not computed; -1: some intent is not on the grid)
        self._max_bid_ticks = -2
        self._min_ask_ticks = -2

    def crosses_on_grid(self, order: OpenOrder) -> bool:
        """:meth:`crosses` for an order on the intents' grid: compared in ticks when the other
        side's intents are all on it (as the quoting core makes them), else in Decimal."""
        if order.side is Side.BUY:
            if not self.asks:
                return False
            if self._min_ask_ticks == -2:
                self._min_ask_ticks = _extreme_ticks(self.asks, lowest=True)
            if self._min_ask_ticks >= 0:
                return order.ticks >= self._min_ask_ticks
            return self.crosses(order)
        if not self.bids:
            return False
        if self._max_bid_ticks == -2:
            self._max_bid_ticks = _extreme_ticks(self.bids, lowest=False)
        if self._max_bid_ticks >= 0:
            return order.ticks <= self._max_bid_ticks
        return self.crosses(order)

    def crosses(self, order: OpenOrder) -> bool:
        """:func:`_crosses` against the round's desired quotes."""
        if order.side is Side.BUY:
            if not self.asks:
                return False
            if self._min_ask is None:
                self._min_ask = min(a.price for a in self.asks)
            return order.price >= self._min_ask
        if not self.bids:
            return False
        if self._max_bid is None:
            self._max_bid = max(b.price for b in self.bids)
        return order.price <= self._max_bid

    def safety_reason(self, order: OpenOrder) -> str | None:
        """:func:`safety_reason` against the round's desired quotes (in ticks for an order on
        the intents' grid)."""
        if not (self.bids if order.side is Side.BUY else self.asks):
            return "side_off"
        grid = self.grid
        on_grid = grid is not None and order.grid is grid and order.ticks >= 0
        if self.crosses_on_grid(order) if on_grid else self.crosses(order):
            return "crossing"
        return None


def _extreme_ticks(intents: tuple[OrderIntent, ...], *, lowest: bool) -> int:
    """The lowest (or highest) intent's ticks, or -1 when one is not on the grid."""
    out = -1
    for intent in intents:
        t = intent.ticks
        if t < 0:
            return -1
        if out < 0 or (t < out if lowest else t > out):
            out = t
    return out


def _throttled(
    resting: Sequence[OpenOrder], kept: set[int], bounds: _Bounds, levels: int
) -> tuple[OrderAction, ...]:
    """Cancels that cannot wait for the requote interval.

    Safety cancels (see :func:`safety_reason`), plus ``surplus`` cancels when a side still
    holds more than ``levels`` orders (e.g. right after a switch to a mode with fewer levels):
    orders the full reconciliation would not keep, farthest from the touch first.
    """
    cancels: list[CancelOrder] = []
    bids: list[int] = []  # the survivors of each side
    asks: list[int] = []
    for i, o in enumerate(resting):
        reason = bounds.safety_reason(o)
        if reason:
            cancels.append(CancelOrder(o.client_id, reason))
        elif o.side is Side.BUY:
            bids.append(i)
        else:
            asks.append(i)
    if len(bids) > levels:
        cancels.extend(_surplus(resting, bids, kept, Side.BUY, len(bids) - levels))
    if len(asks) > levels:
        cancels.extend(_surplus(resting, asks, kept, Side.SELL, len(asks) - levels))
    return tuple(cancels)


def _surplus(
    resting: Sequence[OpenOrder], survivors: list[int], kept: set[int], side: Side, extra: int
) -> list[CancelOrder]:
    """The ``extra`` survivors of ``side`` not kept that are farthest from the touch. (Apart
    from :func:`_throttled`: compiled, a function holding a lambda builds an environment
    object on every call.)"""
    # Sorting on price alone: bids ascending and asks descending put the farthest first.
    spare = sorted((i for i in survivors if i not in kept), key=lambda i: resting[i].price)
    if side is Side.SELL:
        spare.reverse()
    return [CancelOrder(resting[i].client_id, "surplus") for i in spare[:extra]]


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


def _best_first(side: Side, intents: tuple[OrderIntent, ...]) -> tuple[OrderIntent, ...]:
    if _strictly_best_first(side, intents):
        return tuple(intents)  # the quoting core's order already (sorting would keep it)
    return _sorted_best_first(side, intents)


def _sorted_best_first(side: Side, intents: Sequence[OrderIntent]) -> tuple[OrderIntent, ...]:
    # Apart from _best_first: compiled, a function holding a lambda builds an environment
    # object on every call, taking the fast path or not.
    return tuple(sorted(intents, key=lambda x: -x.price if side is Side.BUY else x.price))


def _strictly_best_first(side: Side, intents: tuple[OrderIntent, ...]) -> bool:
    """The intents are on the grid and each strictly behind the one before (in ticks)."""
    prev = -1
    for intent in intents:
        t = intent.ticks
        if t < 0 or (prev >= 0 and (t >= prev if side is Side.BUY else t <= prev)):
            return False
        prev = t
    return True


def _crosses(order: OpenOrder, bids: Sequence[OrderIntent], asks: Sequence[OrderIntent]) -> bool:
    if order.side is Side.BUY:
        return bool(asks) and order.price >= min(a.price for a in asks)
    return bool(bids) and order.price <= max(b.price for b in bids)


def _candidates(
    side: Side,
    intents: Sequence[OrderIntent],
    orders: list[OpenOrder],
    now: float,
    params: RefreshParams,
    bounds: _Bounds,
    tolerance: Decimal,
) -> list[list[int]]:
    """For each intent, the orders that may stand in for it, closest price first.

    An order may stand in for an intent when it does not cross and :func:`keepable` holds;
    what depends on one side of a pair only (the order's age, the intent's price and size
    limits) is computed once here instead of once per pair, with the same Decimal operations.
    """
    if not intents or not orders:
        return []
    usable = _usable(orders, now, params, bounds)
    low, high = SIZE_BAND
    candidates: list[list[int]] = []
    for intent in intents:
        if intent.side is not side:  # a malformed Quotes: keepable() refuses every order
            candidates.append([])
            continue
        price, size = intent.price, intent.size
        limit = tolerance * price
        lowest, highest = low * size, high * size
        ok: list[tuple[Decimal, str, int]] = []
        for j in usable:
            o = orders[j]
            distance = abs(o.price - price)
            if distance * BPS > limit:
                continue
            if lowest <= o.remaining <= highest:
                ok.append((distance, o.client_id, j))
        ok.sort()
        candidates.append([j for _, _, j in ok])
    return candidates


def _usable(
    orders: list[OpenOrder],
    now: float,
    params: RefreshParams,
    bounds: _Bounds,
    *,
    on_grid: bool = False,
) -> list[int]:
    """The orders young enough to keep that do not cross the desired quotes (compared in ticks
    with ``on_grid``: orders on the intents' grid)."""
    max_age = params.max_order_age_s
    usable: list[int] = []
    for j, o in enumerate(orders):
        crosses = bounds.crosses_on_grid(o) if on_grid else bounds.crosses(o)
        if not crosses and not now - o.created_at >= max_age:
            usable.append(j)
    return usable


def _cancel_reason(order: OpenOrder, now: float, params: RefreshParams, bounds: _Bounds) -> str:
    safety = bounds.safety_reason(order)
    if safety:
        return safety
    if now - order.created_at >= params.max_order_age_s:
        return "expired"
    return "requote"
