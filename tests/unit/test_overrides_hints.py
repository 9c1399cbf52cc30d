"""``--set`` and ``--sweep`` keys get ``kasmm validate``'s hints (issue 16, point 7)."""

from __future__ import annotations

import pytest

from kasmm.backtest.overrides import OverrideError, apply_overrides
from tests.support import demo_profile


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"modes.pasive.spread_bps": 10},
            "modes.pasive.spread_bps=10: modes.pasive: unknown key 'pasive' (did you mean "
            "'passive'?); allowed: aggressive, passive",
        ),
        (
            {"venue.market.sigma_bp": 3},
            "venue.market.sigma_bp=3: venue.market.sigma_bp: unknown key 'sigma_bp' (did you "
            "mean 'sigma_bps'?); allowed: arbitrage, book_interval_s,",
        ),
        (
            {"strategy.type": "avellaneda_stoikov", "strategy.gamma": 0.1},
            "strategy.kappa: required field is missing",
        ),
        ({"modes.passive.levels": 0}, "modes.passive.levels: Input should be greater than"),
    ],
)
def test_a_wrong_override_says_what_validate_would(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(OverrideError) as info:
        apply_overrides(demo_profile(), overrides)
    assert message in str(info.value)
    assert "Extra inputs are not permitted" not in str(info.value)
