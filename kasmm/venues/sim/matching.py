"""Order book pieces of the simulated venue: the bot's resting orders, other traders' synthetic
liquidity, and the price-time priority sweep that matches a market order against both.

Everything here is synchronous and free of randomness and I/O, so the priority rules can be tested
on hand-built books. Priority of the combined book, on each side:

1. better price first (higher bids, lower asks);
2. at an equal price, synthetic liquidity is ahead of every bot order. This is the conservative
   choice: the simulator does not know when the other traders joined the level, and assuming they
   were first never overstates the bot's fills;
3. among the bot's own orders at one price, first placed first filled (FIFO).
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from kasmm.core.types import (
    ZERO,
    Book,
    BookLevel,
    ClientOrderId,
    OpenOrder,
    Side,
    VenueOrderId,
)


@dataclass(slots=True, init=False)
class RestingOrder:
    """One of the bot's orders resting on the simulated book (mutable: fills shrink it)."""

    client_id: ClientOrderId
    venue_id: VenueOrderId
    side: Side
    price: Decimal
    size: Decimal
    remaining: Decimal
    created_at: float
    seq: int
    #: Funds still reserved for this order (quote for a buy, base for a sell).
    locked: Decimal = ZERO
    #: Paper venue only: other traders' volume still ahead of this order at its price.
    queue_ahead: Decimal = ZERO
    #: ``price`` in ticks of the venue's rules when the request said so exactly
    #: (:func:`~.orders.on_grid`), else -1: what the models compare without ``Decimal``.
    ticks: int = -1

    def __init__(
        self,
        client_id: ClientOrderId,
        venue_id: VenueOrderId,
        side: Side,
        price: Decimal,
        size: Decimal,
        remaining: Decimal,
        created_at: float,
        seq: int,
        locked: Decimal = ZERO,
        queue_ahead: Decimal = ZERO,
        ticks: int = -1,
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        self.client_id = client_id
        self.venue_id = venue_id
        self.side = side
        self.price = price
        self.size = size
        self.remaining = remaining
        self.created_at = created_at
        self.seq = seq
        self.locked = locked
        self.queue_ahead = queue_ahead
        self.ticks = ticks

    def to_open_order(self) -> OpenOrder:
        """The order as the ``Venue`` protocol reports it."""
        return OpenOrder(
            client_id=self.client_id,
            side=self.side,
            price=self.price,
            size=self.size,
            remaining=self.remaining,
            created_at=self.created_at,
            venue_id=self.venue_id,
        )


def is_better(side: Side, a: Decimal, b: Decimal) -> bool:
    """True when a resting ``side`` order at price ``a`` has priority over one at ``b``."""
    return a > b if side is Side.BUY else a < b


class OwnOrders:
    """The bot's resting orders, indexed by client id and kept in placement order."""

    def __init__(self) -> None:
        # dicts keep insertion order, which is placement (seq) order: FIFO comes for free.
        self._by_id: dict[ClientOrderId, RestingOrder] = {}
        self._bids = _SideCache()
        self._asks = _SideCache()

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[RestingOrder]:
        """Orders in placement order (a copy: callers may remove orders while iterating)."""
        return iter(list(self._by_id.values()))

    def placed(self) -> list[RestingOrder]:
        """Orders in placement order, a new list (:meth:`__iter__` without the iterator:
        compiled, a loop over a list is direct)."""
        return list(self._by_id.values())

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._by_id

    def add(self, order: RestingOrder) -> None:
        """Add a new order; the caller has checked that its client id is free."""
        self._by_id[order.client_id] = order
        self._cache(order.side).clear()

    def get(self, client_id: ClientOrderId) -> RestingOrder | None:
        """The open order ``client_id``, or ``None``."""
        return self._by_id.get(client_id)

    def pop(self, client_id: ClientOrderId) -> RestingOrder | None:
        """Remove and return the open order ``client_id``, or ``None`` when it is not open."""
        order = self._by_id.get(client_id)  # get and del: compiled, dict.pop is a generic call
        if order is not None:
            del self._by_id[client_id]
            self._cache(order.side).clear()
        return order

    def shrink(self, order: RestingOrder, size: Decimal) -> None:
        """Take ``size`` off the open ``order``'s remaining size (a fill; the caller removes an
        order that has nothing left). The one place ``remaining`` changes."""
        order.remaining -= size
        self._cache(order.side).levels = None  # the priority order stays

    def side(self, side: Side) -> list[RestingOrder]:
        """Orders of one side in priority order: best price first, then first placed first
        (a new list: callers may keep or change it)."""
        return list(self.ranked(side))

    def best(self, side: Side) -> Decimal | None:
        """Best price among the bot's orders on ``side``, or ``None``."""
        orders = self.ranked(side)
        return orders[0].price if orders else None

    def levels(self, side: Side) -> tuple[BookLevel, ...]:
        """Orders of one side as book levels (:func:`aggregate`): the same tuple, and the same
        level objects, until an order of that side is added, removed or filled."""
        cache = self._cache(side)
        levels = cache.levels
        if levels is None:
            levels = cache.levels = aggregate(self.ranked(side))
        return levels

    def level_ticks(self, side: Side) -> list[int] | None:
        """The prices of :meth:`levels` in ticks, from the orders' own ``ticks``; ``None`` when
        an order of that side has none (then only the ``Decimal`` prices tell). Cached with
        the levels; read-only."""
        cache = self._cache(side)
        if cache.ticks is None:
            ticks: list[int] = []
            for order in self.ranked(side):  # by price: one run of equal ticks per level
                t = order.ticks
                if t <= 0:
                    return None
                if not ticks or ticks[-1] != t:
                    ticks.append(t)
            cache.ticks = ticks
        return cache.ticks

    def ranked(self, side: Side) -> list[RestingOrder]:
        """:meth:`side` without the copy: the cached list, to read at once, never to change
        (it is replaced, not changed, when the orders change). A ``list``, not a
        ``Sequence``: compiled, loops over it are then direct."""
        cache = self._cache(side)
        orders = cache.ranked
        if orders is None:
            orders = [o for o in self._by_id.values() if o.side is side]
            # A stable sort on price alone: equal prices keep placement (seq) order.
            orders.sort(key=_price_key, reverse=side is Side.BUY)
            cache.ranked = orders
        return orders

    def _cache(self, side: Side) -> _SideCache:
        return self._bids if side is Side.BUY else self._asks


class _SideCache:
    """What :class:`OwnOrders` derives from one side's orders, built when first read after a
    change (``None``: not built). Every published book and every taker reads these, and the
    orders change far less often."""

    __slots__ = ("levels", "ranked", "ticks")

    def __init__(self) -> None:
        #: The side in priority order. Fills shrink ``remaining`` in place, which does not
        #: move an order in it.
        self.ranked: list[RestingOrder] | None = None
        #: The side as book levels (:func:`aggregate`); fills change these. The same tuple
        #: until the side changes is what lets a published book reuse its merged sides
        #: (:meth:`~.tick_book.TickSide.merged`).
        self.levels: tuple[BookLevel, ...] | None = None
        #: The levels' prices in ticks (:meth:`OwnOrders.level_ticks`); fills leave them.
        self.ticks: list[int] | None = None

    def clear(self) -> None:
        """The side's orders changed."""
        self.ranked = None
        self.levels = None
        self.ticks = None


def _price_key(order: RestingOrder) -> Decimal:
    return order.price


@dataclass(slots=True)
class SyntheticLevel:
    """Other traders' liquidity at one price (mutable: takers consume it)."""

    price: Decimal
    size: Decimal


@dataclass(slots=True)
class SyntheticBook:
    """Other traders' book. Each side is best first with strictly monotonic prices."""

    bids: list[SyntheticLevel]
    asks: list[SyntheticLevel]

    def side(self, side: Side) -> list[SyntheticLevel]:
        """The levels resting on ``side`` (bids for ``BUY``), best first."""
        return self.bids if side is Side.BUY else self.asks

    def best(self, side: Side) -> Decimal | None:
        """Best price on ``side``, or ``None`` when that side is empty."""
        levels = self.side(side)
        return levels[0].price if levels else None


@dataclass(frozen=True, slots=True, init=False)
class Execution:
    """A bot order executed by a sweep: ``size`` at the order's own ``price``."""

    order: RestingOrder
    price: Decimal
    size: Decimal

    def __init__(self, order: RestingOrder, price: Decimal, size: Decimal) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "price", price)
        object.__setattr__(self, "size", size)


