"""Issue 19's profile settings: per-side spreads, level size growth, ``pricing:``,
``after_fill:`` and ``inventory.rebalance``, from YAML to the core parameters.

Valid inputs are checked against every core field they flatten into; every refusal against its
exact ``file:line:col: profile: field: message``, through the loader (as ``kasmm validate``
prints it).
"""

from __future__ import annotations

from typing import Any

import pytest

from kasmm.backtest.overrides import apply_overrides
from kasmm.config.schema import Profile
from kasmm.config.to_core import quoting_params
from tests.support import make_profile

SIDES: dict[str, Any] = {"spread_bps": None, "bid_spread_bps": 10, "ask_spread_bps": 30}


# --- a profile with per-side spreads survives a dump and a new validation --------------------


def test_a_mode_with_side_spreads_validates_again_from_its_dump() -> None:
    profile = make_profile(modes={"passive": SIDES})
    again = Profile.model_validate(profile.model_dump(mode="json"))
    assert again == profile and again.config_hash() == profile.config_hash()
    assert "spread_bps" not in profile.model_dump()["modes"]["passive"]


@pytest.mark.parametrize(
    ("overrides", "spread", "fraction"),
    [
        ({"modes.passive.bid_spread_bps": 20}, 50.0, 0.4),
        ({"modes.passive.ask_spread_bps": 10}, 20.0, 0.5),
        ({"modes.passive.size": 500}, 40.0, 0.25),
    ],
)
def test_overrides_of_a_side_spread_profile_re_derive_the_total(
    overrides: dict[str, Any], spread: float, fraction: float
) -> None:
    changed = apply_overrides(make_profile(modes={"passive": SIDES}), overrides)
    params = quoting_params(changed, mode="passive")
    assert (params.spread_bps, params.bid_fraction) == (spread, fraction)
