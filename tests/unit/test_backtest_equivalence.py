"""The backtest runs the production engine: same events in, same decisions and requests out.

1. A backtest path runs (``kasmm.backtest.engine.build_path``: the synchronous
   ``BacktestDriver`` around the bot's ``Engine``, ``BacktestClock``, lean bucket, no event loop)
   on a market with fills, post-only rejections, balance syncs and kill-switch checks. An
   observer logs every venue request with its virtual time and answer, and every event with the
   decision the engine took on it.
2. The async bot (``kasmm.bot.Bot``, what ``kasmm run`` and the supervisor run), of the same
   profile, runs in the **real-time** configuration: a clock that is not virtual (so ``Bot`` uses
   its pump task, channel and book coalescing), the production ``TokenBucket`` with its lock, and
   the ``TimeoutVenue`` deadline wrapper that ``build_venue`` puts around a simulated venue. Its
   venue is scripted: it replays the recorded events, each at its recorded time (the next one
   only after the bot has handled the previous one, as a live venue would deliver a quiet
   stream), and answers each request from the recording after checking that it is exactly the
   recorded request, at the recorded time.

Every decision, every request, every fill and the final inventory, PnL and counters must be
identical, on every market model (random walk, as2008, replay).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import pytest

from kasmm.backtest.driver import BacktestDriver, Request
from kasmm.backtest.engine import PathSpec, backtest_profile, build_path
from kasmm.backtest.overrides import apply_overrides
from kasmm.bot import Bot
from kasmm.config.loader import load_file
from kasmm.config.schema import Profile, SimVenueConfig
from kasmm.core.quoting import QuoteDecision
from kasmm.core.types import (
    Balances,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderFilled,
    OrderRequest,
    VenueEvent,
)
from kasmm.limiter import TokenBucket
from kasmm.venues.base import BatchLimits, CancelOutcome, IocOutcome, PlaceOutcome
from kasmm.venues.guard import TimeoutVenue
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.sim.replay_format import scan
from tests.support import demo_profile

pytestmark = pytest.mark.anyio
T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "replay_sample.csv"


Call = Request
Trace = list[tuple[float, VenueEvent, QuoteDecision | None]]


class Recorder:
    """Records what the backtest driver did (its ``Observer``)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.trace: Trace = []

    def request(self, request: Request) -> None:
        self.calls.append(request)

    def handled(self, at: float, event: VenueEvent, decision: QuoteDecision | None) -> None:
        self.trace.append((at, event, decision))


class ScriptedClock:
    """Real-time semantics (``is_virtual`` False) at times the script sets."""

    is_virtual = False

    def __init__(self, start: float) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        self.t = max(self.t, deadline)
        await anyio.lowlevel.checkpoint()


