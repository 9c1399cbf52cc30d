"""Market-rule arithmetic: tick and lot rounding, order minimums, the post-only guard.

Rounding always errs on the safe side for a maker: bids round down and asks round up (never
more aggressive than the model asked for), sizes round down (never more than the balance
allows).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from kasmm.core.types import ZERO, MarketRules, Side

BPS = Decimal(10_000)


def to_decimal(x: float) -> Decimal:
    """A float from a model as a Decimal, via its shortest repr.

    ``Decimal(0.1)`` would carry the binary expansion's noise (0.1000000000000000055…) and could
    tip a price across a tick boundary; ``repr`` gives the value the float was meant to be.

    :raises ValueError: ``x`` is NaN or infinite.
    """
    if not math.isfinite(x):
        raise ValueError(f"not a finite number: {x!r}")
    return Decimal(repr(x))


def is_finite_positive(x: Decimal | None) -> bool:
    """True for a finite Decimal greater than zero (False for ``None``, NaN, infinities)."""
    return x is not None and x.is_finite() and x > ZERO  # not 0: an int is converted first


def floor_to(x: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` <= ``x`` (``step`` > 0, not necessarily a power of 10)."""
    return (x / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_to(x: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of ``step`` >= ``x``."""
    return (x / step).to_integral_value(rounding=ROUND_CEILING) * step


#: Prices and sizes beyond this many ticks or lots come from a runaway model or feed; bounding
#: them keeps every grid value exactly representable in Decimal's default 28 digits.
MAX_STEPS = Decimal(10) ** 18

#: Model prices come from floats with ~1e-16 relative noise; a raw price this close (in ticks)
#: to a grid line is taken to be on it, so 99.95000000000001 does not round up a whole tick.
SNAP_TICKS = Decimal("1e-9")


def round_price(side: Side, price: Decimal, tick: Decimal) -> Decimal:
    """Bids round down, asks round up, so rounding never makes a quote more aggressive.

    A price within ``SNAP_TICKS`` of a grid line is that grid line (float noise, not intent).
    """
    ratio = price / tick
    nearest = ratio.to_integral_value(rounding=ROUND_HALF_EVEN)
    if abs(ratio - nearest) <= SNAP_TICKS:
        return nearest * tick
    return floor_to(price, tick) if side is Side.BUY else ceil_to(price, tick)


def round_prices(
    side: Side, prices: Sequence[Decimal], rules: MarketRules
) -> tuple[Decimal | None, ...]:
    """Round a ladder (best first) to the tick, keeping every level strictly behind the last.

    Levels a small ``level_step_bps`` would round onto the same tick are pushed out one tick
    each, so a side never holds two orders at one price. Non-positive results are ``None``
    (dropped) but keep their slot so level indices stay meaningful, and so are prices beyond
    ``MAX_STEPS`` ticks.
    """
    tick = rules.tick
    out: list[Decimal | None] = []
    prev: Decimal | None = None
    for raw in prices:
        p = round_price(side, raw, tick)
        if prev is not None:
            p = min(p, prev - tick) if side is Side.BUY else max(p, prev + tick)
        out.append(p if p > 0 and p / tick < MAX_STEPS else None)
        prev = p
    return tuple(out)


def guard_prices(
    side: Side,
    prices: Sequence[Decimal | None],
    tick: Decimal,
    best_bid: Decimal,
    best_ask: Decimal,
) -> tuple[Decimal | None, ...]:
    """Post-only guard: keep a side's ladder strictly behind the other traders' opposite touch.

    A bid above ``best_ask - tick`` (or an ask below ``best_bid + tick``) would take liquidity
    and be rejected as post-only, so it is clamped to one tick inside; deeper levels are then
    pushed out to stay one tick apart. With an off-grid touch the limit is the nearest grid
    price strictly behind it.
    """
    buy = side is Side.BUY
    limit = ceil_to(best_ask, tick) - tick if buy else floor_to(best_bid, tick) + tick
    out: list[Decimal | None] = []
    for p in prices:
        if p is None:
            out.append(None)
            continue
        p = min(p, limit) if buy else max(p, limit)
        limit = p - tick if buy else p + tick
        out.append(p if p > 0 else None)
    return tuple(out)


def round_size(size: Decimal, lot: Decimal) -> Decimal:
    """Round a size down to the lot (never more than was affordable); 0 past ``MAX_STEPS`` lots."""
    if size / lot >= MAX_STEPS:
        return Decimal(0)
    return floor_to(size, lot)


def size_ok(price: Decimal, size: Decimal, rules: MarketRules, *, check_notional: bool) -> bool:
    """True when an order of ``size`` at ``price`` meets the lot, min size and min notional."""
    if size < rules.lot or size < rules.min_size or size <= 0:
        return False
    return not (check_notional and price * size < rules.min_notional)
