"""Inventory: where it stands against target, how far to skew, which sides to quote.

All amounts are *totals* (free plus locked): orders the bot has resting still belong to it and
reconciliation may cancel them, so locking must not look like a change of inventory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from kasmm.core.params import QuotingParams
from kasmm.core.types import Balances, MarketRules, Side


@dataclass(frozen=True, slots=True)
class Excess:
    """Inventory beyond its target at one mid: positive means long (too much base).

    ``base`` is exact and always known when a target is; ``share`` is the same excess as a share
    of portfolio value, the unit of ``max_inventory_deviation``, and ``None`` when the portfolio
    is worth nothing (or less) at this mid.
    """

    base: Decimal
    share: float | None

    @property
    def sign(self) -> int:
        """+1 long, -1 short, 0 on target (from the exact base amount)."""
        return (self.base > 0) - (self.base < 0)


@dataclass(frozen=True, slots=True)
class Inventory:
    """Inventory at one mid: balances, base share of portfolio value and the target."""

    base: Decimal
    quote: Decimal
    share: float | None  # base value / (base value + quote); None when the portfolio is <= 0
    target_base: Decimal | None  # None when the target is a share of an empty portfolio
    target_share: float | None
    excess: Excess | None = None  # None when there is no target to measure against


def inventory_at(
    params: QuotingParams, balances: Balances, rules: MarketRules, mid: Decimal
) -> Inventory:
    """Snapshot inventory at ``mid`` and express the target both in base and as a share.

    This is the one place inventory is measured against its target: quoting, the
    ``max_inventory_deviation`` rule and the reduce-only gate all read the result.
    """
    base = balances.total(rules.base)
    quote = balances.total(rules.quote)
    value = base * mid + quote
    share = float(base * mid / value) if value > 0 else None
    target_base = effective_target_base(params, value, mid)
    if target_base is None:
        return Inventory(base, quote, share, None, None)
    target_share: float | None = None
    excess_share: float | None = None
    if value > 0:
        target_share = float(target_base * mid / value)
        configured = params.target_share if params.target_base is None else None
        if configured is not None and target_base == _share_to_base(configured, value, mid):
            target_share = configured  # not clamped: report it exactly as configured
        excess_share = float((base - target_base) * mid / value)
    excess = Excess(base - target_base, excess_share)
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
    if params.target_base is not None:
        target = params.target_base
    elif params.target_share is not None and value > 0:
        target = _share_to_base(params.target_share, value, mid)
    else:
        return None
    if value > 0:
        if params.max_share is not None:
            target = min(target, _share_to_base(params.max_share, value, mid))
        if params.min_share is not None:
            target = max(target, _share_to_base(params.min_share, value, mid))
    if params.max_base is not None:
        target = min(target, params.max_base)
    if params.min_base is not None:
        target = max(target, params.min_base)
    return target


def _share_to_base(share: float, value: Decimal, mid: Decimal) -> Decimal:
    return Decimal(repr(share)) * value / mid


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
    both = frozenset({Side.BUY, Side.SELL})
    if share is None:
        return both, "ok"
    if max_share is not None and share > max_share:
        return frozenset({Side.SELL}), "above_max_share"
    if min_share is not None and share < min_share:
        return frozenset({Side.BUY}), "below_min_share"
    return both, "ok"


@dataclass(frozen=True, slots=True)
class Budget:
    """How much one side may still commit: ``None`` means unlimited."""

    base: Decimal | None = None
    quote: Decimal | None = None


def side_budget(side: Side, params: QuotingParams, inv: Inventory) -> Budget:
    """What the orders of ``side`` may commit in total.

    Bids spend quote (when the account holds balances) and raise base, so ``max_base`` bounds
    their summed size; asks spend base, and ``min_base`` keeps a floor under what they may sell.
    """
    zero = Decimal(0)
    if side is Side.BUY:
        quote = max(inv.quote, zero) if params.balances_known else None
        room = None if params.max_base is None else max(params.max_base - inv.base, zero)
        return Budget(base=room, quote=quote)
    limits = []
    if params.balances_known:
        limits.append(max(inv.base, zero))
    if params.min_base is not None:
        limits.append(max(inv.base - params.min_base, zero))
    return Budget(base=min(limits) if limits else None)