class Liquidity:
    """One side of other traders' liquidity as a sweep consumes it, best level first.

    A base class rather than a ``Protocol``: compiled, a sweep's calls of these methods are
    then direct (a protocol's are generic attribute calls, about a tenth of a sweep).
    """

    __slots__ = ()

    def head(self) -> tuple[Decimal, Decimal] | None:
        """Price and size left of the best level, or ``None`` when the side is empty."""
        raise NotImplementedError

    def consume(self, size: Decimal) -> None:
        """Take ``size`` (at most what :meth:`head` shows) from the best level; an exhausted
        level leaves the side."""
        raise NotImplementedError


class _LevelList(Liquidity):
    """:class:`Liquidity` over a list of :class:`SyntheticLevel` (consumed in place)."""

    __slots__ = ("_levels",)

    def __init__(self, levels: list[SyntheticLevel]) -> None:
        self._levels = levels

    def head(self) -> tuple[Decimal, Decimal] | None:
        if not self._levels:
            return None
        level = self._levels[0]
        return level.price, level.size

    def consume(self, size: Decimal) -> None:
        level = self._levels[0]
        level.size -= size
        if level.size == 0:
            self._levels.pop(0)


def sweep(
    book: SyntheticBook, orders: OwnOrders, taker_side: Side, size: Decimal
) -> tuple[list[Execution], Decimal]:
    """Match a market order of ``taker_side`` for ``size`` against the combined book.

    Consumes the synthetic levels in place (exhausted levels are removed) but leaves the bot's
    orders untouched: the returned executions are applied by the caller, which also settles
    balances. Returns the executions in match order and the total size traded (less than
    ``size`` only when the whole resting side ran out).
    """
    resting = taker_side.opposite
    return sweep_liquidity(_LevelList(book.side(resting)), orders.side(resting), resting, size)


