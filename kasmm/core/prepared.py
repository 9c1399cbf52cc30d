"""What the quoting pipeline derives from its parameters: computed once per parameter object.

``QuotingParams`` is frozen, so whether it is usable and the Decimal forms of its share floats are
the same for every decision made with one object; :func:`prepared` computes them on the first
decision and keeps them on the object (its ``_derived`` slot), instead of re-checking a dozen
fields and re-parsing float reprs on every book. What also depends on the market's grid (sizes in
lots) is kept for the last grid the object quoted on (:func:`sizing`): a params object quotes one
market.
"""

from __future__ import annotations

import math
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Context, Decimal, Inexact
from typing import Any

from kasmm.core.grid import Grid
from kasmm.core.level_sizes import grows, level_sizes, lots_of, usable_step
from kasmm.core.params import QuotingParams
from kasmm.core.skew import ShareDecimals


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the pipeline derives from one ``QuotingParams`` object."""

    problem: str | None  # check_params
    shares: ShareDecimals
    #: the Avellaneda–Stoikov spread's term that depends on the parameters alone,
    #: ``(2 / gamma) * ln(1 + gamma / kappa)`` (see :func:`kasmm.core.quoting.as_spread`);
    #: 0.0 for other strategies or unusable parameters
    as_intensity: float = 0.0
    #: each level's size in ``size_unit`` when they differ (``level_size_step``; ``None``:
    #: every level rests ``size``), see :func:`kasmm.core.level_sizes.level_sizes`
    sizes: tuple[Decimal, ...] | None = None
    #: the :class:`Sizing` of the last grid (``None`` before the first): see :func:`sizing`.
    #: (``Any``: see ``QuotingParams._derived``.)
    _sizing: Any = field(default=None, init=False, repr=False, compare=False)


def prepared(params: QuotingParams) -> Prepared:
    """``params``' validity and Decimal forms, computed on first use and kept on the object.

    Parameters are frozen values, so what is derived from them holds for every decision made
    with the same object; a new object (a mode switch, ``dataclasses.replace``) starts empty.
    """
    derived = params._derived
    if isinstance(derived, Prepared):
        return derived
    problem = check_params(params)
    made = Prepared(
        problem=problem,
        shares=ShareDecimals.of(params),
        as_intensity=_as_intensity(params) if problem is None else 0.0,
        sizes=_sizes(params) if problem is None else None,
    )
    object.__setattr__(params, "_derived", made)
    return made


def _sizes(params: QuotingParams) -> tuple[Decimal, ...] | None:
    step = params.level_size_step
    if not grows(step):
        return None
    return level_sizes(params.size, step, params.level_size_step_pct, params.levels)


def _as_intensity(params: QuotingParams) -> float:
    gamma, kappa = params.gamma, params.kappa
    if params.strategy != "avellaneda_stoikov" or gamma is None or kappa is None:
        return 0.0
    return (2.0 / gamma) * math.log1p(gamma / kappa)  # as in quoting.as_spread


class Sizing:
    """A usable ``QuotingParams``' order size on one grid, in whole lots."""

    __slots__ = (
        "_fit_quote",
        "_fit_units",
        "full_base",
        "grid",
        "level_lots",
        "size_lots",
        "total_lots",
    )

    def __init__(self, params: QuotingParams, grid: Grid) -> None:
        self.grid = grid
        #: ``grid.floor_lots(params.size)`` when the size is in base (-1: in quote, where the
        #: size in base depends on the mid)
        self.size_lots: int = grid.floor_lots(params.size) if params.size_unit == "base" else -1
        #: each level's size in lots when they differ (``level_size_step``) and are in base
        #: (``None``: every level rests ``size_lots``, or the sizes are in quote)
        self.level_lots: tuple[int, ...] | None = None
        #: what every level at full size takes together, in lots (-1: in quote)
        self.total_lots: int = -1
        if self.size_lots >= 0:
            self.total_lots = params.levels * self.size_lots
            if grows(params.level_size_step):
                sizes = level_sizes(
                    params.size, params.level_size_step, params.level_size_step_pct, params.levels
                )
                self.level_lots = lots_of(sizes, grid)
                self.total_lots = sum(self.level_lots)
        #: what every level at full size takes together, in base, exactly (``None``: unknown).
        #: A base budget at least this never binds: each level still gets its full size.
        self.full_base: Decimal | None = None
        if self.total_lots >= 0:
            with suppress(Inexact):  # beyond 28 digits: no shortcut
                self.full_base = _EXACT.multiply(Decimal(self.total_lots), grid.lot)
        # quote_fits' bound: this many units, and their notional (None: not exact)
        self._fit_units = 0
        self._fit_quote: Decimal | None = None

    def quote_fits(self, quote: Decimal, units: int) -> bool:
        """``quote`` covers at least ``units`` (> 0) of ``grid.unit``: then
        ``grid.floor_units(quote) >= units`` (the division rounds, monotonically, to a whole
        number at least as large). False also when it might not: the bound compared with is
        kept between calls, up to twice ``units``, so that it is rarely made again.
        """
        if units > self._fit_units or 4 * units < self._fit_units:
            self._fit_units = 2 * units
            self._fit_quote = None
            with suppress(Inexact):
                self._fit_quote = _EXACT.multiply(Decimal(2 * units), self.grid.unit)
        fit = self._fit_quote
        return fit is not None and quote >= fit


