"""Order churn: kasmm's reconciling bot against a naive cancel-and-replace market maker.

Both trade the same ``random_walk`` market (same seed, so the same mid path and the same taker
arrivals; fills differ only through the bots' own orders) in virtual time, with the same quotes:
both price with kasmm's quoting core (``compute_quotes``: the profile's spread, size, one level,
inventory skew), so the only difference is how the quotes are kept on the book.

* **kasmm**: the production engine (``kasmm.backtest.engine.build_path``): it reacts to every
  book update and fill, and the reconciler only sends cancels and places when a live order has
  drifted beyond ``refresh.tolerance_bps``, aged out, or changed size.
* **naive**: what a simple market maker does every ``--cycles`` seconds: fetch the order book
  (one request), cancel each of its orders (one request each), place a fresh bid and ask (one
  request each). It is a small loop on the same ``SimVenue`` and the same token bucket.

Both draw from the profile's token bucket (20 burst, 10/s by default): a budget that binds
delays requests, in virtual time. Measured per hour of market time:

* **order actions/h**: place + cancel requests the venue received;
* **tokens/h**: rate-limit weight drawn (every request, the naive loop's book fetches included);
* **quote distance**: every second, for each side, ``|live price - desired price|`` in bps of
  the desired price, averaged; the desired quote is ``compute_quotes`` on the market book at that
  second (other traders' liquidity) and the bot's balances then, the same function for both
  bots; ``missing``: share of side-samples where a desired quote had no live order;
* fills, volume and PnL marked to the final mid.

    .venv/bin/python bench/churn.py [--hours 1] [--cycles 1,0.25] [--spread-bps 20] [--seed 3]

Figures only (a table and a JSON line); nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anyio
from _common import machine_facts, print_json_line, print_table

from kasmm.backtest.driver import Request
from kasmm.backtest.engine import PathSpec, build_path
from kasmm.backtest.plumbing import BacktestBucket, BacktestClock, HorizonReached
from kasmm.config.schema import Profile, SimVenueConfig
from kasmm.config.to_core import quoting_params
from kasmm.core.params import QuotingParams
from kasmm.core.pnl import PnlState, apply_fill
from kasmm.core.quoting import MarketState, QuoteDecision, compute_quotes, exclude_own
from kasmm.core.types import (
    Book,
    BookUpdated,
    ClientOrderId,
    OpenOrder,
    OrderFilled,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.errors import OrderNotFound, VenueError
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.sim import SimVenue


def churn_profile(seed: int, spread_bps: float, size: int, tolerance_bps: float) -> Profile:
    """Fixed spread, one level, the demo market; only the tolerance varies between runs."""
    return Profile.model_validate(
        {
            "name": "churn",
            "venue": {"type": "sim", "market": {"model": "random_walk"}, "seed": seed},
            "symbol": "KAS/USDT",
            "modes": {
                "aggressive": {"spread_bps": spread_bps, "size": size, "levels": 1},
                "passive": {"spread_bps": spread_bps, "size": size, "levels": 1},
            },
            "strategy": {"type": "fixed_spread"},
            "refresh": {"tolerance_bps": tolerance_bps},
            "kill_switch": {"stale_book": None},
        }
    )


@dataclass
class Distance:
    """Quote distance samples."""

    total_bps: float = 0.0
    sides: int = 0
    missing: int = 0
    samples: int = 0

    @property
    def mean_bps(self) -> float:
        return self.total_bps / self.sides if self.sides else math.nan

    @property
    def missing_share(self) -> float:
        return self.missing / (self.sides + self.missing) if self.sides + self.missing else 0.0


@dataclass
class Sampler:
    """Venue wrapper (directly on the ``SimVenue``) sampling quote distance every second.

    The state a sample sees is the one after the bot has handled the last event before the
    sample time: the market book then, the bot's live orders and balances then.
    """

    inner: SimVenue
    clock: BacktestClock
    params: QuotingParams
    distance: Distance = field(default_factory=Distance)
    book: Book | None = None
    next_sample: float = 1.0

    @property
    def name(self) -> str:
        return self.inner.name

    def __getattr__(self, item: str) -> Any:  # requests pass straight through
        return getattr(self.inner, item)

    async def _state(self) -> tuple[Book | None, list[OpenOrder], Any]:
        return self.book, await self.inner.fetch_open_orders(), await self.inner.fetch_balances()

    def _sample(self, at: float, state: tuple[Book | None, list[OpenOrder], Any]) -> None:
        book, live, balances = state
        if book is None:
            return
        rules = self.inner.rules
        market = MarketState(
            now=at,
            book=exclude_own(book, live),
            rules=rules,
            balances=balances,
            sigma=None,
            time_left_s=0.0,
        )
        desired = compute_quotes(self.params, market).quotes
        self.distance.samples += 1
        for side in Side:
            want = desired.side(side)
            if not want:
                continue
            mine = [o.price for o in live if o.side is side]
            if not mine:
                self.distance.missing += 1
                continue
            best = max(mine) if side is Side.BUY else min(mine)
            target = want[0].price
            self.distance.total_bps += float(abs(best - target) / target) * 1e4
            self.distance.sides += 1

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        state = await self._state()
        try:
            async for event in self.inner.events():
                now = self.clock.now()
                while self.next_sample <= now:
                    self._sample(self.next_sample, state)
                    self.next_sample += 1.0
                if isinstance(event, BookUpdated):
                    self.book = event.book
                yield event
                state = await self._state()
        except HorizonReached:
            return


@dataclass
class Outcome:
    name: str
    hours: float
    places: int
    cancels: int
    tokens: float
    waited_s: float
    distance: Distance
    fills_buy: int
    fills_sell: int
    volume: float
    pnl: float
    cpu_s: float

    def row(self) -> list[Any]:
        return [
            self.name,
            (self.places + self.cancels) / self.hours,
            self.tokens / self.hours,
            self.waited_s,
            self.distance.mean_bps,
            self.distance.missing_share * 100,
            self.fills_buy,
            self.fills_sell,
            self.volume,
            self.pnl,
        ]

    def json(self) -> dict[str, Any]:
        return {
            "order_actions_per_h": (self.places + self.cancels) / self.hours,
            "places": self.places,
            "cancels": self.cancels,
            "tokens_per_h": self.tokens / self.hours,
            "rate_limit_wait_s": self.waited_s,
            "quote_distance_bps": self.distance.mean_bps,
            "quote_missing_share": self.distance.missing_share,
            "distance_samples": self.distance.samples,
            "fills_buy": self.fills_buy,
            "fills_sell": self.fills_sell,
            "volume_base": self.volume,
            "pnl": self.pnl,
            "cpu_s": self.cpu_s,
        }


class DriverSampler:
    """The sampler as the backtest driver's observer: the same samples, taken from the state
    the bot left after each event (its book, its live orders and balances at the venue)."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self.state: tuple[Book | None, list[OpenOrder], Any] | None = None

    def request(self, request: Request) -> None:
        pass

    def handled(self, at: float, event: VenueEvent, decision: QuoteDecision | None) -> None:
        sampler = self.sampler
        if self.state is not None:
            while sampler.next_sample <= at:
                sampler._sample(sampler.next_sample, self.state)
                sampler.next_sample += 1.0
        if isinstance(event, BookUpdated):
            sampler.book = event.book
        sim = sampler.inner
        self.state = (sampler.book, sim.exchange.open_orders_now(), sim.exchange.balances_now())


