"""Inventory rebalance by order: the one bounded order that brings a share outside its band back.

Skew only leans the quotes; when the base share of portfolio value (at the pricing mid, as
:mod:`kasmm.core.skew` measures it) is outside ``[min_share, max_share]``, a profile with
``inventory.rebalance`` also sends one order toward the target (Hummingbot has no equivalent;
its inventory skew is the whole answer). This module decides that order, and nothing else: no
clock (``now`` and the last order's time are passed in), no I/O, Decimal money.

* **Size**: what brings the inventory back to the target, at most ``max_size``, floored to the
  lot, within the free balance, dropped below the market's minimums. A target from a share moves
  with the portfolio value, and paying through the mid (price and fee) lowers that value: the
  size solves for the target share *after* the trade at the most favourable price the order can
  get (a sell's proceeds raise the value, a buy's cost lowers it), so no fill of the order can
  carry the share past the target.
* **Post-only price**: a maker order one tick inside the others' touch when the spread allows (a
  sell at best ask - 1 tick, never at or below the best bid, own bids included), else at the
  touch.
* **IOC price**: ``max_slippage_bps`` through the touch, rounded toward less slippage (a sell at
  best bid * (1 - slip) rounded up, a buy at best ask * (1 + slip) rounded down), and a tick short
  of the profile's own best order on the side it takes (an IOC reaching it would trade with
  itself): it can never execute worse than the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext

from kasmm.core.params import QuotingParams, RebalanceOrder, RebalanceParams
from kasmm.core.rules import BPS, ceil_to, floor_to, round_size, size_ok, to_decimal
from kasmm.core.skew import Inventory
from kasmm.core.types import ZERO, MarketRules, Side

#: Digits for the sizing division (products of prices, sizes and values exceed the default 28).
_PRECISION = 60


@dataclass(frozen=True, slots=True)
class Touch:
    """Best bid and ask (``None``: that side is empty)."""

    bid: Decimal | None = None
    ask: Decimal | None = None


NO_TOUCH = Touch()


@dataclass(frozen=True, slots=True)
class Rebalance:
    """One rebalance order to send."""

    side: Side
    price: Decimal
    size: Decimal
    order: RebalanceOrder
    #: the base share of portfolio value that triggered it
    share: float
    #: ``above_max_share`` (a sell) or ``below_min_share`` (a buy)
    reason: str


@dataclass(frozen=True, slots=True)
class RebalanceDecision:
    """The order to send (``None``: none now) and why."""

    order: Rebalance | None
    #: the order's trigger, or why there is none: ``in_band``, ``no_share``, ``no_target``,
    #: ``at_target``, ``interval``, ``no_touch``, ``would_cross``, ``own_order_in_the_way``,
    #: ``no_free_balance``, ``below_minimum``
    reason: str


@dataclass(frozen=True, slots=True)
class Free:
    """What the account can spend now: totals less what its resting orders lock."""

    base: Decimal
    quote: Decimal


def band_breach(share: float | None, quoting: QuotingParams) -> Side | None:
    """The side a rebalance order takes for ``share``: a sell above ``max_share``, a buy below
    ``min_share``, ``None`` inside the band (or with no share to measure)."""
    if share is None:
        return None
    if quoting.max_share is not None and share > quoting.max_share:
        return Side.SELL
    if quoting.min_share is not None and share < quoting.min_share:
        return Side.BUY
    return None


def rebalance_order(
    params: RebalanceParams,
    quoting: QuotingParams,
    inv: Inventory,
    mid: Decimal,
    touch: Touch,
    own: Touch,
    rules: MarketRules,
    free: Free,
    now: float,
    last_at: float | None,
) -> RebalanceDecision:
    """The rebalance order to send now, or ``None`` and why.

    :param inv: the inventory at ``mid`` (:func:`kasmm.core.skew.inventory_at`; totals).
    :param mid: the pricing mid the share was measured at.
    :param touch: the other traders' best bid and ask (the own orders excluded).
    :param own: the profile's own best resting bid and ask.
    :param free: the balance not locked by resting orders.
    :param now: the interval clock; ``last_at`` the last rebalance order's time on it.
    """
    side = band_breach(inv.share, quoting)
    if side is None:
        return RebalanceDecision(None, "no_share" if inv.share is None else "in_band")
    share = inv.share
    assert share is not None
    reason = "above_max_share" if side is Side.SELL else "below_min_share"
    target = inv.target_base
    if target is None:
        return RebalanceDecision(None, "no_target")
    excess = inv.base - target
    if (excess <= ZERO) if side is Side.SELL else (excess >= ZERO):
        return RebalanceDecision(None, "at_target")  # a hard base cap holds the target here
    if last_at is not None and now - last_at < params.min_interval_s:
        return RebalanceDecision(None, "interval")
    priced = _price(params, side, touch, own, rules.tick)
    if isinstance(priced, str):
        return RebalanceDecision(None, priced)
    price, best = priced
    fee = rules.maker_fee if params.order == "post_only" else rules.taker_fee
    size = min(params.max_size, _to_target(quoting, inv, mid, side, abs(excess), best, fee))
    if side is Side.SELL:
        size = min(size, free.base)
    else:
        cost = price * (1 + max(fee, ZERO))
        size = min(size, free.quote / cost) if cost > ZERO else ZERO
    size = round_size(size, rules.lot)
    if size <= ZERO:
        return RebalanceDecision(None, "no_free_balance")
    if not size_ok(price, size, rules, check_notional=True):
        return RebalanceDecision(None, "below_minimum")
    return RebalanceDecision(Rebalance(side, price, size, params.order, share, reason), reason)


def _price(
    params: RebalanceParams, side: Side, touch: Touch, own: Touch, tick: Decimal
) -> tuple[Decimal, Decimal] | str:
    """The order's limit, and the best price it may execute at (what the size is solved at);
    or why there is no price."""
    sell = side is Side.SELL
    if params.order == "post_only":
        if sell:
            if touch.ask is None:
                return "no_touch"
            at_touch = ceil_to(touch.ask, tick)
            price = at_touch - tick
            floor = _highest(touch.bid, own.bid)
            if floor is not None and price <= floor:
                price = at_touch
                if price <= floor:
                    return "would_cross"
        else:
            if touch.bid is None:
                return "no_touch"
            at_touch = floor_to(touch.bid, tick)
            price = at_touch + tick
            ceiling = _lowest(touch.ask, own.ask)
            if ceiling is not None and price >= ceiling:
                price = at_touch
                if price >= ceiling:
                    return "would_cross"
        return (price, price) if price > ZERO else "no_touch"
    through = to_decimal(params.max_slippage_bps) / BPS
    if sell:
        bid = touch.bid
        if bid is None:
            return "no_touch"
        price = ceil_to(bid * (1 - through), tick)
        if own.bid is not None:
            price = max(price, floor_to(own.bid, tick) + tick)
            if price > bid:
                return "own_order_in_the_way"
        best = bid  # a sell takes bids from the best down
    else:
        ask = touch.ask
        if ask is None:
            return "no_touch"
        price = floor_to(ask * (1 + through), tick)
        if own.ask is not None:
            price = min(price, ceil_to(own.ask, tick) - tick)
            if price < ask:
                return "own_order_in_the_way"
        best = price  # a buy's size is solved at its limit: paying less only undershoots
    return (price, best) if price > ZERO else "no_touch"


def _to_target(
    quoting: QuotingParams,
    inv: Inventory,
    mid: Decimal,
    side: Side,
    excess: Decimal,
    price: Decimal,
    fee: Decimal,
) -> Decimal:
    """The base that brings the inventory back to its target when traded at ``price`` with
    ``fee`` (a fraction of the notional, in quote).

    A target in base (``target_base``, or a hard base cap holding the target) is reached by
    ``excess`` itself. A target share ``t`` of the value ``V`` moves with the value: trading
    ``d`` base (signed) at the effective price ``p`` leaves ``V - d (p - mid)``, so the share is
    back at ``t`` for ``|d| = |excess| * V / (V + target_base * (p - mid))``, where
    ``target_base = t V / mid`` is the target at the current value. Rounded down.
    """
    target = inv.target_base
    assert target is not None
    if quoting.target_base is not None or target in (quoting.min_base, quoting.max_base):
        return excess
    effective = price * (1 + fee) if side is Side.BUY else price * (1 - fee)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        value = inv.base * mid + inv.quote
        denominator = value + target * (effective - mid)
        if value <= ZERO or denominator <= ZERO:
            return excess
        ctx.rounding = ROUND_DOWN
        return excess * value / denominator


def _highest(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else max(a, b)


def _lowest(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else min(a, b)
