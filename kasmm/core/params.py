"""Flat, frozen parameter objects for the pure decision code.

The quoting pipeline and the reconciler never see pydantic models: the bot builds these once per
profile (and again when the mode switches) with ``from_profile``, and tests build them directly
with keyword arguments. Every field has the meaning of the profile field of the same name in
:mod:`kasmm.config.schema`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from kasmm.config.schema import (
    AvellanedaStoikovStrategy,
    ModeConfig,
    ModeName,
    Profile,
    RollingHorizon,
    SessionEndHorizon,
)

StrategyKind = Literal["fixed_spread", "avellaneda_stoikov"]
SizeUnit = Literal["base", "quote"]
HorizonConfig = SessionEndHorizon | RollingHorizon

#: Default target base share when the profile sets neither ``target_share`` nor ``target_base``.
DEFAULT_TARGET_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class VolatilityParams:
    """Volatility-adaptive spread (see :class:`kasmm.config.schema.VolatilityConfig`)."""

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
    # --- volatility-adaptive spread (fixed_spread; for AS an extra spread floor)
    volatility: VolatilityParams | None = None
    # --- Avellaneda–Stoikov
    gamma: float | None = None
    kappa: float | None = None
    sigma: float | None = None  # fixed sigma in price units per sqrt(s); None = use the estimate
    sigma_halflife_s: float = 60.0
    min_spread_bps: float = 0.0
    horizon: HorizonConfig | None = None
    # --- inventory
    target_share: float | None = DEFAULT_TARGET_SHARE
    target_base: Decimal | None = None  # wins over target_share when set
    min_share: float | None = 0.1
    max_share: float | None = 0.9
    skew_strength: float = 1.0
    min_base: Decimal | None = None
    max_base: Decimal | None = None
    # --- checks the exact as2008 model switches off
    enforce_balances: bool = True
    post_only_guard: bool = True
    enforce_min_notional: bool = True

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

    @classmethod
    def from_profile(
        cls, profile: Profile, *, exact_model: bool = False, mode: ModeName | None = None
    ) -> QuotingParams:
        """Flatten ``profile`` (its active mode, or ``mode`` when given).

        ``exact_model=True`` is for the as2008 market, which implements the paper exactly:
        inventory is measured against a target of zero base, there are no share caps, no
        balance checks (cash and inventory may go negative), no post-only guard and no
        minimum-notional drop. Absolute ``min_base``/``max_base`` caps still apply if set.
        """
        mode_cfg = _mode(profile, mode)
        strategy = profile.strategy
        vol = strategy.volatility
        inv = profile.inventory
        as_cfg = strategy if isinstance(strategy, AvellanedaStoikovStrategy) else None
        target_share: float | None = inv.target_share
        if target_share is None and inv.target_base is None:
            target_share = DEFAULT_TARGET_SHARE
        params = cls(
            strategy=strategy.type,
            spread_bps=mode_cfg.spread_bps,
            size=mode_cfg.size,
            size_unit=mode_cfg.size_unit,
            levels=mode_cfg.levels,
            level_step_bps=mode_cfg.level_step_bps,
            volatility=(
                VolatilityParams(
                    halflife_s=vol.halflife_s,
                    horizon_s=vol.horizon_s,
                    multiplier=vol.multiplier,
                    cap_bps=vol.cap_bps,
                )
                if vol is not None
                else None
            ),
            gamma=as_cfg.gamma if as_cfg else None,
            kappa=as_cfg.kappa if as_cfg else None,
            sigma=as_cfg.sigma if as_cfg else None,
            sigma_halflife_s=as_cfg.sigma_halflife_s if as_cfg else 60.0,
            min_spread_bps=as_cfg.min_spread_bps if as_cfg else 0.0,
            horizon=as_cfg.horizon if as_cfg else None,
            target_share=None if inv.target_base is not None else target_share,
            target_base=inv.target_base,
            min_share=inv.min_share,
            max_share=inv.max_share,
            skew_strength=inv.skew_strength,
            min_base=inv.min_base,
            max_base=inv.max_base,
        )
        if not exact_model:
            return params
        return replace(
            params,
            target_share=None,
            target_base=Decimal(0),
            min_share=None,
            max_share=None,
            enforce_balances=False,
            post_only_guard=False,
            enforce_min_notional=False,
        )


@dataclass(frozen=True, slots=True)
class RefreshParams:
    """When resting orders are kept or replaced (see :func:`kasmm.core.reconcile.reconcile`)."""

    tolerance_bps: float
    max_order_age_s: float
    min_requote_interval_s: float
    levels: int

    @classmethod
    def from_profile(
        cls, profile: Profile, *, mode: ModeName | None = None, exact_model: bool = False
    ) -> RefreshParams:
        """Refresh settings of ``profile`` with the level count of its active mode (or ``mode``).

        ``exact_model`` (the as2008 market): the model's trader requotes from the new mid at
        every step, so no tolerance and no minimum requote interval apply there.
        """
        refresh = profile.refresh
        return cls(
            tolerance_bps=0.0 if exact_model else refresh.tolerance_bps,
            max_order_age_s=refresh.max_order_age_s,
            min_requote_interval_s=0.0 if exact_model else refresh.min_requote_interval_s,
            levels=_mode(profile, mode).levels,
        )


def _mode(profile: Profile, mode: ModeName | None) -> ModeConfig:
    if mode is None:
        return profile.active_mode
    return profile.modes.aggressive if mode == "aggressive" else profile.modes.passive
