"""Plain reference implementations of the core's hot paths, as they were before the fast paths
of issue 15 (kasmm 20a32b3), for the differential tests in ``test_core_fast_paths.py``: the
book handling, reconciliation and the whole quoting pipeline with every stage it calls.
Issue 19's stages (per-side spreads, level size growth, fees, the join, held orders) are added
to the pipeline as their readable Decimal definitions in ``kasmm.core`` chain them.

Each is the straightforward version: it walks every level, re-derives every Decimal, calls
``keepable`` per pair. The production code must give exactly what these give (the same values
and the same Decimal representations), for every input the tests generate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from kasmm.core.fees import usable_fee
from kasmm.core.held import held_budget, held_levels
from kasmm.core.join import join_target
from kasmm.core.level_sizes import level_sizes
from kasmm.core.params import QuotingParams, RefreshParams, VolatilityParams
from kasmm.core.quoting import MarketState, QuoteDecision
from kasmm.core.reconcile import SIZE_BAND
from kasmm.core.risk import Limit, RiskInputs, RiskLimits, RiskState, Trip, breaches
from kasmm.core.rules import BPS, MAX_STEPS, SNAP_TICKS
from kasmm.core.side_ladder import raw_side
from kasmm.core.skew import Budget, Excess, Inventory
from kasmm.core.types import (
    Balances,
    Book,
    BookLevel,
    CancelOrder,
    MarketRules,
    OpenOrder,
    OrderAction,
    OrderIntent,
    PlaceOrder,
    Quotes,
    Side,
)

# --- the bot's book handling -------------------------------------------------------------


def well_formed(book: Book) -> bool:
    """Every level has a positive finite price and size (an empty side is fine)."""
    return all(
        lv.price.is_finite() and lv.size.is_finite() and lv.price > 0 and lv.size > 0
        for lv in (*book.bids, *book.asks)
    )


def exclude_own(book: Book, open_orders: Iterable[OpenOrder]) -> Book:
    """The book without our own resting orders (every level walked)."""
    own: dict[tuple[Side, Decimal], Decimal] = {}
    for o in open_orders:
        key = (o.side, o.price)
        own[key] = own.get(key, Decimal(0)) + o.remaining

    def strip(side: Side, levels: tuple[BookLevel, ...]) -> tuple[BookLevel, ...]:
        out = []
        for lvl in levels:
            size = lvl.size - own.get((side, lvl.price), Decimal(0))
            if size > 0:
                out.append(lvl if size == lvl.size else BookLevel(lvl.price, size))
        return tuple(out)

    return Book(bids=strip(Side.BUY, book.bids), asks=strip(Side.SELL, book.asks), ts=book.ts)


# --- reconciliation ------------------------------------------------------------------------


def reconcile(
    desired: Quotes,
    open_orders: Sequence[OpenOrder],
    now: float,
    last_action_at: float | None,
    params: RefreshParams,
) -> tuple[OrderAction, ...]:
    """Actions that take ``open_orders`` to ``desired`` (empty when nothing needs to change).

    Orders with nothing remaining are not resting and are ignored. Cancels come first, in the
    order of ``open_orders``; places follow level by level, bid before ask.
    """
    resting = [o for o in open_orders if o.remaining > 0]
    wanted = {side: _best_first(side, desired.side(side))[: params.levels] for side in Side}
    kept: set[int] = set()  # indices into resting
    places: list[OrderIntent] = []
    for side in Side:
        orders = [i for i, o in enumerate(resting) if o.side is side]
        matched = _match(wanted[side], [resting[i] for i in orders], now, params, wanted)
        kept.update(orders[j] for j in matched.values())
        places.extend(intent for k, intent in enumerate(wanted[side]) if k not in matched)
    if last_action_at is not None and now - last_action_at < params.min_requote_interval_s:
        return _throttled(resting, kept, wanted, params.levels)
    cancels = [
        CancelOrder(o.client_id, _cancel_reason(o, now, params, wanted))
        for i, o in enumerate(resting)
        if i not in kept
    ]
    places.sort(key=lambda intent: (intent.level, intent.side is Side.SELL))
    return (*cancels, *(PlaceOrder(intent) for intent in places))


def _throttled(
    resting: Sequence[OpenOrder],
    kept: set[int],
    wanted: dict[Side, tuple[OrderIntent, ...]],
    levels: int,
) -> tuple[OrderAction, ...]:
    """Cancels that cannot wait for the requote interval.

    Safety cancels (see :func:`safety_reason`), plus ``surplus`` cancels when a side still
    holds more than ``levels`` orders (e.g. right after a switch to a mode with fewer levels):
    orders the full reconciliation would not keep, farthest from the touch first.
    """
    cancels: list[CancelOrder] = []
    survivors: dict[Side, list[int]] = {side: [] for side in Side}
    for i, o in enumerate(resting):
        reason = safety_reason(o, wanted[Side.BUY], wanted[Side.SELL])
        if reason:
            cancels.append(CancelOrder(o.client_id, reason))
        else:
            survivors[o.side].append(i)
    for side, idx in survivors.items():
        extra = len(idx) - levels
        if extra <= 0:
            continue
        # Sorting on price alone: bids ascending and asks descending put the farthest first.
        spare = sorted((i for i in idx if i not in kept), key=lambda i: resting[i].price)
        if side is Side.SELL:
            spare.reverse()
        cancels.extend(CancelOrder(resting[i].client_id, "surplus") for i in spare[:extra])
    return tuple(cancels)


def safety_reason(
    order: OpenOrder, bids: Sequence[OrderIntent], asks: Sequence[OrderIntent]
) -> str | None:
    """Why ``order`` must go even while requoting is throttled, or ``None``.

    ``side_off``: its side has no desired quotes at all (inventory caps, a halt). ``crossing``:
    it would cross the desired quotes of the other side.
    """
    if not (bids if order.side is Side.BUY else asks):
        return "side_off"
    if _crosses(order, bids, asks):
        return "crossing"
    return None


def keepable(
    order: OpenOrder,
    intent: OrderIntent,
    now: float,
    params: RefreshParams,
    tolerance: Decimal | None = None,
) -> bool:
    """True when ``order`` may stand in for ``intent`` (price, age and size rules above).

    ``tolerance`` is ``params.tolerance_bps`` as a Decimal, when the caller already has it.
    """
    if order.side is not intent.side or now - order.created_at >= params.max_order_age_s:
        return False
    if tolerance is None:
        tolerance = to_decimal(params.tolerance_bps)
    if abs(order.price - intent.price) * BPS > tolerance * intent.price:
        return False
    low, high = SIZE_BAND
    return low * intent.size <= order.remaining <= high * intent.size


def _best_first(side: Side, intents: Sequence[OrderIntent]) -> tuple[OrderIntent, ...]:
    return tuple(sorted(intents, key=lambda x: -x.price if side is Side.BUY else x.price))


def _crosses(order: OpenOrder, bids: Sequence[OrderIntent], asks: Sequence[OrderIntent]) -> bool:
    if order.side is Side.BUY:
        return bool(asks) and order.price >= min(a.price for a in asks)
    return bool(bids) and order.price <= max(b.price for b in bids)


def _match(
    intents: Sequence[OrderIntent],
    orders: Sequence[OpenOrder],
    now: float,
    params: RefreshParams,
    wanted: dict[Side, tuple[OrderIntent, ...]],
) -> dict[int, int]:
    """Maximum matching intent index -> order index (Kuhn's augmenting paths; tiny graphs)."""
    bids, asks = wanted[Side.BUY], wanted[Side.SELL]
    tolerance = to_decimal(params.tolerance_bps)
    usable = [j for j, o in enumerate(orders) if not _crosses(o, bids, asks)]

    def candidates_for(intent: OrderIntent) -> list[int]:
        ok = [j for j in usable if keepable(orders[j], intent, now, params, tolerance)]
        return sorted(ok, key=lambda j: (abs(orders[j].price - intent.price), orders[j].client_id))

    candidates = [candidates_for(intent) for intent in intents]
    owner: dict[int, int] = {}  # order index -> intent index

    def augment(i: int, seen: set[int]) -> bool:
        for j in candidates[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(intents)):
        augment(i, set())
    return {i: j for j, i in owner.items()}


def _cancel_reason(
    order: OpenOrder, now: float, params: RefreshParams, wanted: dict[Side, tuple[OrderIntent, ...]]
) -> str:
    safety = safety_reason(order, wanted[Side.BUY], wanted[Side.SELL])
    if safety:
        return safety
    if now - order.created_at >= params.max_order_age_s:
        return "expired"
    return "requote"


# --- quoting -------------------------------------------------------------------------------


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
    return x is not None and x.is_finite() and x > 0


def floor_to(x: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` <= ``x`` (``step`` > 0, not necessarily a power of 10)."""
    return (x / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_to(x: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of ``step`` >= ``x``."""
    return (x / step).to_integral_value(rounding=ROUND_CEILING) * step


#: Prices and sizes beyond this many ticks or lots come from a runaway model or feed; bounding
#: them keeps every grid value exactly representable in Decimal's default 28 digits.


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


def market_mid(book: Book, *, allow_locked: bool = False) -> tuple[Decimal | None, str]:
    """The book's mid, or ``None`` and why not (``bad_book``, ``no_mid``, ``crossed_book``).

    ``allow_locked`` accepts best bid == best ask: the as2008 model publishes its mid as a
    zero-width book, which is not a broken market there.
    """
    bid, ask = book.best_bid, book.best_ask
    if bid is None or ask is None:
        return None, "no_mid"
    # Decimal NaN raises on ordering comparisons, so finiteness is checked before is_crossed.
    if not (is_finite_positive(bid) and is_finite_positive(ask)):
        return None, "bad_book"
    if book.is_crossed and not (allow_locked and bid == ask):
        return None, "crossed_book"
    return book.mid, "ok"


def fixed_spread_bps(
    mode_bps: float, sigma_bps: float | None, vol: VolatilityParams | None
) -> float:
    """Spread of the fixed-spread strategy, volatility-adaptive when ``vol`` is set.

    ``clamp(mode_bps + multiplier * sigma_bps * sqrt(horizon_s), mode_bps, cap_bps)``; the mode's
    spread is the floor and wins over a lower cap. Without an estimate yet, the floor.
    """
    if vol is None or sigma_bps is None:
        return mode_bps
    widened = mode_bps + vol.multiplier * sigma_bps * math.sqrt(vol.horizon_s)
    return max(mode_bps, min(widened, vol.cap_bps))


def as_reservation(mid: float, q: float, gamma: float, sigma: float, tau: float) -> float:
    """Avellaneda–Stoikov reservation price ``r = s - q * gamma * sigma^2 * (T - t)``."""
    return mid - q * gamma * sigma * sigma * tau


def as_spread(gamma: float, sigma: float, tau: float, kappa: float) -> float:
    """Avellaneda–Stoikov total spread ``gamma*sigma^2*(T-t) + (2/gamma)*ln(1 + gamma/kappa)``.

    In price units, centred on the reservation price.
    """
    return gamma * sigma * sigma * tau + (2.0 / gamma) * math.log1p(gamma / kappa)


def size_ladder(
    prices: Sequence[Decimal | None],
    size_base: Decimal | Sequence[Decimal],
    budget: Budget,
    rules: MarketRules,
    *,
    check_notional: bool = True,
) -> tuple[Decimal | None, ...]:
    """Sizes for one side's rounded prices (best first); ``None`` drops a level.

    Each level gets ``size_base``, shrunk so the cumulative size stays within ``budget.base``
    and the cumulative notional within ``budget.quote``, then rounded down to the lot. Levels
    below the lot, ``min_size`` or (when ``check_notional``) ``min_notional`` are dropped and
    leave their budget to deeper levels.
    """
    base_left, quote_left = budget.base, budget.quote
    out: list[Decimal | None] = []
    for i, price in enumerate(prices):
        if price is None:
            out.append(None)
            continue
        size = size_base if isinstance(size_base, Decimal) else size_base[i]
        if base_left is not None:
            size = min(size, base_left)
        if quote_left is not None:
            size = min(size, quote_left / price)
        size = round_size(size, rules.lot)
        if not size_ok(price, size, rules, check_notional=check_notional):
            out.append(None)
            continue
        out.append(size)
        if base_left is not None:
            base_left -= size
        if quote_left is not None:
            quote_left -= price * size
    return tuple(out)


def on_grid(x: Decimal, step: Decimal) -> Decimal:
    """``x`` (a multiple of ``step``) spelled as ``n * step``: with the step's exponent.

    The one change from 20a32b3 here: since quoting decides on the integer grid
    (:mod:`kasmm.core.grid`), an order's price is always ``ticks * tick`` and its size
    ``lots * lot`` (``1500.00`` for a lot of 0.01, where the Decimal stages could give ``1500``
    or ``1.5E+3`` depending on how the inputs were spelled). The same values.
    """
    return Decimal(int(x / step)) * step


def compute_quotes(params: QuotingParams, state: MarketState) -> QuoteDecision:
    """Desired quotes for ``state`` under ``params`` (never raises on market data)."""
    problem = _check_inputs(params, state)
    if problem:
        return _empty(problem)
    if params.add_fees and not usable_fee(state.rules.maker_fee):
        return _empty("bad_rules")
    mid, why = market_mid(state.book, allow_locked=params.allow_locked_book)
    if mid is None:
        return _empty(why)
    bid, ask = state.book.best_bid, state.book.best_ask
    assert bid is not None and ask is not None  # market_mid checked both
    rules = state.rules
    if ask / rules.tick >= MAX_STEPS:
        return _empty("bad_book")
    inv = inventory_at(params, state.balances, rules, mid)
    size_base = params.size if params.size_unit == "base" else params.size / mid
    fmid = float(mid)
    sigma_est = state.sigma if state.sigma is not None else params.sigma
    sig_bps = None if sigma_est is None else sigma_est / fmid * 1e4

    if params.strategy == "fixed_spread":
        spread = fixed_spread_bps(params.spread_bps, sig_bps, params.volatility)
        dev = deviation(inv.share, inv.target_share, params.min_share, params.max_share)
        skew = skew_bps(dev, params.skew_strength, spread)
        reference = fmid
        centre = mid * (1 + to_decimal(skew) / BPS)
        half = mid * to_decimal(spread) * to_decimal(params.bid_fraction) / BPS
        half_ask = mid * to_decimal(spread) * to_decimal(1.0 - params.bid_fraction) / BPS
    else:
        gamma, kappa = params.gamma, params.kappa
        assert gamma is not None and kappa is not None  # _check_inputs
        sigma = params.sigma if params.sigma is not None else state.sigma
        if sigma is None:
            return _empty("no_sigma", mid=mid, inv=inv)
        q = inventory_q(inv.base, inv.target_base, size_base)
        reference = as_reservation(fmid, q, gamma, sigma, state.time_left_s)
        delta = as_spread(gamma, sigma, state.time_left_s, kappa)
        floor_bps = params.min_spread_bps
        if params.volatility is not None:
            floor_bps = fixed_spread_bps(floor_bps, sig_bps, params.volatility)
        delta = max(delta, floor_bps * fmid / 1e4)
        if not (math.isfinite(reference) and math.isfinite(delta)) or reference <= 0:
            return _empty("bad_reference", mid=mid, inv=inv)
        spread = delta / fmid * 1e4
        skew = (reference - fmid) / fmid * 1e4
        centre = to_decimal(reference)
        half = half_ask = to_decimal(delta / 2)

    step = mid * to_decimal(params.level_step_bps) / BPS
    sides, reason = quoted_sides(inv.share, params.min_share, params.max_share)
    sizes_base: Decimal | tuple[Decimal, ...] = size_base
    if params.level_size_step != 0:
        grown = level_sizes(
            params.size, params.level_size_step, params.level_size_step_pct, params.levels
        )
        sizes_base = grown if params.size_unit == "base" else tuple(s / mid for s in grown)
    fee = rules.maker_fee if params.add_fees else None
    min_bps = params.join_min_spread_bps
    intents: dict[Side, tuple[OrderIntent, ...]] = {}
    unmet: list[Side] = []
    for side in (Side.BUY, Side.SELL):
        target = None
        if params.join_depth is not None:
            levels = state.book.bids if side is Side.BUY else state.book.asks
            target_ticks = join_target(side, levels, params.join_depth, rules.tick)
            if target_ticks is None:
                unmet.append(side)
            else:
                target = target_ticks * rules.tick
        if side not in sides:
            intents[side] = ()
            continue
        raw = raw_side(
            side,
            centre,
            half if side is Side.BUY else half_ask,
            step,
            max(held_levels(side, params.levels, state.held), 0),
            mid=mid,
            tick=rules.tick,
            fee=fee,
            target=target,
            min_spread_bps=None if min_bps is None else to_decimal(min_bps),
        )
        prices = round_prices(side, raw, rules)
        if params.post_only_guard or params.join_depth is not None:
            prices = guard_prices(side, prices, rules.tick, bid, ask)
        budget = side_budget(side, params, inv)
        if state.held is not None:
            budget = held_budget(side, budget, state.held)
        sizes = size_ladder(
            prices,
            sizes_base,
            budget,
            rules,
            check_notional=params.enforce_min_notional,
        )
        intents[side] = tuple(
            OrderIntent(side, on_grid(p, rules.tick), on_grid(s, rules.lot), level=i)
            for i, (p, s) in enumerate(zip(prices, sizes, strict=True))
            if p is not None and s is not None
        )
    quotes = Quotes(bids=intents[Side.BUY], asks=intents[Side.SELL])
    if quotes.bids and quotes.asks and quotes.bids[0].price >= quotes.asks[0].price:
        # Cannot happen with a positive spread (rounding and the guard only widen); kept as a
        # last line of defence against ever sending a self-crossing pair.
        return _empty("self_cross", mid=mid, inv=inv)
    one_sided = _one_sided(quotes)
    if not quotes.all:
        reason = "no_size"
    elif one_sided is not None and reason == "ok":
        reason = "one_side_no_size"
    return QuoteDecision(
        quotes,
        mid,
        reference,
        spread,
        skew,
        inv.share,
        one_sided,
        reason,
        inv.excess,
        join_unmet=tuple(unmet),
    )


def _one_sided(quotes: Quotes) -> Side | None:
    if quotes.bids and not quotes.asks:
        return Side.BUY
    if quotes.asks and not quotes.bids:
        return Side.SELL
    return None


def _empty(
    reason: str, *, mid: Decimal | None = None, inv: Inventory | None = None
) -> QuoteDecision:
    # The inventory is still reported: the risk rules measure it even when nothing is quoted.
    share, excess = (None, None) if inv is None else (inv.share, inv.excess)
    return QuoteDecision(Quotes(), mid, None, None, 0.0, share, None, reason, excess)


def _finite(x: float | None, *, positive: bool = False) -> bool:
    return x is not None and math.isfinite(x) and (x > 0 if positive else x >= 0)


def _dec_ok(x: Decimal | None, *, positive: bool = False) -> bool:
    return x is not None and x.is_finite() and (x > 0 if positive else x >= 0)


def _check_inputs(params: QuotingParams, state: MarketState) -> str | None:
    """Name of the first unusable input, or ``None``: garbage in must not become orders out."""
    rules = state.rules
    if not (_dec_ok(rules.tick, positive=True) and _dec_ok(rules.lot, positive=True)):
        return "bad_rules"
    if not (_dec_ok(rules.min_notional) and _dec_ok(rules.min_size)):
        return "bad_rules"
    totals = (state.balances.total(rules.base), state.balances.total(rules.quote))
    if not all(t.is_finite() for t in totals):
        return "bad_balances"
    if not (math.isfinite(state.now) and _finite(state.time_left_s)):
        return "bad_input"
    if state.sigma is not None and not _finite(state.sigma):
        return "bad_input"
    if not (_dec_ok(params.size, positive=True) and params.levels >= 1):
        return "bad_params"
    if not (_finite(params.level_step_bps) and _finite(params.skew_strength)):
        return "bad_params"
    step = params.level_size_step
    if not (step.is_finite() and step >= 0):
        return "bad_params"
    if params.join_depth is not None and not _dec_ok(params.join_depth):
        return "bad_params"
    if params.join_min_spread_bps is not None and not _finite(params.join_min_spread_bps):
        return "bad_params"
    vol = params.volatility
    if vol is not None and not all(
        _finite(x) for x in (vol.halflife_s, vol.horizon_s, vol.multiplier, vol.cap_bps)
    ):
        return "bad_params"
    if params.strategy == "fixed_spread":
        if not (_finite(params.bid_fraction) and params.bid_fraction <= 1):
            return "bad_params"
        return None if _finite(params.spread_bps, positive=True) else "bad_params"
    if not (_finite(params.gamma, positive=True) and _finite(params.kappa, positive=True)):
        return "bad_params"
    if params.sigma is not None and not _finite(params.sigma):
        return "bad_params"
    return None if _finite(params.min_spread_bps) else "bad_params"


# --- the risk gate -------------------------------------------------------------------------


def _pause_s(rules: RiskLimits, name: str) -> float:
    rule: Limit | None = getattr(rules, name)
    return float(rule.pause_s) if rule is not None and rule.pause_s is not None else 0.0


def evaluate(
    rules: RiskLimits, state: RiskState, inputs: RiskInputs
) -> tuple[RiskState, tuple[Trip, ...]]:
    """Apply every rule to ``inputs``; return the new state and the trips that changed it.

    A rule already in force (an active pause, a held reduce-only, a halt) does not trip again
    on every event: only transitions are reported, so each trip is logged and stored once.
    """
    now = inputs.now
    if state.halt is not None:
        return state, ()
    found = breaches(rules, inputs)
    new_trips: list[Trip] = []
    halt = next((t for t in found if t.action == "halt"), None)
    if halt is not None:
        return replace(state, halt=halt, reduce_only=frozenset()), (halt,)
    paused_until, pause_trip = state.paused_until, state.pause_trip
    if now >= paused_until:
        pauses = [t for t in found if t.action == "pause"]
        if pauses:
            longest = max(pauses, key=lambda t: _pause_s(rules, t.rule))
            paused_until = now + _pause_s(rules, longest.rule)
            pause_trip = longest
            new_trips.append(longest)
    reducing = frozenset(t.rule for t in found if t.action == "reduce_only")
    new_trips.extend(
        t for t in found if t.action == "reduce_only" and t.rule not in state.reduce_only
    )
    return (
        RiskState(
            halt=None, paused_until=paused_until, pause_trip=pause_trip, reduce_only=reducing
        ),
        tuple(new_trips),
    )
