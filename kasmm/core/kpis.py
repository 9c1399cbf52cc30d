"""Market-making KPIs, pure: how well a profile keeps its quotes up, tight and deep.

What exchanges and token issuers measure a market maker by, and what its operator wants to see:

* **quote uptime**: the share of time both sides were quoted (and each side on its own);
* **time-weighted own spread**: the bot's best ask minus its best bid, in bps of the mid,
  averaged over the time both sides were quoted;
* **own depth** within +-0.5 %, 1 % and 2 % of the mid: the quote value of the bot's resting
  orders inside each band, now and time-weighted;
* **fill ratio** (filled / placed size) and **order-to-trade ratio** (order actions per fill),
  from the counters.

The quoting picture only changes at events, so time is integrated piecewise constant: each
:func:`observe` books the time since the previous observation to the picture *as it was* (a
:class:`Snapshot`), then records the new one. Time runs on the interval clock; floats are fine
here (statistics, not money that is traded).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from kasmm.core.grid import price_float, tick_fraction
from kasmm.core.types import ZERO, OpenOrder, Side

#: The depth bands, as fractions of the mid (+-0.5 %, 1 %, 2 %); exact, so an order exactly
#: on a band's edge is inside it.
DEPTH_BANDS: tuple[Decimal, ...] = (Decimal("0.005"), Decimal("0.01"), Decimal("0.02"))
_NO_DEPTH: tuple[float, ...] = tuple(0.0 for _ in DEPTH_BANDS)


@dataclass(frozen=True, slots=True, init=False)
class Snapshot:
    """The bot's quoting picture at one instant."""

    bid: bool
    ask: bool
    #: Own spread in bps of the mid (``None`` unless both sides are quoted).
    spread_bps: float | None
    #: Quote value of own orders within each of :data:`DEPTH_BANDS` of the mid (both sides).
    depth: tuple[float, ...]

    def __init__(
        self, bid: bool, ask: bool, spread_bps: float | None, depth: tuple[float, ...]
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "bid", bid)
        object.__setattr__(self, "ask", ask)
        object.__setattr__(self, "spread_bps", spread_bps)
        object.__setattr__(self, "depth", depth)


NOTHING = Snapshot(False, False, None, _NO_DEPTH)


def snapshot(orders: Iterable[OpenOrder], mid: Decimal | None) -> Snapshot:
    """The quoting picture of ``orders`` around ``mid`` (no usable mid: nothing counts)."""
    if mid is None or not mid.is_finite() or mid <= 0:
        return NOTHING
    m = float(mid)
    reach = [mid * band for band in DEPTH_BANDS]
    best_bid = best_ask = None
    depth = [0.0] * len(DEPTH_BANDS)
    for order in orders:
        price = float(order.price)
        if order.side is Side.BUY:
            if best_bid is None or price > best_bid:
                best_bid = price
        elif best_ask is None or price < best_ask:
            best_ask = price
        distance = abs(order.price - mid)
        value = price * float(order.remaining)
        for i, band in enumerate(reach):
            if distance <= band:
                depth[i] += value
    spread = None
    if best_bid is not None and best_ask is not None:
        spread = (best_ask - best_bid) / m * 1e4
    return Snapshot(best_bid is not None, best_ask is not None, spread, tuple(depth))


#: The float filter's margin, relative to the mid (see :class:`Picture`). For a price within
#: three mids the float test is off the exact one by under 1e-15 of the mid (a few roundings
#: of numbers no larger than 4 mids, each within 2**-53); a price further out is at least two
#: mids away, beyond every band (2 % at most) by far more than any rounding. 1e-9 is ample.
_SLACK: Final = 1e-9
#: The mids (as floats) where that holds: normal floats, far from overflow.
_FLOAT_RANGE: Final = (1e-300, 1e300)
_BANDS_F: Final[tuple[float, ...]] = tuple(float(band) for band in DEPTH_BANDS)


