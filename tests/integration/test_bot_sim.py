"""The bot end to end on the simulated venue, in virtual time."""

from __future__ import annotations

import logging
from decimal import Decimal

import anyio
import pytest
import structlog

from kasmm.bot import Bot
from kasmm.clock import VirtualClock
from kasmm.commands.run import RunSummary, run_profile
from kasmm.config.schema import AS2008Market, Profile, SimVenueConfig
from kasmm.core.ids import ClientIdFactory
from kasmm.core.types import ClientOrderId, OrderRequest, Side
from kasmm.limiter import TokenBucket
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.sim import SimVenue
from tests.support import demo_profile


def make_bot(profile: Profile, clock: VirtualClock, stop_at: float | None) -> tuple[Bot, SimVenue]:
    assert isinstance(profile.venue, SimVenueConfig)
    venue = SimVenue(profile.venue, profile.symbol, clock)
    limiter = TokenBucket(profile.rate_limit.capacity, profile.rate_limit.refill_per_s, clock)
    limited = RateLimitedVenue(venue, limiter)
    return Bot(profile, limited, clock=clock, stop_at=stop_at), venue


@pytest.mark.anyio
async def test_demo_profile_trades_both_sides_and_leaves_nothing() -> None:
    summary = await run_profile(demo_profile(), duration=900, clock=VirtualClock(1_000_000.0))
    assert summary.fills_buy > 0 and summary.fills_sell > 0
    assert summary.orders_placed > 0
    assert summary.open_orders_left == 0
    assert summary.final_mid is not None


@pytest.mark.anyio
async def test_pnl_equals_equity_change() -> None:
    clock = VirtualClock(0.0)
    profile = demo_profile()
    bot, venue = make_bot(profile, clock, stop_at=600.0)
    await venue.connect()
    start = await venue.fetch_balances()
    await bot.run()
    await venue.connect()  # the bot closed its venue on the way out; reopen to inspect it
    end = await venue.fetch_balances()
    assert bot.start_mid is not None and bot.book is not None and bot.book.mid is not None
    mid = bot.book.mid
    equity_start = start.total("USDT") + start.total("KAS") * bot.start_mid
    equity_end = end.total("USDT") + end.total("KAS") * mid
    # Average-cost PnL with the opening inventory carried at the first mid is exactly the
    # change in marked equity (fees included), and the bot's inventory is the venue's.
    assert abs(bot.pnl.net(mid) - (equity_end - equity_start)) < Decimal("1e-12")
    assert bot.inventory.base == end.total("KAS")
    assert bot.inventory.quote == end.total("USDT")
    assert venue.open_order_count == 0


@pytest.mark.anyio
async def test_quotes_are_not_replaced_while_market_stays_within_tolerance() -> None:
    calm = {"sigma_bps": 1e-6, "taker_rate_per_s": 1e-9}
    # A market this calm never changes its book, which the stale-book rule (on by default)
    # rightly reads as a dead feed: it is off here, where only the refresh rule is under test.
    profile = demo_profile(
        venue={"market": calm},
        strategy={"volatility": None},
        kill_switch={"stale_book": None},
    )
    clock = VirtualClock(0.0)
    bot, venue = make_bot(profile, clock, stop_at=120.0)
    await bot.run()
    levels = profile.active_mode.levels
    # One placement round (both sides, every level), then nothing until shutdown's cancels.
    assert bot.stats.orders_placed == 2 * levels
    assert bot.stats.quotes_sent == 1
    assert bot.stats.decisions > 1000
    assert venue.open_order_count == 0


@pytest.mark.anyio
async def test_same_seed_same_run() -> None:
    async def once() -> RunSummary:
        return await run_profile(demo_profile(), duration=300, clock=VirtualClock(5_000.0))

    first, second = await once(), await once()
    assert first == second


@pytest.mark.anyio
async def test_startup_cancels_own_leftovers_and_never_touches_foreign_orders() -> None:
    clock = VirtualClock(0.0)
    profile = demo_profile()
    bot, venue = make_bot(profile, clock, stop_at=30.0)
    await venue.connect()
    prefix = profile.client_id_prefix
    # A previous run's order, and one of a profile whose prefix merely starts with ours.
    leftover = ClientIdFactory(prefix).next()
    sibling = ClientIdFactory(prefix + "1").next()
    # An older kasmm's id (no delimiter: prefix, 5-char run tag, sequence), left by a crash.
    legacy = prefix + "0a1b2" + "3"
    for cid in (leftover, "human1", sibling, legacy):
        await venue.place_order(
            OrderRequest(ClientOrderId(cid), Side.BUY, Decimal("0.07"), Decimal(100))
        )
    await bot.run()
    await venue.connect()  # the bot closed its venue on the way out; reopen to inspect it
    remaining = {o.client_id for o in await venue.fetch_open_orders()}
    assert remaining == {"human1", sibling}


@pytest.mark.anyio
async def test_as2008_market_runs_the_avellaneda_stoikov_bot_flat_start() -> None:
    profile = Profile.model_validate(
        {
            "name": "as",
            "venue": {"type": "sim", "market": {"model": "as2008", "dt": 0.005}, "seed": 7},
            "symbol": "KAS/USDT",
            "modes": {
                "aggressive": {"spread_bps": 1, "size": 1},
                "passive": {"spread_bps": 1, "size": 1},
            },
            "strategy": {
                "type": "avellaneda_stoikov",
                "gamma": 0.1,
                "kappa": 1.5,
                "sigma": 2,
                "horizon": {"type": "rolling", "window_s": 1},
            },
            "refresh": {"tolerance_bps": 0, "min_requote_interval_s": 0},
            "kill_switch": {"stale_book": None},
            # The model has no rate limit: 4 actions per 5 ms step must never wait.
            "rate_limit": {"capacity": 1e6, "refill_per_s": 1e9},
        }
    )
    assert isinstance(profile.venue, SimVenueConfig)
    assert isinstance(profile.venue.market, AS2008Market)
    clock = VirtualClock(0.0)
    bot, venue = make_bot(profile, clock, stop_at=1.0)  # 200 steps of 0.005 s
    await bot.run()
    assert bot.stats.book_updates >= 200
    assert bot.pnl.buy_count + bot.pnl.sell_count > 10
    # Flat start: inventory is exactly the sum of fills (may be negative), cash likewise.
    assert bot.inventory.base == bot.pnl.buy_volume - bot.pnl.sell_volume
    assert venue.open_order_count == 0


@pytest.mark.anyio
async def test_cancelled_bot_still_cancels_its_orders() -> None:
    clock = VirtualClock(0.0)
    bot, venue = make_bot(demo_profile(), clock, stop_at=None)
    async with anyio.create_task_group() as tg:
        await tg.start(bot.run)
        assert venue.open_order_count > 0
        tg.cancel_scope.cancel()
    assert venue.open_order_count == 0
    assert bot.orders_left == 0


@pytest.mark.anyio
@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO])
async def test_debug_events_are_built_only_for_a_logger_that_emits_them(level: int) -> None:
    # The engine builds no events below the bot's logger's level; what is logged is unchanged.
    previous = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
    try:
        with structlog.testing.capture_logs() as logs:
            clock = VirtualClock(0.0)
            bot, _ = make_bot(demo_profile(), clock, stop_at=60.0)
            await bot.run()
    finally:
        structlog.configure(**previous)
    placed = [e for e in logs if e["event"] == "order_placed"]
    assert bot.engine.orders.debug_logs is (level == logging.DEBUG)
    assert bot.stats.orders_placed > 0
    assert len(placed) == (bot.stats.orders_placed if level == logging.DEBUG else 0)
