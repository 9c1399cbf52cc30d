"""The quoting pipeline: from a book, balances and parameters to the orders we want resting.

``compute_quotes`` chains small pure stages, each usable and tested on its own:

mid → reference price → spread → inventory skew → levels → tick rounding → post-only guard →
sides and sizes (share caps, balances, base caps, lot, minimums).

Prices are rounded before sizing so that balance checks use the prices that will be sent.
The per-side stages run as one pass per level (:mod:`kasmm.core.levels`), and what depends on
the parameters alone is derived once per parameter object (:mod:`kasmm.core.prepared`): the
same Decimal operations as the stages, fewer of them per decision.
Models work in floats; every price and size handed out is a Decimal on the market's grid.
Bad inputs (NaN, infinities, negative values, an empty or crossed book) produce an empty
decision with a reason instead of an exception: the caller simply does not quote this round.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from kasmm.core.fees import usable_fee
from kasmm.core.grid import grid_of, usable_grid
from kasmm.core.held import NOTHING_HELD, Held, held_budget, held_levels
from kasmm.core.join import join_target
from kasmm.core.level_sizes import lots_of
from kasmm.core.levels import FLOAT_TICKS_LIMIT, side_intents
from kasmm.core.params import Horizon, QuotingParams, RollingHorizon, VolatilityParams
from kasmm.core.prepared import Sizing, finite, isfinite, prepared, sizing
from kasmm.core.reference import OWN_BOOK
from kasmm.core.rules import (
    BPS,
    MAX_STEPS,
    is_finite_positive,
    round_size,
    size_ok,
    to_decimal,
)
from kasmm.core.side_ladder import beyond, raw_side, rounded_side, shape
from kasmm.core.side_ladder import ladder as ladder  # a stage of the pipeline, documented here
from kasmm.core.skew import (
    Budget,
    Excess,
    GroupSkew,
    Inventory,
    deviation,
    inventory_of,
    side_budget,
    side_caps,
    skew_bps,
)
from kasmm.core.types import (
    ZERO,
    Balances,
    Book,
    BookLevel,
    MarketRules,
    OpenOrder,
    OrderIntent,
    Quotes,
    Side,
)

# Final: mypyc keeps these in C statics; a module global (an imported name too) is a
# dictionary lookup on every use.
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_MAX_STEPS: Final = MAX_STEPS
_NOTHING_HELD: Final = NOTHING_HELD


@dataclass(frozen=True, slots=True, init=False)
class MarketState:
    """Everything about the market the pipeline reads; the caller assembles it."""

    now: float
    #: other traders' liquidity only (see exclude_own); the pipeline reads its top
    #: ``QUOTING_DEPTH`` levels per side
    book: Book
    rules: MarketRules
    balances: Balances  # totals are used (free + locked by our own orders)
    sigma: float | None  # estimated volatility, price units per sqrt(s), or None
    time_left_s: float  # T - t for Avellaneda–Stoikov (see time_left); ignored otherwise
    #: the price to centre quotes on instead of the own book's mid (:mod:`kasmm.core.reference`;
    #: ``None``: the own mid). The own book still bounds the quotes (the post-only guard).
    reference: Decimal | None = None
    #: which source priced ``reference`` (carried to the decision)
    price_source: str = OWN_BOOK
    #: a portfolio's position to skew toward instead of the profile's own (``None``: own)
    group: GroupSkew | None = None
    #: orders resting outside the quotes (hanging, rebalance): fewer levels, less budget
    held: Held | None = None

    def __init__(
        self,
        now: float,
        book: Book,
        rules: MarketRules,
        balances: Balances,
        sigma: float | None,
        time_left_s: float,
        reference: Decimal | None = None,
        price_source: str = OWN_BOOK,
        group: GroupSkew | None = None,
        held: Held | None = None,
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "now", now)
        object.__setattr__(self, "book", book)
        object.__setattr__(self, "rules", rules)
        object.__setattr__(self, "balances", balances)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "time_left_s", time_left_s)
        object.__setattr__(self, "reference", reference)
        object.__setattr__(self, "price_source", price_source)
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "held", held)


@dataclass(frozen=True, slots=True, init=False)
class QuoteDecision:
    """The pipeline's answer, with the intermediate numbers worth logging."""

    quotes: Quotes
    mid: Decimal | None  # the own book's mid
    reference: float | None  # the centre: the priced-off mid, or the AS reservation price
    spread_bps: float | None  # total level-0 spread before rounding, bps of mid
    skew_bps: float  # centre shift from mid, bps (AS: r - s)
    inventory_share: float | None
    one_sided: Side | None  # the only side quoted, if exactly one is
    reason: str  # "ok" or why quoting is reduced or off
    #: inventory beyond target: what max_inventory_deviation and the reduce-only gate read
    excess: Excess | None = None
    #: what priced the quotes: ``own_book`` or the reference's source (:mod:`.reference`)
    price_source: str = OWN_BOOK
    #: the reference price the quotes centre on (``None``: the own mid)
    reference_mid: Decimal | None = None
    #: the sides a join (``join_depth``) left where the model put them: the book passed in
    #: (at most ``JOIN_BOOK_DEPTH`` levels a side) held no more than the depth
    join_unmet: tuple[Side, ...] = ()

    def __init__(
        self,
        quotes: Quotes,
        mid: Decimal | None,
        reference: float | None,
        spread_bps: float | None,
        skew_bps: float,
        inventory_share: float | None,
        one_sided: Side | None,
        reason: str,
        excess: Excess | None = None,
        price_source: str = OWN_BOOK,
        reference_mid: Decimal | None = None,
        join_unmet: tuple[Side, ...] = (),
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "quotes", quotes)
        object.__setattr__(self, "mid", mid)
        object.__setattr__(self, "reference", reference)
        object.__setattr__(self, "spread_bps", spread_bps)
        object.__setattr__(self, "skew_bps", skew_bps)
        object.__setattr__(self, "inventory_share", inventory_share)
        object.__setattr__(self, "one_sided", one_sided)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "excess", excess)
        object.__setattr__(self, "price_source", price_source)
        object.__setattr__(self, "reference_mid", reference_mid)
        object.__setattr__(self, "join_unmet", join_unmet)


