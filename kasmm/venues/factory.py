"""Build a profile's venue stack: the venue, its request deadline and rate limit, its metering.

The only place kasmm assembles the wrappers around a venue (the supervisor, ``kasmm run`` and the
backtest all build through :func:`build_stack`). The stack, innermost first::

    venue  ->  TimeoutVenue (deadline)  ->  RateLimitedVenue (token bucket)  ->  MeteredVenue

* the deadline sits inside the limiter: time spent waiting for tokens is not a timeout (a
  request that never left cannot have an unknown outcome);
* a ccxt venue takes ccxt's per-endpoint costs from the bucket inside its request path and
  bounds each HTTP request with ccxt's own ``timeout``, so it gets neither wrapper;
* metering is outermost (the supervisor's, when it passes ``metrics``): it times the venue and
  subtracts the token wait the metered bucket reports (:mod:`kasmm.venues.metered`).

Inside a supervisor (``hub``: its :class:`~kasmm.market.hub.MarketHub`) a profile shares market
data: a ccxt venue takes its public book from the hub's feed of its market and a paper venue its
books and trades (``build_inner_venue``'s ``hub``); a venue whose market the hub has no feed for
(a simulator, a replay) publishes its books to the hub (:class:`PublishingVenue`, around the
limited venue); a profile with ``references`` gets their books in its events
(:class:`ReferenceVenue`, inside the metering). Without a hub nothing of this exists.

Every part is injectable: the bucket (``limiter``, or ``metrics``/``parent`` for the one built
here), the venue with its deadline and limit (``venue_factory``, what the supervisor's tests and
benches replace), or only the bare venue (``build_venue``'s ``inner``, e.g. a fault injector
around a simulator), and the deadline (``timeout_s=None``: none, as in a virtual-time backtest).

Simulated worlds (:mod:`kasmm.venues.sim.world`): sim venues whose market names a ``world``
share its latent price through a :class:`~kasmm.venues.sim.world.SimWorlds` registry that the
caller owns and passes as ``worlds`` (the supervisor one for all its profiles, a group backtest
one per path); without one, each such venue gets a world of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, assert_never

from kasmm.clock import Clock
from kasmm.config.schema import (
    CcxtVenueConfig,
    PaperVenueConfig,
    Profile,
    ReplayMarket,
    SimVenueConfig,
)
from kasmm.config.secrets import resolve_credentials
from kasmm.errors import FatalVenueError
from kasmm.limiter import TokenBucket
from kasmm.venues.base import Venue
from kasmm.venues.guard import TimeoutVenue
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.metered import MeteredTokenBucket, MeteredVenue, VenueMetrics

if TYPE_CHECKING:  # the simulator and the hub are imported only when used
    from kasmm.market.hub import MarketHub
    from kasmm.venues.sim.world import SimWorlds

#: Deadline of a simulated venue request (they are instant unless latency is simulated).
SIM_REQUEST_TIMEOUT_S = 5.0

#: ``(profile, clock, limiter) -> venue``: a venue for a profile, drawing from ``limiter``.
VenueFactory = Callable[[Profile, Clock, TokenBucket], Venue]


def build_inner_venue(
    profile: Profile,
    clock: Clock,
    limiter: TokenBucket,
    worlds: SimWorlds | None = None,
    *,
    hub: MarketHub | None = None,
) -> Venue:
    """The bare venue ``profile.venue`` asks for (a ccxt one with ``limiter`` inside).

    A ccxt venue's credentials are resolved here, from the environment or
    ``$CREDENTIALS_DIRECTORY``, and stay ``SecretStr`` until ccxt's constructor.

    :param worlds: the simulated worlds a sim venue naming one joins (module docstring).
    :param hub: the supervisor's shared market data: a ccxt venue takes its public book from
        it, a paper venue its books and trades.
    :raises FatalVenueError: the venue type is not available in this build.
    :raises WorldConflict: (a ``FatalVenueError``) the sim venue's world is in use with other
        settings.
    :raises MissingSecret: a credential reference cannot be resolved.
    """
    if isinstance(profile.venue, SimVenueConfig):
        from kasmm.venues.sim import SimVenue

        market = profile.venue.market
        if isinstance(market, ReplayMarket):
            # Recorded data: on a real clock it plays from now at the recorded pace.
            from kasmm.venues.sim.replay import ReplayVenue

            return ReplayVenue(
                profile.venue,
                profile.symbol,
                clock,
                Path(market.path),
                queue_position=market.queue_position,
            )
        return SimVenue(profile.venue, profile.symbol, clock, worlds=worlds, user=profile.name)
    if isinstance(profile.venue, CcxtVenueConfig):
        from kasmm.venues.ccxt import FLAVOURS, CcxtVenue
        from kasmm.venues.ccxt.stream import StreamSettings

        if profile.venue.exchange not in FLAVOURS:
            raise FatalVenueError(
                f"exchange {profile.venue.exchange!r} is not supported through ccxt; "
                f"use one of {', '.join(sorted(FLAVOURS))}"
            )
        credentials = resolve_credentials(profile.venue.credentials)
        book_feed = None
        if hub is not None:
            from kasmm.market.keys import profile_market_key

            book_feed = functools.partial(hub.subscribe, profile_market_key(profile))
        return CcxtVenue(
            profile.venue,
            profile.symbol,
            clock,
            limiter,
            credentials=credentials,
            use_websocket=profile.venue.use_websocket,
            stream=StreamSettings(
                book_interval_s=profile.venue.book_poll_s,
                feed_stall_s=profile.venue.feed_stall_s,
            ),
            dead_man_switch_s=profile.venue.dead_man_switch_s,
            book_feed=book_feed,
        )
    if isinstance(profile.venue, PaperVenueConfig):
        from kasmm.venues.paper import PaperVenue

        # Requests are local and instant (connect loads the market over the network, under
        # TimeoutVenue's connect deadline); the limiter paces the bot as it would be live.
        if hub is None:
            return PaperVenue(profile.venue, profile.symbol, clock)
        from kasmm.market.keys import profile_market_key
        from kasmm.market.paper import HubPublicFeed

        feed = HubPublicFeed(hub, profile_market_key(profile))
        return PaperVenue(profile.venue, profile.symbol, clock, feed=feed)
    assert_never(profile.venue)


def build_venue(
    profile: Profile,
    clock: Clock,
    limiter: TokenBucket,
    *,
    inner: VenueFactory = build_inner_venue,
    timeout_s: float | None = SIM_REQUEST_TIMEOUT_S,
) -> Venue:
    """``profile``'s venue with its request deadline and rate limit (see the module docstring).

    :param inner: builds the bare venue (default :func:`build_inner_venue`).
    :param timeout_s: the deadline of each request; ``None`` for none.
    :raises FatalVenueError: the venue type is not available in this build.
    :raises MissingSecret: a credential reference cannot be resolved.
    """
    venue = inner(profile, clock, limiter)
    if isinstance(profile.venue, CcxtVenueConfig):
        return venue  # limits and bounds its own requests
    if timeout_s is not None:
        venue = TimeoutVenue(venue, timeout_s)
    return RateLimitedVenue(venue, limiter)


def build_limiter(
    profile: Profile,
    clock: Clock,
    *,
    metrics: VenueMetrics | None = None,
    parent: TokenBucket | None = None,
) -> TokenBucket:
    """The profile's own token bucket (:func:`profile_rate_budget`), under ``parent`` (the
    account's bucket, if any); a :class:`MeteredTokenBucket` recording into ``metrics``."""
    capacity, refill = profile_rate_budget(profile)
    if metrics is not None:
        return MeteredTokenBucket(
            capacity, refill, clock, metrics=metrics, parent=parent, name=profile.name
        )
    return TokenBucket(capacity, refill, clock, parent=parent, name=profile.name)