class Picture:
    """:func:`snapshot` of the engine's open orders, recomputed only when its inputs changed.

    The engine asks for the picture after every round, but its resting orders change in a
    minority of rounds, so this keeps what it computed last. It returns exactly what
    :func:`snapshot` returns (``tests/unit/test_kpis.py`` holds it to it); only the work
    differs:

    * the orders are the same when each is the very object of last time, in the same order
      (open orders are frozen values, replaced whenever anything about them changes; the depth
      sums add in that order): their float prices, values and best prices are reused;
    * the same orders at an equal mid: the last :class:`Snapshot` itself;
    * otherwise the depth bands are tested in floats, and only a distance within ``_SLACK``
      of a band's edge is decided in ``Decimal``, as :func:`snapshot` decides every one
      (``float()`` of a ``Decimal`` goes through its string, and the exact test is four
      ``Decimal`` operations an order and band).
    """

    __slots__ = (
        "_ask",
        "_bid",
        "_den",
        "_grid",
        "_last",
        "_mid",
        "_num",
        "_orders",
        "_prices",
        "_size",
        "_size_f",
        "_values",
    )

    def __init__(self) -> None:
        self._orders: tuple[OpenOrder, ...] = ()
        #: The mid of :attr:`_last` (``None``: recompute).
        self._mid: Decimal | None = None
        self._last: Snapshot = NOTHING
        #: Per order, in order: its price as a float, and its quote value (price x remaining).
        self._prices: list[float] = []
        self._values: list[float] = []
        self._bid: float | None = None
        self._ask: float | None = None
        #: The last remaining size converted, and its float.
        self._size = Decimal("NaN")
        self._size_f = math.nan
        #: The last grid seen and its tick as ``num / den`` (see :meth:`_float_price`).
        self._grid: object = None
        self._num, self._den = 0, 1

    def of(
        self, orders: Iterable[OpenOrder], mid: Decimal | None, mid_float: float | None = None
    ) -> Snapshot:
        """``snapshot(orders, mid)``.

        :param mid_float: ``float(mid)`` when the caller has it already (``Book.mid_float``).
        """
        # ZERO, a Decimal: comparing with the int 0 converts it to a Decimal each time.
        if mid is None or not mid.is_finite() or mid <= ZERO:
            return NOTHING
        current, previous = tuple(orders), self._orders
        same = len(current) == len(previous)
        if same:
            for i in range(len(current)):
                if current[i] is not previous[i]:
                    same = False
                    break
        if not same:
            self._index(current)
        elif mid is self._mid or (self._mid is not None and mid == self._mid):
            return self._last
        m = float(mid) if mid_float is None else mid_float
        bid, ask = self._bid, self._ask
        spread = None
        if bid is not None and ask is not None:
            spread = (ask - bid) / m * 1e4
        low, high = _FLOAT_RANGE
        in_range = low < m < high
        slack = m * _SLACK
        bands = _BANDS_F
        prices, values = self._prices, self._values
        # Band by band (snapshot() goes order by order): each band still sums its orders'
        # values in order from 0.0, so the sums are the same floats, kept in a machine float.
        depth: list[float] = []
        for b in range(len(bands)):
            reach = m * bands[b]
            total = 0.0
            for i in range(len(current)):
                distance = abs(prices[i] - m)
                if in_range and distance < reach - slack:
                    inside = True
                elif in_range and distance > reach + slack:
                    inside = False
                else:  # too close to call in floats: decided as snapshot() decides it
                    inside = abs(current[i].price - mid) <= mid * DEPTH_BANDS[b]
                if inside:
                    total += values[i]
            depth.append(total)
        picture = Snapshot(bid is not None, ask is not None, spread, tuple(depth))
        self._mid, self._last = mid, picture
        return picture

    def _index(self, orders: tuple[OpenOrder, ...]) -> None:
        """What of ``orders`` does not depend on the mid (computed as :func:`snapshot` does).

        ``float()`` of a ``Decimal`` is the cost here: an order kept from last time (the very
        object) keeps its float price and value, a new order on a grid has its float price
        computed from its tick count (:meth:`_float_price`), and a remaining size
        equal to the last one converted (the quoting core's size, mostly) its float.
        """
        self._mid = None  # until a picture of these orders is complete
        previous, previous_prices, previous_values = self._orders, self._prices, self._values
        prices: list[float] = []
        values: list[float] = []
        best_bid: float | None = None
        best_ask: float | None = None
        after = 0  # where the search for the next kept order starts
        for order in orders:
            # A kept order is found by identity, searching on from the last one found: the
            # open orders keep their order in the engine's dict (a new one goes last), so this
            # finds each kept order in one pass, without a dict of the last ones' ids.
            kept = -1
            for i in range(after, len(previous)):
                if previous[i] is order:
                    kept, after = i, i + 1
                    break
            if kept >= 0:
                price, value = previous_prices[kept], previous_values[kept]
            else:
                price = self._float_price(order)
                value = price * self._float_size(order.remaining)
            if order.side is Side.BUY:
                if best_bid is None or price > best_bid:
                    best_bid = price
            elif best_ask is None or price < best_ask:
                best_ask = price
            prices.append(price)
            values.append(value)
        self._prices, self._values = prices, values
        self._bid, self._ask = best_bid, best_ask
        self._orders = orders

    def _float_price(self, order: OpenOrder) -> float:
        """``float(order.price)``, from its tick count when it is on a grid.

        ``float()`` of a ``Decimal`` goes through its string. A price of ``ticks`` ticks of
        ``num / den`` (``den`` a power of ten at most 1e22) is ``ticks * num / den``: both
        exact floats while ``ticks * num`` is below 2**53, and one IEEE division rounds their
        exact quotient, the price itself, correctly, as ``float()`` does
        (:func:`~kasmm.core.grid.price_float`). Otherwise, ``float()``.
        """
        grid, ticks = order.grid, order.ticks
        if grid is None or ticks < 0:
            return float(order.price)
        if grid is not self._grid:
            self._grid = grid
            self._num, self._den = tick_fraction(grid.tick)
        return price_float(ticks, self._num, self._den, order.price)

    def _float_size(self, size: Decimal) -> float:
        """``float(size)``, remembered for the last size converted (equal numbers convert
        alike; a NaN is converted every time, as it compares unequal or raises)."""
        if size is self._size or (not size.is_nan() and size == self._size):
            return self._size_f
        self._size, self._size_f = size, float(size)
        return self._size_f


