"""The random-walk market's synthetic book, kept in integer ticks and lots.

A market model sets each side's levels as integer prices (ticks, best first, strictly monotonic)
and sizes (lots); ``Decimal`` values are built only when something reads them (a rendered
:class:`~kasmm.core.types.Book`, a sweep, a best price), and the rendered levels are cached:
a level the model keeps across an update (same price, same size) keeps its ``BookLevel``
object, and an unchanged side renders to the same tuple. So does a published side with the bot's
orders merged in, while neither those orders nor the synthetic side changed (most updates): the
engine compares the sides of consecutive books by identity first.

Takers consume a side from its best level on (:func:`~.matching.sweep_liquidity` is the one
implementation of the priority rules), so what they consumed is two numbers per side: how many
levels are gone, and what is left of the next one. The model's next update clears both: consumed
synthetic liquidity stays consumed until then, as it always has.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from kasmm.core.types import ZERO, Book, BookLevel, Side
from kasmm.venues.sim.matching import (
    Execution,
    Liquidity,
    OwnOrders,
    RestingOrder,
    merge_levels,
    sweep_liquidity,
)

#: Bound of the tick -> ``Decimal`` price cache (a random walk revisits the same prices). A
#: book spans ~100 ticks around the mid, so 256 entries keep most hits; at 1 << 16 the cache
#: grew by ~700 entries (~90 KB) a profile in 8 s of a walk and towards megabytes later, which
#: a supervisor running hundreds of sim profiles pays in RSS (tracemalloc of 50 profiles).
_PRICE_CACHE_MAX = 1 << 8


class TickSide(Liquidity):
    """One side of the synthetic book (see the module docstring); a :class:`~.matching.Liquidity`.

    ``ticks`` and ``lots`` are the side's levels as the model last set them, best first; they
    are read-only for everyone but :meth:`set_levels`.
    """

    __slots__ = (
        "_all_new",
        "_book",
        "_front",
        "_gone",
        "_levels",
        "_merged",
        "_merged_from",
        "_merged_with",
        "_mine_of",
        "_mine_ticks",
        "_rendered",
        "_side",
        "_view",
        "lots",
        "ticks",
    )

    def __init__(self, book: TickBook, side: Side) -> None:
        self._book = book
        self._side = side
        self.ticks: list[int] = []
        self.lots: list[int] = []
        # Rendered level per index (None: not rendered yet) and the whole side as a tuple.
        self._levels: list[BookLevel | None] = []
        self._rendered: tuple[BookLevel, ...] | None = ()
        self._all_new = False  # no level rendered since set_levels (kept was None)
        self._gone = 0  # levels takers exhausted since the last update
        self._front: Decimal | None = None  # size left of level ``_gone`` when partly taken
        self._view: tuple[BookLevel, ...] | None = None  # what takers left, once rendered
        # The last merge (:meth:`merged`): its inputs, compared by identity, and its result.
        self._merged_from: tuple[BookLevel, ...] = ()
        self._merged_with: tuple[BookLevel, ...] = ()
        self._merged: tuple[BookLevel, ...] = ()
        # The bot's levels last merged and their prices in ticks (None: one is off the tick).
        self._mine_of: tuple[BookLevel, ...] = ()
        self._mine_ticks: list[int] | None = []

    def set_levels(
        self, ticks: list[int], lots: list[int], kept: list[BookLevel | None] | None = None
    ) -> None:
        """Replace the side's levels (the lists are taken over, not copied) and restore all
        liquidity takers consumed.

        :param kept: per index, the rendered level to reuse (the caller vouches that it has
            the same price and size), or ``None``; ``None`` for the whole argument renders all.
        """
        self.ticks = ticks
        self.lots = lots
        self._levels = kept if kept is not None else [None] * len(ticks)
        self._all_new = kept is None
        self._rendered = None
        self._gone = 0
        self._front = None
        self._view = None

    def shift_levels(self, shift: int, ticks: list[int], lots: list[int]) -> None:
        """:meth:`set_levels` for a side that keeps its length and moves by ``shift`` levels:
        new level i is old level i + ``shift`` (0 < ``abs(shift)`` < the length), and ``ticks``
        and ``lots`` are the ``abs(shift)`` levels that enter, at the back for a positive
        ``shift``, at the front for a negative one. The kept levels keep their rendered
        objects. The side's lists change in place."""
        k = abs(shift)
        assert 0 < k < len(self.ticks) and len(ticks) == len(lots) == k
        # A level at a time (mostly one): compiled, pop, append and insert are direct calls
        # where slice assignments build slice objects.
        all_ticks, all_lots, levels = self.ticks, self.lots, self._levels
        for i in range(k):
            if shift > 0:  # leaving at the front, entering at the back
                all_ticks.pop(0)
                all_lots.pop(0)
                levels.pop(0)
                all_ticks.append(ticks[i])
                all_lots.append(lots[i])
                levels.append(None)
            else:  # leaving at the back, entering at the front (the last entering first)
                all_ticks.pop()
                all_lots.pop()
                levels.pop()
                all_ticks.insert(0, ticks[k - 1 - i])
                all_lots.insert(0, lots[k - 1 - i])
                levels.insert(0, None)
        self._all_new = False
        self._rendered = None
        self._gone = 0
        self._front = None
        self._view = None

    def cached_levels(self) -> list[BookLevel | None]:
        """Per index, the level as set and rendered (``None``: not rendered yet); what a model
        may pass back through ``kept``. Read-only."""
        return self._levels

    def restore(self) -> None:
        """Give back all liquidity takers consumed (an update that moved no level)."""
        self._gone = 0
        self._front = None
        self._view = None

    def levels(self) -> tuple[BookLevel, ...]:
        """The side now (what takers left of it) as ``Decimal`` levels, best first."""
        rendered = self._render()
        if self._gone == 0 and self._front is None:
            return rendered
        rest = self._view
        if rest is None:  # rendered once per change: an unchanged side is the same tuple
            rest = rendered[self._gone :]
            if self._front is not None:
                rest = (BookLevel(rest[0].price, self._front), *rest[1:])
            self._view = rest
        return rest

    def _render(self) -> tuple[BookLevel, ...]:
        """All the side's levels as set, takers aside (rendered once per :meth:`set_levels`)."""
        rendered = self._rendered
        if rendered is None:
            levels = self._levels
            price, lot = self._book.price, self._book.lot
            if self._all_new:
                self._all_new = False
                # All new (a regeneration): in bulk. ``lot.__rmul__(n)`` is ``n * lot``.
                levels = self._levels = list(
                    map(BookLevel, map(price, self.ticks), map(lot.__rmul__, self.lots))
                )
            else:  # an incremental update: only the new levels (``is``, not ``in``: no __eq__)
                book = self._book  # ``book.price``, not ``price``: a direct call compiled
                for i, level in enumerate(levels):
                    if level is None:
                        levels[i] = BookLevel(book.price(self.ticks[i]), self.lots[i] * lot)
            rendered = self._rendered = tuple(levels)  # type: ignore[arg-type]
        return rendered

    def merged(
        self, mine: tuple[BookLevel, ...], mine_ticks: list[int] | None = None
    ) -> tuple[BookLevel, ...]:
        """:meth:`levels` with the bot's orders on this side (``mine``, from
        :meth:`~.matching.OwnOrders.levels`) merged in (:func:`~.matching.merge_levels`).

        :param mine_ticks: ``mine``'s prices in ticks when known
            (:meth:`~.matching.OwnOrders.level_ticks`), else they are measured.

        The last result is kept: both inputs are immutable, and both are the same objects
        again while neither the synthetic side nor the bot's orders changed (most updates),
        so the merged side is then the same tuple too, which the engine compares by identity.
        """
        levels = self.levels()
        if not mine:
            return levels
        if levels is not self._merged_from or mine is not self._merged_with:
            self._merged = self._merge(levels, mine, mine_ticks)
            self._merged_from, self._merged_with = levels, mine
        return self._merged

    def _merge(
        self,
        levels: tuple[BookLevel, ...],
        mine: tuple[BookLevel, ...],
        mine_ticks: list[int] | None,
    ) -> tuple[BookLevel, ...]:
        """``merge_levels(levels, mine, side)``, the definition, walking the side's integer
        ticks rather than bisecting ``Decimal`` prices through a key function (several times
        faster compiled): the bot's prices are converted to ticks once per change of its
        orders, and two prices on the tick are equal exactly when their ticks are."""
        if mine is not self._mine_of:
            self._mine_of = mine
            known = mine_ticks is not None
            self._mine_ticks = mine_ticks if known else self._book.ticks_of_all(mine)
        own_ticks = self._mine_ticks
        if own_ticks is None:
            return merge_levels(levels, mine, self._side)
        # Level i of ``levels`` (what takers left) is at ``ticks[gone + i]``.
        ticks, gone, n = self.ticks, self._gone, len(levels)
        bids = self._side is Side.BUY
        merged: list[BookLevel] = []
        i = 0
        for k in range(len(mine)):
            level, tick = mine[k], own_ticks[k]
            j = i  # skip the synthetic levels at better prices than the bot's
            if bids:
                while j < n and ticks[gone + j] > tick:
                    j += 1
            else:
                while j < n and ticks[gone + j] < tick:
                    j += 1
            merged.extend(levels[i:j])
            if j < n and ticks[gone + j] == tick:
                merged.append(BookLevel(level.price, levels[j].size + level.size))
                j += 1
            else:
                merged.append(level)
            i = j
        merged.extend(levels[i:])
        return tuple(merged)

    def best(self) -> Decimal | None:
        """Best price left on this side, or ``None``."""
        if self._gone >= len(self.ticks):
            return None
        return self._book.price(self.ticks[self._gone])

    def best_ticks(self) -> int:
        """:meth:`best` in ticks, or -1."""
        return self.ticks[self._gone] if self._gone < len(self.ticks) else -1

    def head(self) -> tuple[Decimal, Decimal] | None:
        """Price and size left of the best level (``Liquidity``)."""
        if self._gone >= len(self.ticks):
            return None
        # ``levels()[0]`` without rendering what takers left of the side.
        level = self._render()[self._gone]
        return level.price, level.size if self._front is None else self._front

    def consume(self, size: Decimal) -> None:
        """Take ``size`` from the best level (``Liquidity``)."""
        head = self.head()
        assert head is not None and size <= head[1]
        left = head[1] - size
        if left == ZERO:
            self._gone += 1
            self._front = None
        else:
            self._front = left
        self._view = None


