"""A market's price and size grid in exact integers: ticks and lots.

The quoting core decides in integer ticks (prices) and lots (sizes), as hftbacktest does, and
converts to ``Decimal`` only where a value leaves the decision: an order's price is
``ticks * tick`` and its size ``lots * lot``, always carrying the tick's and the lot's exponent
(``0.080001``, ``1500.00``), whatever spelling the inputs had. Integer arithmetic is exact and,
compiled, a machine operation, where each ``Decimal`` operation allocates an object (70-260 ns,
and 400-900 ns for a conversion to ``int``).

:func:`grid_of` derives a :class:`Grid` once per ``MarketRules`` object (rules are frozen) and
keeps it on the object. The Decimal forms of the prices and sizes it hands out are cached: a
market's quotes stay within a few thousand ticks of each other for hours.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Final

from kasmm.core.types import MarketRules

#: Cached Decimal forms per grid, at most this many each (the cache starts over when full: a
#: long run that drifts through many prices keeps only the recent ones).
CACHE_LIMIT: Final = 8192


class Grid:
    """``MarketRules``' tick and lot as an integer grid (see the module docstring).

    Only made for usable rules: a finite positive tick and lot, finite non-negative minimums.
    """

    __slots__ = (
        "_last_lots",
        "_last_size",
        "_prices",
        "_sizes",
        "lot",
        "min_lots",
        "min_notional_units",
        "tick",
        "tick_float",
        "unit",
    )

    def __init__(self, rules: MarketRules) -> None:
        self.tick: Decimal = rules.tick
        self.lot: Decimal = rules.lot
        #: the tick as a float, for the models' raw prices (which are floats)
        self.tick_float: float = float(rules.tick)
        #: one tick times one lot: the notional of the smallest step of both
        self.unit: Decimal = rules.tick * rules.lot
        #: the fewest lots that meet ``min_size`` (at least one lot): ``lots * lot >= min_size``
        #: exactly when ``lots >= min_lots``
        self.min_lots: int = max(1, _ceil(rules.min_size / rules.lot))
        #: ``ticks * lots * unit >= min_notional`` exactly when ``ticks * lots >= this``
        self.min_notional_units: int = _ceil(rules.min_notional / self.unit)
        self._prices: dict[int, Decimal] = {}
        self._sizes: dict[int, Decimal] = {}
        #: the last size handed out: a side's levels mostly share one
        self._last_lots = -1
        self._last_size = Decimal(0)

    def price(self, ticks: int) -> Decimal:
        """``ticks * tick`` as a Decimal with the tick's exponent."""
        p = self._prices.get(ticks)
        if p is None:
            if len(self._prices) >= CACHE_LIMIT:
                self._prices.clear()
            # tick * ticks is Decimal(ticks) * tick (the int converts exactly), without
            # calling the Decimal type
            p = self._prices[ticks] = self.tick * ticks
        return p

    def size(self, lots: int) -> Decimal:
        """``lots * lot`` as a Decimal with the lot's exponent."""
        if lots == self._last_lots:
            return self._last_size
        s = self._sizes.get(lots)
        if s is None:
            if len(self._sizes) >= CACHE_LIMIT:
                self._sizes.clear()
            s = self._sizes[lots] = self.lot * lots  # Decimal(lots) * lot, as in price()
        self._last_lots, self._last_size = lots, s
        return s

    def floor_lots(self, amount: Decimal) -> int:
        """The most whole lots ``amount`` (>= 0) covers."""
        return int(amount / self.lot)  # int() truncates: the floor of a non-negative value

    def floor_units(self, notional: Decimal) -> int:
        """The most whole ``unit`` (tick x lot) a non-negative quote ``notional`` covers."""
        return int(notional / self.unit)

    def exact_ticks(self, price: Decimal) -> int:
        """``price`` in ticks, or -1 when it is not a positive multiple of the tick."""
        n = _multiple(price, self.tick)
        return n if n > 0 else -1

    def exact_lots(self, size: Decimal) -> int:
        """``size`` in lots, or -1 when it is not a non-negative multiple of the lot."""
        return _multiple(size, self.lot)


def usable_grid(rules: MarketRules) -> Grid | None:
    """:func:`grid_of` for rules with a finite positive tick and lot and finite non-negative
    minimums, else ``None`` (the quoting core refuses such rules: ``bad_rules``)."""
    grid = rules._grid
    if isinstance(grid, Grid):
        return grid  # only usable rules get a grid
    positive = (rules.tick, rules.lot)
    if not all(x.is_finite() and x > 0 for x in positive):
        return None
    if not all(x.is_finite() and x >= 0 for x in (rules.min_size, rules.min_notional)):
        return None
    return grid_of(rules)


def grid_of(rules: MarketRules) -> Grid:
    """The grid of ``rules``, derived on first use and kept on the (frozen) rules object.

    The caller checks first that the tick, the lot and the minimums are usable.
    """
    grid = rules._grid
    if isinstance(grid, Grid):
        return grid
    made = Grid(rules)
    object.__setattr__(rules, "_grid", made)
    return made


def _multiple(x: Decimal, step: Decimal) -> int:
    """``x / step`` when it is a whole number >= 0, else -1."""
    q = x / step
    n = int(q) if q.is_finite() else -1
    return n if n >= 0 and q == n else -1


def _ceil(x: Decimal) -> int:
    return int(x.to_integral_value(ROUND_CEILING))


#: Integers up to this are exact as floats (2**53).
_FLOAT_EXACT: Final = 1 << 53


def tick_fraction(tick: Decimal) -> tuple[int, int]:
    """``(num, den)`` with ``tick == num / den`` exactly, ``den`` a power of ten that is exact
    as a float (at most 1e22); ``(0, 1)`` for a tick not of that form."""
    sign, digits, exponent = tick.as_tuple()
    if sign or not isinstance(exponent, int) or not -22 <= exponent <= 0:
        return 0, 1
    return int("".join(map(str, digits))), 10**-exponent


def price_float(ticks: int, num: int, den: int, price: Decimal) -> float:
    """``float(price)`` for a ``price`` of ``ticks`` ticks of ``num / den``
    (:func:`tick_fraction`).

    ``float(Decimal)`` goes through a string (0.15-0.35 us). ``ticks * num`` and ``den`` are
    exact floats below 2**53, and one IEEE division rounds their exact quotient, the price
    itself, correctly: the same float ``float(price)`` gives, which is the answer otherwise
    (unknown ticks, no such fraction, a numerator too large).
    """
    n = ticks * num
    if 0 < n < _FLOAT_EXACT:
        return n / den
    return float(price)