# --- stages -------------------------------------------------------------------------------


def market_mid(book: Book, *, allow_locked: bool = False) -> tuple[Decimal | None, str]:
    """The book's mid, or ``None`` and why not (``bad_book``, ``no_mid``, ``crossed_book``).

    ``allow_locked`` accepts best bid == best ask: the as2008 model publishes its mid as a
    zero-width book, which is not a broken market there.
    """
    return _touch_mid(book.best_bid, book.best_ask, allow_locked)


def _touch_mid(
    bid: Decimal | None, ask: Decimal | None, allow_locked: bool
) -> tuple[Decimal | None, str]:
    why = _touch_problem(bid, ask, allow_locked)
    if why or bid is None or ask is None:
        return None, why
    return (bid + ask) / 2, "ok"  # Book.mid


def _touch_problem(bid: Decimal | None, ask: Decimal | None, allow_locked: bool) -> str:
    """Why the touch has no usable mid (``""``: it has one)."""
    if bid is None or ask is None:
        return "no_mid"
    # Decimal NaN raises on ordering comparisons, so finiteness is checked before crossing.
    if not (is_finite_positive(bid) and is_finite_positive(ask)):
        return "bad_book"
    if bid >= ask and not (allow_locked and bid == ask):
        return "crossed_book"
    return ""


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
    size_base: Decimal,
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
    for price in prices:
        if price is None:
            out.append(None)
            continue
        size = size_base
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


#: Levels of each side of the book :func:`compute_quotes` reads: the touch only (best bid and
#: best ask, for the mid and the post-only guard). The bot strips its own orders this deep.
QUOTING_DEPTH: Final = 1


def exclude_own(
    book: Book,
    open_orders: Iterable[OpenOrder],
    *,
    depth: int | None = None,
    until: Decimal | None = None,
) -> Book:
    """The book without our own resting orders, so we never quote against ourselves.

    Our remaining size is taken off the level at the same price; levels left empty (or that
    the book showed smaller than our order, e.g. a stale snapshot) disappear.

    :param depth: keep at most this many levels per side (the first ones of the full result)
        and stop walking the book there; ``None`` keeps them all. Quoting reads
        ``QUOTING_DEPTH``.
    :param until: also stop a side at the first level where the size kept so far exceeds this:
        all a join (:func:`kasmm.core.join.join_target`) reads of a side is the levels up to
        that one, so it finds the same level in less of the book.
    """
    # The orders themselves, not dicts keyed by price: a Decimal's hash costs ~0.6 us (ten
    # times an equality test) and these prices are new objects on every decision.
    orders = tuple(open_orders)
    return book.with_levels(
        _strip(book.bids, orders, _BUY, depth, until),
        _strip(book.asks, orders, _SELL, depth, until),
    )


