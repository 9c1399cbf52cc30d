"""Inventory: where it stands against target, how far to skew, which sides to quote.

All amounts are *totals* (free plus locked): orders the bot has resting still belong to it and
reconciliation may cancel them, so locking must not look like a change of inventory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from kasmm.core.params import QuotingParams
from kasmm.core.types import ZERO, Balances, MarketRules, Side

# Final: mypyc keeps these in C statics; a module global (an imported name too) is a
# dictionary lookup on every use.
_BUY: Final = Side.BUY


@dataclass(frozen=True, slots=True, init=False)
class Excess:
    """Inventory beyond its target at one mid: positive means long (too much base).

    ``base`` is exact and always known when a target is; ``share`` is the same excess as a share
    of portfolio value, the unit of ``max_inventory_deviation``, and ``None`` when the portfolio
    is worth nothing (or less) at this mid.
    """

    base: Decimal
    share: float | None

    def __init__(self, base: Decimal, share: float | None) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "share", share)

    @property
    def sign(self) -> int:
        """+1 long, -1 short, 0 on target (from the exact base amount)."""
        return (self.base > 0) - (self.base < 0)


@dataclass(frozen=True, slots=True)
class GroupSkew:
    """A portfolio's inventory against its aggregate target, handed to each member.

    ``deviation`` is on :func:`deviation`'s scale (-1 short .. +1 long, of the group's combined
    inventory against the group's target); ``excess_base`` is the group's base beyond its target.
    A member skews toward the group's position, not only its own: a group long overall makes
    every member lean to sell, even one short on its own (its own share caps still apply).
    """

    deviation: float
    excess_base: Decimal


@dataclass(frozen=True, slots=True, init=False)
class Inventory:
    """Inventory at one mid: balances, base share of portfolio value and the target."""

    base: Decimal
    quote: Decimal
    share: float | None  # base value / (base value + quote); None when the portfolio is <= 0
    target_base: Decimal | None  # None when the target is a share of an empty portfolio
    target_share: float | None
    excess: Excess | None = None  # None when there is no target to measure against

    def __init__(
        self,
        base: Decimal,
        quote: Decimal,
        share: float | None,
        target_base: Decimal | None,
        target_share: float | None,
        excess: Excess | None = None,
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "quote", quote)
        object.__setattr__(self, "share", share)
        object.__setattr__(self, "target_base", target_base)
        object.__setattr__(self, "target_share", target_share)
        object.__setattr__(self, "excess", excess)


@dataclass(frozen=True, slots=True)
class ShareDecimals:
    """The share fields of one ``QuotingParams`` as Decimals (``Decimal(repr(x))``).

    Parameters do not change between decisions: the quoting core computes these once per
    parameter object instead of three times per decision.
    """

    target: Decimal | None
    min: Decimal | None
    max: Decimal | None
    #: ``min <= target <= max`` (a missing cap holds): then the share caps cannot move a
    #: target that comes from ``target`` (see :func:`_target_base`)
    target_within_caps: bool = False

    @staticmethod
    def of(params: QuotingParams) -> ShareDecimals:
        """The share fields of ``params``."""

        def dec(x: float | None) -> Decimal | None:
            return None if x is None else Decimal(repr(x))

        target, low, high = dec(params.target_share), dec(params.min_share), dec(params.max_share)
        within = (
            target is not None
            and target.is_finite()
            and (low is None or (low.is_finite() and low <= target))
            and (high is None or (high.is_finite() and target <= high))
        )
        return ShareDecimals(target, low, high, within)


def inventory_at(
    params: QuotingParams, balances: Balances, rules: MarketRules, mid: Decimal
) -> Inventory:
    """Snapshot inventory at ``mid`` and express the target both in base and as a share.

    This is the one place inventory is measured against its target: quoting, the
    ``max_inventory_deviation`` rule and the reduce-only gate all read the result.
    """
    base, quote = balances.total(rules.base), balances.total(rules.quote)
    return inventory_of(params, base, quote, mid, ShareDecimals.of(params))


def inventory_of(
    params: QuotingParams,
    base: Decimal,
    quote: Decimal,
    mid: Decimal,
    shares: ShareDecimals,
    with_target_share: bool = True,
) -> Inventory:
    """:func:`inventory_at` from the base and quote totals, with ``params``' share Decimals.

    :param with_target_share: ``False`` leaves ``target_share`` ``None`` (for a caller that
        does not read it): it is the one value computed only for the caller.
    """
    base_value = base * mid
    value = base_value + quote
    positive = value > ZERO  # not 0: comparing with an int converts it first
    share = float(base_value / value) if positive else None
    target_base, from_share = _target_base(params, value, mid, shares)
    if target_base is None:
        return Inventory(base, quote, share, None, None)
    excess_base = base - target_base
    target_share: float | None = None
    excess_share: float | None = None
    if positive:
        # A configured target_share that no cap moved is reported exactly as configured (and
        # not computed: a product, a division and a float conversion per decision).
        if from_share is not None and (target_base is from_share or target_base == from_share):
            target_share = params.target_share
        elif with_target_share:
            target_share = float(target_base * mid / value)
        excess_share = float(excess_base * mid / value)
    excess = Excess(excess_base, excess_share)
    return Inventory(base, quote, share, target_base, target_share, excess)


def effective_target_base(params: QuotingParams, value: Decimal, mid: Decimal) -> Decimal | None:
    """The base amount inventory is steered to at ``mid`` (``None``: no target can be set).

    ``target_base`` as configured, or ``target_share`` of the portfolio ``value``; then held
    within the hard caps, which win over the target: the share caps (``min_share``/
    ``max_share`` of ``value``) and, strongest, ``min_base``/``max_base``. A target beyond a
    cap would have skew, the caps and the reduce-only gate pull in opposite directions (e.g. a
    ``target_base`` worth 95 % of the portfolio against ``max_share`` 0.9: the caps quote only
    asks, the target only bids, and reduce-only would quote nothing).
    """
    return _target_base(params, value, mid, ShareDecimals.of(params))[0]


def _target_base(
    params: QuotingParams, value: Decimal, mid: Decimal, shares: ShareDecimals
) -> tuple[Decimal | None, Decimal | None]:
    """The effective target, and ``target_share`` of ``value`` when the target came from it
    (before the caps: what the configured share is worth in base at ``mid``)."""
    from_share = None
    positive = value > ZERO
    if params.target_base is not None:
        target = params.target_base
    elif shares.target is not None and positive:
        target = from_share = shares.target * value / mid
    else:
        return None, None
    # A target from a share within the share caps stays within them at every value and mid:
    # the caps are computed as that target is (``cap * value / mid``) with a cap on each side
    # of the share, correctly rounded products and quotients are monotone (value, mid > 0),
    # and min()/max() keep their first argument on a tie. So the caps are not computed then.
    if positive and not (from_share is not None and shares.target_within_caps and mid > ZERO):
        if shares.max is not None:
            target = min(target, shares.max * value / mid)
        if shares.min is not None:
            target = max(target, shares.min * value / mid)
    if params.max_base is not None:
        target = min(target, params.max_base)
    if params.min_base is not None:
        target = max(target, params.min_base)
    return target, from_share


def deviation(
    share: float | None,
    target: float | None,
    min_share: float | None,
    max_share: float | None,
) -> float:
    """Signed distance of ``share`` from ``target``, normalized to [-1, 1].

    +1 means the share has reached ``max_share`` (long), -1 that it has fallen to ``min_share``
    (short). Missing caps normalize by the distance to 1 and 0. Unknown share or target: 0.
    """
    if share is None or target is None or not math.isfinite(share):
        return 0.0
    if share > target:
        span = (1.0 if max_share is None else max_share) - target
        dev = (share - target) / span if span > 0 else 1.0
    elif share < target:
        span = target - (0.0 if min_share is None else min_share)
        dev = (share - target) / span if span > 0 else -1.0
    else:
        return 0.0
    return max(-1.0, min(1.0, dev))


def skew_bps(dev: float, strength: float, spread_bps: float) -> float:
    """Shift of both quotes in bps of mid: ``-dev * strength`` half-spreads.

    Negative when long so both quotes move down: the ask gets hit more and the bid less, which
    works the inventory back towards target.
    """
    if dev == 0.0:
        return 0.0  # not -0.0 in logs
    return -dev * strength * spread_bps / 2.0


def inventory_q(base: Decimal, target_base: Decimal | None, order_size_base: Decimal) -> float:
    """Avellaneda–Stoikov ``q``: inventory above target, in order sizes (0 if unknown)."""
    if target_base is None or order_size_base <= 0:
        return 0.0
    return float((base - target_base) / order_size_base)


def quoted_sides(
    share: float | None, min_share: float | None, max_share: float | None
) -> tuple[frozenset[Side], str]:
    """Sides to quote given the share caps, and a reason when one is switched off.

    Beyond ``max_share`` only asks are quoted (sell down), below ``min_share`` only bids.
    """
    bids, asks, reason = side_caps(share, min_share, max_share)
    return (_BOTH if bids and asks else _BIDS_ONLY if bids else _ASKS_ONLY), reason


def side_caps(
    share: float | None, min_share: float | None, max_share: float | None
) -> tuple[bool, bool, str]:
    """:func:`quoted_sides` as flags: (bids quoted, asks quoted, reason).

    The pipeline's form: a set of enum members hashes each member through the enum's
    ``__hash__``, which is Python code even when compiled.
    """
    if share is None:
        return True, True, "ok"
    if max_share is not None and share > max_share:
        return False, True, "above_max_share"
    if min_share is not None and share < min_share:
        return True, False, "below_min_share"
    return True, True, "ok"


_BOTH = frozenset({Side.BUY, Side.SELL})
_ASKS_ONLY = frozenset({Side.SELL})
_BIDS_ONLY = frozenset({Side.BUY})


@dataclass(frozen=True, slots=True, init=False)
class Budget:
    """How much one side may still commit: ``None`` means unlimited."""

    base: Decimal | None = None
    quote: Decimal | None = None

    def __init__(self, base: Decimal | None = None, quote: Decimal | None = None) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "quote", quote)


def side_budget(side: Side, params: QuotingParams, inv: Inventory) -> Budget:
    """What the orders of ``side`` may commit in total.

    Bids spend quote (when the account holds balances) and raise base, so ``max_base`` bounds
    their summed size; asks spend base, and ``min_base`` keeps a floor under what they may sell.
    """
    zero = ZERO  # a constant: Decimal(0) would be constructed on every decision
    if side is _BUY:
        quote = max(inv.quote, zero) if params.balances_known else None
        room = None if params.max_base is None else max(params.max_base - inv.base, zero)
        return Budget(base=room, quote=quote)
    base = max(inv.base, zero) if params.balances_known else None
    if params.min_base is not None:
        above_floor = max(inv.base - params.min_base, zero)
        base = above_floor if base is None else min(base, above_floor)
    return Budget(base=base)