def run_kasmm(profile: Profile, horizon: float) -> Outcome:
    """The production engine, as the backtest builds it, with the sampler watching it."""
    assert isinstance(profile.venue, SimVenueConfig)
    spec = PathSpec(
        run=0,
        index=0,
        seed=profile.venue.seed,
        profile=profile,
        market="random_walk",
        data=None,
        queue_position="back",
        start=0.0,
        end=horizon,
        session_end=horizon,
        unlimited=False,
        log_level=40,
    )
    cpu = time.process_time()
    driver = build_path(spec)
    sampler = Sampler(driver.sim, driver.clock, quoting_params(profile))
    driver.observer = DriverSampler(sampler)
    driver.run()
    stats = driver.sim.stats
    view = driver.view()
    mid = view.mid
    assert mid is not None
    pnl = view.pnl
    return Outcome(
        f"kasmm tolerance {profile.refresh.tolerance_bps:g} bps",
        horizon / 3600,
        stats.places,
        stats.cancels,
        driver.bucket.spent,
        driver.bucket.waited_s,
        sampler.distance,
        pnl.buy_count,
        pnl.sell_count,
        float(pnl.buy_volume + pnl.sell_volume),
        float(pnl.net(mid)),
        time.process_time() - cpu,
    )


async def run_naive(profile: Profile, horizon: float, cycle_s: float) -> Outcome:
    """Every ``cycle_s``: fetch the book, cancel every order, place a fresh bid and ask."""
    assert isinstance(profile.venue, SimVenueConfig)
    cpu = time.process_time()
    clock = BacktestClock(0.0, horizon)
    sim = SimVenue(profile.venue, profile.symbol, clock)
    bucket = BacktestBucket(profile.rate_limit.capacity, profile.rate_limit.refill_per_s, clock)
    params = quoting_params(profile)
    sampler = Sampler(sim, clock, params)
    venue = RateLimitedVenue(sampler, bucket)
    rules = await venue.connect()
    balances = await venue.fetch_balances()
    base, quote = balances.total(rules.base), balances.total(rules.quote)
    pnl: PnlState | None = None
    mine: dict[ClientOrderId, OpenOrder] = {}
    seq = 0
    next_cycle = 0.0
    last_mid: Decimal | None = None
    async for event in venue.events():
        if isinstance(event, OrderFilled):
            fill = event.fill
            order = mine.get(fill.client_id)
            if order is not None and fill.remaining <= 0:
                del mine[fill.client_id]
            signed = fill.size if fill.side is Side.BUY else -fill.size
            base += signed
            quote -= signed * fill.price + fill.fee
            if pnl is not None:
                pnl = apply_fill(pnl, fill, rules.quote)
            continue
        assert isinstance(event, BookUpdated)
        last_mid = event.book.mid
        if pnl is None and last_mid is not None:
            pnl = PnlState.opening(base, last_mid)
        if clock.now() < next_cycle:
            continue
        while next_cycle <= clock.now():
            next_cycle += cycle_s
        await bucket.acquire()  # GET the order book (REST)
        book = sim.book
        own = list(mine.values())
        for cid in list(mine):
            with contextlib.suppress(OrderNotFound):
                await venue.cancel_order(cid)
            del mine[cid]
        state = MarketState(
            now=clock.now(),
            book=exclude_own(book, own),
            rules=rules,
            balances=rules_balances(rules.base, rules.quote, base, quote),
            sigma=None,
            time_left_s=0.0,
        )
        for intent in compute_quotes(params, state).quotes.all:
            seq += 1
            request = OrderRequest(
                ClientOrderId(f"nv{seq}"), intent.side, intent.price, intent.size
            )
            with contextlib.suppress(VenueError):
                mine[request.client_id] = await venue.place_order(request)
    assert pnl is not None and last_mid is not None
    stats = sim.stats
    return Outcome(
        f"naive every {cycle_s:g} s",
        horizon / 3600,
        stats.places,
        stats.cancels,
        bucket.spent,
        bucket.waited_s,
        sampler.distance,
        pnl.buy_count,
        pnl.sell_count,
        float(pnl.buy_volume + pnl.sell_volume),
        float(pnl.net(last_mid)),
        time.process_time() - cpu,
    )