def sweep_liquidity(
    liquidity: Liquidity, own: Sequence[RestingOrder], resting: Side, size: Decimal
) -> tuple[list[Execution], Decimal]:
    """:func:`sweep` over any :class:`Liquidity`: ``own`` are the bot's orders on the
    ``resting`` side in priority order; the priority rules are the module docstring's."""
    left = size
    executions: list[Execution] = []
    i = 0
    while left > ZERO:  # a Decimal zero: an int is converted per comparison
        top = liquidity.head()
        mine = own[i] if i < len(own) else None
        if top is None and mine is None:
            break
        # Synthetic liquidity goes first unless the bot's order is at a strictly better price.
        if top is not None and (mine is None or not is_better(resting, mine.price, top[0])):
            take = min(left, top[1])
            liquidity.consume(take)
            left -= take
        else:
            assert mine is not None
            take = min(left, mine.remaining)
            executions.append(Execution(mine, mine.price, take))
            left -= take
            i += 1
    return executions, size - left


def crossed_orders(book: SyntheticBook, orders: OwnOrders) -> list[RestingOrder]:
    """Bot orders the synthetic book now crosses: bids at or above its best ask, asks at or
    below its best bid. Bids first, each side in priority order."""
    return crossed_by(orders, book.best(Side.BUY), book.best(Side.SELL))