@dataclass
class ScriptedVenue:
    """Replays recorded events and answers recorded requests, checking each one."""

    clock: ScriptedClock
    events_script: list[tuple[float, VenueEvent]]
    calls: list[Call]
    on_done: Callable[[], None] = lambda: None
    name: str = "sim"
    served: int = 0
    delivered: int = 0
    _acked: anyio.Event = field(default_factory=anyio.Event)

    def ack(self) -> None:
        """The bot has handled the last event delivered."""
        self._acked.set()

    def _answer(self, method: str, arg: Any) -> Any:
        assert self.served < len(self.calls), f"unexpected extra request {method}({arg!r})"
        expected = self.calls[self.served]
        self.served += 1
        got = (method, arg, self.clock.now())
        assert got == (expected.method, expected.arg, expected.at), (
            f"request {self.served}: {got} != recorded {expected}"
        )
        if expected.error is not None:
            raise expected.error
        return expected.result

    async def connect(self) -> MarketRules:
        result: MarketRules = self._answer("connect", None)
        return result

    async def close(self) -> None:
        pass

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        for i, (ts, event) in enumerate(self.events_script):
            if i:
                await self._acked.wait()
                self._acked = anyio.Event()
            self.clock.t = ts
            self.delivered += 1
            yield event
        await self._acked.wait()
        self.on_done()
        await anyio.sleep_forever()

    async def fetch_balances(self) -> Balances:
        result: Balances = self._answer("fetch_balances", None)
        return result

    async def fetch_open_orders(self) -> list[OpenOrder]:
        result: list[OpenOrder] = self._answer("fetch_open_orders", None)
        return result

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        result: OpenOrder = self._answer("place_order", request)
        return result

    async def place_ioc(self, request: OrderRequest) -> IocOutcome:
        result: IocOutcome = self._answer("place_ioc", request)
        return result

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        self._answer("cancel_order", client_id)

    async def cancel_all(self, prefix: str) -> int:
        result: int = self._answer("cancel_all", prefix)
        return result

    @property
    def batch_limits(self) -> BatchLimits:
        return BatchLimits()

    async def place_orders(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        result: list[PlaceOutcome] = self._answer("place_orders", tuple(requests))
        return result

    async def cancel_orders(self, client_ids: Sequence[ClientOrderId]) -> list[CancelOutcome]:
        result: list[CancelOutcome] = self._answer("cancel_orders", tuple(client_ids))
        return result


def trace_events(
    bot: Bot, now: Callable[[], float], trace: Trace, after: Callable[[], None]
) -> None:
    """Log (time, event, decision) once the bot has handled each event (its ``on_handled``)."""

    def traced(event: VenueEvent) -> None:
        trace.append((now(), event, bot.last_decision))
        after()

    bot.on_handled = traced


def busy_profile(book_update: str = "incremental") -> Profile:
    """The demo profile on a lively market: fills both ways, requotes, balance syncs; on the
    random walk's ``book_update`` model (version 2, the default, or version 1)."""
    loaded, issues = load_file(ROOT / "profiles" / "kas-usdt-sim.yaml")
    assert not issues
    profile = backtest_profile(loaded[0].profile, "random_walk")
    return apply_overrides(
        profile,
        {
            "venue.seed": 5,
            "venue.market.book_update": book_update,
            "venue.market.sigma_bps": 6,
            "venue.market.taker_rate_per_s": 4,
            "venue.market.book_level_size": 1500,
            "venue.market.taker_size_mean": 4000,
            "refresh.tolerance_bps": 1,
            "refresh.fallback_interval_s": 300,  # real time: never while the test runs
            "rate_limit.capacity": 1_000_000,
            "rate_limit.refill_per_s": 1_000_000,
        },
    )


def as_profile() -> Profile:
    """Avellaneda–Stoikov with T - t counting down to the end of the run, on as2008."""
    return Profile.model_validate(
        {
            "name": "as",
            "venue": {"type": "sim", "market": {"model": "as2008"}, "seed": 3},
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
                "horizon": {"type": "session_end"},
            },
            "refresh": {
                "tolerance_bps": 0,
                "min_requote_interval_s": 0,
                "fallback_interval_s": 300,
            },
            "kill_switch": {"stale_book": None},
            "rate_limit": {"capacity": 1_000_000, "refill_per_s": 1_000_000},
        }
    )


async def run_both(
    profile: Profile, market: str, horizon: float | None, data: Path | None = None
) -> tuple[BacktestDriver, Bot, Trace, list[Call]]:
    """Run ``profile`` as a backtest path, then as a real-time bot on the recording."""
    assert isinstance(profile.venue, SimVenueConfig)
    start = 0.0 if data is None else scan(data).first_ts
    end = None if horizon is None else start + horizon
    spec = PathSpec(
        run=0,
        index=0,
        seed=profile.venue.seed,
        profile=profile,
        market=market,  # type: ignore[arg-type]
        data=None if data is None else str(data),
        queue_position="back",
        start=start,
        end=None if end is None else end + 1e-9,
        session_end=end,
        unlimited=False,
        log_level=40,
    )
    recorder = Recorder()
    bot = build_path(spec, observer=recorder)
    bot.run()
    backtest_trace = recorder.trace

    rt_clock = ScriptedClock(start)
    scripted = ScriptedVenue(rt_clock, [(t, e) for t, e, _ in backtest_trace], recorder.calls)
    limiter = TokenBucket(profile.rate_limit.capacity, profile.rate_limit.refill_per_s, rt_clock)
    venue = RateLimitedVenue(TimeoutVenue(scripted, 5.0), limiter)
    # The same run tag: identical requests down to the client ids.
    rt_bot = Bot(profile, venue, clock=rt_clock, session_end=end, run_tag=bot.run_tag)
    assert not rt_bot.clock.is_virtual
    rt_trace: Trace = []
    trace_events(rt_bot, rt_clock.now, rt_trace, scripted.ack)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            scripted.on_done = tg.cancel_scope.cancel
            tg.start_soon(rt_bot.run)

    assert scripted.delivered == len(backtest_trace)
    assert scripted.served == len(recorder.calls)  # every request, shutdown's included
    assert len(rt_trace) == len(backtest_trace)
    for n, (virtual, real) in enumerate(zip(backtest_trace, rt_trace, strict=True)):
        assert virtual == real, f"event {n} differs"
    rt_view, view = rt_bot.view(), bot.view()
    assert rt_view.counters == view.counters
    assert rt_view.pnl == view.pnl
    assert (rt_view.inventory_base, rt_view.inventory_quote) == (
        view.inventory_base,
        view.inventory_quote,
    )
    assert rt_bot.orders_left == bot.orders_left == 0
    return bot, rt_bot, backtest_trace, recorder.calls


