"""Markout: how far the market moved against each of the bot's fills (adverse selection), pure.

A market maker that is filled just before the price moves through its quote (a better-informed
taker, a venue that moved first elsewhere) pays for it in inventory marked down at once. The
standard measure is the **markout**: the mid ``h`` seconds after a fill, against the fill's
price, signed for the bot::

    buy:  mid(t + h) - price        sell:  price - mid(t + h)

Positive: the market moved the bot's way (spread earned); negative: the fill was adversely
selected (the "markout loss"). Per horizon it is reported

* in **bps of the fill price**: the mean over fills, and the size-weighted average;
* in **quote currency**: the sum of ``move x size`` (exact ``Decimal``), i.e. what the fills
  were worth at ``mid(t + h)`` against their prices, and its mean per fill.

Timing (a choice, documented here): ``t`` is when the engine applied the fill on the interval
clock (what the bot knew when; a venue that reports a fill late is marked out from its
receipt), and ``mid(t + h)`` is the mid of the **first book observed at or after** ``t + h``.
Books arrive at the venue's pace, so on a quiet book the mark can be later than ``t + h``; it is
never earlier, and a fill with no later book is not counted until one comes.

Cost: each horizon keeps its pending fills in a persistent FIFO queue (two immutable linked
lists, reversed as needed: O(1) amortised per fill and per mark, with every old state still
valid). :attr:`MarkoutState.next_due` is the earliest time any pending fill matures, so a
caller on the book path compares one float and calls :meth:`MarkoutState.observe_mid` only
when a mark is due.
Memory is bounded by :attr:`MarkoutParams.max_pending` fills per horizon (a feed that stopped
while fills kept coming): beyond it the oldest pending fill is given up and counted in
:attr:`MarkoutState.dropped`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from kasmm.core.types import ZERO, Side

__all__ = [
    "DEFAULT_HORIZONS_S",
    "MAX_PENDING",
    "HorizonMarkout",
    "MarkoutParams",
    "MarkoutState",
    "horizon_label",
]

#: The horizons reported by default: 1 s (the taker's immediate edge) and 10 s (where the move
#: settles on a thin venue).
DEFAULT_HORIZONS_S: Final[tuple[float, ...]] = (1.0, 10.0)
#: Fills awaiting their mark per horizon beyond which the oldest is given up.
MAX_PENDING: Final = 10_000


def horizon_label(horizon_s: float) -> str:
    """A horizon as metrics, reports and field names spell it: ``1s``, ``10s``, ``0.5s``."""
    return f"{horizon_s:g}s"


@dataclass(frozen=True, slots=True)
class MarkoutParams:
    """What to measure: the horizons (seconds, strictly increasing) and the pending bound."""

    horizons_s: tuple[float, ...] = DEFAULT_HORIZONS_S
    max_pending: int = MAX_PENDING

    def __post_init__(self) -> None:
        h = self.horizons_s
        if not h:
            raise ValueError("markout needs at least one horizon")
        for i in range(len(h)):
            if not (math.isfinite(h[i]) and h[i] > 0):
                raise ValueError(f"markout horizon {h[i]!r} must be a positive number of seconds")
            if i and h[i] <= h[i - 1]:
                raise ValueError(f"markout horizons must increase strictly, got {h!r}")
        if self.max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {self.max_pending}")


@dataclass(frozen=True, slots=True, init=False)
class HorizonMarkout:
    """The markout sums of the fills marked at one horizon (cumulative, so two of them
    subtract to the fills marked in between: see :meth:`since`)."""

    horizon_s: float
    #: Fills marked out.
    fills: int = 0
    #: Sum of each fill's markout in bps of its price.
    bps_sum: float = 0.0
    #: Sum of size x bps (base x bps), for the size-weighted average.
    size_bps_sum: float = 0.0
    #: Sum of the marked fills' sizes (base).
    size: Decimal = ZERO
    #: Sum of move x size: the fills' worth at the later mid against their prices (quote).
    quote: Decimal = ZERO

    def __init__(
        self,
        horizon_s: float,
        fills: int = 0,
        bps_sum: float = 0.0,
        size_bps_sum: float = 0.0,
        size: Decimal = ZERO,
        quote: Decimal = ZERO,
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "horizon_s", horizon_s)
        object.__setattr__(self, "fills", fills)
        object.__setattr__(self, "bps_sum", bps_sum)
        object.__setattr__(self, "size_bps_sum", size_bps_sum)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "quote", quote)

    @property
    def mean_bps(self) -> float | None:
        """Mean markout per fill in bps of the fill price (``None`` before any fill)."""
        return self.bps_sum / self.fills if self.fills else None

    @property
    def weighted_bps(self) -> float | None:
        """Size-weighted average markout in bps (``None`` before any size)."""
        return self.size_bps_sum / float(self.size) if self.size > ZERO else None

    @property
    def mean_quote(self) -> Decimal | None:
        """Mean markout per fill in quote currency (``None`` before any fill)."""
        return self.quote / self.fills if self.fills else None

    def marked(self, bps: float, size: Decimal, size_f: float, quote: Decimal) -> HorizonMarkout:
        """These sums with one more fill (``size_f``: ``float(size)``)."""
        return HorizonMarkout(
            self.horizon_s,
            self.fills + 1,
            self.bps_sum + bps,
            self.size_bps_sum + size_f * bps,
            self.size + size,
            self.quote + quote,
        )

    def since(self, earlier: HorizonMarkout | None) -> HorizonMarkout:
        """The fills marked after ``earlier`` (the same horizon; ``None``: from zero)."""
        if earlier is None:
            return self
        if earlier.horizon_s != self.horizon_s:
            raise ValueError(f"horizons differ: {earlier.horizon_s} and {self.horizon_s}")
        return HorizonMarkout(
            self.horizon_s,
            self.fills - earlier.fills,
            self.bps_sum - earlier.bps_sum,
            self.size_bps_sum - earlier.size_bps_sum,
            self.size - earlier.size,
            self.quote - earlier.quote,
        )

    def plus(self, other: HorizonMarkout) -> HorizonMarkout:
        """The sums of both (the same horizon)."""
        if other.horizon_s != self.horizon_s:
            raise ValueError(f"horizons differ: {self.horizon_s} and {other.horizon_s}")
        return HorizonMarkout(
            self.horizon_s,
            self.fills + other.fills,
            self.bps_sum + other.bps_sum,
            self.size_bps_sum + other.size_bps_sum,
            self.size + other.size,
            self.quote + other.quote,
        )


# --- the pending fills: a persistent FIFO queue ----------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class _Pending:
    """A fill awaiting its marks: applied at ``at``, ``sign`` +1 for a buy and -1 for a sell."""

    at: float
    sign: int
    price: Decimal
    size: Decimal

    def __init__(self, at: float, sign: int, price: Decimal, size: Decimal) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "at", at)
        object.__setattr__(self, "sign", sign)
        object.__setattr__(self, "price", price)
        object.__setattr__(self, "size", size)


@dataclass(frozen=True, slots=True, eq=False, repr=False, init=False)
class _Node:
    """One cell of an immutable singly linked list (compared by identity and not shown: a
    generated ``==`` or ``repr`` would recurse down the whole list)."""

    item: _Pending
    rest: _Node | None

    def __init__(self, item: _Pending, rest: _Node | None) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "item", item)
        object.__setattr__(self, "rest", rest)


@dataclass(frozen=True, slots=True, init=False)
class _Queue:
    """Okasaki's banker's queue: ``front`` in order, ``back`` newest first; ``front`` is empty
    only when the whole queue is (so the oldest item is always ``front.item``)."""

    front: _Node | None = None
    back: _Node | None = None
    length: int = 0

    def __init__(
        self, front: _Node | None = None, back: _Node | None = None, length: int = 0
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "front", front)
        object.__setattr__(self, "back", back)
        object.__setattr__(self, "length", length)

    def __repr__(self) -> str:
        return f"_Queue(length={self.length})"

    def pushed(self, item: _Pending) -> _Queue:
        if self.front is None:
            return _Queue(_Node(item, None), None, 1)
        return _Queue(self.front, _Node(item, self.back), self.length + 1)

    def popped(self) -> _Queue:
        front = self.front
        assert front is not None
        if front.rest is not None:
            return _Queue(front.rest, self.back, self.length - 1)
        reversed_back: _Node | None = None
        node = self.back
        while node is not None:
            reversed_back = _Node(node.item, reversed_back)
            node = node.rest
        return _Queue(reversed_back, None, self.length - 1)


_EMPTY: Final = _Queue()


# --- the state and its transitions -----------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class MarkoutState:
    """The markout sums per horizon and the fills awaiting their marks."""

    params: MarkoutParams
    #: The sums, one per horizon in :attr:`MarkoutParams.horizons_s` order.
    horizons: tuple[HorizonMarkout, ...]
    _queues: tuple[_Queue, ...] = field(repr=False)
    #: The earliest time a pending fill matures at some horizon (``inf``: none pending).
    next_due: float = math.inf
    #: (fill, horizon) marks given up because :attr:`MarkoutParams.max_pending` was reached.
    dropped: int = 0
    #: The latest fill's time (a fill is never queued before the one ahead of it).
    last_fill_at: float = -math.inf
    #: Fills not handed to the horizons' queues yet, newest first: one cell per fill, shared by
    #: every horizon until a mark is due (a backtest path shorter than the horizons never
    #: hands them out at all). Always newer than everything in the queues.
    _inbox: _Node | None = field(default=None, repr=False)
    _inbox_len: int = field(default=0, repr=False)

    def __init__(
        self,
        params: MarkoutParams,
        horizons: tuple[HorizonMarkout, ...],
        _queues: tuple[_Queue, ...],
        next_due: float = math.inf,
        dropped: int = 0,
        last_fill_at: float = -math.inf,
        _inbox: _Node | None = None,
        _inbox_len: int = 0,
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "horizons", horizons)
        object.__setattr__(self, "_queues", _queues)
        object.__setattr__(self, "next_due", next_due)
        object.__setattr__(self, "dropped", dropped)
        object.__setattr__(self, "last_fill_at", last_fill_at)
        object.__setattr__(self, "_inbox", _inbox)
        object.__setattr__(self, "_inbox_len", _inbox_len)

    @property
    def pending(self) -> int:
        """Fills still awaiting a mark at some horizon."""
        return max(q.length for q in self._queues) + self._inbox_len

    def _handed_out(self) -> tuple[list[_Queue], int]:
        """The queues with the inbox appended to each (oldest first), and the drops that
        took (a queue at :attr:`MarkoutParams.max_pending` gives up its oldest per push)."""
        queues = list(self._queues)
        dropped = self.dropped
        if self._inbox is None:
            return queues, dropped
        items: list[_Pending] = []
        node: _Node | None = self._inbox
        while node is not None:
            items.append(node.item)
            node = node.rest
        items.reverse()
        limit = self.params.max_pending
        for i in range(len(queues)):
            queue = queues[i]
            for item in items:
                if queue.length >= limit:
                    queue = queue.popped()
                    dropped += 1
                queue = queue.pushed(item)
            queues[i] = queue
        return queues, dropped

    def at(self, horizon_s: float) -> HorizonMarkout | None:
        """The sums at ``horizon_s`` (``None``: not a horizon of this state)."""
        for h in self.horizons:
            if h.horizon_s == horizon_s:
                return h
        return None

    @classmethod
    def start(cls, params: MarkoutParams | None = None) -> MarkoutState:
        """Nothing measured yet (the default horizons unless ``params`` says otherwise)."""
        p = MarkoutParams() if params is None else params
        return cls(
            p, tuple(HorizonMarkout(h) for h in p.horizons_s), tuple(_EMPTY for _ in p.horizons_s)
        )

    def fill(self, now: float, side: Side, price: Decimal, size: Decimal) -> MarkoutState:
        """Queue a fill applied at ``now`` for its mark at every horizon.

        A fill whose price or size is not a positive finite number is not marked (a statistic
        must never stop trading; the engine's accounting sees such a fill regardless). ``now``
        earlier than the previous fill's (never, on one clock) is taken as that fill's time, so
        every queue stays in time order.
        """
        if not (price.is_finite() and size.is_finite() and price > ZERO and size > ZERO):
            return self
        at = now if now >= self.last_fill_at else self.last_fill_at
        item = _Pending(at, 1 if side is Side.BUY else -1, price, size)
        if self._inbox_len + max(q.length for q in self._queues) >= self.params.max_pending:
            # At the bound: hand everything out, then give up the oldest (rare: a feed that
            # stopped while fills kept coming).
            queues, dropped = self._handed_out()
            limit = self.params.max_pending
            for i in range(len(queues)):
                queue = queues[i]
                if queue.length >= limit:
                    queue = queue.popped()
                    dropped += 1
                queues[i] = queue.pushed(item)
            return MarkoutState(
                self.params,
                self.horizons,
                tuple(queues),
                _next_due(self.params.horizons_s, queues),
                dropped,
                at,
            )
        # The new fill is the newest: it changes the earliest due time only when nothing older
        # is pending at the shortest horizon (then it is at + that horizon).
        due = at + self.params.horizons_s[0]
        return MarkoutState(
            self.params,
            self.horizons,
            self._queues,
            due if due < self.next_due else self.next_due,
            self.dropped,
            at,
            _Node(item, self._inbox),
            self._inbox_len + 1,
        )

    def observe_mid(self, now: float, mid: Decimal) -> MarkoutState:
        """Mark every pending fill whose horizon has passed at ``now`` with ``mid`` (the mid of
        the first book at or after its time plus the horizon). ``self`` when none is due, or
        when ``mid`` is not a positive finite number (a later book marks them)."""
        if now < self.next_due or not (mid.is_finite() and mid > ZERO):
            return self
        horizons_s = self.params.horizons_s
        sums = list(self.horizons)
        queues, dropped = self._handed_out()
        for i in range(len(horizons_s)):
            h, queue, acc = horizons_s[i], queues[i], sums[i]
            while queue.front is not None and queue.front.item.at + h <= now:
                p = queue.front.item
                move = (mid - p.price) * p.sign
                acc = acc.marked(float(move / p.price) * 1e4, p.size, float(p.size), move * p.size)
                queue = queue.popped()
            queues[i], sums[i] = queue, acc
        return MarkoutState(
            self.params,
            tuple(sums),
            tuple(queues),
            _next_due(horizons_s, queues),
            dropped,
            self.last_fill_at,
        )


def _next_due(horizons_s: tuple[float, ...], queues: list[_Queue]) -> float:
    due = math.inf
    for i in range(len(queues)):
        front = queues[i].front
        if front is not None and front.item.at + horizons_s[i] < due:
            due = front.item.at + horizons_s[i]
    return due