def _strip(
    levels: tuple[BookLevel, ...],
    orders: tuple[OpenOrder, ...],
    side: Side,
    depth: int | None,
    until: Decimal | None = None,
) -> tuple[BookLevel, ...]:
    out: list[BookLevel] = []
    kept = ZERO
    for lvl in levels:
        if depth is not None and len(out) >= depth:
            break
        price = lvl.price
        mine = ZERO  # summed in the orders' order, from ZERO: the same Decimal as before
        for o in orders:
            if o.side is side and o.price == price:
                mine = mine + o.remaining
        size = lvl.size - mine
        if size > ZERO:
            out.append(lvl if size == lvl.size else BookLevel(price, size))
            if until is not None:
                kept += size
                if kept > until:
                    break
    return tuple(out)


def time_left(horizon: Horizon, wall: float, session_end: float | None = None) -> float:
    """``T - t`` in seconds for the Avellaneda–Stoikov horizon.

    Rolling: the constant window. Session end: seconds until ``session_end`` when given (a
    backtest passes its run's end), else until the next ``end`` local time in the horizon's
    time zone (0 exactly at the end, then a full day again). Never negative.

    :param wall: epoch seconds (a calendar time: ``Clock.wall()``, never the interval clock).
    """
    if isinstance(horizon, RollingHorizon):
        return horizon.window_s
    if session_end is not None:
        return max(0.0, session_end - wall)
    tz = ZoneInfo(horizon.timezone)
    local_now = dt.datetime.fromtimestamp(wall, tz)
    for days in (0, 1, 2):  # 2: a DST shift can push "tomorrow" under 24 h
        day = local_now.date() + dt.timedelta(days=days)
        end = dt.datetime.combine(day, horizon.end, tzinfo=tz).timestamp()
        if end >= wall:
            return end - wall
    raise AssertionError("unreachable: an end time exists within two days")  # pragma: no cover


# --- the pipeline -------------------------------------------------------------------------


