"""Loopback KuCoin spot (HF account) emulator that unmodified ccxt and ccxt.pro trade against.

Use::

    async with KucoinEmulator(api_key="k", secret="s", passphrase="p") as emu:
        emu.set_mid("0.1", spread_bps=20)
        ex = emu.ccxt()          # ccxt.async_support.kucoin, hf=True, uta=False, pointed here
        pro = emu.ccxt_pro()     # ccxt.pro.kucoin: REST here, websockets via the bullet token
        ...
        await ex.close(); await pro.close()

REST endpoints served (what ccxt 4.5.90 requests for kasmm's calls with ``options={'hf': True,
'uta': False}``; ccxt builds ``urls['api']['public'|'private'] + '/api/' + version + '/' + path``):

public   GET    /api/v1/timestamp, /api/v2/symbols, /api/v3/currencies, /api/v1/market/allTickers,
                /api/v1/market/orderbook/level2_20 and level2_100 (``sequence``, ``time``)
public   POST   /api/v1/bullet-public (token + ``instanceServers`` = :attr:`ws_url`)
signed   GET    /api/v1/accounts (``type=trade_hf``), /api/v3/market/orderbook/level2 (full book),
                /api/v3/margin/symbols and /api/v1/isolated/symbols (empty: no margin here),
                /api/v1/hf/orders/active, /done, /{orderId}, /client-order/{clientOid},
                /api/v1/hf/fills, /api/v1/hf/orders/dead-cancel-all/query
signed   POST   /api/v1/hf/orders, /api/v1/hf/orders/multi (at most 5; per-order ``success`` /
                ``failMsg``), /api/v1/hf/orders/dead-cancel-all (``timeout`` 5..86400 s or -1,
                ``symbols``), /api/v1/bullet-private
signed   DELETE /api/v1/hf/orders/{orderId}, /client-order/{clientOid}, /api/v1/hf/orders
                (by symbol), /api/v1/hf/orders/cancelAll
wallet          POST /api/v3/withdrawals; GET /api/v1/withdrawals[/{id}], /api/v1/deposit-addresses
                (:mod:`tests.emulators.kucoin_wallet`, ``emu.wallet``)

Every answer is ``{"code": "200000", "data": ...}``; errors are ``{"code", "msg"}`` (the order
errors are tabled in :mod:`tests.emulators.kucoin_engine`). Signing is checked as KuCoin documents
it (https://www.kucoin.com/docs-new/authentication): ``KC-API-SIGN`` = base64 HMAC-SHA256(secret,
timestamp + METHOD + path with query + body); ``KC-API-PASSPHRASE`` is the base64 HMAC-SHA256 of
the passphrase for key versions 2 and 3, the plain passphrase for version 1; ``KC-API-TIMESTAMP``
within 5 s of the server's clock. Gateway errors (https://www.kucoin.com/docs-new/error-code):

=======================================  ====  ======  =======================================
condition                                HTTP  code    ccxt 4.5.90 raises
=======================================  ====  ======  =======================================
a KC-API-* header missing                401   400001  AuthenticationError
timestamp more than 5 s off              400   400002  InvalidNonce
unknown API key                          401   400003  AuthenticationError
wrong passphrase                         401   400004  AuthenticationError
bad signature                            401   400005  AuthenticationError
KC-API-KEY-VERSION not the key's         401   400009  ExchangeError (ccxt has no mapping)
resource pool used up (per key / IP)     429   429000  RateLimitExceeded
unknown URL                              404   404000  NotSupported
=======================================  ====  ======  =======================================

Rate limit: KuCoin's "resource pools" (https://www.kucoin.com/docs-new/rate-limit): each API key
has a spot pool (default 4000 weight per 30 s from its first request) and public requests share a
public pool (2000); every answer carries ``gw-ratelimit-limit``, ``-remaining`` and ``-reset`` (ms).
Websockets (token handshake, ``/market/level2``, ``/spotMarket/tradeOrders[V2]``, ping and token
faults) are in :mod:`tests.emulators.kucoin_ws`. Injectable REST faults: :class:`Fault`. With
``state_path`` the engine state survives a restart (a new emulator on the same file).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl

from aiohttp import web

from tests.emulators import kucoin_routes as routes
from tests.emulators import kucoin_wallet
from tests.emulators.kucoin_engine import KAS_USDT, KucoinError, KucoinVenue
from tests.emulators.kucoin_ws import KucoinWebsockets
from tests.emulators.matching_types import Fill, Market, Order
from tests.emulators.server import (
    EmulatorServer,
    Fault,
    FaultInjection,
    FaultList,
    read_state,
    write_state,
)

__all__ = ["Fault", "KucoinEmulator", "RequestRecord", "configure_ccxt", "configure_ccxt_pro"]

DEFAULT_BALANCES: Mapping[str, object] = {"KAS": "100000", "USDT": "10000"}
WS_PATH = "/endpoint"
TIMESTAMP_WINDOW_MS = 5000
_UNSERVED_SECTIONS = (
    "futuresPrivate",
    "futuresPublic",
    "webExchange",
    "broker",
    "earn",
    "uta",
    "utaV2",
    "utaPrivate",
)


class _Urls(Protocol):
    urls: dict[str, Any]


def configure_ccxt(exchange: _Urls, base_url: str) -> None:
    """Point a ``ccxt.async_support.kucoin`` (or ``ccxt.pro.kucoin``) instance's REST at the
    emulator: ``urls['api']['public']`` and ``urls['api']['private']`` = ``base_url`` (sign()
    appends ``/api/<version>/<path>``). The other sections (futures, broker, earn, uta...) point
    at ``base_url + '/unserved/<section>'``, answered 404, so a stray call fails locally."""
    base = base_url.rstrip("/")
    api = dict(exchange.urls["api"])
    api["public"] = api["private"] = base
    for section in _UNSERVED_SECTIONS:
        api[section] = f"{base}/unserved/{section}"
    exchange.urls = {**exchange.urls, "api": api}


def configure_ccxt_pro(exchange: _Urls, base_url: str, ws_url: str) -> None:
    """REST as :func:`configure_ccxt`, plus ``urls['api']['ws']['spot'|'futures'|'private']`` =
    ``ws_url``. ccxt.pro's classic (non-UTA) KuCoin streams do not read these: they connect to
    the ``endpoint`` the bullet handshake answers, which the emulator sets to ``ws_url``. They are
    set so that a UTA stream cannot reach kucoin.com either."""
    configure_ccxt(exchange, base_url)
    api = dict(exchange.urls["api"])
    api["ws"] = {"spot": ws_url, "futures": ws_url, "private": ws_url}
    exchange.urls = {**exchange.urls, "api": api}


@dataclass
class RequestRecord:
    """One request as the emulator saw it (``emu.requests``)."""

    method: str
    path: str
    query: str
    body: str
    api_key: str | None
    signed: bool
    #: For a signed endpoint: whether the key, passphrase, signature and timestamp checked out.
    signed_ok: bool | None
    weight: int
    status: int = 200
    code: str = "200000"
    time_ms: int = 0


@dataclass
class ApiKey:
    """An API key of the emulated account: its secret, passphrase and key version."""

    secret: str
    passphrase: str
    version: str = "2"


@dataclass
class _Pool:
    """One rate-limit resource pool: weight used since ``start`` (a 30 s window)."""

    quota: int
    start: float = 0.0
    used: int = 0


@dataclass
class Ctx:
    """What a route handler gets: the parsed request and the calling key."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    api_key: str | None
    match: dict[str, str] = field(default_factory=dict)


