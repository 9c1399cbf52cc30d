"""Matching the bot's orders against a real market's public data: queue position, trades
through the price, books moving through an order. Pure functions (no ccxt, no I/O), shared by
the paper venue (live data) and the replay venue (recorded data).
"""

from __future__ import annotations

from decimal import Decimal

from kasmm.core.types import ZERO, Book, BookLevel, Side
from kasmm.venues.public_data import PublicTrade
from kasmm.venues.sim.matching import Execution, OwnOrders, RestingOrder, is_better

__all__ = ["UNKNOWN_QUEUE", "cap_queues", "crossed_by_book", "displayed_queue", "match_trade"]

#: Queue ahead of an order priced beyond the displayed depth: unknown until a book shows it.
UNKNOWN_QUEUE = Decimal("Infinity")


# --- matching (pure functions over the bot's orders and the live data) ---------------------


def _levels(book: Book, side: Side) -> tuple[BookLevel, ...]:
    return book.bids if side is Side.BUY else book.asks


def displayed_queue(book: Book, side: Side, price: Decimal) -> Decimal:
    """Size other traders display at ``price`` on ``side`` of ``book``.

    Zero when that price is inside the displayed depth but has no level (or the side is
    empty), :data:`UNKNOWN_QUEUE` when it lies beyond the deepest displayed level.
    """
    levels = _levels(book, side)
    for level in levels:
        if level.price == price:
            return level.size
    if levels and is_better(side, levels[-1].price, price):
        return UNKNOWN_QUEUE
    return ZERO


def cap_queues(book: Book, orders: OwnOrders) -> None:
    """Shorten each order's queue ahead to the size ``book`` now displays at its price."""
    for order in orders:
        if order.queue_ahead > 0:
            order.queue_ahead = min(
                order.queue_ahead, displayed_queue(book, order.side, order.price)
            )


def crossed_by_book(book: Book, orders: OwnOrders) -> list[RestingOrder]:
    """Orders the live book trades through: bids at or above its best ask, asks at or below
    its best bid. Bids first, each side in priority order."""
    ask, bid = book.best_ask, book.best_bid
    crossed = [o for o in orders.side(Side.BUY) if ask is not None and o.price >= ask]
    crossed += [o for o in orders.side(Side.SELL) if bid is not None and o.price <= bid]
    return crossed


def match_trade(orders: OwnOrders, trade: PublicTrade) -> list[Execution]:
    """The bot's executions caused by one public trade (see the module docstring).

    Updates the queue ahead of every order at the trade's price in place; the caller applies
    the executions (settlement, order removal).
    """
    maker = trade.taker_side.opposite
    left = trade.size
    filled_at_price = ZERO
    executions: list[Execution] = []
    for order in orders.side(maker):
        if is_better(maker, trade.price, order.price):
            break  # the trade did not reach this order, nor any worse-priced one
        if order.created_at > trade.ts:
            continue
        if order.price == trade.price:
            past_queue = max(ZERO, trade.size - order.queue_ahead) - filled_at_price
            order.queue_ahead = max(ZERO, order.queue_ahead - trade.size)
            take = min(order.remaining, left, max(ZERO, past_queue))
            filled_at_price += take
        else:
            order.queue_ahead = ZERO
            take = min(order.remaining, left)
        if take > 0:
            executions.append(Execution(order, order.price, take))
            left -= take
    return executions
