"""Order admission rules shared by every locally simulated venue (``sim`` and ``paper``).

A request is checked like a strict exchange would check it: the venue raises, it never rounds a
price or size for the caller. Both functions are pure; the venue supplies the market's rules, the
open orders and the best opposite price it matches against.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from kasmm.core.grid import usable_grid
from kasmm.core.types import ZERO, MarketRules, OrderRequest, Side
from kasmm.errors import OrderRejected, PostOnlyWouldCross
from kasmm.venues.sim.matching import OwnOrders


def bps_to_fraction(bps: float) -> Decimal:
    """Fee in bps (a config float) as an exact fraction: 2.5 -> Decimal('0.00025')."""
    # str() gives the float's shortest repr, so the Decimal is the number the user wrote.
    return Decimal(str(bps)) / Decimal(10_000)


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """True when ``value`` is an exact multiple of ``step``."""
    try:
        return value % step == ZERO  # a Decimal zero: an int would be converted per call
    except InvalidOperation:  # quotient too large for the context: not a sane order anyway
        return False


def on_grid(rules: MarketRules, request: OrderRequest) -> bool:
    """True when the request's integer ``ticks`` and ``lots`` (carried from the quoting core)
    spell its price and size on the grid of ``rules``: then both are positive, finite and
    exact multiples of the tick and the lot.

    The cheap form of those checks (a cached lookup each, where the general ones are a
    ``Decimal`` remainder and two tests each): a bot quoting on these rules (the venue's own
    object, whose grid the bot shares) sends the grid's cached ``Decimal`` objects themselves,
    and identity needs no look at the value (which may be a NaN). Anything else (ticks unknown,
    another grid, an equal but other object) is checked the general way.
    """
    ticks, lots = request.ticks, request.lots
    if ticks <= 0 or lots <= 0:
        return False
    grid = usable_grid(rules)
    if grid is None:
        return False
    return grid.price(ticks) is request.price and grid.size(lots) is request.size


def validate_request(rules: MarketRules, orders: OwnOrders, request: OrderRequest) -> bool:
    """Reject a request that breaks the market's rules; never adjust it.

    :return: whether the request's ``ticks`` and ``lots`` are its price and size on the grid of
        ``rules`` (:func:`on_grid`), so that the venue may keep them.
    :raises OrderRejected: empty client id, non-positive or non-finite price or size, off tick,
        off lot, below the minimum size or notional, or a client id that is already open.
    """
    cid, price, size = request.client_id, request.price, request.size
    if not cid:
        raise OrderRejected("empty client order id")
    exact = on_grid(rules, request)
    if not exact:
        _check_price_and_size(rules, request)
    if size < rules.min_size:
        raise OrderRejected(f"{cid}: size {size} below minimum {rules.min_size}")
    # Price and size are positive here, so with no minimum (<= 0) nothing is below it.
    if rules.min_notional > ZERO and price * size < rules.min_notional:
        raise OrderRejected(f"{cid}: notional {price * size} below minimum {rules.min_notional}")
    if cid in orders:
        raise OrderRejected(f"{cid}: an open order already has this client id")
    return exact


def _check_price_and_size(rules: MarketRules, request: OrderRequest) -> None:
    """The positive, finite, on-tick and on-lot checks of :func:`validate_request`."""
    cid, price, size = request.client_id, request.price, request.size
    if not price.is_finite() or price <= ZERO:
        raise OrderRejected(f"{cid}: price must be positive and finite, got {price}")
    if not size.is_finite() or size <= ZERO:
        raise OrderRejected(f"{cid}: size must be positive and finite, got {size}")
    if not is_multiple(price, rules.tick):
        raise OrderRejected(f"{cid}: price {price} is not a multiple of tick {rules.tick}")
    if not is_multiple(size, rules.lot):
        raise OrderRejected(f"{cid}: size {size} is not a multiple of lot {rules.lot}")


def check_cross(request: OrderRequest, best_opposite: Decimal | None) -> None:
    """Refuse an order at or through ``best_opposite``, the best price on the other side.

    :raises PostOnlyWouldCross: a crossing post-only order.
    :raises OrderRejected: a crossing order that is not post-only (simulated venues only execute
        the bot as a maker).
    """
    if best_opposite is None:
        return
    if request.side is Side.BUY:
        crosses = request.price >= best_opposite
    else:
        crosses = request.price <= best_opposite
    if not crosses:
        return
    what = f"{request.client_id}: {request.side} at {request.price} crosses best {best_opposite}"
    if request.post_only:
        raise PostOnlyWouldCross(what)
    raise OrderRejected(f"{what}; the simulator only accepts resting (maker) orders")
