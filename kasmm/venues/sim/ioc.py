"""Immediate-or-cancel orders on the locally simulated venues (``sim``, ``replay``, ``paper``).

An IOC takes other traders' liquidity, best level first, as far as its limit price allows, and
the venue cancels whatever is left: it never rests. Two rules every simulated venue shares:

* **Self-trade prevention, cancel the taker.** The account's own resting orders are never
  matched: where the next liquidity in the combined book's priority is one of them (an own
  order at a strictly better price than the next synthetic level; at an equal price other
  traders are ahead, see :mod:`.matching`), the IOC stops and its remainder is cancelled, as
  exchanges with STP in "cancel taker" mode do.
* **Funds for the whole order, at its limit.** The free balance must back the full size at the
  limit price (a buy: ``price * size * (1 + taker fee)`` quote; a sell: ``size`` base), checked
  before anything executes, as an exchange checks before matching.

The functions here are pure over their arguments; the models supply the liquidity.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from kasmm.core.types import ZERO, Book, BookLevel, Side
from kasmm.venues.sim.matching import is_better

#: One execution of an IOC against other traders' liquidity: price and base size.
Take = tuple[Decimal, Decimal]


class Takeable(Protocol):
    """One side of other traders' liquidity, best level first: what
    :class:`~.matching.Liquidity` offers (the random walk's :class:`~.tick_book.TickSide`), as
    a protocol, so that this module (interpreted in the compiled build) never subclasses a
    compiled class, which mypyc forbids."""

    def head(self) -> tuple[Decimal, Decimal] | None:
        """Price and size left of the best level, or ``None`` when the side is empty."""
        ...

    def consume(self, size: Decimal) -> None:
        """Take ``size`` (at most what :meth:`head` shows) from the best level."""
        ...


def take_within(
    liquidity: Takeable,
    own_best: Decimal | None,
    taker_side: Side,
    limit: Decimal,
    size: Decimal,
) -> list[Take]:
    """Take up to ``size`` from ``liquidity`` (the resting side, best level first) at prices
    no worse than ``limit`` for a ``taker_side`` order, consuming it in place.

    :param own_best: the best price of the account's own orders on the resting side: the
        sweep stops before liquidity that an own order is ahead of (self-trade prevention).
    :return: the executions, in match order (empty when nothing was within reach).
    """
    resting = taker_side.opposite
    takes: list[Take] = []
    left = size
    while left > ZERO:
        head = liquidity.head()
        if head is None:
            break
        price, available = head
        if is_better(resting, limit, price):  # beyond the limit
            break
        if own_best is not None and is_better(resting, own_best, price):
            break  # the account's own order is next in line: cancel the taker
        take = min(left, available)
        liquidity.consume(take)
        takes.append((price, take))
        left -= take
    return takes


class LevelsLiquidity:
    """:class:`Takeable` over a book side's levels (a recorded or live book): consumed on a
    copy, read back with :meth:`left`."""

    __slots__ = ("_front", "_levels", "_next")

    def __init__(self, levels: tuple[BookLevel, ...]) -> None:
        self._levels = levels
        self._next = 0  # index of the best level not exhausted
        self._front: Decimal | None = None  # what is left of it when partly taken

    def head(self) -> tuple[Decimal, Decimal] | None:
        if self._next >= len(self._levels):
            return None
        level = self._levels[self._next]
        return level.price, level.size if self._front is None else self._front

    def consume(self, size: Decimal) -> None:
        head = self.head()
        assert head is not None and size <= head[1]
        rest = head[1] - size
        if rest == ZERO:
            self._next += 1
            self._front = None
        else:
            self._front = rest

    def left(self) -> tuple[BookLevel, ...]:
        """The side as takers left it, best first."""
        rest = self._levels[self._next :]
        if self._front is not None:
            rest = (BookLevel(rest[0].price, self._front), *rest[1:])
        return rest


def take_from_book(
    book: Book, own_best: Decimal | None, taker_side: Side, limit: Decimal, size: Decimal
) -> tuple[list[Take], Book]:
    """:func:`take_within` against one side of ``book``; returns the executions and the book
    with what they took removed (the same object when nothing was taken)."""
    side = LevelsLiquidity(book.asks if taker_side is Side.BUY else book.bids)
    takes = take_within(side, own_best, taker_side, limit, size)
    if not takes:
        return takes, book
    if taker_side is Side.BUY:
        return takes, Book(bids=book.bids, asks=side.left(), ts=book.ts)
    return takes, Book(bids=side.left(), asks=book.asks, ts=book.ts)
