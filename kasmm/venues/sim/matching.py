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

from collections.abc import Iterator
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


@dataclass(slots=True)
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

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[RestingOrder]:
        """Orders in placement order (a copy: callers may remove orders while iterating)."""
        return iter(list(self._by_id.values()))

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._by_id

    def add(self, order: RestingOrder) -> None:
        """Add a new order; the caller has checked that its client id is free."""
        self._by_id[order.client_id] = order

    def get(self, client_id: ClientOrderId) -> RestingOrder | None:
        """The open order ``client_id``, or ``None``."""
        return self._by_id.get(client_id)

    def pop(self, client_id: ClientOrderId) -> RestingOrder | None:
        """Remove and return the open order ``client_id``, or ``None`` when it is not open."""
        return self._by_id.pop(client_id, None)

    def side(self, side: Side) -> list[RestingOrder]:
        """Orders of one side in priority order: best price first, then first placed first."""
        orders = [o for o in self._by_id.values() if o.side is side]
        sign = -1 if side is Side.BUY else 1
        orders.sort(key=lambda o: (sign * o.price, o.seq))
        return orders

    def best(self, side: Side) -> Decimal | None:
        """Best price among the bot's orders on ``side``, or ``None``."""
        prices = [o.price for o in self._by_id.values() if o.side is side]
        if not prices:
            return None
        return max(prices) if side is Side.BUY else min(prices)


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


@dataclass(frozen=True, slots=True)
class Execution:
    """A bot order executed by a sweep: ``size`` at the order's own ``price``."""

    order: RestingOrder
    price: Decimal
    size: Decimal


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
    levels = book.side(resting)
    own = orders.side(resting)
    left = size
    executions: list[Execution] = []
    i = 0
    while left > 0:
        level = levels[0] if levels else None
        mine = own[i] if i < len(own) else None
        if level is None and mine is None:
            break
        # Synthetic liquidity goes first unless the bot's order is at a strictly better price.
        if level is not None and (mine is None or not is_better(resting, mine.price, level.price)):
            take = min(left, level.size)
            level.size -= take
            left -= take
            if level.size == 0:
                levels.pop(0)
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
    best_ask = book.best(Side.SELL)
    best_bid = book.best(Side.BUY)
    crossed = [o for o in orders.side(Side.BUY) if best_ask is not None and o.price >= best_ask]
    crossed += [o for o in orders.side(Side.SELL) if best_bid is not None and o.price <= best_bid]
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
    if not own:  # the common case, and the synthetic side is already sorted and unique
        return tuple(BookLevel(level.price, level.size) for level in levels)
    sizes: dict[Decimal, Decimal] = {}
    for level in levels:
        sizes[level.price] = sizes.get(level.price, ZERO) + level.size
    for order in own:
        sizes[order.price] = sizes.get(order.price, ZERO) + order.remaining
    prices = sorted(sizes, reverse=side is Side.BUY)
    return tuple(BookLevel(p, sizes[p]) for p in prices)


def merged_book(book: SyntheticBook, orders: OwnOrders, ts: float) -> Book:
    """The public book: synthetic liquidity merged with the bot's resting orders."""
    return Book(
        bids=merged_levels(book.bids, orders.side(Side.BUY), Side.BUY),
        asks=merged_levels(book.asks, orders.side(Side.SELL), Side.SELL),
        ts=ts,
    )