@pytest.mark.parametrize("book_update", ["incremental", "regenerate"])
async def test_random_walk_backtest_and_real_time_bot_are_identical(book_update: str) -> None:
    bot, _, trace, calls = await run_both(busy_profile(book_update), "random_walk", 90.0)
    # The scenario exercises the whole data path: fills both ways, requotes, balance syncs.
    fills = sum(1 for _, e, _ in trace if isinstance(e, OrderFilled))
    methods = {c.method for c in calls}
    pnl = bot.view().pnl
    assert fills > 5 and pnl.buy_count > 0 and pnl.sell_count > 0
    # A round's actions go out together (batch calls, concurrent singles inside the sim).
    assert {"connect", "fetch_open_orders", "fetch_balances", "place_orders", "cancel_orders"} <= (
        methods
    )
    view = bot.view()
    assert len(trace) > 1000 and view.counters.orders_placed > 20
    assert view.counters.kill_switch_trips > 0  # the runaway-loop guard pauses it, in both runs
    assert view.inventory_base != Decimal(50000)


async def test_as2008_backtest_and_real_time_bot_are_identical() -> None:
    # T - t comes from session_end (the run's end) in both: the spread narrows to the end.
    bot, _, trace, _ = await run_both(as_profile(), "as2008", 1.0)
    spreads = [d.spread_bps for _, _, d in trace if d is not None and d.spread_bps is not None]
    assert spreads[0] > spreads[-1]
    pnl = bot.view().pnl
    assert pnl.buy_count + pnl.sell_count > 20


async def test_replay_backtest_and_real_time_bot_are_identical() -> None:
    # The whole recorded file: trades through the queue, books moving through the bot's orders.
    profile = backtest_profile(demo_profile(), "replay")
    profile = apply_overrides(
        profile,
        {
            "refresh.fallback_interval_s": 300,
            "rate_limit.capacity": 1_000_000,
            "rate_limit.refill_per_s": 1_000_000,
        },
    )
    bot, _, trace, calls = await run_both(profile, "replay", None, SAMPLE)
    fills = [e for _, e, _ in trace if isinstance(e, OrderFilled)]
    assert len(fills) >= 2 and bot.view().counters.orders_placed > 5
    assert trace[-1][0] >= scan(SAMPLE).last_ts - 1.0  # ran to the end of the data
    assert {"place_orders", "cancel_orders", "cancel_all"} <= {c.method for c in calls}


async def test_issue_19_settings_backtest_and_real_time_bot_are_identical() -> None:
    # Every quoting setting of issue 19 at once, on the busy market: the stages and their
    # engine state (cooldowns, ping-pong, hanging orders, the band's average, rebalance IOCs)
    # must decide the same in the backtest and in the real-time bot.
    profile = apply_overrides(
        busy_profile(),
        {
            "modes.passive.spread_bps": None,
            "modes.passive.bid_spread_bps": 6,
            "modes.passive.ask_spread_bps": 9,
            "modes.passive.level_size_step": "20%",
            "venue.fees.maker_bps": 2,
            "pricing.add_fees": True,
            "pricing.join_depth": 2000,
            "pricing.join_min_spread_bps": 4,
            "pricing.price_band": {"band_pct": 0.5, "halflife_s": 30},
            "after_fill.filled_order_delay_s": 3,
            "after_fill.ping_pong": True,
            "after_fill.hanging_orders": {"enabled": True, "cancel_pct": 0.2},
            "inventory.min_share": 0.49,
            "inventory.max_share": 0.51,
            "inventory.rebalance": {"order": "ioc", "max_size": 3000, "min_interval_s": 10},
        },
    )
    bot, _, trace, calls = await run_both(profile, "random_walk", 90.0)
    fills = [e for _, e, _ in trace if isinstance(e, OrderFilled)]
    reasons = {d.reason for _, _, d in trace if d is not None}
    assert len(fills) > 5
    assert "place_ioc" in {c.method for c in calls}  # a rebalance went out
    assert reasons & {"cooldown", "ping_pong"}  # the after-fill gates acted
    assert bot.engine.shaping.status(90.0) is not None
