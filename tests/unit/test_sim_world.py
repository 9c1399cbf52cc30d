"""Simulated worlds: one latent price shared by several sim venues (issue 18, deliverable 5).

The latent path is a pure function of the world's settings and the step index (whoever asks
first, in any interleaving of venues); each venue's mid follows it with the venue's lag and its
own bounded noise; the registry shares a world by name and refuses a second set of settings.
"""

from __future__ import annotations

import bisect
import gc
import hashlib
import math
import random
import statistics
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from kasmm.clock import VirtualClock
from kasmm.config.schema import RandomWalkMarket, SimVenueConfig, SimWorldConfig
from kasmm.core.types import BookUpdated, ClientOrderId, OrderRequest, Side
from kasmm.venues.sim import SimVenue
from kasmm.venues.sim.world import (
    MAX_LAG_S,
    LatentPrice,
    SimWorlds,
    WorldConflict,
    WorldParams,
)

D = Decimal
PARAMS = WorldParams(seed=7, s0=D("0.08"), sigma_bps=2.0, step_s=0.1)
WORLD = SimWorldConfig(name="kas", seed=7, sigma_bps=2.0, step_s=0.1)
TICK = SimVenueConfig(type="sim").tick


def world_venue(
    clock: VirtualClock,
    worlds: SimWorlds | None,
    *,
    seed: int = 1,
    world: SimWorldConfig = WORLD,
    exchange: str = "sim",
    user: str | None = None,
    **market: Any,
) -> SimVenue:
    """A connected random_walk venue of ``world`` (``market`` overrides its market fields)."""
    config = SimVenueConfig(
        type="sim",
        exchange=exchange,
        seed=seed,
        market=RandomWalkMarket(world=world, **market),
    )
    venue = SimVenue(config, "KAS/USDT", clock, trade_id_tag="w", worlds=worlds, user=user)
    venue.exchange.connect_now()
    return venue


def drive(
    venues: list[SimVenue],
    clock: VirtualClock,
    until: float,
    on_event: Callable[[int, Any], None] = lambda i, e: None,
) -> None:
    """Run ``venues`` on one virtual clock up to ``until``: every ready event is handed to
    ``on_event(venue index, event)`` before the next market step, and the market steps are
    merged by time (ties in list order), as a group backtest drives them."""
    while True:
        times: list[float] = []
        for i, venue in enumerate(venues):
            nxt = venue.exchange.poll()
            while not isinstance(nxt, float):
                on_event(i, nxt)
                nxt = venue.exchange.poll()
            times.append(nxt)
        t = min(times)
        if t > until:
            return
        clock.advance_to(t)
        venues[times.index(t)].exchange.step()


# --- the latent path ------------------------------------------------------------------------


def plain_path(params: WorldParams, steps: int) -> list[float]:
    """The module docstring's definition, written plainly with ``random.Random``'s own draws."""
    rng = random.Random(params.seed)
    sigma = params.sigma_bps / 1e4 * math.sqrt(params.step_s)
    jump_p = 1 - math.exp(-params.jump_rate_per_s * params.step_s)
    log, path = 0.0, [float(params.s0)]
    for _ in range(steps):
        log += sigma * rng.gauss(0.0, 1.0)
        if params.jump_rate_per_s > 0 and rng.random() < jump_p:
            size = params.jump_bps / 1e4 * rng.expovariate(1.0)
            log += size if rng.random() < 0.5 else -size
        path.append(float(params.s0) * math.exp(log))
    return path


JUMPY = WorldParams(seed=7, s0=D("0.08"), sigma_bps=2.0, step_s=0.1, jump_rate_per_s=0.5,
                    jump_bps=8.0)  # fmt: skip


@pytest.mark.parametrize("params", [PARAMS, JUMPY], ids=["walk", "jumps"])
def test_a_step_is_a_pure_function_of_the_settings_and_its_index(params: WorldParams) -> None:
    expected = plain_path(params, 5000)
    forward = LatentPrice("kas", params, 0.0, retain_s=math.inf)
    assert [forward.price(n) for n in range(5001)] == expected
    # Asked in another order (a jump ahead, then anywhere back): the same values.
    shuffled = LatentPrice("kas", params, 0.0, retain_s=math.inf)
    order = list(range(5001))
    random.Random(3).shuffle(order)
    assert shuffled.price(5000) == forward.price(5000)
    assert all(shuffled.price(n) == forward.price(n) for n in order)


