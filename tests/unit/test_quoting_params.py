"""QuotingParams / RefreshParams built from profiles."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kasmm.config.schema import Profile, RollingHorizon, SessionEndHorizon
from kasmm.core.params import QuotingParams, RefreshParams, VolatilityParams

D = Decimal


def profile(**overrides: Any) -> Profile:
    data: dict[str, Any] = {
        "name": "kas-test",
        "venue": {"type": "sim"},
        "symbol": "KAS/USDT",
        "modes": {
            "aggressive": {"spread_bps": 10, "size": "2000", "levels": 3, "level_step_bps": 4},
            "passive": {"spread_bps": 40, "size": "100", "size_unit": "quote"},
        },
        "refresh": {"tolerance_bps": 3, "max_order_age_s": 120, "min_requote_interval_s": 0.5},
    }
    data.update(overrides)
    return Profile.model_validate(data)


AS_STRATEGY = {
    "type": "avellaneda_stoikov",
    "gamma": 0.1,
    "kappa": 1.5,
    "sigma": 2.0,
    "min_spread_bps": 3,
    "horizon": {"type": "session_end", "end": "16:00", "timezone": "America/New_York"},
}


def test_fixed_spread_profile_flattens_the_active_mode() -> None:
    p = QuotingParams.from_profile(profile())
    assert (p.strategy, p.spread_bps, p.size, p.size_unit) == (
        "fixed_spread",
        40.0,
        D(100),
        "quote",
    )
    assert (p.levels, p.level_step_bps) == (1, 5.0)
    assert (p.volatility, p.gamma, p.kappa, p.sigma, p.horizon) == (None, None, None, None, None)
    assert (p.target_share, p.target_base, p.min_share, p.max_share) == (0.5, None, 0.1, 0.9)
    assert (p.enforce_balances, p.post_only_guard, p.enforce_min_notional) == (True, True, True)
    assert p.estimator_halflife_s is None


@pytest.mark.parametrize(
    ("mode", "spread", "levels"), [("aggressive", 10.0, 3), ("passive", 40.0, 1)]
)
def test_mode_override(mode: Any, spread: float, levels: int) -> None:
    p = QuotingParams.from_profile(profile(mode="passive"), mode=mode)
    assert (p.spread_bps, p.levels) == (spread, levels)
    assert RefreshParams.from_profile(profile(), mode=mode).levels == levels


def test_active_mode_is_used_by_default() -> None:
    p = QuotingParams.from_profile(profile(mode="aggressive"))
    assert (p.spread_bps, p.size, p.levels, p.level_step_bps) == (10.0, D(2000), 3, 4.0)


def test_volatility_and_inventory_fields() -> None:
    prof = profile(
        strategy={"type": "fixed_spread", "volatility": {"halflife_s": 30, "cap_bps": 90}},
        inventory={
            "target_base": "25000",
            "min_share": 0.2,
            "max_share": 0.7,
            "skew_strength": 2,
            "min_base": "1000",
            "max_base": "90000",
        },
    )
    p = QuotingParams.from_profile(prof)
    assert p.volatility == VolatilityParams(halflife_s=30, horizon_s=10, multiplier=1, cap_bps=90)
    assert (p.target_share, p.target_base) == (None, D(25000))
    assert (p.min_share, p.max_share, p.skew_strength) == (0.2, 0.7, 2.0)
    assert (p.min_base, p.max_base) == (D(1000), D(90000))
    assert p.estimator_halflife_s == 30


def test_explicit_target_share() -> None:
    p = QuotingParams.from_profile(profile(inventory={"target_share": 0.3}))
    assert (p.target_share, p.target_base) == (0.3, None)


def test_avellaneda_stoikov_profile() -> None:
    p = QuotingParams.from_profile(profile(strategy=AS_STRATEGY))
    assert (p.strategy, p.gamma, p.kappa, p.sigma, p.min_spread_bps) == (
        "avellaneda_stoikov",
        0.1,
        1.5,
        2.0,
        3.0,
    )
    assert isinstance(p.horizon, SessionEndHorizon)
    assert p.estimator_halflife_s is None  # sigma is fixed


def test_as_without_sigma_needs_the_estimator() -> None:
    strategy = {"type": "avellaneda_stoikov", "gamma": 0.1, "kappa": 1.5, "sigma_halflife_s": 20}
    p = QuotingParams.from_profile(profile(strategy=strategy))
    assert p.sigma is None
    assert p.estimator_halflife_s == 20
    assert isinstance(p.horizon, RollingHorizon)


def test_exact_model_switches_off_the_practical_checks() -> None:
    prof = profile(strategy=AS_STRATEGY, inventory={"target_share": 0.4, "max_base": "10"})
    p = QuotingParams.from_profile(prof, exact_model=True)
    assert (p.target_share, p.target_base, p.min_share, p.max_share) == (None, D(0), None, None)
    assert (p.enforce_balances, p.post_only_guard, p.enforce_min_notional) == (False, False, False)
    assert (p.gamma, p.kappa, p.sigma) == (0.1, 1.5, 2.0)
    assert p.max_base == D(10)  # explicit absolute caps still apply


def test_refresh_params() -> None:
    r = RefreshParams.from_profile(profile(mode="aggressive"))
    assert r == RefreshParams(
        tolerance_bps=3.0, max_order_age_s=120.0, min_requote_interval_s=0.5, levels=3
    )


def test_exact_model_requotes_every_step() -> None:
    from kasmm.config.schema import Profile
    from kasmm.core.params import RefreshParams

    profile = Profile.model_validate(
        {
            "name": "p",
            "venue": {"type": "sim", "market": {"model": "as2008"}},
            "symbol": "KAS/USDT",
            "modes": {
                "aggressive": {"spread_bps": 1, "size": 1},
                "passive": {"spread_bps": 1, "size": 1},
            },
            "refresh": {"tolerance_bps": 5, "min_requote_interval_s": 0.25},
        }
    )
    live = RefreshParams.from_profile(profile)
    exact = RefreshParams.from_profile(profile, exact_model=True)
    assert (live.tolerance_bps, live.min_requote_interval_s) == (5, 0.25)
    assert (exact.tolerance_bps, exact.min_requote_interval_s) == (0, 0)
