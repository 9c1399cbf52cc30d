"""Test helpers for the ccxt venue: ccxt's HTTP layer replaced, markets injected, no network.

``FakeHttp`` stands in for an exchange instance's ``fetch(url, method, headers, body)``: it records
every request ccxt built (after signing) and answers from a route table. An ``HttpError`` answer
goes through the exchange's own ``handle_errors`` / ``handle_http_status_code``, so ccxt raises
exactly what it raises for that body in production.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import SecretStr

from kasmm.clock import Clock, VirtualClock
from kasmm.config.schema import CcxtVenueConfig, Credentials
from kasmm.config.secrets import ResolvedCredentials
from kasmm.limiter import TokenBucket
from kasmm.venues.ccxt import CcxtVenue, StreamSettings
from kasmm.venues.ccxt.client import build_exchange
from kasmm.venues.ccxt.exchanges import flavour_for

API_KEY = "AKfake0123456789"
SECRET = "SKfake-secret-abcdefghij"
PASSWORD = "PPfake-passphrase"
CREDENTIALS = ResolvedCredentials(SecretStr(API_KEY), SecretStr(SECRET), SecretStr(PASSWORD))

MARKET_IDS = {"mexc": "KASUSDT", "gate": "KAS_USDT", "kucoin": "KAS-USDT", "bingx": "KAS-USDT"}


def spot_market(exchange: str) -> dict[str, Any]:
    """A unified ccxt spot market KAS/USDT (tick 0.000001, lot 0.01, min notional 1)."""
    return {
        "id": MARKET_IDS[exchange],
        "symbol": "KAS/USDT",
        "base": "KAS",
        "quote": "USDT",
        "baseId": "KAS",
        "quoteId": "USDT",
        "type": "spot",
        "spot": True,
        "margin": False,
        "swap": False,
        "future": False,
        "option": False,
        "contract": False,
        "active": True,
        "precision": {"price": 0.000001, "amount": 0.01},
        "limits": {"amount": {"min": 0.01}, "cost": {"min": 1.0}, "price": {}},
        "maker": 0.001,
        "taker": 0.002,
        "info": {},
    }


@dataclass
class Request:
    """One request as ccxt would have sent it."""

    method: str
    url: str
    headers: dict[str, str]
    body: str | None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query))

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class HttpError:
    """An error answer, raised through the exchange's own error handling."""

    status: int
    body: Any


Answer = Any  # JSON value, HttpError, an exception instance, or a callable(Request) -> Answer


@dataclass
class FakeHttp:
    """A replacement for ``exchange.fetch``: route table in, recorded requests out."""

    exchange: Any = None
    routes: list[tuple[str, str, Answer]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def route(self, method: str, path_suffix: str, answer: Answer) -> None:
        """Answer ``method`` requests whose path ends with ``path_suffix`` (newest route wins)."""
        self.routes.insert(0, (method.upper(), path_suffix, answer))

    def install(self, exchange: Any) -> Any:
        self.exchange = exchange
        exchange.fetch = self
        return exchange

    def to(self, method: str, path_suffix: str) -> list[Request]:
        return [
            r for r in self.requests if r.method == method.upper() and r.path.endswith(path_suffix)
        ]

    async def __call__(
        self, url: str, method: str = "GET", headers: Any = None, body: Any = None
    ) -> Any:
        request = Request(method.upper(), url, dict(headers or {}), body)
        self.requests.append(request)
        for route_method, suffix, answer in self.routes:
            if route_method == request.method and request.path.endswith(suffix):
                return self._answer(answer, request)
        raise AssertionError(f"unexpected request {request.method} {request.path}")

    def _answer(self, answer: Answer, request: Request) -> Any:
        if callable(answer) and not isinstance(answer, type):
            answer = answer(request)
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, HttpError):
            text = json.dumps(answer.body)
            self.exchange.handle_errors(
                answer.status, "", request.url, request.method, {}, text, answer.body,
                request.headers, request.body,
            )  # fmt: skip
            self.exchange.handle_http_status_code(
                answer.status, "", request.url, request.method, text
            )
            raise AssertionError(f"{answer} raised nothing")
        return json.loads(json.dumps(answer))  # a fresh copy, as from the wire


class SpyBucket(TokenBucket):
    """A token bucket that records every weight it is asked for."""

    def __init__(self, clock: Clock, capacity: float = 1_000.0, refill: float = 1_000.0) -> None:
        super().__init__(capacity, refill, clock, name="spy")
        self.weights: list[float] = []

    async def acquire(self, weight: float = 1.0) -> float:
        self.weights.append(weight)
        return await super().acquire(weight)


def venue_config(exchange: str, **overrides: Any) -> CcxtVenueConfig:
    """A ccxt venue config (credentials are references; the venue gets :data:`CREDENTIALS`)."""
    fields: dict[str, Any] = {
        "type": "ccxt",
        "exchange": exchange,
        "credentials": Credentials(
            api_key="${FAKE_KEY}", secret="${FAKE_SECRET}", password="${FAKE_PASSWORD}"
        ),
        **overrides,
    }
    return CcxtVenueConfig(**fields)


def fake_venue(
    exchange: str,
    http: FakeHttp,
    *,
    clock: Clock | None = None,
    limiter: TokenBucket | None = None,
    config: CcxtVenueConfig | None = None,
    prepare: Callable[[Any], None] | None = None,
    **kwargs: Any,
) -> CcxtVenue:
    """A ``CcxtVenue`` whose ccxt instance (built as in production) talks to ``http``."""
    clock = clock or VirtualClock(1_700_000_000.0)
    config = config or venue_config(exchange)
    limiter = limiter or TokenBucket(1_000, 1_000, clock)

    def factory() -> Any:
        instance = build_exchange(config, CREDENTIALS, flavour_for(exchange), websocket=False)
        instance.timeout_on_exit = 0
        instance.set_markets([spot_market(exchange)])
        http.install(instance)
        if prepare is not None:
            prepare(instance)
        return instance

    kwargs.setdefault("use_websocket", False)
    kwargs.setdefault("stream", StreamSettings(book_interval_s=0.5, orders_interval_s=1.0))
    return CcxtVenue(
        config, "KAS/USDT", clock, limiter, credentials=CREDENTIALS, exchange_factory=factory,
        **kwargs,
    )  # fmt: skip
