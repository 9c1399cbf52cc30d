"""The price band (issue 19, Hummingbot's ``price_floor``/``price_ceiling``): outside it only the
side that sells high or buys low is quoted.

Three pure pieces:

* the slow average mid of a moving band: an EWMA with a half-life on the interval clock
  (:class:`SlowMid`, :func:`update`). A float: it is a statistic of the mid, never a price sent
  anywhere; the band's bounds made from it are converted to ``Decimal`` once (:func:`band_of`)
  and every comparison with a quote is exact;
* the band in force (:func:`band_of`): absolute ``floor``/``ceiling``, or ``band_pct`` around
  the average (none before the first mid: a moving band needs an average to move around);
* the gate on a decision's quotes (:func:`apply_band`): the pricing mid above the ceiling quotes
  no bids, below the floor no asks; and no bid is ever priced above the ceiling, nor an ask
  below the floor, whatever the mid (a skewed or reference-priced ladder can reach past it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from kasmm.core.params import PriceBandParams
from kasmm.core.quoting import QuoteDecision
from kasmm.core.rules import to_decimal
from kasmm.core.types import OrderIntent, Quotes, Side

#: The decision's reason when the pricing mid is above the ceiling (or every bid is priced
#: above it) and the bids are dropped.
ABOVE_CEILING: Final = "above_ceiling"
#: The same below the floor, for the asks.
BELOW_FLOOR: Final = "below_floor"

_HUNDRED: Final = Decimal(100)


@dataclass(frozen=True, slots=True, init=False)
class SlowMid:
    """The slow average of the mid: its value and the interval-clock time it was last fed."""

    value: float
    at: float

    def __init__(self, value: float, at: float) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "at", at)


def update(state: SlowMid | None, mid: float, now: float, halflife_s: float) -> SlowMid | None:
    """``state`` with the mid ``mid`` seen at ``now`` folded in.

    The weight of the new mid is ``1 - 2 ** (-dt / halflife_s)``: after one half-life a jump
    of the mid has moved the average half way, however irregular the books' spacing. The first
    mid is the average; a mid at the same time (or earlier: a clock never goes back, a caller
    might) weighs nothing, and a mid that is not a positive finite number is ignored.
    """
    if not (math.isfinite(mid) and mid > 0.0):
        return state
    if state is None:
        return SlowMid(mid, now)
    dt = now - state.at
    if dt <= 0.0:
        return state
    weight = 1.0 - 2.0 ** (-dt / halflife_s)
    return SlowMid(state.value + weight * (mid - state.value), now)


@dataclass(frozen=True, slots=True)
class Band:
    """The band in force: no bid above ``ceiling``, no ask below ``floor`` (``None``: open)."""

    floor: Decimal | None
    ceiling: Decimal | None


def band_of(params: PriceBandParams, slow: SlowMid | None) -> Band | None:
    """The band ``params`` sets now (``None``: no band: a moving one without an average yet).

    A moving band is ``band_pct`` percent below and above the average mid, converted to
    ``Decimal`` from the float's shortest repr (see :func:`~kasmm.core.rules.to_decimal`).
    """
    if params.band_pct is None:
        if params.floor is None and params.ceiling is None:
            return None
        return Band(params.floor, params.ceiling)
    if slow is None:
        return None
    avg = to_decimal(slow.value)
    pct = to_decimal(params.band_pct) / _HUNDRED
    return Band(avg * (1 - pct), avg * (1 + pct))


def pricing_mid(decision: QuoteDecision) -> Decimal | None:
    """The mid the quotes price off: the reference's when one priced them, else the own."""
    return decision.reference_mid if decision.reference_mid is not None else decision.mid


def apply_band(decision: QuoteDecision, band: Band | None) -> QuoteDecision:
    """``decision`` with the band's gate applied (the same object when it changes nothing).

    A side the band empties gives the decision its reason (:data:`ABOVE_CEILING`,
    :data:`BELOW_FLOOR`); levels it only trims leave the reason as it was.
    """
    if band is None:
        return decision
    quotes = decision.quotes
    bids, asks = quotes.bids, quotes.asks
    if not (bids or asks):
        return decision
    mid = pricing_mid(decision)
    ceiling, floor = band.ceiling, band.floor
    if bids and ceiling is not None:
        above = mid is not None and mid > ceiling
        bids = () if above else tuple(i for i in bids if i.price <= ceiling)
    if asks and floor is not None:
        below = mid is not None and mid < floor
        asks = () if below else tuple(i for i in asks if i.price >= floor)
    if len(bids) == len(quotes.bids) and len(asks) == len(quotes.asks):
        return decision
    reason = decision.reason
    if quotes.bids and not bids:
        reason = ABOVE_CEILING
    elif quotes.asks and not asks:
        reason = BELOW_FLOOR
    return with_quotes(decision, Quotes(bids, asks), reason)


def with_quotes(decision: QuoteDecision, quotes: Quotes, reason: str) -> QuoteDecision:
    """``decision`` quoting ``quotes`` for ``reason`` instead (its other numbers as they were:
    they describe the model's answer, which a gate after it does not change)."""
    return QuoteDecision(
        quotes,
        decision.mid,
        decision.reference,
        decision.spread_bps,
        decision.skew_bps,
        decision.inventory_share,
        _one_sided(quotes.bids, quotes.asks),
        reason,
        decision.excess,
        decision.price_source,
        decision.reference_mid,
        decision.join_unmet,
    )


def _one_sided(bids: tuple[OrderIntent, ...], asks: tuple[OrderIntent, ...]) -> Side | None:
    if bids and not asks:
        return Side.BUY
    if asks and not bids:
        return Side.SELL
    return None
