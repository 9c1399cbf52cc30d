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
from kasmm.core.types import ZERO, MarketRules, OrderIntent, Side


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
    outward = ROUND_FLOOR if buy else ROUND_CEILING
    tick, lot, min_size, min_notional = rules.tick, rules.lot, rules.min_size, rules.min_notional
    limit: Decimal | None = None
    if guard is not None:
        bid, ask = guard
        limit = ceil_to(ask, tick) - tick if buy else floor_to(bid, tick) + tick
    base_left, quote_left = budget.base, budget.quote
    prev: Decimal | None = None
    out: list[OrderIntent] = []
    # Cheaper spellings of the same operations: ``b if b < a else a`` is the builtin
    # ``min(a, b)`` (which returns ``a`` on a tie, exponent included), ``x - y`` is
    # ``x + -1 * y``, a Decimal zero compares as the int 0 does, and ``to_integral_value``
    # takes its rounding positionally.
    for i in range(levels):
        # ladder, then rules.round_price (ratio reused for the outward rounding)
        offset = half + i * step
        ratio = ((centre - offset) if buy else (centre + offset)) / tick
        nearest = ratio.to_integral_value(ROUND_HALF_EVEN)
        if abs(ratio - nearest) <= SNAP_TICKS:
            p = nearest * tick
        else:
            p = ratio.to_integral_value(outward) * tick
        # round_prices: strictly behind the previous level, positive, bounded
        if prev is not None:
            if buy:
                behind = prev - tick
                p = behind if behind < p else p
            else:
                behind = prev + tick
                p = behind if behind > p else p
        prev = p
        if not (p > ZERO and p / tick < MAX_STEPS):
            continue
        # guard_prices
        if limit is not None:
            if buy:
                p = limit if limit < p else p
                limit = p - tick
            else:
                p = limit if limit > p else p
                limit = p + tick
            if not p > ZERO:
                continue
        # size_ladder, with rules.round_size and rules.size_ok
        size = size_base
        if base_left is not None:
            size = base_left if base_left < size else size
        if quote_left is not None:
            affordable = quote_left / p
            size = affordable if affordable < size else size
        lots = size / lot
        size = Decimal(0) if lots >= MAX_STEPS else lots.to_integral_value(ROUND_FLOOR) * lot
        if size < lot or size < min_size or size <= ZERO:
            continue
        if check_notional and p * size < min_notional:
            continue
        out.append(OrderIntent(side, p, size, i))
        if base_left is not None:
            base_left -= size
        if quote_left is not None:
            quote_left -= p * size
    return tuple(out)