def compute_quotes(params: QuotingParams, state: MarketState) -> QuoteDecision:
    """Desired quotes for ``state`` under ``params`` (never raises on market data)."""
    prep = prepared(params)
    problem, base, quote = _check_market(state)
    problem = problem or prep.problem
    if problem:
        return _empty(problem)
    if params.add_fees and not usable_fee(state.rules.maker_fee):
        return _empty("bad_rules")
    book = state.book
    bid = book.bids[0].price if book.bids else None
    ask = book.asks[0].price if book.asks else None
    why = _touch_problem(bid, ask, params.allow_locked_book)
    if why:
        return _empty(why)
    assert bid is not None and ask is not None  # _touch_problem checked both
    # (bid + ask) / 2, as market_mid() computes it, and its float: the book's own, handed
    # over from the engine's book when our orders are not at the touch (Book.with_levels).
    own_mid = book.mid
    mid, fmid = own_mid, book.mid_float
    assert mid is not None and fmid is not None
    rules = state.rules
    grid = grid_of(rules)
    ask_q = ask / rules.tick
    if ask_q >= _MAX_STEPS:
        return _empty("bad_book")
    # A reference price replaces the own mid everywhere the pipeline prices (the centre, the
    # inventory's valuation, the spread in bps); the own touch still feeds the post-only guard,
    # which is always on then: a reference must never carry a quote through the own book.
    ref_price = state.reference
    if ref_price is not None:
        if not (ref_price.is_finite() and ref_price > ZERO) or ref_price / rules.tick >= _MAX_STEPS:
            return _empty("bad_reference", mid=own_mid)
        mid, fmid = ref_price, float(ref_price)
    # The touch on the grid, when something reads it: floor(bid / tick) and ceil(ask / tick)
    # for the post-only guard, and the mid in ticks for the fixed-spread model and the step
    # between levels (exact when the touch is on the grid).
    mid_ticks = 0.0
    guard: tuple[int, int] | None = None
    # A join reads the book's depth and places against it: the guard is on with it too.
    join_depth = params.join_depth
    use_guard = params.post_only_guard or ref_price is not None or join_depth is not None
    if use_guard or params.strategy == "fixed_spread" or params.levels > 1:
        bid_q = bid / rules.tick
        bid_floor, ask_floor = int(bid_q), int(ask_q)
        on_grid = bid_q == bid_floor and ask_q == ask_floor
        ask_ceil = ask_floor if ask_q == ask_floor else ask_floor + 1
        if ref_price is not None:
            mid_ticks = float(ref_price / rules.tick)
        else:
            mid_ticks = (bid_floor + ask_floor) / 2 if on_grid else float(bid_q + ask_q) / 2
        if use_guard:
            guard = (bid_floor, ask_ceil)
    # The AS model reads no target share (only the fixed-spread skew does): not computed.
    inv = inventory_of(params, base, quote, mid, prep.shares, params.strategy == "fixed_spread")
    size_base = params.size if params.size_unit == "base" else params.size / mid
    sigma_est = state.sigma if state.sigma is not None else params.sigma
    sig_bps = None if sigma_est is None else sigma_est / fmid * 1e4

    # The model, in floats and in ticks: the ladder's centre, half spread and step.
    group = state.group
    if params.strategy == "fixed_spread":
        spread = fixed_spread_bps(params.spread_bps, sig_bps, params.volatility)
        if group is not None:
            dev = group.deviation
        else:
            dev = deviation(inv.share, inv.target_share, params.min_share, params.max_share)
        skew = skew_bps(dev, params.skew_strength, spread)
        reference = fmid
        centre = mid_ticks * (1.0 + skew / 1e4)
        half = half_ask = mid_ticks * spread / 2e4
        if params.bid_fraction != 0.5:
            # Per-side spreads: the (widened) total split; 0.5 is the symmetric half above.
            total = mid_ticks * spread / 1e4
            half, half_ask = total * params.bid_fraction, total * (1.0 - params.bid_fraction)
    else:
        gamma, kappa = params.gamma, params.kappa
        assert gamma is not None and kappa is not None  # _check_inputs
        sigma = params.sigma if params.sigma is not None else state.sigma
        if sigma is None:
            return _empty("no_sigma", mid=own_mid, inv=inv)
        # inventory_q(inv.base, inv.target_base, size_base), with the excess over the
        # target already computed (None exactly when the target is)
        excess = inv.excess
        if group is not None:
            q = 0.0 if size_base <= ZERO else float(group.excess_base / size_base)
        else:
            q = 0.0 if excess is None or size_base <= ZERO else float(excess.base / size_base)
        reference = as_reservation(fmid, q, gamma, sigma, state.time_left_s)
        # as_spread(gamma, sigma, tau, kappa), its constant term computed once per params
        delta = gamma * sigma * sigma * state.time_left_s + prep.as_intensity
        floor_bps = params.min_spread_bps
        if params.volatility is not None:
            floor_bps = fixed_spread_bps(floor_bps, sig_bps, params.volatility)
        delta = max(delta, floor_bps * fmid / 1e4)
        if not (isfinite(reference) and isfinite(delta)) or reference <= 0:
            return _empty("bad_reference", mid=own_mid, inv=inv)
        spread = delta / fmid * 1e4
        skew = (reference - fmid) / fmid * 1e4
        centre = reference / grid.tick_float
        reference_half = delta / 2
        half = half_ask = reference_half / grid.tick_float

    # One level never adds its step: side_intents adds 0 * step, +-0.0 for any finite step,
    # to a half spread that is never -0.0, so 0.0 is the same ladder.
    step = mid_ticks * params.level_step_bps / 1e4 if params.levels > 1 else 0.0
    quote_bids, quote_asks, reason = side_caps(inv.share, params.min_share, params.max_share)
    size = sizing(prep, params, grid)
    size_lots, level_lots, total_lots = size.size_lots, size.level_lots, size.total_lots
    if size_lots < 0:  # sizes in quote: in base at this mid
        if prep.sizes is None:
            size_lots = grid.floor_lots(size_base)
            total_lots = params.levels * size_lots
        else:
            level_lots = lots_of(prep.sizes, grid, mid)
            size_lots, total_lots = level_lots[0], sum(level_lots)
    # Each side's ladder in ticks (half is the bid's half spread), shaped by the settings
    # that read the market (:mod:`kasmm.core.side_ladder`); by default one for both.
    bid_ladder = (centre, half, step, params.levels)
    ask_ladder = bid_ladder if half_ask == half else (centre, half_ask, step, params.levels)
    held = state.held
    if held is _NOTHING_HELD:
        held = None
    fee = rules.maker_fee if params.add_fees else None
    targets = (-1, -1)
    join_unmet: tuple[Side, ...] = ()
    if fee is not None or join_depth is not None or held is not None:
        min_half = -1.0
        if join_depth is not None:
            bid_target = join_target(_BUY, book.bids, join_depth, rules.tick)
            ask_target = join_target(_SELL, book.asks, join_depth, rules.tick)
            targets = (
                -1 if bid_target is None else bid_target,
                -1 if ask_target is None else ask_target,
            )
            join_unmet = tuple(s for s, t in zip((_BUY, _SELL), targets, strict=True) if t < 0)
            if params.join_min_spread_bps is not None:
                min_half = max(mid_ticks * params.join_min_spread_bps / 2e4, 0.5)
        ffee = None if fee is None else float(fee)
        bid_ladder = shape(
            _BUY, _with_levels(bid_ladder, held_levels(_BUY, params.levels, held)),
            ffee, targets[0], centre, min_half,
        )  # fmt: skip
        ask_ladder = shape(
            _SELL, _with_levels(ask_ladder, held_levels(_SELL, params.levels, held)),
            ffee, targets[1], centre, min_half,
        )  # fmt: skip
    exact_bids: tuple[int, ...] | None = None
    exact_asks: tuple[int, ...] | None = None
    if bid_ladder is ask_ladder:  # one ladder for both sides (no setting moved either)
        far = FLOAT_TICKS_LIMIT <= abs(centre) + half + (params.levels - 1) * step < math.inf
    else:
        far = beyond(bid_ladder, FLOAT_TICKS_LIMIT) or beyond(ask_ladder, FLOAT_TICKS_LIMIT)
    if far:
        # Beyond the floats' resolution in ticks (a runaway model, a price of millions of
        # ticks): the ladders as the stages build them, in Decimal.
        step_d = mid * to_decimal(params.level_step_bps) / BPS
        if params.strategy == "fixed_spread":
            centre_d = mid * (1 + to_decimal(skew) / BPS)
            half_bid_d = half_ask_d = mid * to_decimal(spread) / (2 * BPS)
            if params.bid_fraction != 0.5:
                spread_d = mid * to_decimal(spread)
                half_bid_d = spread_d * to_decimal(params.bid_fraction) / BPS
                half_ask_d = spread_d * to_decimal(1.0 - params.bid_fraction) / BPS
        else:
            centre_d, half_bid_d = to_decimal(reference), to_decimal(reference_half)
            half_ask_d = half_bid_d
        min_bps = params.join_min_spread_bps
        min_bps_d = None if min_bps is None else to_decimal(min_bps)
        tick = rules.tick
        exact_bids, exact_asks = (
            rounded_side(
                side,
                raw_side(
                    side, centre_d, half_d, step_d, ladder_ticks[3], mid=mid, tick=tick,
                    fee=fee, target=None if target < 0 else target * tick,
                    min_spread_bps=min_bps_d,
                ),
                tick,
            )
            for side, half_d, ladder_ticks, target in (
                (_BUY, half_bid_d, bid_ladder, targets[0]),
                (_SELL, half_ask_d, ask_ladder, targets[1]),
            )
        )  # fmt: skip
    lots = (size_lots, total_lots, level_lots)
    bids: tuple[OrderIntent, ...] = ()
    asks: tuple[OrderIntent, ...] = ()
    if quote_bids and bid_ladder[3] > 0:
        bids = _side_intents(_BUY, params, inv, size, bid_ladder, guard, lots, exact_bids, held)
    if quote_asks and ask_ladder[3] > 0:
        asks = _side_intents(_SELL, params, inv, size, ask_ladder, guard, lots, exact_asks, held)
    if bids and asks and bids[0].price >= asks[0].price:
        # Cannot happen with a positive spread (rounding and the guard only widen); kept as a
        # last line of defence against ever sending a self-crossing pair.
        return _empty("self_cross", mid=own_mid, inv=inv)
    quotes = Quotes(bids=bids, asks=asks)
    one_sided = _one_sided(quotes)
    if not (bids or asks):
        reason = "no_size"
    elif one_sided is not None and reason == "ok":
        reason = "one_side_no_size"
    return QuoteDecision(
        quotes,
        own_mid,
        reference,
        spread,
        skew,
        inv.share,
        one_sided,
        reason,
        inv.excess,
        state.price_source,
        ref_price,
        join_unmet,
    )


