"""Flat, frozen parameter objects for the pure decision code.

The quoting pipeline and the reconciler never see the configuration: the conversion in
:mod:`kasmm.config.to_core` builds these once per profile (and again when the mode switches),
and tests build them directly with keyword arguments. Most fields have the meaning of the
profile field of the same name; the capabilities (``balances_known``, ``allow_locked_book``,
...) say what the market behind the parameters is like, so that no caller needs to ask which
venue it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

ZERO = Decimal(0)

StrategyKind = Literal["fixed_spread", "avellaneda_stoikov"]
SizeUnit = Literal["base", "quote"]

#: Default target base share when the profile sets neither ``target_share`` nor ``target_base``.
DEFAULT_TARGET_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class RollingHorizon:
    """Avellaneda–Stoikov ``T - t`` as a constant window, for continuous trading."""

    window_s: float = 60.0


@dataclass(frozen=True, slots=True)
class SessionEndHorizon:
    """``T`` is a daily session end, ``end`` local time in ``timezone`` (an IANA name)."""

    end: dt.time = dt.time(0, 0)
    timezone: str = "UTC"


Horizon = RollingHorizon | SessionEndHorizon


@dataclass(frozen=True, slots=True)
class VolatilityParams:
    """Volatility-adaptive spread (the profile's ``strategy.volatility``)."""

    halflife_s: float = 60.0
    horizon_s: float = 10.0
    multiplier: float = 1.0
    cap_bps: float = 500.0


@dataclass(frozen=True, slots=True)
class QuotingParams:
    """Everything :func:`kasmm.core.quoting.compute_quotes` needs, flattened from a profile.

    Strategy-specific fields are ``None`` when they do not apply (``gamma``/``kappa`` for a
    fixed-spread profile). ``min_share``/``max_share`` of ``None`` mean "no share cap".
    """

    strategy: StrategyKind
    # --- the active mode
    spread_bps: float
    size: Decimal
    size_unit: SizeUnit = "base"
    levels: int = 1
    level_step_bps: float = 0.0
    #: the bid's share of the total spread (``bid_spread_bps / (bid + ask)``; 0.5: symmetric).
    #: The volatility widening scales both sides alike. Fixed spread only.
    bid_fraction: float = 0.5
    #: each level's size grows by this over the level before it: in ``size_unit`` (added), or
    #: a percentage of the level before when ``level_size_step_pct`` (compounded)
    level_size_step: Decimal = ZERO
    level_size_step_pct: bool = False
    # --- pricing against the book
    #: move each side's prices away by the market's maker fee (``bid * (1 - fee)``, ``ask * (1 +
    #: fee)``) so a round trip covers both fees; a rebate (negative fee) tightens them
    add_fees: bool = False
    #: join the book: the best price goes one tick inside the best competing price beyond this
    #: much size (base) ahead of it (``None``: off)
    join_depth: Decimal | None = None
    #: the join never tightens the total spread below this (``None``: the model's own spread,
    #: so the join only backs off)
    join_min_spread_bps: float | None = None
    # --- volatility-adaptive spread (fixed_spread; for AS an extra spread floor)
    volatility: VolatilityParams | None = None
    # --- Avellaneda–Stoikov
    gamma: float | None = None
    kappa: float | None = None
    sigma: float | None = None  # fixed sigma in price units per sqrt(s); None = use the estimate
    sigma_halflife_s: float = 60.0
    min_spread_bps: float = 0.0
    horizon: Horizon | None = None
    # --- inventory
    target_share: float | None = DEFAULT_TARGET_SHARE
    target_base: Decimal | None = None  # wins over target_share when set
    min_share: float | None = 0.1
    max_share: float | None = 0.9
    skew_strength: float = 1.0
    min_base: Decimal | None = None
    max_base: Decimal | None = None
    # --- capabilities of the market (all off for the as2008 model, which is the paper exactly)
    #: the account holds balances: bids are budgeted by quote, asks by base (off: cash and
    #: inventory may go negative, and there are no balances to read back)
    balances_known: bool = True
    #: keep every price on its side of the book's best prices (post-only orders)
    post_only_guard: bool = True
    #: drop levels below the market's minimum notional
    enforce_min_notional: bool = True
    #: best bid equal to best ask is a market, not a broken book (as2008 publishes its mid as a
    #: zero-width book)
    allow_locked_book: bool = False
    #: What the quoting pipeline derives from these fields (validity, their Decimal forms),
    #: computed on its first decision with this object (:func:`kasmm.core.prepared.prepared`):
    #: not a parameter, never compared or shown. The fields above never change, nor does it.
    #: (``Any``, not ``object``: mypyc resolves a dataclass's string annotations in the module's
    #: namespace, where a builtin name like ``object`` is not found.)
    _derived: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def estimator_halflife_s(self) -> float | None:
        """Half-life the bot should feed :func:`kasmm.core.volatility.update_vol` with.

        ``None`` when nothing in the pipeline uses an estimated sigma. An AS profile without a
        fixed sigma needs the estimate for the model itself and its ``sigma_halflife_s`` wins;
        the same single estimate then also drives an optional volatility floor.
        """
        if self.strategy == "avellaneda_stoikov" and self.sigma is None:
            return self.sigma_halflife_s
        if self.volatility is not None:
            return self.volatility.halflife_s
        return None


@dataclass(frozen=True, slots=True)
class PriceBandParams:
    """Price band (the profile's ``pricing.price_band``): outside it only the side that sells
    high or buys low is quoted.

    Absolute (``floor`` and/or ``ceiling``), or moving: ``band_pct`` around a slow average mid
    (an EWMA with ``halflife_s``, on the interval clock).
    """

    floor: Decimal | None = None
    ceiling: Decimal | None = None
    band_pct: float | None = None
    halflife_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class AfterFillParams:
    """What a fill changes in the quoting (the profile's ``after_fill``)."""

    #: a side with a fill is not quoted for this long after it (0: off)
    filled_order_delay_s: float = 0.0
    #: after a buy fill only the sell side is quoted until a sell fills (and the reverse)
    ping_pong: bool = False
    #: the other side of a filled pair stays on the book (a hanging order) ...
    hanging: bool = False
    #: ... until it fills or the mid moves this many percent away from its price
    hanging_cancel_pct: float = 1.0


RebalanceOrder = Literal["post_only", "ioc"]


@dataclass(frozen=True, slots=True)
class RebalanceParams:
    """Inventory rebalance by order (the profile's ``inventory.rebalance``): when the base share
    leaves ``[min_share, max_share]``, one bounded order toward the target."""

    order: RebalanceOrder
    #: the largest rebalance order, in base
    max_size: Decimal
    #: an IOC's limit at most this far through the touch
    max_slippage_bps: float = 20.0
    #: at most one rebalance order per this many seconds (interval clock)
    min_interval_s: float = 60.0


@dataclass(frozen=True, slots=True)
class RefreshParams:
    """When resting orders are kept or replaced (see :func:`kasmm.core.reconcile.reconcile`)."""

    tolerance_bps: float
    max_order_age_s: float
    min_requote_interval_s: float
    levels: int
    #: ``tolerance_bps`` as a Decimal, parsed on the first reconciliation with this object
    #: (not a parameter: never compared or shown)
    _tolerance: Decimal | None = field(default=None, init=False, repr=False, compare=False)
    #: the same as an exact fraction (numerator, power-of-ten denominator), for reconciling
    #: orders on the integer grid (not a parameter either)
    _tolerance_ratio: tuple[int, int] | None = field(
        default=None, init=False, repr=False, compare=False
    )