def rules_balances(base_asset: str, quote_asset: str, base: Decimal, quote: Decimal) -> Any:
    from kasmm.core.types import Balance, Balances

    return Balances({base_asset: Balance(base), quote_asset: Balance(quote)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--cycles", default="4,2,1,0.5", help="naive loop periods in seconds")
    parser.add_argument(
        "--tolerances", default="8,6,5,4,3,2", help="kasmm refresh.tolerance_bps values"
    )
    parser.add_argument("--spread-bps", type=float, default=20.0)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    horizon = args.hours * 3600
    cycles = [float(c) for c in args.cycles.split(",") if c.strip()]
    tolerances = [float(t) for t in args.tolerances.split(",") if t.strip()]
    profiles = [churn_profile(args.seed, args.spread_bps, args.size, t) for t in tolerances]

    kasmms = [run_kasmm(p, horizon) for p in profiles]
    naives = [anyio.run(run_naive, profiles[0], horizon, c) for c in cycles]
    facts = machine_facts()
    limit = profiles[0].rate_limit
    print(
        f"random_walk market (seed {args.seed}, sigma 2 bps/sqrt s, book every 0.1 s), "
        f"{args.hours:g} h of market time; both bots: {args.spread_bps:g} bps spread, "
        f"{args.size} KAS a side, one level, rate limit {limit.capacity:g} burst / "
        f"{limit.refill_per_s:g} per s\n"
    )
    print_table(
        [
            "bot",
            "actions/h",
            "tokens/h",
            "rl wait s",
            "distance bps",
            "missing %",
            "fills buy",
            "fills sell",
            "volume",
            "pnl USDT",
        ],
        [*(k.row() for k in kasmms), *(n.row() for n in naives)],
    )
    print(
        "\nat no worse quote distance (the kasmm tolerance with the fewest actions whose "
        "distance is at most the naive loop's):"
    )
    matches: dict[str, Any] = {}
    for naive in naives:
        fits = [k for k in kasmms if k.distance.mean_bps <= naive.distance.mean_bps]
        if not fits:
            print(
                f"  vs {naive.name}: no kasmm tolerance here is as close "
                f"({naive.distance.mean_bps:.2f} bps)"
            )
            continue
        best = min(fits, key=lambda k: k.places + k.cancels)
        ratio = (naive.places + naive.cancels) / max(1, best.places + best.cancels)
        token_ratio = naive.tokens / max(1.0, best.tokens)
        print(
            f"  vs {naive.name}: {best.name}: {ratio:.1f}x fewer order actions, "
            f"{token_ratio:.1f}x fewer tokens, distance {best.distance.mean_bps:.2f} vs "
            f"{naive.distance.mean_bps:.2f} bps"
        )
        matches[naive.name] = {
            "kasmm": best.name,
            "action_ratio": ratio,
            "token_ratio": token_ratio,
            "kasmm_distance_bps": best.distance.mean_bps,
            "naive_distance_bps": naive.distance.mean_bps,
        }
    print_json_line(
        {
            "bench": "churn",
            "machine": facts,
            "hours": args.hours,
            "seed": args.seed,
            "spread_bps": args.spread_bps,
            "kasmm": {f"{t:g}bps": k.json() for t, k in zip(tolerances, kasmms, strict=True)},
            "naive": {f"{c:g}s": n.json() for c, n in zip(cycles, naives, strict=True)},
            "at_no_worse_distance": matches,
        }
    )


if __name__ == "__main__":
    main()
