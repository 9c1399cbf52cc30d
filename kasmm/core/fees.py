"""Fee-aware pricing (``add_fees``): each side's raw ladder moved by the market's maker fee.

Hummingbot's ``add_transaction_costs``: bids at ``price * (1 - fee)``, asks at ``price * (1 +
fee)``, so that a round trip between two quoted prices covers the maker fee of both fills
(``ask * (1 - fee) >= bid * (1 + fee)`` whenever ``ask >= bid``). A rebate (a negative fee)
moves the prices toward the centre instead; it may tighten the quotes but never so far that
the two sides could meet: each side's best raw price stays at least half a tick from the
model's centre (or where the model put it, if that was closer). The stage runs before tick
rounding and the post-only guard, which both still apply.

:func:`fee_prices` is the readable stage (``Decimal``); :func:`fee_ladder` is the same move on
the fast path's ladder in float ticks (:mod:`kasmm.core.levels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from kasmm.core.types import Side

_BUY: Final = Side.BUY
_HALF: Final = Decimal("0.5")


def usable_fee(fee: Decimal) -> bool:
    """A fee rate the stage can apply: finite and strictly between -1 and 1 (a fee of 100 %
    or more would price bids at or below zero)."""
    return fee.is_finite() and -1 < fee < 1


def fee_prices(
    side: Side, prices: Sequence[Decimal], fee: Decimal, centre: Decimal, tick: Decimal
) -> tuple[Decimal, ...]:
    """One side's raw prices (best first) moved by ``fee``: bids ``* (1 - fee)``, asks
    ``* (1 + fee)``.

    When the move brings the best price closer to ``centre`` than half a tick (a rebate), the
    whole side is shifted back out (the levels keep their steps) so that it sits half a tick
    from the centre, or where it was before the move if that was closer already.
    """
    buy = side is _BUY
    factor = 1 - fee if buy else 1 + fee
    moved = tuple(p * factor for p in prices)
    if not moved:
        return moved
    top, before = moved[0], prices[0]
    if buy:
        limit = max(before, centre - tick * _HALF)
        shift = min(top, limit) - top
    else:
        limit = min(before, centre + tick * _HALF)
        shift = max(top, limit) - top
    return moved if shift == 0 else tuple(p + shift for p in moved)


def fee_ladder(
    side: Side, ladder: tuple[float, float, float, int], fee: float
) -> tuple[float, float, float, int]:
    """:func:`fee_prices` on a ladder in ticks, ``(centre, half, step, levels)`` (level ``i``
    at ``centre -/+ (half + i * step)``): the same ladder, scaled, with its half spread
    widened where the rebate's bound applies."""
    centre, half, step, levels = ladder
    buy = side is _BUY
    factor = 1.0 - fee if buy else 1.0 + fee
    moved_centre, moved_half, moved_step = centre * factor, half * factor, step * factor
    if buy:
        top = moved_centre - moved_half
        limit = max(centre - half, centre - 0.5)
        if top > limit:
            moved_half = moved_centre - limit
    else:
        top = moved_centre + moved_half
        limit = min(centre + half, centre + 0.5)
        if top < limit:
            moved_half = limit - moved_centre
    return moved_centre, moved_half, moved_step, levels
