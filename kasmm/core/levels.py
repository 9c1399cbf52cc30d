"""One side of the quotes in one pass, in integer ticks and lots: ladder -> tick rounding ->
post-only guard -> sizes.

:func:`kasmm.core.quoting.compute_quotes` runs its per-side stages (:func:`~kasmm.core.quoting.
ladder`, :func:`~kasmm.core.rules.round_prices`, :func:`~kasmm.core.rules.guard_prices`,
:func:`~kasmm.core.quoting.size_ladder`) through :func:`side_intents`: the same decisions level
by level, on the market's integer grid (:mod:`kasmm.core.grid`) instead of in ``Decimal``.

The model's raw prices are floats in ticks (the model works in floats); rounding them to the
grid is where the decision starts, and from there everything is exact integer arithmetic:

* a raw price within ``SNAP_TICKS`` of a grid line is that line, else bids round down and asks
  up; float noise (~1e-11 of a tick at 10^5 ticks) is far inside the snap band. That holds
  below :data:`FLOAT_TICKS_LIMIT` ticks; a ladder reaching beyond it (a runaway model, e.g.
  an AS reservation price a million ticks away) is rounded in ``Decimal`` by the caller, as
  the stages do, and handed in as ``rounded``;
* sizes in lots: ``floor(min(a, b, c) / lot)`` is ``min(floor(a / lot), ...)``, and a quote
  budget ``Q`` buys ``floor(floor(Q / unit) / ticks)`` lots at ``ticks`` (``unit`` = tick x lot),
  exactly ``floor(Q / (price * lot))``;
* the minimum notional holds when ``ticks * lots >= ceil(min_notional / unit)``.

The stages remain the readable, separately tested definition; ``tests/unit/
test_core_fast_paths.py`` holds this pass to them.
"""

from __future__ import annotations

import math
from typing import Final

from kasmm.core.grid import Grid
from kasmm.core.types import OrderIntent, Side

#: A raw price this close to a grid line, in ticks, is on it (the float form of
#: :data:`kasmm.core.rules.SNAP_TICKS`).
SNAP: Final = 1e-9
#: Prices and sizes beyond this many ticks or lots are dropped (:data:`kasmm.core.rules.MAX_STEPS`).
MAX_STEPS: Final = 10**18
#: Below this many ticks a float holds a raw price to ~2**-32 of a tick, well inside SNAP;
#: beyond it float noise reaches the snap band and could round a level one tick off the stages'
#: Decimal rounding, so the caller rounds such a ladder in Decimal (``rounded``).
FLOAT_TICKS_LIMIT: Final = 2.0**20

# Final: mypyc keeps these in C statics; a module global (an imported name too) is a
# dictionary lookup on every use.
_BUY: Final = Side.BUY


def side_intents(
    side: Side,
    ladder_ticks: tuple[float, float, float, int],
    grid: Grid,
    guard: tuple[int, int] | None,
    size_lots: int,
    base_lots: int,
    quote_units: int,
    check_notional: bool,
    rounded: tuple[int, ...] | None = None,
    level_lots: tuple[int, ...] | None = None,
) -> tuple[OrderIntent, ...]:
    """One side's intents: :func:`ladder`, :func:`round_prices`, :func:`guard_prices` (when
    ``guard`` holds the touch) and :func:`size_ladder` in one pass over the levels.

    :param ladder_ticks: the ladder in ticks: its centre, the half spread, the step between
        levels (floats, from the model) and the number of levels.
    :param guard: the other traders' touch as ``(floor(best_bid / tick), ceil(best_ask /
        tick))``, or ``None`` without the post-only guard.
    :param size_lots: the size per level, in whole lots (when ``level_lots`` is ``None``).
    :param base_lots: the side's base budget in whole lots (-1: unlimited).
    :param quote_units: the side's quote budget in whole ``grid.unit`` (-1: unlimited).
    :param rounded: each level's raw price already rounded to the grid, in ticks (by
        :func:`~kasmm.core.rules.round_price`), for a ladder beyond :data:`FLOAT_TICKS_LIMIT`;
        the prices of ``ladder_ticks`` are then not read.
    :param level_lots: each level's size in whole lots, when the levels' sizes differ
        (``level_size_step``; at least as many as the levels); ``size_lots`` is then not read.

    A dropped level (``None`` in the stages) is skipped and keeps its index.
    """
    centre, half, step, levels = ladder_ticks
    buy = side is _BUY
    limit = -1
    if guard is not None:
        limit = guard[1] - 1 if buy else guard[0] + 1
    min_lots, min_units = grid.min_lots, grid.min_notional_units
    prev = -1
    out: list[OrderIntent] = []
    for i in range(levels):
        if rounded is not None:
            p = rounded[i]
        else:
            # ladder, then rules.round_price
            offset = half + i * step
            ratio = centre - offset if buy else centre + offset
            if math.isinf(ratio) or math.isnan(ratio):  # not isfinite: mypyc calls that one
                continue  # beyond any grid: as dropped as a price beyond MAX_STEPS ticks
            # Within SNAP of the nearest grid line: that line; else bids down, asks up. (The
            # fraction above the floor, and 1 minus it, are exact in floats; a fraction of
            # exactly one half is beyond SNAP either way, so how round() breaks ties never
            # matters.)
            floor = int(ratio) if ratio >= 0 else math.floor(ratio)  # int(): compiled, no call
            frac = ratio - floor
            if frac <= SNAP:
                p = floor
            elif 1.0 - frac <= SNAP:
                p = floor + 1
            else:
                p = floor if buy else floor + 1
        # round_prices: strictly behind the previous level, positive, bounded
        if i > 0:
            p = min(p, prev - 1) if buy else max(p, prev + 1)
        prev = p
        if not (0 < p < MAX_STEPS):
            continue
        # guard_prices
        if guard is not None:
            if buy:
                p = min(p, limit)
                limit = p - 1
            else:
                p = max(p, limit)
                limit = p + 1
            if p <= 0:
                continue
        # size_ladder, with rules.round_size and rules.size_ok
        lots = size_lots if level_lots is None else level_lots[i]
        if base_lots >= 0:
            lots = min(lots, base_lots)
        if quote_units >= 0:
            lots = min(lots, quote_units // p)
        if lots >= MAX_STEPS or lots < min_lots:
            continue
        if check_notional and p * lots < min_units:
            continue
        out.append(OrderIntent(side, grid.price(p), grid.size(lots), i, p, lots))
        if base_lots >= 0:
            base_lots -= lots
        if quote_units >= 0:
            quote_units -= p * lots
    return tuple(out)