class KucoinEmulator(EmulatorServer[KucoinWebsockets], FaultInjection):
    """A KuCoin spot HF venue on 127.0.0.1 (see the module docstring for the protocol).

    ``clock`` returns seconds (``time.time`` by default): server time, order and fill times, the
    timestamp window, rate-limit windows and token expiry all read it.
    """

    def __init__(
        self,
        api_key: str = "emu-key",
        secret: str = "emu-secret",
        passphrase: str = "emu-pass",
        *,
        markets: Iterable[Market] | None = None,
        balances: Mapping[str, object] | None = None,
        clock: Callable[[], float] | None = None,
        key_version: str = "2",
        spot_quota: int | None = 4000,
        public_quota: int | None = 2000,
        window_s: float = 30.0,
        ping_interval_ms: int = 18_000,
        ping_timeout_ms: int = 10_000,
        token_ttl_s: float = 86_400.0,
        check_timestamp: bool = True,
        timer_interval_s: float = 0.05,
        state_path: str | os.PathLike[str] | None = None,
        http_latency_s: float = 0.0,
    ) -> None:
        self._init_server(http_latency_s)
        self.api_key = api_key
        self.secret = secret
        self.passphrase = passphrase
        self.clock: Callable[[], float] = clock or time.time
        self.venue = KucoinVenue(list(markets) if markets is not None else [KAS_USDT], self.clock)
        self.engine = self.venue.engine
        #: Withdrawals and deposit addresses (:mod:`tests.emulators.kucoin_wallet`); test
        #: controls: ``wallet.allow``, ``wallet.suspend``, ``wallet.advance``.
        self.wallet = kucoin_wallet.new_wallet(self)
        self.wallet.on_change = self.save_state  # the balances it moves
        self.default_symbol = next(iter(self.engine.markets))
        self.keys: dict[str, ApiKey] = {}
        self.add_account(api_key, secret, passphrase, balances, version=key_version)
        self.spot_quota, self.public_quota, self.window_s = spot_quota, public_quota, window_s
        self._pools: dict[str, _Pool] = {}
        self.check_timestamp = check_timestamp
        self.timer_interval_s = timer_interval_s
        self.requests: list[RequestRecord] = []
        #: Tracebacks of handler crashes (answered 500): tests should assert this stays empty.
        self.internal_errors: list[str] = []
        self.faults = FaultList()
        self.ws_protocol = KucoinWebsockets(
            self.venue, self.clock, ping_interval_ms, ping_timeout_ms, token_ttl_s
        )
        #: The engine state is kept here (written after every request that may change it, and
        #: read when the emulator is made): a new emulator on the same file is a restart.
        self.state_path = Path(state_path) if state_path is not None else None
        state = read_state(self.state_path) if self.state_path is not None else None
        if state is not None:
            self.engine.load_state(state)

    def save_state(self) -> None:
        """Write the engine state to :attr:`state_path` atomically (a sibling, then rename)."""
        if self.state_path is not None:
            write_state(self.state_path, self.engine.to_state())

    # ------------------------------------------------------------------ lifecycle

    #: ``ws_url``: the websocket endpoint the bullet handshake hands out (``instanceServers[0]``).
    _ws_paths = (WS_PATH,)

    async def _after_start(self) -> None:
        self.ws_protocol.endpoint = self.ws_url
        await self.ws_protocol.start()
        self._start_timer(lambda: self.timer_interval_s, self._fire_timers)

    async def _before_cleanup(self) -> None:
        await self.ws_protocol.stop()

    def _fire_timers(self) -> None:
        if self.engine.check_timers():
            self.save_state()

    def ccxt(self, **config: Any) -> Any:
        """An unmodified ``ccxt.async_support.kucoin`` with this emulator's credentials and
        kasmm's options (``hf``, no UTA), pointed here. Close it with ``await ex.close()``."""
        import ccxt.async_support as ccxt_async

        exchange = ccxt_async.kucoin(self._ccxt_config(config))
        configure_ccxt(exchange, self.base_url)
        exchange.timeout_on_exit = 0
        return exchange

    def ccxt_pro(self, **config: Any) -> Any:
        """An unmodified ``ccxt.pro.kucoin`` like :meth:`ccxt`, with its websockets here."""
        import ccxt.pro as ccxt_pro

        exchange = ccxt_pro.kucoin(self._ccxt_config(config))
        configure_ccxt_pro(exchange, self.base_url, self.ws_url)
        exchange.timeout_on_exit = 0
        return exchange

    def _ccxt_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        options = {"hf": True, "uta": False, "fetchMarkets": {"types": ["spot"]}}
        return {
            "apiKey": self.api_key,
            "secret": self.secret,
            "password": self.passphrase,
            "enableRateLimit": False,
            **config,
            "options": {**options, **config.get("options", {})},
        }

    # ------------------------------------------------------------------ test controls

    def add_account(
        self,
        api_key: str,
        secret: str,
        passphrase: str,
        balances: Mapping[str, object] | None = None,
        *,
        version: str = "2",
    ) -> None:
        """Another API key (its own balances, orders and fills)."""
        self.keys[api_key] = ApiKey(secret, passphrase, version)
        self.engine.add_account(api_key, DEFAULT_BALANCES if balances is None else balances)

    def set_mid(
        self,
        mid: object,
        spread_bps: object = 20,
        levels: int = 5,
        size: object = 1000,
        symbol: str | None = None,
    ) -> list[Fill]:
        """An outside book around ``mid`` (:meth:`MatchingEngine.set_mid`)."""
        return self.engine.set_mid(mid, spread_bps, levels, size, symbol or self.default_symbol)

    def set_book(
        self,
        bids: Iterable[tuple[object, object]],
        asks: Iterable[tuple[object, object]],
        symbol: str | None = None,
    ) -> list[Fill]:
        """Replace the outside book: ``(price, size)`` levels."""
        return self.engine.set_book(bids, asks, symbol or self.default_symbol)

    def trade(
        self, side: str, price: object, size: object, symbol: str | None = None
    ) -> list[Fill]:
        """An outside taker that fills the resting API orders it crosses (maker fills)."""
        return self.engine.trade(symbol or self.default_symbol, side, price, size)

    def balances(self, account: str | None = None) -> dict[str, tuple[Decimal, Decimal]]:
        """``{asset: (available, holds)}`` of ``account`` (default: the main key)."""
        assets = self.engine.accounts[account or self.api_key]
        return {a: (b.available, b.locked) for a, b in assets.items()}

    def orders(self, account: str | None = None, open_only: bool = False) -> list[Order]:
        return self.engine.orders_of(account or self.api_key, None, True if open_only else None)

    @property
    def countdowns(self) -> dict[tuple[str, str], float]:
        """Armed dead man's switches: ``(api key, symbol)`` -> deadline."""
        return dict(self.engine.timers)

    # ------------------------------------------------------------------ HTTP

    async def _dispatch(self, request: web.Request) -> web.Response:
        body_text = await request.text()
        path = request.path
        raw_query = request.query_string
        record = RequestRecord(
            request.method,
            path,
            raw_query,
            body_text,
            None,
            False,
            None,
            0,
            time_ms=int(self.clock() * 1000),
        )
        self.requests.append(record)
        self.engine.check_timers()
        route = kucoin_wallet.find(request.method, path) or routes.find(request.method, path)
        if route is None:
            return self._answer(record, 404, {"code": "404000", "msg": "Url Not Found"})
        handler, signed, weight, match = route
        record.signed, record.weight = signed, weight
        try:
            if signed:
                record.api_key = request.headers.get("KC-API-KEY")
                self._check_auth(request, body_text)
                record.signed_ok = True
            limited = self._charge(record.api_key if signed else "public", weight, signed)
            if limited is not None:
                return self._answer(record, 429, limited[0], limited[1])
            fault = self.faults.take(request.method, path)
            if fault is not None and fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault is not None and not fault.after and (fault.status != 200 or fault.body):
                return self._answer(record, fault.status, fault.body or _fault_body(fault.status))
            ctx = Ctx(
                request.method,
                path,
                dict(parse_qsl(raw_query, keep_blank_values=True)),
                _json_body(body_text),
                record.api_key,
                match,
            )
            data = handler(self, ctx)
            if request.method != "GET":
                self.save_state()
            if fault is not None and fault.after:
                return self._answer(record, fault.status, fault.body or _fault_body(fault.status))
            return self._answer(record, 200, {"code": "200000", "data": data})
        except KucoinError as err:
            if signed and record.signed_ok is None and err.code.startswith("4000"):
                record.signed_ok = False
            return self._answer(record, err.status, err.body())
        except Exception:  # answered 500 and kept for the test to assert on
            self.internal_errors.append(traceback.format_exc())
            return self._answer(record, 500, {"code": "500000", "msg": "Internal Server Error"})

    def _answer(
        self,
        record: RequestRecord,
        status: int,
        body: dict[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        record.status, record.code = status, str(body.get("code", ""))
        pool = self._pools.get((record.api_key or "") if record.signed else "public")
        out = dict(headers or {})
        if pool is not None and "gw-ratelimit-limit" not in out:
            out.update(self._pool_headers(pool))
        return web.json_response(body, status=status, headers=out)

    def _check_auth(self, request: web.Request, body: str) -> None:
        headers = request.headers
        names = ("KC-API-KEY", "KC-API-SIGN", "KC-API-TIMESTAMP", "KC-API-PASSPHRASE")
        if any(not headers.get(name) for name in names):
            raise KucoinError(
                "400001",
                "Any of KC-API-KEY, KC-API-SIGN, KC-API-TIMESTAMP, "
                "KC-API-PASSPHRASE is missing in your request header.",
                401,
            )
        key = self.keys.get(headers["KC-API-KEY"])
        if key is None:
            raise KucoinError("400003", "KC-API-KEY not exists", 401)
        timestamp = headers["KC-API-TIMESTAMP"]
        if self.check_timestamp and (
            not timestamp.isdigit()
            or abs(int(timestamp) - self.clock() * 1000) > TIMESTAMP_WINDOW_MS
        ):
            raise KucoinError("400002", "Invalid KC-API-TIMESTAMP", 400)
        version = headers.get("KC-API-KEY-VERSION", "1")
        if version != key.version:
            raise KucoinError("400009", "Invalid KC-API-KEY-VERSION", 401)
        expected = key.passphrase if version == "1" else _b64_hmac(key.secret, key.passphrase)
        if not hmac.compare_digest(headers["KC-API-PASSPHRASE"], expected):
            raise KucoinError("400004", "Invalid KC-API-PASSPHRASE", 401)
        signed = timestamp + request.method + request.raw_path + body
        if not hmac.compare_digest(headers["KC-API-SIGN"], _b64_hmac(key.secret, signed)):
            raise KucoinError("400005", "Invalid KC-API-SIGN", 401)

    def _charge(
        self, pool_key: str | None, weight: int, signed: bool
    ) -> tuple[dict[str, Any], dict[str, str]] | None:
        quota = self.spot_quota if signed else self.public_quota
        if quota is None or pool_key is None:
            return None
        now = self.clock()
        pool = self._pools.setdefault(pool_key, _Pool(quota, now))
        if now - pool.start >= self.window_s:
            pool.start, pool.used = now, 0
        if pool.used + weight > pool.quota:
            body = {"code": "429000", "msg": "Too Many Requests"}
            return body, self._pool_headers(pool)
        pool.used += weight
        return None

    def _pool_headers(self, pool: _Pool) -> dict[str, str]:
        reset_ms = max(0, int((pool.start + self.window_s - self.clock()) * 1000))
        return {
            "gw-ratelimit-limit": str(pool.quota),
            "gw-ratelimit-remaining": str(max(0, pool.quota - pool.used)),
            "gw-ratelimit-reset": str(reset_ms),
        }

    def reset_rate_limits(self) -> None:
        self._pools.clear()


def _b64_hmac(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign_headers(
    secret: str,
    passphrase: str,
    api_key: str,
    method: str,
    endpoint: str,
    body: str = "",
    timestamp_ms: int | None = None,
) -> dict[str, str]:
    """KuCoin v2 request headers, for tests that send raw requests (``endpoint`` with query)."""
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    return {
        "KC-API-KEY": api_key,
        "KC-API-SIGN": _b64_hmac(secret, timestamp + method + endpoint + body),
        "KC-API-TIMESTAMP": timestamp,
        "KC-API-PASSPHRASE": _b64_hmac(secret, passphrase),
        "KC-API-KEY-VERSION": "2",
        "Content-Type": "application/json",
    }


def _json_body(text: str) -> Any:
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        raise KucoinError("400100", "Parameter Error: body is not JSON") from None


def _fault_body(status: int) -> dict[str, Any]:
    if status == 429:
        return {"code": "429000", "msg": "Too Many Requests"}
    return (
        {"code": "500000", "msg": "Internal Server Error"}
        if status >= 500
        else {"code": "400100", "msg": "Parameter Error"}
    )