class TickBook:
    """Other traders' book in ticks and lots, with the bot's orders merged in when rendered."""

    __slots__ = ("_prices", "asks", "bids", "lot", "tick")

    def __init__(self, tick: Decimal, lot: Decimal) -> None:
        self.tick = tick
        self.lot = lot
        self._prices: dict[int, Decimal] = {}
        self.bids = TickSide(self, Side.BUY)
        self.asks = TickSide(self, Side.SELL)

    def side(self, side: Side) -> TickSide:
        """The levels resting on ``side`` (bids for ``BUY``)."""
        return self.bids if side is Side.BUY else self.asks

    def price(self, ticks: int) -> Decimal:
        """``ticks * tick``, built once per price (the same ``Decimal`` as the multiplication)."""
        price = self._prices.get(ticks)
        if price is None:
            if len(self._prices) >= _PRICE_CACHE_MAX:
                self._prices.clear()
            price = self._prices[ticks] = ticks * self.tick
        return price

    def ticks_of_all(self, levels: Sequence[BookLevel]) -> list[int] | None:
        """Each level's price in ticks, or ``None`` when one is not a multiple of the tick."""
        out: list[int] = []
        for level in levels:
            try:
                ticks, rest = divmod(level.price, self.tick)
            except InvalidOperation:  # quotient too large for the context: not on our grid
                return None
            if rest != 0:
                return None
            out.append(int(ticks))
        return out

    def best(self, side: Side) -> Decimal | None:
        """Best synthetic price left on ``side``."""
        return self.side(side).best()

    def render(self, orders: OwnOrders, ts: float) -> Book:
        """The public book: what is left of the synthetic levels merged with the bot's orders."""
        if not len(orders):
            return Book(self.bids.levels(), self.asks.levels(), ts)
        buy, sell = Side.BUY, Side.SELL
        return Book(
            self.bids.merged(orders.levels(buy), orders.level_ticks(buy)),
            self.asks.merged(orders.levels(sell), orders.level_ticks(sell)),
            ts,
        )

    def crossed(self, orders: OwnOrders) -> list[RestingOrder]:
        """Bot orders the synthetic book crosses (see :func:`~.matching.crossed_orders`).

        ``crossed_by(orders, best bid, best ask)``, comparing integer ticks where an order has
        them (its price is exactly that many of this book's ticks) rather than ``Decimal``
        prices (``tests/unit/test_sim_book.py`` holds it to ``crossed_by``).
        """
        if not len(orders):
            return []
        crossed: list[RestingOrder] = []
        ask = self.asks.best_ticks()
        if ask > 0:
            for order in orders.ranked(Side.BUY):  # best first: the crossed ones are a prefix
                t = order.ticks
                if t < ask if t > 0 else order.price < self.price(ask):
                    break
                crossed.append(order)
        bid = self.bids.best_ticks()
        if bid > 0:
            for order in orders.ranked(Side.SELL):
                t = order.ticks
                if t > bid if t > 0 else order.price > self.price(bid):
                    break
                crossed.append(order)
        return crossed

    def sweep(
        self, orders: OwnOrders, taker_side: Side, size: Decimal
    ) -> tuple[list[Execution], Decimal]:
        """A market order through the combined book (see :func:`~.matching.sweep`)."""
        resting = taker_side.opposite
        own: Sequence[RestingOrder] = orders.ranked(resting) if len(orders) else ()
        return sweep_liquidity(self.side(resting), own, resting, size)