def _side_intents(
    side: Side,
    params: QuotingParams,
    inv: Inventory,
    size: Sizing,
    ladder_ticks: tuple[float, float, float, int],
    guard: tuple[int, int] | None,
    lots: tuple[int, int, tuple[int, ...] | None],
    rounded: tuple[int, ...] | None,
    held: Held | None,
) -> tuple[OrderIntent, ...]:
    """One side's intents within its :func:`side_budget` (less what ``held`` orders lock), in
    whole lots and ``grid.unit``.

    :param lots: the size of level 0 in lots, of every level together, and of each level
        (``None``: all the size of level 0).
    """
    grid = size.grid
    budget = side_budget(side, params, inv)
    if held is not None:
        budget = held_budget(side, budget, held)
    size_lots, total_lots, level_lots = lots
    # -1 is unlimited, and so is a budget that covers every level at full size: then no level
    # is ever cut by it, and it is not divided into lots or units.
    base_lots = -1
    full = size.full_base
    if budget.base is not None and (full is None or budget.base < full):
        base_lots = grid.floor_lots(budget.base)
    quote_units = -1
    if budget.quote is not None:
        # The guard keeps bids at or below ask_ceil - 1 ticks: what every level at full size
        # costs there at most (side_intents spends ticks * lots units a level).
        most = -1
        if guard is not None and side is _BUY:
            most = total_lots * (guard[1] - 1)
        if most <= 0 or not size.quote_fits(budget.quote, most):
            quote_units = grid.floor_units(budget.quote)
    return side_intents(
        side,
        ladder_ticks,
        grid,
        guard,
        size_lots,
        base_lots,
        quote_units,
        params.enforce_min_notional,
        rounded,
        level_lots,
    )


