"""Building and configuring the ccxt exchange instance behind a ``CcxtVenue``.

Secrets leave their ``SecretStr`` only here, as arguments of ccxt's constructor. Rate limiting is
routed into kasmm's token bucket: ccxt keeps computing each endpoint's cost (``enableRateLimit``
stays on) but its ``throttle`` is replaced by one that takes that cost from the bucket, so there is
one limiter per account, not two.
"""

from __future__ import annotations

from typing import Any

from kasmm.config.schema import CcxtVenueConfig
from kasmm.config.secrets import ResolvedCredentials
from kasmm.errors import FatalVenueError
from kasmm.limiter import TokenBucket
from kasmm.venues.ccxt.decimal_context import isolate_decimal_context
from kasmm.venues.ccxt.exchanges import Flavour, constructor_options, rest_urls, ws_urls


def build_exchange(
    config: CcxtVenueConfig,
    credentials: ResolvedCredentials,
    flavour: Flavour,
    *,
    websocket: bool,
) -> Any:
    """A new ccxt instance (``ccxt.pro`` when ``websocket``, else ``ccxt.async_support``).

    :raises FatalVenueError: sandbox requested where ccxt has no spot testnet, or a credential
        the exchange requires (KuCoin's passphrase) is missing.
    """
    if websocket:
        import ccxt.pro as module
    else:
        import ccxt.async_support as module
    cls = getattr(module, config.exchange)
    params: dict[str, Any] = {
        "apiKey": credentials.api_key.get_secret_value(),
        "secret": credentials.secret.get_secret_value(),
        "enableRateLimit": True,
        "timeout": int(config.timeout_s * 1000),
        "options": constructor_options(flavour),
    }
    if credentials.password is not None:
        params["password"] = credentials.password.get_secret_value()
    exchange = cls(params)
    required = getattr(exchange, "requiredCredentials", {}) or {}
    if required.get("password") and credentials.password is None:
        raise FatalVenueError(
            f"{config.exchange} requires credentials.password (the API passphrase)"
        )
    if config.sandbox:
        if not flavour.spot_sandbox:
            raise FatalVenueError(f"{config.exchange} has no spot sandbox in ccxt")
        exchange.set_sandbox_mode(True)
    return exchange


def configure_exchange(
    exchange: Any, config: CcxtVenueConfig, flavour: Flavour, limiter: TokenBucket
) -> None:
    """Apply kasmm's settings to ``exchange`` (built here or injected by a test).

    Keeps its rounding out of the process's decimal context (:mod:`.decimal_context`), merges the
    flavour's options (no blind retries, spot-only markets, account modes), points the spot
    sections at ``config.rest_url`` and the spot websocket at ``config.ws_url`` if set, and
    routes throttling into ``limiter``.
    """
    isolate_decimal_context(exchange)
    options = getattr(exchange, "options", None)
    if isinstance(options, dict):
        options.update(constructor_options(flavour))
    if config.rest_url is not None:
        urls = dict(exchange.urls)
        urls["api"] = rest_urls(flavour, urls["api"], config.rest_url)
        exchange.urls = urls
    if config.ws_url is not None:
        urls = dict(exchange.urls)
        urls["api"] = ws_urls(flavour, urls["api"], config.ws_url)
        exchange.urls = urls
    route_throttle(exchange, limiter)


def chain_capacity(limiter: TokenBucket) -> float:
    """The smallest capacity along ``limiter`` and its parents (the most one request may take)."""
    capacity = limiter.capacity
    parent = limiter.parent
    while parent is not None:
        capacity = min(capacity, parent.capacity)
        parent = parent.parent
    return capacity


def route_throttle(exchange: Any, limiter: TokenBucket) -> None:
    """Make ``exchange`` take each request's ccxt cost from ``limiter`` before sending it.

    A cost larger than a bucket could ever hold (MEXC's market list costs 25) is capped at the
    smallest capacity in the chain: it then waits for a full bucket instead of failing.
    """
    cap = chain_capacity(limiter)

    async def throttle(cost: float | None = None) -> None:
        weight = float(cost) if cost else 1.0
        await limiter.acquire(min(weight, cap))

    exchange.enableRateLimit = True
    exchange.throttle = throttle