def test_jumps_are_as_frequent_and_as_large_as_set() -> None:
    latent = LatentPrice("kas", JUMPY, 0.0)
    steps = [math.log(latent.price(n + 1) / latent.price(n)) * 1e4 for n in range(200_000)]
    jumps = [abs(r) for r in steps if abs(r) > 4.0]  # a diffusive step is ~0.63 bps
    expected = 200_000 * (1 - math.exp(-0.05))  # about one step in 20
    assert len(jumps) == pytest.approx(expected * math.exp(-4 / 8), rel=0.1)  # P(|J| > 4) ~ e^-1/2
    assert statistics.fmean(jumps) == pytest.approx(4 + 8, rel=0.05)  # memoryless: 4 + mean


def test_the_price_at_a_time_is_the_last_step_at_or_before_it() -> None:
    latent = LatentPrice("kas", PARAMS, origin=12.3)
    assert latent.at(0.0) == latent.at(12.3 - 1e-6) == 0.08  # flat at s0 before the origin
    for n in range(0, 400):
        # origin + n * step in floats lands a hair either side of the exact step time
        t = 12.3 + n * 0.1
        assert latent.index(t) == n and latent.at(t) == latent.price(n)
        assert latent.index(t + 0.0999) == n
    assert latent.index(12.3 + 1e-12) == 0
    # On a monotonic clock of a machine up for 100 days, step boundaries still land exactly.
    late = LatentPrice("kas", PARAMS, origin=8_640_000.123)
    t0 = late.origin + 0.05  # a venue's book updates, off the world's grid by a phase
    for n in range(1, 2000):
        t = t0 + n * 0.1  # as the venue schedules them: t0 + n * interval
        assert late.index(t - 0.05) == n  # the step it lags onto, 50 ms behind


def test_old_steps_are_dropped_and_asking_for_one_says_so() -> None:
    latent = LatentPrice("kas", PARAMS, 0.0, retain_s=10.0)  # 100 steps
    latent.price(100_000)
    with pytest.raises(LookupError, match="no longer kept"):
        latent.price(99_000)
    assert latent.price(99_950) == LatentPrice("kas", PARAMS, 0.0).price(99_950)
    # What is kept stays bounded (chunks of one retention).
    assert len(latent._prices) <= 200


def test_the_longest_lag_is_the_schemas_bound() -> None:
    bound = RandomWalkMarket.model_fields["lag_ms"].metadata
    assert any(getattr(m, "le", None) == MAX_LAG_S * 1000 for m in bound)


# --- the registry ---------------------------------------------------------------------------


def test_a_world_is_shared_by_name_with_the_first_users_origin() -> None:
    worlds = SimWorlds()
    first = worlds.world("kas", PARAMS, 5.0, user="deep")
    assert worlds.world("kas", PARAMS, 99.0, user="thin") is first
    assert first.origin == 5.0 and first.owner == "deep"
    other = worlds.world("btc", PARAMS, 7.0, user="x")
    assert other is not first and other.origin == 7.0
    # Another registry (another supervisor, another backtest path) never shares it.
    assert SimWorlds().world("kas", PARAMS, 5.0, user="deep") is not first


def test_other_settings_for_a_world_in_use_are_refused_naming_both_users() -> None:
    worlds = SimWorlds()
    held = worlds.world("kas", PARAMS, 0.0, user="profile 'deep'")
    other = WorldParams(seed=7, s0=D("0.08"), sigma_bps=3.0, step_s=0.1)
    with pytest.raises(WorldConflict) as info:
        worlds.world("kas", other, 0.0, user="profile 'thin'")
    message = str(info.value)
    assert "profile 'thin' sets seed=7, s0=0.08, sigma_bps=3" in message
    assert "profile 'deep' uses it with seed=7, s0=0.08, sigma_bps=2" in message
    # Equal values are the same settings (Decimal 0.080 is 0.08).
    same = WorldParams(seed=7, s0=D("0.080"), sigma_bps=2.0, step_s=0.1)
    assert worlds.world("kas", same, 0.0, user="x") is held
    # Once no venue holds the world, new settings start it afresh.
    del held
    gc.collect()
    assert "kas" not in worlds
    assert worlds.world("kas", other, 3.0, user="profile 'thin'").params == other


