"""One side of the quotes in one pass: ladder -> tick rounding -> post-only guard -> sizes.

:func:`kasmm.core.quoting.compute_quotes` runs its per-side stages (:func:`~kasmm.core.quoting.
ladder`, :func:`~kasmm.core.rules.round_prices`, :func:`~kasmm.core.rules.guard_prices`,
:func:`~kasmm.core.quoting.size_ladder`) through :func:`side_intents`, which does the same
Decimal operations in the same order level by level, without the intermediate tuples and calls
and without dividing by the tick twice where the stages do. The stages remain the readable,
separately tested definition; ``tests/unit/test_core_fast_paths.py`` holds this pass to them.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from kasmm.core.rules import MAX_STEPS, SNAP_TICKS, ceil_to, floor_to
from kasmm.core.skew import Budget
from kasmm.core.types import MarketRules, OrderIntent, Side


def side_intents(
    side: Side,
    ladder_args: tuple[Decimal, Decimal, Decimal, int],
    rules: MarketRules,
    guard: tuple[Decimal, Decimal] | None,
    size_base: Decimal,
    budget: Budget,
    check_notional: bool,
) -> tuple[OrderIntent, ...]:
    """One side's intents: :func:`ladder`, :func:`round_prices`, :func:`guard_prices` (when
    ``guard`` holds the touch) and :func:`size_ladder` in one pass over the levels.

    The same Decimal operations in the same order as those stages (each division by the tick
    done once where they repeat it), so the same values with the same exponents; a dropped
    level (``None`` in the stages) is skipped and keeps its index.
    """
    centre, half, step, levels = ladder_args
    buy = side is Side.BUY
    sign = -1 if buy else 1
    outward = ROUND_FLOOR if buy else ROUND_CEILING
    tick, lot, min_size, min_notional = rules.tick, rules.lot, rules.min_size, rules.min_notional
    limit: Decimal | None = None
    if guard is not None:
        bid, ask = guard
        limit = ceil_to(ask, tick) - tick if buy else floor_to(bid, tick) + tick
    base_left, quote_left = budget.base, budget.quote
    prev: Decimal | None = None
    out: list[OrderIntent] = []
    for i in range(levels):
        # ladder, then rules.round_price (ratio reused for the outward rounding)
        ratio = (centre + sign * (half + i * step)) / tick
        nearest = ratio.to_integral_value(rounding=ROUND_HALF_EVEN)
        if abs(ratio - nearest) <= SNAP_TICKS:
            p = nearest * tick
        else:
            p = ratio.to_integral_value(rounding=outward) * tick
        # round_prices: strictly behind the previous level, positive, bounded
        if prev is not None:
            p = min(p, prev - tick) if buy else max(p, prev + tick)
        prev = p
        if not (p > 0 and p / tick < MAX_STEPS):
            continue
        # guard_prices
        if limit is not None:
            p = min(p, limit) if buy else max(p, limit)
            limit = p - tick if buy else p + tick
            if not p > 0:
                continue
        # size_ladder, with rules.round_size and rules.size_ok
        size = size_base
        if base_left is not None:
            size = min(size, base_left)
        if quote_left is not None:
            size = min(size, quote_left / p)
        lots = size / lot
        size = (
            Decimal(0) if lots >= MAX_STEPS else lots.to_integral_value(rounding=ROUND_FLOOR) * lot
        )
        if size < lot or size < min_size or size <= 0:
            continue
        if check_notional and p * size < min_notional:
            continue
        out.append(OrderIntent(side, p, size, i))
        if base_left is not None:
            base_left -= size
        if quote_left is not None:
            quote_left -= p * size
    return tuple(out)
