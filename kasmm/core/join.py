"""Joining the book (Hummingbot's order optimization, ``join_depth``).

Each side's best price goes one tick inside the best competing price that has more than
``join_depth`` (base) ahead of us: the other traders' levels of that side (the book without
our own orders), walked best first, their sizes summed until the sum exceeds the depth. Dust
resting ahead of us is ignored; real size is joined. The side's whole ladder shifts so that its
best raw price is that target (deeper levels keep their step), bounded:

* never closer to the side's centre than half of ``join_min_spread_bps`` (of the mid) and
  never closer than half a tick, so the two sides cannot meet; with ``join_min_spread_bps``
  ``None`` never closer than the side's own best price, so the join only backs off
  (Hummingbot's behaviour). The side's centre is the model's, moved out by a positive maker
  fee with ``add_fees`` (bids ``centre * (1 - fee)``, asks ``centre * (1 + fee)``), so that
  a joined round trip still covers both fees; a rebate never moves it in;
* never through the book: the post-only guard runs after it and is always on with a join.

When the levels the caller passed hold no more than the depth, the side is not joined (it
stays where the model put it) and the decision says so (``QuoteDecision.join_unmet``).

:func:`join_target` and :func:`join_prices` are the readable stages (``Decimal``);
:func:`join_ladder` is the same shift on the fast path's ladder in float ticks.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Final

from kasmm.core.types import BookLevel, Side

#: Levels of each side of the book the bot passes to quoting when a join is set (instead of
#: ``QUOTING_DEPTH``): deep enough for any sensible depth, bounded so a decision stays cheap.
JOIN_BOOK_DEPTH: Final = 50

_BUY: Final = Side.BUY
_HALF: Final = Decimal("0.5")


def join_target(
    side: Side, levels: Sequence[BookLevel], depth: Decimal, tick: Decimal
) -> int | None:
    """The target best price of ``side``, in ticks: one tick inside the first of the other
    traders' ``levels`` (best first) where their summed size exceeds ``depth``.

    Bids: the first grid price above that level's price; asks: the first below it (for a
    level on the grid, one tick either way). ``None`` when the levels never exceed the depth,
    or when a level is unusable (a non-finite or non-positive price or size ends the walk:
    garbage is not a price to join).
    """
    total = Decimal(0)
    for lvl in levels:
        price, size = lvl.price, lvl.size
        if not (price.is_finite() and size.is_finite() and price > 0 and size > 0):
            return None
        total += size
        if total > depth:
            ratio = price / tick
            if side is _BUY:
                return int(ratio.to_integral_value(ROUND_FLOOR)) + 1
            return int(ratio.to_integral_value(ROUND_CEILING)) - 1
    return None


def side_centre(side: Side, centre: Decimal, fee: Decimal | None) -> Decimal:
    """The centre a side's join is bounded from: the model's ``centre``, moved out by a
    positive ``fee`` (``None``: fees off) as :mod:`kasmm.core.fees` moves the side's prices."""
    if fee is None:
        return centre
    if side is _BUY:
        return min(centre, centre * (1 - fee))
    return max(centre, centre * (1 + fee))


def join_limit(
    side: Side,
    centre: Decimal,
    top: Decimal,
    mid: Decimal,
    min_spread_bps: Decimal | None,
    tick: Decimal,
) -> Decimal:
    """The closest to ``centre`` (the side's, :func:`side_centre`) the side's best raw price
    may be joined: half of ``min_spread_bps`` of ``mid`` (at least half a tick) from the
    centre, or, with ``None``, the side's own best raw price ``top``."""
    if min_spread_bps is None:
        return top
    half = max(mid * min_spread_bps / 20_000, tick * _HALF)
    return centre - half if side is _BUY else centre + half


def join_prices(
    side: Side, prices: Sequence[Decimal], target: Decimal, limit: Decimal
) -> tuple[Decimal, ...]:
    """One side's raw prices (best first) shifted so the best is ``target``, but never closer
    to the centre than ``limit`` (:func:`join_limit`); the levels keep their steps."""
    if not prices:
        return tuple(prices)
    top = min(target, limit) if side is _BUY else max(target, limit)
    shift = top - prices[0]
    return tuple(prices) if shift == 0 else tuple(p + shift for p in prices)


def join_ladder(
    side: Side,
    ladder: tuple[float, float, float, int],
    target: int,
    centre: float,
    min_half: float,
) -> tuple[float, float, float, int]:
    """:func:`join_prices` on a ladder in ticks, ``(centre, half, step, levels)``.

    :param centre: the model's centre, in ticks (the ladder's own centre is moved by fees:
        the side's centre is the one further out, see :func:`side_centre`).
    :param min_half: the bound's distance from the side's centre in ticks (already at least
        half a tick), or a negative value for the ``None`` bound (the ladder's own best price).
    """
    c, half, step, levels = ladder
    if side is _BUY:
        own = c - half
        limit = own if min_half < 0 else min(centre, c) - min_half
        top = min(float(target), limit)
        return ladder if top == own else (c, c - top, step, levels)
    own = c + half
    limit = own if min_half < 0 else max(centre, c) + min_half
    top = max(float(target), limit)
    return ladder if top == own else (c, top - c, step, levels)