def test_a_seed_offset_moves_every_world_of_a_registry_to_another_path() -> None:
    base = SimWorlds().world("kas", PARAMS, 0.0, user="a")
    shifted = SimWorlds(seed_offset=2).world("kas", PARAMS, 0.0, user="a")
    direct = LatentPrice("kas", WorldParams(9, D("0.08"), 2.0, 0.1), 0.0)
    assert shifted.price(500) == direct.price(500) != base.price(500)


# --- venues of one world ------------------------------------------------------------------------


def test_a_venue_is_named_by_its_exchange_and_joins_its_world_at_build() -> None:
    clock = VirtualClock(4.0)
    worlds = SimWorlds()
    deep = world_venue(clock, worlds, exchange="sim-deep")
    thin = world_venue(clock, worlds, exchange="sim-thin", seed=2, lag_ms=500)
    assert (deep.name, thin.name) == ("sim-deep", "sim-thin")
    assert deep.world is not None and thin.world is not None
    assert deep.world.latent is thin.world.latent and deep.world.latent.origin == 4.0
    assert thin.world.lag_s == 0.5
    # Without a registry a world venue has a world of its own.
    alone = world_venue(clock, None)
    assert alone.world is not None and alone.world.latent is not deep.world.latent
    # Without a world: the venue's own walk, and the default name.
    plain = SimVenue(SimVenueConfig(type="sim"), "KAS/USDT", clock)
    assert plain.world is None and plain.name == "sim"


def test_a_venue_of_a_conflicting_world_is_refused_at_build() -> None:
    clock = VirtualClock()
    worlds = SimWorlds()
    deep = world_venue(clock, worlds, user="deep")
    other = SimWorldConfig(name="kas", seed=8, sigma_bps=2.0, step_s=0.1)
    with pytest.raises(WorldConflict, match=r"thin sets seed=8.*deep uses it with seed=7"):
        world_venue(clock, worlds, world=other, user="thin")
    assert deep.world is not None


def test_without_noise_each_mid_is_the_latent_price_its_lag_ago() -> None:
    clock = VirtualClock()
    worlds = SimWorlds()
    deep = world_venue(clock, worlds)  # lag 0: the leader
    thin = world_venue(clock, worlds, seed=2, lag_ms=500)
    latent = deep.world.latent if deep.world is not None else None
    assert latent is not None
    mids: dict[int, list[tuple[float, float]]] = {0: [], 1: []}
    venues = [deep, thin]

    def record(i: int, event: Any) -> None:
        if isinstance(event, BookUpdated):
            mids[i].append((clock.now(), venues[i].mid))

    drive(venues, clock, 120.0, record)
    assert len(mids[0]) > 1000 and len(mids[1]) > 1000
    for t, mid in mids[0]:
        assert mid == latent.at(t)
    deep_at = dict(mids[0])
    compared = 0
    for t, mid in mids[1]:
        assert mid == latent.at(t - 0.5)
        # ... which is what the deep venue showed 0.5 s earlier, at its book update then.
        earlier = round(t - 0.5, 6)
        matches = [m for s, m in deep_at.items() if abs(s - earlier) < 1e-9]
        if matches:
            assert mid == matches[0]
            compared += 1
    assert compared > 1000
    # The lagging venue did trail: its mid differs from the deep one's most of the time.
    assert sum(a != b for (_, a), (_, b) in zip(mids[0], mids[1], strict=False)) > 500


def test_the_lagging_venue_correlates_with_the_latent_price_its_lag_ago() -> None:
    clock = VirtualClock()
    worlds = SimWorlds(retain_s=math.inf)  # the test reads the whole path afterwards
    thin = world_venue(clock, worlds, lag_ms=500, noise_bps=1.0, noise_halflife_s=5.0)
    assert thin.world is not None
    latent = thin.world.latent
    times: list[float] = []
    mids: list[float] = []

    def record(_i: int, event: Any) -> None:
        if isinstance(event, BookUpdated):
            times.append(clock.now())
            mids.append(thin.mid)

    drive([thin], clock, 1800.0, record)
    # The thin mid in force at every whole second (its last book update at or before it).
    samples = [mids[bisect.bisect_right(times, s + 1e-9) - 1] for s in range(1801)]
    seconds = range(1, len(samples))
    thin_ret = [math.log(samples[s] / samples[s - 1]) for s in seconds]

    def latent_returns(shift: float) -> list[float]:
        return [math.log(latent.at(s - shift) / latent.at(s - 1 - shift)) for s in seconds]

    lagged = statistics.correlation(thin_ret, latent_returns(0.5))
    unlagged = statistics.correlation(thin_ret, latent_returns(0.0))
    assert lagged > 0.9 and lagged > unlagged + 0.3


