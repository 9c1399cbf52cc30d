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

**Endpoints and pace.** A profile that points its venue at another host (``rest_url``,
``ws_url``: a regional endpoint, a loopback emulator) points the exchange's feeds there too
(:meth:`PublicFeeds.note_endpoints`; the first profile to name an exchange wins). The feeds
poll REST (without a websocket) as often as the most demanding profile of the exchange asks
(``book_poll_s``, a paper venue's ``poll_interval_s``) and check a silent websocket as early as
its shortest ``feed_stall_s``: sharing a feed never makes a profile's book older than its own
would have been.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
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
    """Where and how often an exchange's public data is read (``None``: the exchange's own
    URLs, the feeds' default pace)."""

    rest_url: str | None = None
    ws_url: str | None = None
    use_websocket: bool = True
    poll_interval_s: float | None = None
    stall_s: float | None = None

    def paced_with(self, other: Endpoints) -> Endpoints:
        """These URLs, at the faster pace of the two."""
        return replace(
            self,
            poll_interval_s=_least(self.poll_interval_s, other.poll_interval_s),
            stall_s=_least(self.stall_s, other.stall_s),
        )


def _least(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


class PublicFeeds:
    """The feed of each key (see the module docstring).

    :param clock: the clock of the per-exchange buckets.
    :param poll_interval_s: REST polling interval of a feed without a websocket, at most (a
        profile may ask for a shorter one).
    :param exchange_factory: builds the ccxt instance instead (tests point it at an emulator).
    :param stall_s: a websocket book unchanged this long is checked against REST, at most
        (default: :data:`~kasmm.venues.paper_feed.STALL_S`, or a profile's shorter one).
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
            endpoints = Endpoints(
                venue.rest_url,
                venue.ws_url,
                venue.use_websocket,
                poll_interval_s=venue.book_poll_s,
                stall_s=venue.feed_stall_s,
            )
        elif isinstance(venue, PaperVenueConfig):
            endpoints = Endpoints(
                venue.rest_url, None, venue.use_websocket, poll_interval_s=venue.poll_interval_s
            )
        else:
            return
        known = self._endpoints.get(venue.exchange)
        self._endpoints[venue.exchange] = (
            endpoints if known is None else known.paced_with(endpoints)
        )

    def forget_endpoints(self) -> None:
        """Forget what profiles named (before reading a reload's profiles again). A feed keeps
        the endpoints it was built with (one per key, for the hub's lifetime: its ccxt
        instance keeps its loaded markets across readers)."""
        self._endpoints.clear()

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
        poll_s = _least(endpoints.poll_interval_s, self.poll_interval_s)
        stall_s = _least(endpoints.stall_s, self._stall_s)
        feed = CcxtPublicFeed(
            exchange,
            symbol,
            rest_url=endpoints.rest_url,
            use_websocket=endpoints.use_websocket,
            poll_interval_s=self.poll_interval_s if poll_s is None else poll_s,
            ws_backoff_s=self._ws_backoff_s,
            exchange=instance,
            ws_url=endpoints.ws_url,
            stall_s=STALL_S if stall_s is None else stall_s,
        )
        route_throttle(feed.exchange, self.bucket(exchange))
        return feed
