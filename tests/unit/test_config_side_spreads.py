"""Per-side spreads stand for the total spread, and survive a profile's round trip."""

from __future__ import annotations

from kasmm.config.schema import Profile
from kasmm.config.to_core import quoting_params
from tests.support import demo_profile

SIDES = {"spread_bps": None, "bid_spread_bps": 10, "ask_spread_bps": 30}


def test_side_spreads_set_the_total_and_the_bid_fraction() -> None:
    profile = demo_profile(modes={"passive": SIDES})
    params = quoting_params(profile, mode="passive")
    assert (params.spread_bps, params.bid_fraction) == (40.0, 0.25)
    assert quoting_params(profile, mode="aggressive").bid_fraction == 0.5


def test_a_profile_with_side_spreads_validates_again_from_its_dump() -> None:
    # Backtest overrides, test helpers and reloads rebuild a profile from its dump, which
    # carries spread_bps (the sum) beside the two sides.
    profile = demo_profile(modes={"passive": SIDES})
    again = Profile.model_validate(profile.model_dump(mode="json"))
    assert again == profile