def crossed_by(
    orders: OwnOrders, best_bid: Decimal | None, best_ask: Decimal | None
) -> list[RestingOrder]:
    """:func:`crossed_orders` given the synthetic best prices."""
    crossed: list[RestingOrder] = []
    if not len(orders):
        return crossed
    # Each side is in priority order, so the crossed orders are a prefix of it.
    if best_ask is not None:
        for order in orders.ranked(Side.BUY):
            if order.price < best_ask:
                break
            crossed.append(order)
    if best_bid is not None:
        for order in orders.ranked(Side.SELL):
            if order.price > best_bid:
                break
            crossed.append(order)
    return crossed


def combined_best(synthetic: Decimal | None, orders: OwnOrders, side: Side) -> Decimal | None:
    """Best price on ``side`` of the combined book, given the synthetic best price there."""
    prices = [p for p in (synthetic, orders.best(side)) if p is not None]
    if not prices:
        return None
    return max(prices) if side is Side.BUY else min(prices)


def merged_levels(
    levels: list[SyntheticLevel], own: list[RestingOrder], side: Side
) -> tuple[BookLevel, ...]:
    """Synthetic levels and the bot's remaining sizes aggregated per price, best first."""
    return merge_own(tuple(BookLevel(level.price, level.size) for level in levels), own, side)


def aggregate(own: Sequence[RestingOrder]) -> tuple[BookLevel, ...]:
    """The bot's ``own`` orders of one side (in priority order) as book levels: remaining sizes
    summed per price, best first."""
    if not own:
        return ()
    # ``own`` is sorted by price, so equal prices are adjacent.
    mine: list[BookLevel] = []
    price, size = own[0].price, own[0].remaining
    for order in own[1:]:
        if order.price == price:
            size += order.remaining
        else:
            mine.append(BookLevel(price, size))
            price, size = order.price, order.remaining
    mine.append(BookLevel(price, size))
    return tuple(mine)


def merge_own(
    levels: tuple[BookLevel, ...], own: Sequence[RestingOrder], side: Side
) -> tuple[BookLevel, ...]:
    """Rendered synthetic ``levels`` of ``side`` (best first, one per price) with the bot's
    ``own`` orders there (in priority order) added per price, best first.

    Synthetic levels at a price without a bot order are passed through as the same objects,
    so a caller that caches its rendered levels pays only for the prices the bot shares.
    """
    if not own:
        return levels
    return merge_levels(levels, aggregate(own), side)


def merge_levels(
    levels: tuple[BookLevel, ...], mine: tuple[BookLevel, ...], side: Side
) -> tuple[BookLevel, ...]:
    """:func:`merge_own` given the bot's orders as levels (:func:`aggregate`); both sides'
    levels at a price they do not share are passed through as the same objects."""
    if not mine:
        return levels
    better: Callable[[Decimal, Decimal], bool] = operator.gt if side is Side.BUY else operator.lt
    if not levels or better(mine[-1].price, levels[0].price):
        return (*mine, *levels)  # the common case: the bot quotes inside the synthetic spread
    if better(levels[-1].price, mine[0].price):
        return (*levels, *mine)
    # Each bot price's place among the synthetic levels by bisection (``levels`` ascend in
    # ``key``), so the synthetic runs between them are copied as slices.
    key = _neg_price if side is Side.BUY else _price
    merged: list[BookLevel] = []
    i, n = 0, len(levels)
    for level in mine:
        j = bisect.bisect_left(levels, key(level), lo=i, key=key)
        merged.extend(levels[i:j])
        if j < n and levels[j].price == level.price:
            merged.append(BookLevel(level.price, levels[j].size + level.size))
            j += 1
        else:
            merged.append(level)
        i = j
    merged.extend(levels[i:])
    return tuple(merged)


def _price(level: BookLevel) -> Decimal:
    return level.price


def _neg_price(level: BookLevel) -> Decimal:
    return -level.price


def merged_book(book: SyntheticBook, orders: OwnOrders, ts: float) -> Book:
    """The public book: synthetic liquidity merged with the bot's resting orders."""
    return Book(
        bids=merged_levels(book.bids, orders.side(Side.BUY), Side.BUY),
        asks=merged_levels(book.asks, orders.side(Side.SELL), Side.SELL),
        ts=ts,
    )
