"""The venue stack is assembled in one place: venue -> deadline -> rate limit -> metering."""

from __future__ import annotations

from pathlib import Path

import pytest

from kasmm.clock import Clock, VirtualClock
from kasmm.config.schema import Profile
from kasmm.errors import FatalVenueError
from kasmm.limiter import TokenBucket
from kasmm.venues.base import Venue
from kasmm.venues.factory import (
    SIM_REQUEST_TIMEOUT_S,
    build_limiter,
    build_stack,
    build_venue,
    world_venue_factory,
)
from kasmm.venues.guard import TimeoutVenue
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.metered import MeteredTokenBucket, MeteredVenue, VenueMetrics
from kasmm.venues.paper import PaperVenue
from kasmm.venues.sim import SimVenue
from kasmm.venues.sim.account import simulated_account
from kasmm.venues.sim.replay import ReplayVenue
from kasmm.venues.sim.replay_format import write_rows
from kasmm.venues.sim.world import SimWorlds, WorldConflict
from tests.support import make_profile


def layers(venue: Venue) -> list[type]:
    """The classes from the outermost wrapper down to the venue."""
    out: list[type] = []
    current: object = venue
    while current is not None:
        out.append(type(current))
        current = getattr(current, "inner", None)
    return out


def test_a_sim_profile_gets_deadline_and_rate_limit_and_the_supervisor_metering() -> None:
    clock = VirtualClock(0.0)
    profile = make_profile(rate_limit={"capacity": 7, "refill_per_s": 3})
    plain = build_stack(profile, clock)
    assert layers(plain.venue) == [RateLimitedVenue, TimeoutVenue, SimVenue]
    assert type(plain.limiter) is TokenBucket
    assert (plain.limiter.capacity, plain.limiter.refill_per_s) == (7, 3)
    assert plain.venue.limiter is plain.limiter  # type: ignore[attr-defined]
    assert plain.venue.inner.timeout_s == SIM_REQUEST_TIMEOUT_S  # type: ignore[attr-defined]

    metrics = VenueMetrics()
    account = TokenBucket(100, 10, clock)
    metered = build_stack(profile, clock, metrics=metrics, parent=account)
    assert layers(metered.venue) == [MeteredVenue, RateLimitedVenue, TimeoutVenue, SimVenue]
    assert isinstance(metered.limiter, MeteredTokenBucket)
    assert metered.limiter.metrics is metrics and metered.limiter.parent is account
    assert metered.limiter.name == profile.name
    assert simulated_account(metered.venue) is not None  # found through every wrapper


def test_a_paper_profile_is_wrapped_like_the_simulator() -> None:
    profile = make_profile(venue={"type": "paper", "exchange": "mexc"})
    stack = build_stack(profile, VirtualClock(0.0))
    assert layers(stack.venue) == [RateLimitedVenue, TimeoutVenue, PaperVenue]


def test_a_replay_profile_is_served_by_the_replay_venue(tmp_path: Path) -> None:
    data = tmp_path / "r.csv"
    data.write_text(write_rows([(1.0, "book", "bid", "0.08", "100", 0)]))
    profile = make_profile(venue={"market": {"model": "replay", "path": str(data)}})
    assert layers(build_stack(profile, VirtualClock(0.0)).venue)[-1] is ReplayVenue


def test_every_part_of_the_stack_is_injectable() -> None:
    clock = VirtualClock(0.0)
    profile = make_profile()
    seen: list[tuple[Profile, Clock, TokenBucket]] = []

    def bare(p: Profile, c: Clock, limiter: TokenBucket) -> Venue:
        seen.append((p, c, limiter))
        return SimVenue(p.venue, p.symbol, c)  # type: ignore[arg-type]

    bucket = TokenBucket(5, 5, clock)
    no_deadline = build_stack(
        profile,
        clock,
        limiter=bucket,
        venue_factory=lambda p, c, lim: build_venue(p, c, lim, inner=bare, timeout_s=None),
    )
    assert layers(no_deadline.venue) == [RateLimitedVenue, SimVenue]
    assert no_deadline.limiter is bucket and seen == [(profile, clock, bucket)]

    mine = SimVenue(profile.venue, profile.symbol, clock)  # type: ignore[arg-type]
    custom = build_stack(profile, clock, metrics=VenueMetrics(), venue_factory=lambda *_: mine)
    assert layers(custom.venue) == [MeteredVenue, SimVenue]


def test_the_limiter_follows_the_profile_budget() -> None:
    clock = VirtualClock(0.0)
    bucket = build_limiter(make_profile(rate_limit={"capacity": 2, "refill_per_s": 1}), clock)
    assert (bucket.capacity, bucket.refill_per_s, bucket.parent) == (2, 1, None)


@pytest.mark.anyio
async def test_the_stack_runs_requests_through_every_layer() -> None:
    clock = VirtualClock(0.0)
    metrics = VenueMetrics()
    stack = build_stack(make_profile(), clock, metrics=metrics)
    await stack.venue.connect()
    await stack.venue.fetch_open_orders()
    assert metrics.requests["connect"].count == metrics.requests["fetch_open_orders"].count == 1
    assert stack.limiter.tokens < stack.limiter.capacity


# --- simulated worlds ---------------------------------------------------------------------------


def bare_sim(venue: Venue) -> SimVenue:
    """The simulator under every wrapper."""
    current: object = venue
    while not isinstance(current, SimVenue):
        current = getattr(current, "inner")  # noqa: B009 - every wrapper has one
    return current


def world_profile(name: str, exchange: str, seed: int = 7, **market: object) -> Profile:
    world = {"name": "kas", "seed": seed}
    return make_profile(
        name=name, venue={"exchange": exchange, "market": {"world": world, **market}}
    )


def test_the_sim_venues_of_a_registry_share_its_worlds() -> None:
    clock = VirtualClock(3.0)
    worlds = SimWorlds()
    deep = bare_sim(build_stack(world_profile("deep", "sim-deep"), clock, worlds=worlds).venue)
    thin = bare_sim(
        build_stack(world_profile("thin", "sim-thin", lag_ms=500), clock, worlds=worlds).venue
    )
    assert (deep.name, thin.name) == ("sim-deep", "sim-thin")
    assert deep.world is not None and thin.world is not None
    assert deep.world.latent is thin.world.latent and deep.world.latent.origin == 3.0
    assert deep.world.latent.owner == "deep"
    # Without a registry each world venue has its own world (same settings, same path).
    alone = bare_sim(build_stack(world_profile("deep", "sim-deep"), clock).venue)
    assert alone.world is not None and alone.world.latent is not deep.world.latent
    # A custom venue factory builds its venues itself: world_venue_factory binds a registry.
    bound = build_stack(
        world_profile("third", "sim-3"), clock, venue_factory=world_venue_factory(worlds)
    )
    third = bare_sim(bound.venue).world
    assert third is not None and third.latent is deep.world.latent


def test_a_venue_disagreeing_with_its_world_is_refused_naming_both_profiles() -> None:
    clock = VirtualClock(0.0)
    worlds = SimWorlds()
    kept = build_stack(world_profile("deep", "sim-deep"), clock, worlds=worlds)
    with pytest.raises(WorldConflict, match=r"thin sets seed=8.*but deep uses it with seed=7"):
        build_stack(world_profile("thin", "sim-thin", seed=8), clock, worlds=worlds)
    assert isinstance(WorldConflict("x"), FatalVenueError)
    assert kept.venue is not None