def world_venue_factory(worlds: SimWorlds) -> VenueFactory:
    """:func:`build_venue` whose sim venues join the worlds of ``worlds``."""
    return functools.partial(build_venue, inner=functools.partial(build_inner_venue, worlds=worlds))


@dataclass(frozen=True, slots=True)
class VenueStack:
    """What :func:`build_stack` built: the outermost venue and the bucket it draws from."""

    venue: Venue
    limiter: TokenBucket


def build_stack(
    profile: Profile,
    clock: Clock,
    *,
    limiter: TokenBucket | None = None,
    metrics: VenueMetrics | None = None,
    parent: TokenBucket | None = None,
    venue_factory: VenueFactory = build_venue,
    worlds: SimWorlds | None = None,
    hub: MarketHub | None = None,
    references: Sequence[str] = (),
) -> VenueStack:
    """The full stack for ``profile`` (see the module docstring).

    :param limiter: the bucket to draw from; default :func:`build_limiter` (``metrics``,
        ``parent``).
    :param metrics: meter the venue (outermost) and the bucket into these counters.
    :param parent: the account's bucket above the profile's own (ignored with ``limiter``).
    :param venue_factory: the venue with its deadline and limit (default :func:`build_venue`;
        with ``worlds`` or a ``hub``, its bare venue joins them).
    :param worlds: the simulated worlds of the caller's group, for the default
        ``venue_factory``; a custom one builds its venues itself (:func:`world_venue_factory`
        gives the default one bound to a registry).
    :param hub: the supervisor's shared market data (see the module docstring).
    :param references: the markets the profile references (``"<exchange>:<symbol>"``), whose
        books its events interleave; only with a ``hub``.
    :raises FatalVenueError: the venue type is not available in this build.
    :raises WorldConflict: (a ``FatalVenueError``) the sim venue's world is in use with other
        settings.
    :raises MissingSecret: a credential reference cannot be resolved.
    :raises ValueError: ``references`` without a ``hub``.
    """
    if venue_factory is build_venue and (worlds is not None or hub is not None):
        inner = functools.partial(build_inner_venue, worlds=worlds, hub=hub)
        venue_factory = functools.partial(build_venue, inner=inner)
    if limiter is None:
        limiter = build_limiter(profile, clock, metrics=metrics, parent=parent)
    venue = venue_factory(profile, clock, limiter)
    if hub is not None:
        from kasmm.market.keys import profile_market_key
        from kasmm.market.publish import PublishingVenue
        from kasmm.market.references import ReferenceVenue

        key = profile_market_key(profile)
        if not hub.is_fed(key):
            venue = PublishingVenue(venue, hub, key)
        if references:
            venue = ReferenceVenue(venue, hub, references, clock)
    elif references:
        raise ValueError("references need a market hub (they are served inside a supervisor)")
    if metrics is not None:
        venue = MeteredVenue(venue, metrics)
    return VenueStack(venue, limiter)


def profile_rate_budget(profile: Profile) -> tuple[float, float]:
    """(capacity, refill per second) of the profile's own bucket.

    An explicit ``rate_limit`` wins. Otherwise a ccxt profile gets its exchange's published
    budget, in ccxt cost units (the schema's generic default is too small for REST polling).
    """
    if "rate_limit" not in profile.model_fields_set and isinstance(profile.venue, CcxtVenueConfig):
        from kasmm.venues.ccxt.exchanges import default_rate_budget

        budget = default_rate_budget(profile.venue.exchange)
        if budget is not None:
            return budget.capacity, budget.refill_per_s
    return profile.rate_limit.capacity, profile.rate_limit.refill_per_s