@dataclass(frozen=True, slots=True, init=False)
class KpiState:
    """Time integrals of the quoting picture since :attr:`since` (interval-clock seconds)."""

    since: float | None = None
    last_at: float | None = None
    last: Snapshot = NOTHING
    total_s: float = 0.0
    both_s: float = 0.0
    bid_s: float = 0.0
    ask_s: float = 0.0
    #: Integral of the own spread (bps x s) over the time both sides were quoted.
    spread_bps_s: float = 0.0
    #: Integral of each band's depth (quote x s).
    depth_s: tuple[float, ...] = _NO_DEPTH

    def __init__(
        self,
        since: float | None = None,
        last_at: float | None = None,
        last: Snapshot = NOTHING,
        total_s: float = 0.0,
        both_s: float = 0.0,
        bid_s: float = 0.0,
        ask_s: float = 0.0,
        spread_bps_s: float = 0.0,
        depth_s: tuple[float, ...] = _NO_DEPTH,
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "since", since)
        object.__setattr__(self, "last_at", last_at)
        object.__setattr__(self, "last", last)
        object.__setattr__(self, "total_s", total_s)
        object.__setattr__(self, "both_s", both_s)
        object.__setattr__(self, "bid_s", bid_s)
        object.__setattr__(self, "ask_s", ask_s)
        object.__setattr__(self, "spread_bps_s", spread_bps_s)
        object.__setattr__(self, "depth_s", depth_s)


def observe(state: KpiState, now: float, picture: Snapshot) -> KpiState:
    """Book the time since the last observation to the picture then; record ``picture``."""
    if state.last_at is None:
        return KpiState(since=now, last_at=now, last=picture, depth_s=state.depth_s)
    dt = now - state.last_at
    if dt <= 0:
        return KpiState(
            state.since, state.last_at, picture, state.total_s, state.both_s, state.bid_s,
            state.ask_s, state.spread_bps_s, state.depth_s,
        )  # fmt: skip
    last = state.last
    both = last.bid and last.ask
    spread = last.spread_bps if both and last.spread_bps is not None else 0.0
    return KpiState(
        since=state.since,
        last_at=now,
        last=picture,
        total_s=state.total_s + dt,
        both_s=state.both_s + (dt if both else 0.0),
        bid_s=state.bid_s + (dt if last.bid else 0.0),
        ask_s=state.ask_s + (dt if last.ask else 0.0),
        spread_bps_s=state.spread_bps_s + spread * dt,
        depth_s=_integrated(state.depth_s, last.depth, dt),
    )


def _integrated(acc: tuple[float, ...], depth: tuple[float, ...], dt: float) -> tuple[float, ...]:
    """``acc + depth * dt``, band by band (an index loop: ``zip(..., strict=True)`` is a
    generic call in the compiled build)."""
    if len(acc) != len(depth):
        raise ValueError("depth bands differ")
    return tuple([acc[i] + depth[i] * dt for i in range(len(acc))])


@dataclass(frozen=True, slots=True)
class Kpis:
    """The KPIs as a reader shows them (shares in 0..1; ``None`` before any time passed)."""

    seconds: float
    uptime_both: float | None
    uptime_bid: float | None
    uptime_ask: float | None
    #: Time-weighted own spread while both sides were quoted (bps of the mid).
    avg_spread_bps: float | None
    #: Own depth within each band now, and time-weighted (quote currency).
    depth_now: tuple[float, ...]
    avg_depth: tuple[float, ...]
    #: Filled size / placed size; order actions per fill.
    fill_ratio: float | None
    order_to_trade: float | None


def summarize(
    state: KpiState,
    *,
    placed_size: Decimal,
    filled_size: Decimal,
    order_actions: int,
    fills: int,
) -> Kpis:
    """The :class:`Kpis` of ``state`` and the counters."""
    total = state.total_s
    return Kpis(
        seconds=total,
        uptime_both=_share(state.both_s, total),
        uptime_bid=_share(state.bid_s, total),
        uptime_ask=_share(state.ask_s, total),
        avg_spread_bps=state.spread_bps_s / state.both_s if state.both_s > 0 else None,
        depth_now=state.last.depth,
        avg_depth=tuple(d / total for d in state.depth_s) if total > 0 else state.last.depth,
        fill_ratio=float(filled_size / placed_size) if placed_size > 0 else None,
        order_to_trade=order_actions / fills if fills else None,
    )


def _share(part: float, total: float) -> float | None:
    return part / total if total > 0 else None
