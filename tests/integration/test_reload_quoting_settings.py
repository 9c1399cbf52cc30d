"""A reload applies issue 19's settings: an edited setting restarts the profile with a bot built
from the new file; a respelling of the same value leaves the running bot alone."""

from __future__ import annotations

import textwrap
from pathlib import Path

import anyio
import pytest

from kasmm.clock import Clock
from kasmm.config.schema import Profile, SimVenueConfig
from kasmm.config.to_core import after_fill_params, price_band_params, quoting_params
from kasmm.core.params import AfterFillParams, PriceBandParams
from kasmm.limiter import TokenBucket
from kasmm.supervisor import Supervisor
from kasmm.venues.base import Venue
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.sim import SimVenue
from tests.support import eventually

pytestmark = pytest.mark.anyio

#: A calm sim market: it never moves nor trades, so the bot is left alone after its first round.
HEAD = textwrap.dedent(
    """\
    name: p
    venue:
      type: sim
      market: {sigma_bps: 0.000001, taker_rate_per_s: 0.000000001, book_interval_s: 0.05}
    symbol: KAS/USDT
    kill_switch: {stale_book: null}
    refresh: {fallback_interval_s: 0.2}
    """
)
BEFORE = HEAD + "modes:\n  passive: {spread_bps: 20, size: 1000, level_size_step: '10%'}\n"
#: The same profile, respelled: the step's spaces, and the new blocks written at their defaults.
RESPELLED = (
    HEAD
    + "modes:\n  passive: {spread_bps: 20, size: 1000, level_size_step: ' 10 % '}\n"
    + "pricing: {add_fees: false, price_band: null}\n"
    + "after_fill: {filled_order_delay_s: 0, hanging_orders: {enabled: false}}\n"
)
AFTER = (
    HEAD
    + "modes:\n  passive: {bid_spread_bps: 5, ask_spread_bps: 35, size: 1000}\n"
    + "pricing: {price_band: {band_pct: 5}}\n"
    + "after_fill: {filled_order_delay_s: 30, hanging_orders: {enabled: true, cancel_pct: 2}}\n"
)


def write(directory: Path, text: str) -> None:
    tmp = directory / ".p.tmp"
    tmp.write_text(text)
    tmp.replace(directory / "p.yaml")  # editors save by atomic rename


async def own_spread(venue: SimVenue) -> float:
    orders = await venue.fetch_open_orders()
    bid = max(o.price for o in orders if o.side.value == "buy")
    ask = min(o.price for o in orders if o.side.value == "sell")
    return float(ask - bid)


async def test_an_edited_setting_restarts_the_profile_and_a_respelling_does_not(
    tmp_path: Path,
) -> None:
    venues: list[SimVenue] = []

    def factory(profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
        assert isinstance(profile.venue, SimVenueConfig)
        venues.append(SimVenue(profile.venue, profile.symbol, clock))
        return RateLimitedVenue(venues[-1], limiter)

    write(tmp_path, BEFORE)
    sup = Supervisor(tmp_path, venue_factory=factory)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await eventually(lambda: venues[-1].open_order_count == 2)
        narrow = await own_spread(venues[-1])

        write(tmp_path, RESPELLED)
        result = await sup.reload()
        assert (result.restarted, result.unchanged) == ([], ["p"])
        assert len(venues) == 1

        write(tmp_path, AFTER)
        result = await sup.reload()
        assert result.restarted == ["p"]
        assert venues[0].open_order_count == 0  # the old bot's orders went with it
        await eventually(lambda: len(venues) == 2 and venues[-1].open_order_count == 2)
        bot = sup.slots["p"].bot
        assert bot is not None
        profile = bot.engine.profile
        params = quoting_params(profile, mode=bot.mode)
        assert (params.spread_bps, params.bid_fraction) == (40.0, 5 / 40)
        assert after_fill_params(profile) == AfterFillParams(
            filled_order_delay_s=30.0, hanging=True, hanging_cancel_pct=2.0
        )
        assert price_band_params(profile) == PriceBandParams(band_pct=5.0)
        assert await own_spread(venues[-1]) > 1.5 * narrow  # 40 bps in all, where it was 20
        tg.cancel_scope.cancel()
    assert all(v.open_order_count == 0 for v in venues)
