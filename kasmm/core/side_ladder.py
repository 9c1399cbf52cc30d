"""Each side's ladder: the model's ladder shaped by the pricing settings, per side.

The model (:mod:`kasmm.core.quoting`) gives one centre, a half spread per side (``bid_fraction``
splits a fixed spread) and the step between levels. Before rounding, each side's raw prices go
through the settings that read the market, in this order:

1. fees (:mod:`kasmm.core.fees`, ``add_fees``): moved by the maker fee;
2. the join (:mod:`kasmm.core.join`, ``join_depth``): shifted to just inside the book's size;
3. held orders (:mod:`kasmm.core.held`): as many fewer levels as the side holds outside the
   quotes.

The join comes after the fees so that with ``join_min_spread_bps`` unset (the join only backs
off) the fee-covering prices stay the closest the quotes get. :func:`raw_side` is the readable
chain in ``Decimal`` (also the fast path's exact fallback beyond the floats' resolution);
:func:`shape` is the same on a ladder in float ticks.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

from kasmm.core.fees import fee_ladder, fee_prices
from kasmm.core.join import join_ladder, join_limit, join_prices, side_centre
from kasmm.core.rules import round_price
from kasmm.core.types import Side

_BUY: Final = Side.BUY
_INF: Final = math.inf

#: A ladder in ticks: its centre, the half spread, the step between levels, the levels.
Ladder = tuple[float, float, float, int]


def ladder(
    side: Side, centre: Decimal, half: Decimal, step: Decimal, levels: int
) -> tuple[Decimal, ...]:
    """Raw prices of one side, best first: level ``i`` sits ``i * step`` further out (the
    model's ladder; ``half`` is the side's own half spread)."""
    sign = -1 if side is _BUY else 1
    return tuple(centre + sign * (half + i * step) for i in range(levels))


def raw_side(
    side: Side,
    centre: Decimal,
    half: Decimal,
    step: Decimal,
    levels: int,
    *,
    mid: Decimal,
    tick: Decimal,
    fee: Decimal | None = None,
    target: Decimal | None = None,
    min_spread_bps: Decimal | None = None,
) -> tuple[Decimal, ...]:
    """One side's raw prices (best first) through the ladder, fee and join stages.

    :param fee: the maker fee to price in (``None``: ``add_fees`` off).
    :param target: the join's target best price (``None``: no join for this side).
    :param min_spread_bps: the join's ``join_min_spread_bps`` (``None``: only back off).
    """
    prices = ladder(side, centre, half, step, levels)
    if fee is not None:
        prices = fee_prices(side, prices, fee, centre, tick)
    if target is not None and prices:
        bound = side_centre(side, centre, fee)
        limit = join_limit(side, bound, prices[0], mid, min_spread_bps, tick)
        prices = join_prices(side, prices, target, limit)
    return prices


def rounded_side(side: Side, prices: tuple[Decimal, ...], tick: Decimal) -> tuple[int, ...]:
    """Each raw price rounded to the grid by :func:`~kasmm.core.rules.round_price`, in ticks
    (what :func:`kasmm.core.levels.side_intents` takes as ``rounded``)."""
    return tuple(int(round_price(side, p, tick) / tick) for p in prices)


def shape(
    side: Side,
    ladder: Ladder,
    fee: float | None,
    target: int,
    centre: float,
    min_half: float,
) -> Ladder:
    """:func:`raw_side`'s fee and join stages on a ladder in ticks.

    :param fee: the maker fee as a float (``None``: off).
    :param target: the join's target in ticks (-1: no join for this side).
    :param centre: the model's centre in ticks.
    :param min_half: the join's closest distance to ``centre`` in ticks (at least half a tick),
        negative for ``join_min_spread_bps`` unset.
    """
    if fee is not None:
        ladder = fee_ladder(side, ladder, fee)
    if target >= 0:
        ladder = join_ladder(side, ladder, target, centre, min_half)
    return ladder


def beyond(ladder: Ladder, limit: float) -> bool:
    """Whether a ladder in ticks reaches ``limit`` ticks or more (finitely): then its prices
    are rounded in ``Decimal`` (see :data:`kasmm.core.levels.FLOAT_TICKS_LIMIT`)."""
    centre, half, step, levels = ladder
    reach = abs(centre) + abs(half) + (levels - 1) * abs(step)
    return limit <= reach < _INF
