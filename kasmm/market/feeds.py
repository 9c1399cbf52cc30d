"""The hub's feeds: a public ccxt feed per real-exchange key, one request budget per exchange.

:class:`PublicFeeds` is the :data:`~kasmm.market.hub.FeedFactory` the supervisor gives its hub.
A key whose exchange kasmm trades through ccxt (``mexc:KAS/USDT``) gets a
:class:`~kasmm.venues.paper_feed.CcxtPublicFeed` (websocket where the exchange has one, REST
fallback, no keys); any other key (``sim:KAS/USDT``) is published by the venue of the profile
that trades it (``None``).

**Budget.** Exchanges limit public requests per IP: every feed of one exchange draws from one
:class:`~kasmm.limiter.TokenBucket` (the exchange's published budget, in ccxt's per-endpoint
cost units, routed in as the live venue routes its own: :func:`route_throttle`). Three profiles
on MEXC KAS/USDT and a reference to MEXC KAS/USDC cost two feeds and one budget.

**Endpoints.** A profile that points its venue at another host (``rest_url``, ``ws_url``: a
regional endpoint, a loopback emulator) points the exchange's feeds there too
(:meth:`PublicFeeds.note_endpoints`; the first profile to name an exchange's endpoints wins).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kasmm.clock import Clock
from kasmm.config.schema import CcxtVenueConfig, PaperVenueConfig, Profile
from kasmm.limiter import TokenBucket
from kasmm.market.hub import MarketFeed
from kasmm.market.keys import split_key

__all__ = ["Endpoints", "PublicFeeds"]

#: ``(exchange id, symbol) -> ccxt instance``: replaces the built one (tests: an emulator's).
ExchangeFactory = Callable[[str, str], Any]


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where an exchange's public data is read (``None``: the exchange's own URLs)."""

    rest_url: str | None = None
    ws_url: str | None = None
    use_websocket: bool = True


class PublicFeeds:
    """The feed of each key (see the module docstring).

    :param clock: the clock of the per-exchange buckets.
    :param poll_interval_s: REST polling interval of a feed without a websocket.
    :param exchange_factory: builds the ccxt instance instead (tests point it at an emulator).
    :param stall_s: a websocket book unchanged this long is checked against REST.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        poll_interval_s: float = 1.0,
        exchange_factory: ExchangeFactory | None = None,
        stall_s: float | None = None,
        ws_backoff_s: tuple[float, float] = (1.0, 60.0),
    ) -> None:
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self._exchange_factory = exchange_factory
        self._stall_s = stall_s
        self._ws_backoff_s = ws_backoff_s
        self._endpoints: dict[str, Endpoints] = {}
        #: One public request budget per exchange id.
        self.buckets: dict[str, TokenBucket] = {}

    def note_endpoints(self, profile: Profile) -> None:
        """Read ``profile``'s venue URLs for its exchange's feeds (first one per exchange)."""
        venue = profile.venue
        if isinstance(venue, CcxtVenueConfig):
            endpoints = Endpoints(venue.rest_url, venue.ws_url, venue.use_websocket)
        elif isinstance(venue, PaperVenueConfig):
            endpoints = Endpoints(venue.rest_url, None, venue.use_websocket)
        else:
            return
        self._endpoints.setdefault(venue.exchange, endpoints)

    def set_endpoints(self, exchange: str, endpoints: Endpoints) -> None:
        """Read ``exchange``'s public data at ``endpoints`` (replacing what profiles named)."""
        self._endpoints[exchange] = endpoints

    def bucket(self, exchange: str) -> TokenBucket:
        """The public request budget of ``exchange`` (built on first use)."""
        bucket = self.buckets.get(exchange)
        if bucket is None:
            from kasmm.venues.ccxt.exchanges import default_rate_budget

            budget = default_rate_budget(exchange)
            capacity, refill = (budget.capacity, budget.refill_per_s) if budget else (20.0, 10.0)
            bucket = TokenBucket(capacity, refill, self.clock, name=f"public:{exchange}")
            self.buckets[exchange] = bucket
        return bucket

    def __call__(self, key: str) -> MarketFeed | None:
        """A new feed for ``key``, or ``None`` when a venue publishes it."""
        exchange, symbol = split_key(key)
        from kasmm.venues.ccxt.exchanges import FLAVOURS

        if exchange not in FLAVOURS:
            return None
        from kasmm.venues.ccxt.client import route_throttle
        from kasmm.venues.paper_feed import STALL_S, CcxtPublicFeed

        endpoints = self._endpoints.get(exchange, Endpoints())
        instance = None
        if self._exchange_factory is not None:
            instance = self._exchange_factory(exchange, symbol)
        feed = CcxtPublicFeed(
            exchange,
            symbol,
            rest_url=endpoints.rest_url,
            use_websocket=endpoints.use_websocket,
            poll_interval_s=self.poll_interval_s,
            ws_backoff_s=self._ws_backoff_s,
            exchange=instance,
            ws_url=endpoints.ws_url,
            stall_s=STALL_S if self._stall_s is None else self._stall_s,
        )
        route_throttle(feed.exchange, self.bucket(exchange))
        return feed