def _with_levels(
    rungs: tuple[float, float, float, int], levels: int
) -> tuple[float, float, float, int]:
    return rungs if levels == rungs[3] else (rungs[0], rungs[1], rungs[2], max(levels, 0))


def _one_sided(quotes: Quotes) -> Side | None:
    if quotes.bids and not quotes.asks:
        return _BUY
    if quotes.asks and not quotes.bids:
        return _SELL
    return None


def _empty(
    reason: str, *, mid: Decimal | None = None, inv: Inventory | None = None
) -> QuoteDecision:
    # The inventory is still reported: the risk rules measure it even when nothing is quoted.
    share, excess = (None, None) if inv is None else (inv.share, inv.excess)
    return QuoteDecision(Quotes(), mid, None, None, 0.0, share, None, reason, excess)


def _check_market(state: MarketState) -> tuple[str | None, Decimal, Decimal]:
    """The first unusable market input (``None``: all usable), and the base and quote totals.

    With :func:`~kasmm.core.prepared.check_params` after it, the first unusable input of the
    decision: garbage in must not become orders out.
    """
    rules = state.rules
    if usable_grid(rules) is None:  # checked once per rules object: its grid is kept
        return "bad_rules", ZERO, ZERO
    base, quote = state.balances.total(rules.base), state.balances.total(rules.quote)
    if not (base.is_finite() and quote.is_finite()):
        return "bad_balances", base, quote
    if not (isfinite(state.now) and finite(state.time_left_s)):
        return "bad_input", base, quote
    if state.sigma is not None and not finite(state.sigma):
        return "bad_input", base, quote
    return None, base, quote