def test_the_noise_reverts_and_stays_within_a_few_noise_bps() -> None:
    clock = VirtualClock()
    thin = world_venue(clock, SimWorlds(), lag_ms=500, noise_bps=1.0, noise_halflife_s=5.0)
    world = thin.world
    assert world is not None
    deviations: list[float] = []
    last = 0.0

    def record(_i: int, event: Any) -> None:
        nonlocal last
        # Once per book update: each draws a new deviation (a taker's book keeps it).
        if isinstance(event, BookUpdated) and world.deviation != last:
            last = world.deviation
            deviations.append(math.log(thin.mid / world.latent.at(clock.now() - 0.5)) * 1e4)
            assert deviations[-1] == pytest.approx(last * 1e4, abs=1e-9)

    drive([thin], clock, 7200.0, record)
    assert len(deviations) > 70_000
    first, second = deviations[: len(deviations) // 2], deviations[len(deviations) // 2 :]
    # Stationary: the same spread in either hour (a random walk's would grow by ~sqrt 2).
    for half in (first, second):
        assert statistics.pstdev(half) == pytest.approx(1.0, rel=0.2)
        assert abs(statistics.fmean(half)) < 0.3
    assert max(abs(d) for d in deviations) < 6.0


# --- determinism --------------------------------------------------------------------------------


def _traces(order: str) -> tuple[str, str]:
    """Event traces (hashes) of a deep and a thin venue of one world, driven in ``order``:
    ``merged`` on one clock, or one venue to the end and then the other on clocks of their own
    (``deep-first``, ``thin-first``). Each venue quotes one order per side at its touch, so
    fills (takers and arbitrageurs) are part of the trace."""
    worlds = SimWorlds(retain_s=math.inf)
    clocks = {"deep": VirtualClock(), "thin": VirtualClock()}
    if order == "merged":
        clocks["thin"] = clocks["deep"]
    arbitrage = {"rate_per_s": 4.0, "max_size": D(3000), "threshold_bps": 1.0}
    venues = {
        "deep": world_venue(
            clocks["deep"], worlds, seed=11, book_level_size=D(20000), taker_rate_per_s=6.0
        ),
        "thin": world_venue(
            clocks["thin"],
            worlds,
            seed=12,
            lag_ms=500,
            noise_bps=1.0,
            book_level_size=D(800),
            taker_rate_per_s=0.5,
            arbitrage=arbitrage,
        ),
    }
    hashes = {name: hashlib.sha256() for name in venues}
    quoted = {name: 0 for name in venues}

    def quoter(name: str) -> Callable[[int, Any], None]:
        venue = venues[name]

        def on_event(_i: int, event: Any) -> None:
            hashes[name].update(repr(event).encode())
            if not isinstance(event, BookUpdated):
                return
            sides = {o.side for o in venue.exchange.open_orders_now()}
            for side, price in ((Side.BUY, event.book.best_bid), (Side.SELL, event.book.best_ask)):
                if side in sides or price is None:
                    continue
                quoted[name] += 1
                cid = ClientOrderId(f"{name}{quoted[name]}")
                inside = price + TICK if side is Side.BUY else price - TICK
                venue.exchange.place_now(OrderRequest(cid, side, inside, D(200)))

        return on_event

    if order == "merged":
        handlers = [quoter("deep"), quoter("thin")]
        drive(
            [venues["deep"], venues["thin"]],
            clocks["deep"],
            300.0,
            lambda i, e: handlers[i](i, e),
        )
    else:
        first, second = ("deep", "thin") if order == "deep-first" else ("thin", "deep")
        for name in (first, second):
            drive([venues[name]], clocks[name], 300.0, quoter(name))
    fills = {name: venue.fills_total for name, venue in venues.items()}
    assert min(fills.values()) > 10, fills  # both venues traded: fills are in the traces
    return hashes["deep"].hexdigest(), hashes["thin"].hexdigest()


def test_every_interleaving_of_the_venues_of_a_world_gives_the_same_events() -> None:
    merged = _traces("merged")
    assert _traces("deep-first") == merged
    assert _traces("thin-first") == merged