#: Decimal's default precision and range, raising where a result would be rounded.
_EXACT = Context(traps=[Inexact])


def sizing(prep: Prepared, params: QuotingParams, grid: Grid) -> Sizing:
    """The :class:`Sizing` of ``params`` (whose :func:`prepared` is ``prep``) on ``grid``."""
    made = prep._sizing
    if isinstance(made, Sizing) and made.grid is grid:
        return made
    made = Sizing(params, grid)
    object.__setattr__(prep, "_sizing", made)
    return made


def finite(x: float | None, *, positive: bool = False) -> bool:
    """A finite float >= 0 (> 0 with ``positive``); False for ``None``."""
    return x is not None and isfinite(x) and (x > 0 if positive else x >= 0)


def isfinite(x: float) -> bool:
    """``math.isfinite``, which mypyc calls through the module; ``isinf`` and ``isnan`` it
    compiles to machine code."""
    return not (math.isinf(x) or math.isnan(x))


def dec_ok(x: Decimal | None, *, positive: bool = False) -> bool:
    """A finite Decimal >= 0 (> 0 with ``positive``); False for ``None``."""
    return x is not None and x.is_finite() and (x > 0 if positive else x >= 0)


def check_params(params: QuotingParams) -> str | None:
    """``bad_params`` when a parameter the strategy uses is unusable (else ``None``)."""
    if not (dec_ok(params.size, positive=True) and params.levels >= 1):
        return "bad_params"
    if not (finite(params.level_step_bps) and finite(params.skew_strength)):
        return "bad_params"
    if not usable_step(params.level_size_step):
        return "bad_params"
    if params.join_depth is not None and not dec_ok(params.join_depth):
        return "bad_params"
    if params.join_min_spread_bps is not None and not finite(params.join_min_spread_bps):
        return "bad_params"
    vol = params.volatility
    if vol is not None and not all(
        finite(x) for x in (vol.halflife_s, vol.horizon_s, vol.multiplier, vol.cap_bps)
    ):
        return "bad_params"
    if params.strategy == "fixed_spread":
        if not (finite(params.bid_fraction) and params.bid_fraction <= 1):
            return "bad_params"
        return None if finite(params.spread_bps, positive=True) else "bad_params"
    if not (finite(params.gamma, positive=True) and finite(params.kappa, positive=True)):
        return "bad_params"
    if params.sigma is not None and not finite(params.sigma):
        return "bad_params"
    return None if finite(params.min_spread_bps) else "bad_params"
