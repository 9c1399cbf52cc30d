"""From a profile to the core's frozen values: QuotingParams, RefreshParams, RiskLimits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from kasmm.config.schema import Profile
from kasmm.config.to_core import quoting_params, refresh_params, risk_limits
from kasmm.core.params import RefreshParams, RollingHorizon, SessionEndHorizon, VolatilityParams
from kasmm.core.risk import (
    CountLimit,
    DailyLossLimit,
    DrawdownLimit,
    InventoryDeviationLimit,
    MidJumpLimit,
    RiskLimits,
    StaleBookLimit,
)
from tests.support import make_profile

D = Decimal
AS2008 = {"type": "sim", "market": {"model": "as2008"}}


def profile(**overrides: Any) -> Profile:
    return make_profile(
        modes={
            "aggressive": {"spread_bps": 10, "size": "2000", "levels": 3, "level_step_bps": 4},
            "passive": {"spread_bps": 40, "size": "100", "size_unit": "quote"},
        },
        refresh={"tolerance_bps": 3, "max_order_age_s": 120, "min_requote_interval_s": 0.5},
        **overrides,
    )


AS_STRATEGY = {
    "type": "avellaneda_stoikov",
    "gamma": 0.1,
    "kappa": 1.5,
    "sigma": 2.0,
    "min_spread_bps": 3,
    "horizon": {"type": "session_end", "end": "16:00", "timezone": "America/New_York"},
}


# --- QuotingParams -------------------------------------------------------------------------


def test_fixed_spread_profile_flattens_the_active_mode() -> None:
    p = quoting_params(profile())
    assert (p.strategy, p.spread_bps, p.size, p.size_unit) == (
        "fixed_spread",
        40.0,
        D(100),
        "quote",
    )
    assert (p.levels, p.level_step_bps) == (1, 5.0)
    assert (p.volatility, p.gamma, p.kappa, p.sigma, p.horizon) == (None, None, None, None, None)
    assert (p.target_share, p.target_base, p.min_share, p.max_share) == (0.5, None, 0.1, 0.9)
    assert (p.balances_known, p.post_only_guard, p.enforce_min_notional) == (True, True, True)
    assert p.allow_locked_book is False
    assert p.estimator_halflife_s is None


@pytest.mark.parametrize(
    ("mode", "spread", "levels"), [("aggressive", 10.0, 3), ("passive", 40.0, 1)]
)
def test_mode_override(mode: Any, spread: float, levels: int) -> None:
    p = quoting_params(profile(mode="passive"), mode=mode)
    assert (p.spread_bps, p.levels) == (spread, levels)
    assert refresh_params(profile(), mode=mode).levels == levels


def test_active_mode_is_used_by_default() -> None:
    p = quoting_params(profile(mode="aggressive"))
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
    p = quoting_params(prof)
    assert p.volatility == VolatilityParams(halflife_s=30, horizon_s=10, multiplier=1, cap_bps=90)
    assert (p.target_share, p.target_base) == (None, D(25000))
    assert (p.min_share, p.max_share, p.skew_strength) == (0.2, 0.7, 2.0)
    assert (p.min_base, p.max_base) == (D(1000), D(90000))
    assert p.estimator_halflife_s == 30


def test_explicit_target_share() -> None:
    p = quoting_params(profile(inventory={"target_share": 0.3}))
    assert (p.target_share, p.target_base) == (0.3, None)


def test_avellaneda_stoikov_profile() -> None:
    p = quoting_params(profile(strategy=AS_STRATEGY))
    assert (p.strategy, p.gamma, p.kappa, p.sigma, p.min_spread_bps) == (
        "avellaneda_stoikov",
        0.1,
        1.5,
        2.0,
        3.0,
    )
    # The "HH:MM" string becomes a time, once, outside the core.
    assert p.horizon == SessionEndHorizon(end=dt.time(16, 0), timezone="America/New_York")
    assert p.estimator_halflife_s is None  # sigma is fixed


def test_as_without_sigma_needs_the_estimator() -> None:
    strategy = {"type": "avellaneda_stoikov", "gamma": 0.1, "kappa": 1.5, "sigma_halflife_s": 20}
    p = quoting_params(profile(strategy=strategy))
    assert p.sigma is None
    assert p.estimator_halflife_s == 20
    assert p.horizon == RollingHorizon(window_s=60.0)


def test_the_as2008_market_switches_off_the_practical_checks() -> None:
    prof = profile(
        venue=AS2008, strategy=AS_STRATEGY, inventory={"target_share": 0.4, "max_base": "10"}
    )
    p = quoting_params(prof)
    assert (p.target_share, p.target_base, p.min_share, p.max_share) == (None, D(0), None, None)
    assert (p.balances_known, p.post_only_guard, p.enforce_min_notional) == (False, False, False)
    assert p.allow_locked_book is True  # the model publishes its mid as a zero-width book
    assert (p.gamma, p.kappa, p.sigma) == (0.1, 1.5, 2.0)
    assert p.max_base == D(10)  # explicit absolute caps still apply


# --- RefreshParams -------------------------------------------------------------------------


def test_refresh_params() -> None:
    r = refresh_params(profile(mode="aggressive"))
    assert r == RefreshParams(
        tolerance_bps=3.0, max_order_age_s=120.0, min_requote_interval_s=0.5, levels=3
    )


def test_the_as2008_market_requotes_every_step() -> None:
    exact = refresh_params(profile(venue=AS2008))
    assert (exact.tolerance_bps, exact.min_requote_interval_s) == (0, 0)
    assert exact.max_order_age_s == 120


# --- RiskLimits ----------------------------------------------------------------------------


def test_default_kill_switch_is_a_stale_book_a_mid_jump_and_an_error_pause() -> None:
    assert risk_limits(profile()) == RiskLimits(
        stale_book=StaleBookLimit(action="pause", pause_s=5.0, seconds=10.0),
        mid_jump=MidJumpLimit(action="pause", pause_s=30.0, pct=5.0),
        max_consecutive_errors=CountLimit(action="pause", pause_s=30.0, count=10),
    )


def test_every_rule_becomes_its_frozen_value() -> None:
    limits = risk_limits(
        profile(
            kill_switch={
                "max_drawdown": {"quote": "5", "pct": 2.5, "action": "pause", "pause_s": 9},
                "max_daily_loss": {"quote": "40", "timezone": "Asia/Tokyo"},
                "max_inventory_deviation": {"share": 0.3},
                "stale_book": None,
                "mid_jump": {"pct": 4, "pause_s": 2},
                "max_consecutive_errors": {"count": 3, "action": "halt"},
                "max_order_actions_per_minute": {"count": 90, "action": "reduce_only"},
            }
        )
    )
    assert limits == RiskLimits(
        max_drawdown=DrawdownLimit(action="pause", pause_s=9.0, quote=D(5), pct=2.5),
        max_daily_loss=DailyLossLimit(action="halt", quote=D(40), timezone="Asia/Tokyo"),
        max_inventory_deviation=InventoryDeviationLimit(action="reduce_only", share=0.3),
        stale_book=None,
        mid_jump=MidJumpLimit(action="pause", pause_s=2.0, pct=4.0),
        max_consecutive_errors=CountLimit(action="halt", count=3),
        max_order_actions_per_minute=CountLimit(action="reduce_only", count=90),
        has_capital=True,
    )


def test_the_as2008_trader_has_no_capital() -> None:
    assert risk_limits(profile(venue=AS2008)).has_capital is False
    assert risk_limits(profile(venue={"type": "sim", "seed": 4})).has_capital is True
