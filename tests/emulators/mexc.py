"""Loopback MEXC spot v3 REST emulator that unmodified ``ccxt.async_support.mexc`` trades against.

Use::

    async with MexcEmulator(api_key="k", secret="s") as emu:
        emu.set_mid("0.05", spread_bps=20)
        ex = ccxt.async_support.mexc({"apiKey": "k", "secret": "s", "enableRateLimit": False})
        configure_ccxt(ex, emu.base_url)
        ...
        await ex.close()

or ``emu.ccxt()`` for the same client in one call; ``emu.ccxt_pro()`` (or
:func:`configure_ccxt_pro`) gives an unmodified ``ccxt.pro.mexc`` whose websockets reach the
emulator's ``/ws`` (:attr:`MexcEmulator.ws_url`; the protocol is in :mod:`tests.emulators.mexc_ws`,
its wire faults on :attr:`MexcEmulator.ws`). As its own process (crash-restart tests)::

    python -m tests.emulators.mexc --port 0 --api-key K --secret S [--state FILE]

prints one JSON line ``{"url": ..., "ws_url": ..., "port": ..., "pid": ...}``; unauthenticated
admin endpoints under ``/_emu/`` drive it: ``trade``, ``mid``, ``book``, ``foreign``, ``fault``,
``state``, ``requests``, ``wallet/<action>`` (withdrawals: :func:`tests.emulators.wallet.admin`).

Endpoints served (what ccxt 4.5.90 calls; the URL is ``urls['api'][section][access]`` +
``/api/v3/`` + the ccxt path for ``spot``, ``urls['api']['contract'][access]`` + ``/`` + path for
``contract``):

public   GET  /api/v3/ping, /time, /exchangeInfo, /depth, /defaultSymbols,
              /ticker/24hr, /ticker/price, /ticker/bookTicker
public   GET  /api/v1/contract/detail (empty list: no swaps), /api/v1/contract/ping
signed   GET  /api/v3/capital/config/getall (load_markets → fetch_currencies; fees and limits from
              ``emu.wallet``), /account, /tradeFee,
              /order, /openOrders, /allOrders, /myTrades
signed   POST /api/v3/order, /order/test, /batchOrders (ccxt create_orders: ``batchOrders`` = JSON;
              up to 20 orders of one symbol, each answered on its own: ``orderId`` or
              ``code``/``msg``, with ``newClientOrderId`` when one was sent; weight 1, 2 r/s)
signed DELETE /api/v3/order, /openOrders, /order/all (ccxt cancel_all_orders without symbol)
signed POST/PUT/DELETE/GET /api/v3/userDataStream (listen keys: ``{"listenKey": ...}``; PUT and
              DELETE take ``listenKey``; GET lists the valid ones; 60 minutes on ``clock``)
signed   POST /api/v3/capital/withdraw; GET /capital/withdraw/history, /capital/deposit/address
              (:mod:`tests.emulators.mexc_wallet`)
websocket GET /ws[?listenKey=...] (see :mod:`tests.emulators.mexc_ws`)

Anything else answers 404 ``{"code": -1, ...}`` (ccxt: ``ExchangeError``) and is logged.

Signing is checked as MEXC does: ``signature`` = hex HMAC-SHA256(secret, totalParams),
totalParams = the raw query string without ``&signature=…`` + the raw body; ``X-MEXC-APIKEY``
header; ``timestamp`` must satisfy ``timestamp < now + 1000`` and ``now - timestamp <=
recvWindow`` (default 5000, max 60000). Error answers (HTTP 400 unless noted) and what ccxt
4.5.90 raises for them:

=====================================  ==========  ==================================
condition                              code        ccxt exception
=====================================  ==========  ==================================
no ``X-MEXC-APIKEY``                   400         BadRequest
unknown API key (MEXC's real answer)   10072       BadRequest (ccxt's mapping!)
bad signature / wrong secret           700002      AuthenticationError
timestamp outside recvWindow           700003      InvalidNonce
recvWindow > 60000                     700005      InvalidNonce
missing mandatory parameter            700004      BadRequest
unknown symbol                         -1121       BadSymbol
price / quantity off tick / lot        400         BadRequest ("price|quantity scale is invalid")
below min qty or min notional          30002       InvalidOrder
above max notional                     30003       InvalidOrder
insufficient balance                   30004       InsufficientFunds
unsupported order type                 30041       InvalidOrder
MARKET with nothing to match           30025       InvalidOrder
duplicate newClientOrderId (*)         -2010       ExchangeError
cancel unknown / closed order          -2011       BadRequest (not OrderNotFound)
query unknown order                    -2013       ExchangeError (not OrderNotFound)
unknown / expired / deleted listen key 730708      ExchangeError
request weight over the window         429 / 429   RateLimitExceeded (HTTP 429)
``batchOrders`` above 2 r/s            429 / 429   RateLimitExceeded (HTTP 429)
=====================================  ==========  ==================================

(*) MEXC documents no code for a reused client id; this one is modelled on Binance.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import os
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl

from aiohttp import web

from tests.emulators.mexc_shapes import (
    JsonDict,
    Levels,
    MarketSpec,
    MexcError,
    MexcOrder,
    MexcTrade,
    err_mandatory,
    fmt,
)
from tests.emulators.mexc_venue import MexcVenue
from tests.emulators.mexc_wallet import ROUTES as WALLET_ROUTES
from tests.emulators.mexc_wallet import network_json, new_wallet
from tests.emulators.mexc_ws import WS_PATH, ListenKeys, MexcWs
from tests.emulators.server import (
    EmulatorServer,
    Fault,
    FaultInjection,
    FaultList,
    read_state,
    serve_until_signalled,
    write_state,
)
from tests.emulators.wallet import Network
from tests.emulators.wallet import admin as wallet_admin

__all__ = [
    "DEFAULT_WEIGHTS",
    "Fault",
    "MarketSpec",
    "MexcEmulator",
    "MexcError",
    "RequestRecord",
    "configure_ccxt",
    "configure_ccxt_pro",
]

DEFAULT_BALANCES: Mapping[str, object] = {"KAS": "100000", "USDT": "10000"}

#: Request weight per endpoint (MEXC's published weights, as far as known); others weigh 1.
#: ``batchOrders`` weighs 1 (IP and UID) whatever the number of orders in it.
DEFAULT_WEIGHTS: Mapping[tuple[str, str], int] = {
    ("POST", "/api/v3/batchOrders"): 1,
    ("GET", "/api/v3/exchangeInfo"): 10,
    ("GET", "/api/v3/account"): 10,
    ("GET", "/api/v3/order"): 2,
    ("GET", "/api/v3/openOrders"): 3,
    ("GET", "/api/v3/allOrders"): 10,
    ("GET", "/api/v3/myTrades"): 10,
    ("GET", "/api/v3/capital/config/getall"): 10,
    ("GET", "/api/v3/tradeFee"): 20,
}

#: Endpoints with a request rate of their own besides the weight window: ``(requests,
#: seconds)``. MEXC documents ``batchOrders`` as "rate limit: 2 times/s".
DEFAULT_ENDPOINT_RATES: Mapping[tuple[str, str], tuple[int, float]] = {
    ("POST", "/api/v3/batchOrders"): (2, 1.0),
}

TOO_MANY = {"code": 429, "msg": "Too Many Requests"}


class _Urls(Protocol):
    urls: dict[str, Any]


def configure_ccxt(exchange: _Urls, base_url: str) -> None:
    """Point a ``ccxt.async_support.mexc`` (or sync ``ccxt.mexc``) instance at the emulator.

    Overrides, per instance (ccxt copies ``urls`` into each instance, and HMAC signing does not
    depend on the host):

    * ``urls['api']['spot']['public'|'private']`` = ``base_url``: sign() appends ``/api/v3/<path>``;
      every spot call, including the signed ``capital/config/getall`` that ``load_markets()`` makes
      through ``fetch_currencies()`` when credentials are set.
    * ``urls['api']['contract']['public']`` = ``base_url + '/api/v1/contract'``: ``load_markets()``
      always fetches ``detail`` (the swap list) too; the emulator serves an empty list.
    * ``urls['api']['contract']['private']`` = ``base_url + '/api/v1/private'``: not served (404),
      pointed here so a stray swap call fails locally instead of reaching api.mexc.com.
    * ``urls['api']['spot2']`` and ``urls['api']['broker']``: likewise, loopback and not served.
    """
    base = base_url.rstrip("/")
    api = dict(exchange.urls["api"])
    api["spot"] = {"public": base, "private": base}
    api["contract"] = {"public": base + "/api/v1/contract", "private": base + "/api/v1/private"}
    api["spot2"] = {"public": base + "/open/api/v2", "private": base + "/open/api/v2"}
    api["broker"] = {"private": base + "/api/v3/broker"}
    exchange.urls = {**exchange.urls, "api": api}


def configure_ccxt_pro(exchange: _Urls, base_url: str, ws_url: str) -> None:
    """Point a ``ccxt.pro.mexc`` instance at the emulator: REST as :func:`configure_ccxt`, plus

    * ``urls['api']['ws']['spot']`` = ``ws_url``: every spot ``watch_*`` (public channels on
      this URL, private ones on ``ws_url + '?listenKey=...'``);
    * ``urls['api']['ws']['swap']`` = a loopback URL that is not served, so a stray swap watch
      fails locally instead of reaching contract.mexc.com.
    """
    configure_ccxt(exchange, base_url)
    api = dict(exchange.urls["api"])
    api["ws"] = {"spot": ws_url, "swap": base_url.rstrip("/") + "/contract/edge"}
    exchange.urls = {**exchange.urls, "api": api}


@dataclass
class RequestRecord:
    """One request as the emulator saw it (``emu.requests``)."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    #: True if the endpoint is SIGNED.
    signed: bool
    #: For a SIGNED endpoint: whether key, signature and timestamp all checked out; None if public.
    signed_ok: bool | None
    api_key: str | None
    weight: int
    status: int = 200
    #: MEXC error code of the answer, if it was an error.
    code: int | None = None
    time_ms: int = 0


@dataclass
class _Ctx:
    params: dict[str, str]
    api_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_Handler = Callable[["MexcEmulator", _Ctx], Any]


class MexcEmulator(EmulatorServer[MexcWs], FaultInjection):
    """A MEXC spot v3 REST venue on 127.0.0.1 (see the module docstring for the protocol).

    ``clock`` returns seconds (``time.time`` by default); it drives ``serverTime``, order and fill
    times, the recvWindow check and the weight window.
    """

    def __init__(
        self,
        api_key: str = "emu-key",
        secret: str = "emu-secret",
        *,
        markets: Iterable[MarketSpec] | None = None,
        balances: Mapping[str, object] | None = None,
        weight_limit: int | None = 500,
        window_s: float = 10.0,
        weights: Mapping[tuple[str, str], int] | None = None,
        clock: Callable[[], float] | None = None,
        state_path: str | os.PathLike[str] | None = None,
        check_timestamp: bool = True,
        endpoint_rates: Mapping[tuple[str, str], tuple[int, float]] | None = None,
        ws_options: Mapping[str, Any] | None = None,
        http_latency_s: float = 0.0,
    ) -> None:
        self._init_server(http_latency_s)
        self.api_key = api_key
        self.secret = secret
        self.clock: Callable[[], float] = clock or time.time
        self.weight_limit = weight_limit
        self.window_s = window_s
        self.weights: dict[tuple[str, str], int] = dict(
            DEFAULT_WEIGHTS if weights is None else weights
        )
        #: Per-endpoint request rates (enforced, like the weights, unless ``weight_limit`` is
        #: None).
        self.endpoint_rates: dict[tuple[str, str], tuple[int, float]] = dict(
            DEFAULT_ENDPOINT_RATES if endpoint_rates is None else endpoint_rates
        )
        self._endpoint_times: dict[tuple[str, str], deque[float]] = {}
        self.check_timestamp = check_timestamp
        self.state_path = Path(state_path) if state_path is not None else None
        #: MEXC's rules over the shared matching engine (``engine.matching``).
        self.engine = MexcVenue(
            list(markets) if markets is not None else [MarketSpec()], self.clock
        )
        self.default_symbol = next(iter(self.engine.markets))
        self.engine.add_account(api_key, secret, DEFAULT_BALANCES if balances is None else balances)
        #: Withdrawals and deposit addresses (:mod:`tests.emulators.mexc_wallet`); test controls:
        #: ``wallet.allow``, ``wallet.suspend``, ``wallet.advance``.
        self.wallet = new_wallet(self)
        if self.state_path is not None:
            state = read_state(self.state_path)
            if state is not None:
                self.engine.load_json(state)
                if "wallet" in state:
                    self.wallet.load_json(state["wallet"])
        self.engine.on_change = self._persist
        self.wallet.on_change = self._persist
        self.listen_keys = ListenKeys(self.clock)
        #: The websocket protocol (``ws_options``: :class:`MexcWs` keyword arguments).
        self.ws_protocol = MexcWs(self.engine, self.listen_keys, **(ws_options or {}))
        self.engine.observers.append(self.ws_protocol)
        self.requests: list[RequestRecord] = []
        #: Tracebacks of handler crashes (answered 500): tests should assert this stays empty.
        self.internal_errors: list[str] = []
        self.faults = FaultList()
        self._window: deque[tuple[float, int]] = deque()
        self._persist()

    # ------------------------------------------------------------------ lifecycle
    #: ``ws_url``: the spot websocket URL to give ccxt.pro (``urls['api']['ws']['spot']``).
    _ws_paths = (WS_PATH,)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    async def _after_start(self) -> None:
        await self.ws_protocol.start()

    async def _before_cleanup(self) -> None:
        await self.ws_protocol.stop()

    def ccxt(self, **config: Any) -> Any:
        """An unmodified ``ccxt.async_support.mexc`` with this emulator's key, pointed at it
        (``enableRateLimit`` off unless given). Close it with ``await ex.close()``."""
        import ccxt.async_support as ccxt_async

        options = {
            "apiKey": self.api_key,
            "secret": self.secret,
            "enableRateLimit": False,
            **config,
        }
        exchange = ccxt_async.mexc(options)
        configure_ccxt(exchange, self.base_url)
        return exchange

    def ccxt_pro(self, **config: Any) -> Any:
        """An unmodified ``ccxt.pro.mexc`` like :meth:`ccxt`, websockets at :attr:`ws_url`."""
        import ccxt.pro as ccxt_pro

        exchange = ccxt_pro.mexc(
            {"apiKey": self.api_key, "secret": self.secret, "enableRateLimit": False, **config}
        )
        configure_ccxt_pro(exchange, self.base_url, self.ws_url)
        return exchange

    # ------------------------------------------------------------- test controls
    def add_account(
        self, api_key: str, secret: str, balances: Mapping[str, object] | None = None
    ) -> None:
        """Another API key on the venue (its own balances, orders and fills)."""
        self.engine.add_account(api_key, secret, DEFAULT_BALANCES if balances is None else balances)
        self._persist()

    def set_balance(
        self, asset: str, free: object, locked: object | None = None, account: str | None = None
    ) -> None:
        self.engine.set_balance(account or self.api_key, asset, free, locked)
        self._persist()

    def balances(self, account: str | None = None) -> dict[str, tuple[Decimal, Decimal]]:
        """``{asset: (free, locked)}`` of ``account`` (default: the main key)."""
        assets = self.engine.balances(account or self.api_key)
        return {a: (b.available, b.locked) for a, b in assets.items()}

    def set_book(self, bids: Levels, asks: Levels, symbol: str | None = None) -> None:
        """Replace the synthetic (non-API) liquidity: ``(price, size)`` levels."""
        self.engine.set_book(symbol or self.default_symbol, bids, asks)

    def set_mid(
        self,
        mid: object,
        spread_bps: object = 20,
        levels: int = 5,
        size: object = 1000,
        symbol: str | None = None,
        step_bps: object | None = None,
    ) -> None:
        """A symmetric synthetic book around ``mid`` (see :meth:`MexcVenue.set_mid`)."""
        self.engine.set_mid(symbol or self.default_symbol, mid, spread_bps, levels, size, step_bps)

    def trade(
        self, side: str, price: object, size: object, symbol: str | None = None
    ) -> list[MexcTrade]:
        """An outside taker ('buy' lifts asks up to ``price``, 'sell' hits bids down to ``price``)
        that fills the resting API orders it crosses, price-time priority, at their prices (maker
        fee). Returns the makers' fills."""
        return self.engine.outside_trade(symbol or self.default_symbol, side, price, size)

    def orders(
        self, symbol: str | None = None, account: str | None = None, open_only: bool = False
    ) -> list[JsonDict]:
        """All orders (every account unless ``account``) in MEXC's query shape, plus ``apiKey``."""
        return [
            {**o.query(), "apiKey": o.account}
            for o in self.engine.order_views()
            if (symbol is None or o.symbol == symbol)
            and (account is None or o.account == account)
            and (not open_only or o.is_open)
        ]

    def fills(self, account: str | None = None) -> list[JsonDict]:
        """Every fill (``myTrades`` shape plus ``apiKey``), oldest first."""
        return [
            {**t.my_trade(), "apiKey": t.account}
            for t in self.engine.trades
            if account is None or t.account == account
        ]

    def place_foreign(
        self,
        side: str,
        price: object,
        qty: object,
        *,
        symbol: str | None = None,
        client_order_id: str | None = None,
        account: str | None = None,
        type: str = "LIMIT",
    ) -> JsonDict:
        """Place an order as if someone else did (a human on the same account by default), not via
        ccxt and not logged in :attr:`requests`. Same validation; raises :class:`MexcError`."""
        params = {
            "symbol": symbol or self.default_symbol,
            "side": side.upper(),
            "type": type.upper(),
            "quantity": str(qty),
            "price": str(price),
        }
        if client_order_id is not None:
            params["newClientOrderId"] = client_order_id
        return self.engine.place(account or self.api_key, params).query()

    def cancel_foreign(
        self, order_id: str, *, symbol: str | None = None, account: str | None = None
    ) -> JsonDict:
        """Cancel an order as if from the web UI."""
        params = {"symbol": symbol or self.default_symbol, "orderId": order_id}
        return self.engine.cancel(account or self.api_key, params).query()

    def used_weight(self) -> int:
        self._expire_window(self.clock())
        return sum(w for _, w in self._window)

    def reset_weight(self) -> None:
        self._window.clear()
        self._endpoint_times.clear()

    def clear_requests(self) -> None:
        self.requests.clear()

    # ------------------------------------------------------------------ internals
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _persist(self) -> None:
        if self.state_path is not None:
            write_state(self.state_path, {**self.engine.to_json(), "wallet": self.wallet.to_json()})

    def _expire_window(self, now: float) -> None:
        while self._window and self._window[0][0] <= now - self.window_s:
            self._window.popleft()

    def _check_auth(self, request: web.Request, raw_query: str, body: str, ctx: _Ctx) -> None:
        api_key = request.headers.get("X-MEXC-APIKEY")
        if not api_key:
            raise MexcError(400, "api key required")
        ctx.api_key = api_key
        secret = self.engine.secret_of(api_key)
        if secret is None:
            raise MexcError(10072, "Api key info invalid")
        parts = raw_query.split("&") if raw_query else []
        signatures = [p[len("signature=") :] for p in parts if p.startswith("signature=")]
        if not signatures or not signatures[0]:
            raise err_mandatory("signature")
        total = "&".join(p for p in parts if not p.startswith("signature=")) + body
        expected = hmac.new(secret.encode(), total.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signatures[0]):
            raise MexcError(700002, "Signature for this request is not valid.")
        raw_ts = ctx.params.get("timestamp")
        if not raw_ts or not raw_ts.isdigit():
            raise err_mandatory("timestamp")
        raw_window = ctx.params.get("recvWindow") or "5000"
        if not raw_window.isdigit():
            raise MexcError(
                700008, "Illegal characters found in parameter 'recvWindow'; legal range is ''."
            )
        recv_window = int(raw_window)
        if recv_window > 60000:
            raise MexcError(700005, "recvWindow must less than 60000")
        now, ts = self._now_ms(), int(raw_ts)
        if self.check_timestamp and not (ts < now + 1000 and now - ts <= recv_window):
            raise MexcError(700003, "Timestamp for this request is outside of the recvWindow.")

    async def _dispatch(self, request: web.Request) -> web.Response:
        method, path = request.method.upper(), request.path
        raw_query = request.raw_path.partition("?")[2]
        body = await request.text() if request.can_read_body else ""
        if path.startswith("/_emu/"):
            return await self._admin(method, path, body)
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        params.pop("signature", None)
        if body:
            if "json" in request.content_type:
                with contextlib.suppress(ValueError):
                    loaded = json.loads(body)
                    if isinstance(loaded, dict):
                        params = {**{k: str(v) for k, v in loaded.items()}, **params}
            else:
                params = {**dict(parse_qsl(body, keep_blank_values=True)), **params}
        route = _ROUTES.get((method, path))
        signed = route is not None and route[1]
        weight = self.weights.get((method, path), 1) if path.startswith("/api/v3/") else 0
        record = RequestRecord(
            method=method,
            path=path,
            params=params,
            headers=dict(request.headers),
            signed=signed,
            signed_ok=None,
            api_key=request.headers.get("X-MEXC-APIKEY"),
            weight=weight,
            time_ms=self._now_ms(),
        )
        self.requests.append(record)
        status, payload, headers = await self._answer(request, route, raw_query, body, record)
        record.status = status
        if isinstance(payload, dict) and status != 200:
            code = payload.get("code")
            record.code = int(code) if isinstance(code, int) else None
        return web.json_response(payload, status=status, headers=headers)

    async def _answer(
        self,
        request: web.Request,
        route: tuple[_Handler, bool] | None,
        raw_query: str,
        body: str,
        record: RequestRecord,
    ) -> tuple[int, Any, dict[str, str] | None]:
        if record.weight and self.weight_limit is not None:
            now = self.clock()
            self._expire_window(now)
            used = sum(w for _, w in self._window)
            if used + record.weight > self.weight_limit:
                retry = math.ceil(self._window[0][0] + self.window_s - now) if self._window else 1
                record.weight = 0
                return 429, TOO_MANY, {"Retry-After": str(max(retry, 1))}
            rate = self.endpoint_rates.get((record.method, record.path))
            if rate is not None:
                times = self._endpoint_times.setdefault((record.method, record.path), deque())
                while times and times[0] <= now - rate[1]:
                    times.popleft()
                if len(times) >= rate[0]:
                    record.weight = 0
                    return 429, TOO_MANY, {"Retry-After": "1"}
                times.append(now)
            self._window.append((now, record.weight))
        if route is None:
            return (
                404,
                {"code": -1, "msg": f"emulator: no endpoint {record.method} {record.path}"},
                None,
            )
        fault = self.faults.take(record.method, record.path)
        if fault is not None and fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if (
            fault is not None
            and not fault.after
            and (fault.status != 200 or fault.body is not None)
        ):
            return (
                fault.status,
                fault.body if fault.body is not None else _fault_body(fault.status),
                None,
            )
        handler, signed = route
        ctx = _Ctx(params=record.params)
        try:
            if signed:
                record.signed_ok = False
                self._check_auth(request, raw_query, body, ctx)
                record.signed_ok = True
            result = handler(self, ctx)
            status, payload = 200, result
        except MexcError as exc:
            status, payload = exc.status, exc.body()
        except Exception:
            self.internal_errors.append(traceback.format_exc())
            status, payload = 500, {"code": 500, "msg": "emulator internal error"}
        if fault is not None and fault.after and (fault.status != 200 or fault.body is not None):
            return (
                fault.status,
                fault.body if fault.body is not None else _fault_body(fault.status),
                None,
            )
        return status, payload, None

    async def _admin(self, method: str, path: str, body: str) -> web.Response:
        """Unauthenticated control endpoints for a separate-process emulator (loopback only)."""
        data: dict[str, Any] = json.loads(body) if body else {}
        try:
            result: Any
            if path == "/_emu/state" and method == "GET":
                result = self.engine.to_json()
            elif path == "/_emu/requests" and method == "GET":
                result = [asdict(r) for r in self.requests]
            elif path == "/_emu/trade" and method == "POST":
                trades = self.trade(data["side"], data["price"], data["size"], data.get("symbol"))
                result = {"trades": [t.my_trade() for t in trades]}
            elif path == "/_emu/mid" and method == "POST":
                self.set_mid(
                    data["mid"],
                    data.get("spread_bps", 20),
                    int(data.get("levels", 5)),
                    data.get("size", 1000),
                    data.get("symbol"),
                    data.get("step_bps"),
                )
                result = {}
            elif path == "/_emu/book" and method == "POST":
                self.set_book(data["bids"], data["asks"], data.get("symbol"))
                result = {}
            elif path == "/_emu/foreign" and method == "POST":
                result = self.place_foreign(
                    data["side"],
                    data["price"],
                    data["qty"],
                    symbol=data.get("symbol"),
                    client_order_id=data.get("client_order_id"),
                    account=data.get("account"),
                    type=data.get("type", "LIMIT"),
                )
            elif path == "/_emu/fault" and method == "POST":
                result = asdict(self.inject_fault(**data))
            elif path.startswith("/_emu/wallet/") and method == "POST":
                result = wallet_admin(self.wallet, self.api_key, path.rsplit("/", 1)[1], data)
            else:
                return web.json_response(
                    {"error": f"no admin endpoint {method} {path}"}, status=404
                )
        except MexcError as exc:
            return web.json_response(exc.body(), status=exc.status)
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"error": repr(exc)}, status=400)
        return web.json_response(result)


def _fault_body(status: int) -> JsonDict:
    return {"code": status, "msg": "emulator: injected fault"}


# ---------------------------------------------------------------------- handlers
def _h_ping(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return {}


def _h_time(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return {"serverTime": emu._now_ms()}


def _h_exchange_info(emu: MexcEmulator, ctx: _Ctx) -> Any:
    wanted: set[str] | None = None
    if ctx.params.get("symbol"):
        wanted = {ctx.params["symbol"]}
    elif ctx.params.get("symbols"):
        wanted = set(ctx.params["symbols"].split(","))
    symbols = [
        m.exchange_info() for s, m in emu.engine.markets.items() if wanted is None or s in wanted
    ]
    if wanted is not None and not symbols:
        raise MexcError(-1121, "Invalid symbol.")
    return {
        "timezone": "CST",
        "serverTime": emu._now_ms(),
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": symbols,
    }


def _h_default_symbols(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return {"code": 200, "data": list(emu.engine.markets), "msg": None}


def _limit(ctx: _Ctx, default: int, maximum: int) -> int:
    raw = ctx.params.get("limit")
    if not raw:
        return default
    if not raw.isdigit():
        raise MexcError(700008, "Illegal characters found in parameter 'limit'; legal range is ''.")
    return max(1, min(int(raw), maximum))


def _h_depth(emu: MexcEmulator, ctx: _Ctx) -> Any:
    spec = emu.engine.market(ctx.params.get("symbol"))
    return emu.engine.depth(spec.symbol, _limit(ctx, 100, 5000))


def _ticker(emu: MexcEmulator, symbol: str) -> JsonDict:
    bid_ask = emu.engine.depth(symbol, 1)
    bid = bid_ask["bids"][0] if bid_ask["bids"] else ["0", "0"]
    ask = bid_ask["asks"][0] if bid_ask["asks"] else ["0", "0"]
    now = emu._now_ms()
    recent = [
        t
        for t in emu.engine.trades
        if t.symbol == symbol and t.time >= now - 86400000 and t.is_maker
    ]
    last = fmt(recent[-1].price) if recent else "0"
    prices = [t.price for t in recent]
    return {
        "symbol": symbol,
        "priceChange": "0",
        "priceChangePercent": "0",
        "prevClosePrice": last,
        "lastPrice": last,
        "bidPrice": bid[0],
        "bidQty": bid[1],
        "askPrice": ask[0],
        "askQty": ask[1],
        "openPrice": fmt(prices[0]) if prices else last,
        "highPrice": fmt(max(prices)) if prices else last,
        "lowPrice": fmt(min(prices)) if prices else last,
        "volume": fmt(sum((t.qty for t in recent), Decimal(0))),
        "quoteVolume": fmt(sum((t.qty * t.price for t in recent), Decimal(0))),
        "openTime": now - 86400000,
        "closeTime": now,
        "count": None,
    }


def _per_symbol(emu: MexcEmulator, ctx: _Ctx, one: Callable[[str], JsonDict]) -> Any:
    if ctx.params.get("symbol"):
        return one(emu.engine.market(ctx.params["symbol"]).symbol)
    return [one(s) for s in emu.engine.markets]


def _h_ticker_24hr(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return _per_symbol(emu, ctx, lambda s: _ticker(emu, s))


def _h_ticker_price(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return _per_symbol(emu, ctx, lambda s: {"symbol": s, "price": _ticker(emu, s)["lastPrice"]})


def _h_book_ticker(emu: MexcEmulator, ctx: _Ctx) -> Any:
    keys = ("symbol", "bidPrice", "bidQty", "askPrice", "askQty")
    return _per_symbol(emu, ctx, lambda s: {k: _ticker(emu, s)[k] for k in keys})


def _h_contract_ping(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return {"success": True, "code": 0, "data": emu._now_ms()}


def _h_contract_detail(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return {"success": True, "code": 0, "data": []}


def _h_capital_config(emu: MexcEmulator, ctx: _Ctx) -> Any:
    assets: dict[str, None] = {}
    for spec in emu.engine.markets.values():
        assets[spec.base] = None
        assets[spec.quote] = None
    networks = {rules.coin: rules for rules in emu.wallet.coins()}
    return [
        {
            "coin": coin,
            "name": coin,
            "networkList": [network_json(networks.get(coin) or Network(coin, coin))],
        }
        for coin in assets
    ]


def _h_account(emu: MexcEmulator, ctx: _Ctx) -> Any:
    assert ctx.api_key is not None
    assets = emu.engine.balances(ctx.api_key)
    return {
        "makerCommission": None,
        "takerCommission": None,
        "buyerCommission": None,
        "sellerCommission": None,
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "updateTime": None,
        "accountType": "SPOT",
        # MEXC lists only assets with a non-zero balance.
        "balances": [
            {"asset": a, "free": fmt(b.available), "locked": fmt(b.locked)}
            for a, b in assets.items()
            if b.available or b.locked
        ],
        "permissions": ["SPOT"],
    }


def _h_trade_fee(emu: MexcEmulator, ctx: _Ctx) -> Any:
    spec = emu.engine.market(ctx.params.get("symbol"))
    return {
        "data": {"makerCommission": fmt(spec.maker_fee), "takerCommission": fmt(spec.taker_fee)},
        "code": 0,
        "msg": "success",
        "timestamp": emu._now_ms(),
    }


def _key(ctx: _Ctx) -> str:
    assert ctx.api_key is not None
    return ctx.api_key


def _h_order_post(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return emu.engine.place(_key(ctx), ctx.params).ack()


def _h_order_test(emu: MexcEmulator, ctx: _Ctx) -> Any:
    emu.engine.check(_key(ctx), ctx.params)
    return {}


def _h_batch_orders(emu: MexcEmulator, ctx: _Ctx) -> Any:
    raw = ctx.params.get("batchOrders")
    if not raw:
        raise err_mandatory("batchOrders")
    try:
        entries = json.loads(raw)
    except ValueError:
        raise err_mandatory("batchOrders") from None
    if (
        not isinstance(entries, list)
        or not entries
        or not all(isinstance(e, dict) for e in entries)
    ):
        raise err_mandatory("batchOrders")
    if len(entries) > 20:
        raise MexcError(400, "batchOrders size must be between 1 and 20")  # unverified text
    if len({str(e.get("symbol")) for e in entries}) != 1:
        raise MexcError(400, "batchOrders must have the same symbol")  # unverified text
    results: list[JsonDict] = []
    for entry in entries:
        params = {k: str(v) for k, v in entry.items() if v is not None}
        client_id = params.get("newClientOrderId")
        try:
            order = emu.engine.place(_key(ctx), params)
        except MexcError as exc:
            failed: JsonDict = {"msg": exc.msg, "code": exc.code}
            if client_id is not None:
                failed = {"newClientOrderId": client_id, **failed}
            results.append(failed)
            continue
        done: JsonDict = {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1}
        if client_id is not None:
            done["newClientOrderId"] = client_id
        results.append(done)
    return results


def _h_order_delete(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return emu.engine.cancel(_key(ctx), ctx.params).cancel_answer()


def _symbols_param(emu: MexcEmulator, ctx: _Ctx) -> list[str]:
    raw = ctx.params.get("symbol")
    if not raw:
        raise err_mandatory("symbol")
    return [emu.engine.market(s).symbol for s in raw.split(",")]


def _h_open_orders_delete(emu: MexcEmulator, ctx: _Ctx) -> Any:
    cancelled: list[MexcOrder] = []
    for symbol in _symbols_param(emu, ctx):
        cancelled.extend(emu.engine.cancel_all(_key(ctx), symbol))
    return [o.cancel_answer() for o in cancelled]


def _h_order_all_delete(emu: MexcEmulator, ctx: _Ctx) -> Any:
    emu.engine.cancel_all(_key(ctx), None)
    return {"code": 200, "msg": "success", "timestamp": emu._now_ms()}


def _h_order_get(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return emu.engine.get_order(_key(ctx), ctx.params).query()


def _h_open_orders_get(emu: MexcEmulator, ctx: _Ctx) -> Any:
    symbols = _symbols_param(emu, ctx)
    return [o.query() for o in emu.engine.open_orders(_key(ctx), None) if o.symbol in symbols]


def _h_all_orders(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return [o.query() for o in emu.engine.all_orders(_key(ctx), ctx.params)]


def _h_my_trades(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return [t.my_trade() for t in emu.engine.my_trades(_key(ctx), ctx.params)]


def _h_listen_key_create(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return {"listenKey": emu.listen_keys.create(_key(ctx))}


def _h_listen_keys(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return {"listenKey": emu.listen_keys.valid(_key(ctx))}


def _h_listen_key_keep_alive(emu: MexcEmulator, ctx: _Ctx) -> Any:
    return {"listenKey": emu.listen_keys.keep_alive(_key(ctx), ctx.params.get("listenKey"))}


def _h_listen_key_delete(emu: MexcEmulator, ctx: _Ctx) -> Any:
    key = emu.listen_keys.delete(_key(ctx), ctx.params.get("listenKey"))
    for conn in emu.ws_protocol.connections_of(key):
        conn.close_after_sent()  # "DELETE ... will close the stream"
    return {"listenKey": key}


#: (method, server path) → (handler, SIGNED).
_ROUTES: dict[tuple[str, str], tuple[_Handler, bool]] = {
    ("GET", "/api/v3/ping"): (_h_ping, False),
    ("GET", "/api/v3/time"): (_h_time, False),
    ("GET", "/api/v3/exchangeInfo"): (_h_exchange_info, False),
    ("GET", "/api/v3/defaultSymbols"): (_h_default_symbols, False),
    ("GET", "/api/v3/depth"): (_h_depth, False),
    ("GET", "/api/v3/ticker/24hr"): (_h_ticker_24hr, False),
    ("GET", "/api/v3/ticker/price"): (_h_ticker_price, False),
    ("GET", "/api/v3/ticker/bookTicker"): (_h_book_ticker, False),
    ("GET", "/api/v1/contract/ping"): (_h_contract_ping, False),
    ("GET", "/api/v1/contract/detail"): (_h_contract_detail, False),
    ("GET", "/api/v3/capital/config/getall"): (_h_capital_config, True),
    ("GET", "/api/v3/account"): (_h_account, True),
    ("GET", "/api/v3/tradeFee"): (_h_trade_fee, True),
    ("POST", "/api/v3/order"): (_h_order_post, True),
    ("POST", "/api/v3/order/test"): (_h_order_test, True),
    ("POST", "/api/v3/batchOrders"): (_h_batch_orders, True),
    ("DELETE", "/api/v3/order"): (_h_order_delete, True),
    ("DELETE", "/api/v3/openOrders"): (_h_open_orders_delete, True),
    ("DELETE", "/api/v3/order/all"): (_h_order_all_delete, True),
    ("GET", "/api/v3/order"): (_h_order_get, True),
    ("GET", "/api/v3/openOrders"): (_h_open_orders_get, True),
    ("GET", "/api/v3/allOrders"): (_h_all_orders, True),
    ("GET", "/api/v3/myTrades"): (_h_my_trades, True),
    ("POST", "/api/v3/userDataStream"): (_h_listen_key_create, True),
    ("GET", "/api/v3/userDataStream"): (_h_listen_keys, True),
    ("PUT", "/api/v3/userDataStream"): (_h_listen_key_keep_alive, True),
    ("DELETE", "/api/v3/userDataStream"): (_h_listen_key_delete, True),
    **WALLET_ROUTES,
}


# -------------------------------------------------------------------------- main
def _parse_balances(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in filter(None, text.split(",")):
        asset, _, amount = item.partition("=")
        out[asset.strip()] = amount.strip()
    return out


async def _serve(args: argparse.Namespace) -> None:
    emu = MexcEmulator(
        args.api_key,
        args.secret,
        balances=_parse_balances(args.balances) if args.balances else None,
        weight_limit=args.weight_limit if args.weight_limit > 0 else None,
        window_s=args.window_s,
        state_path=args.state,
    )
    if args.mid:
        emu.set_mid(args.mid, args.spread_bps, args.levels, args.size)
    await emu.start(args.host, args.port)
    line = {
        "url": emu.base_url,
        "ws_url": emu.ws_url,
        "port": emu.port,
        "pid": os.getpid(),
        "api_key": emu.api_key,
    }
    await serve_until_signalled(emu, line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.emulators.mexc", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="emu-key")
    parser.add_argument("--secret", default="emu-secret")
    parser.add_argument(
        "--state", default=None, help="JSON file: persisted on every change, reloaded on start"
    )
    parser.add_argument(
        "--balances", default=None, help="e.g. KAS=100000,USDT=10000 (main account)"
    )
    parser.add_argument("--weight-limit", type=int, default=500, help="0 disables the weight limit")
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--mid", default=None, help="start with a synthetic book around this mid")
    parser.add_argument("--spread-bps", default="20")
    parser.add_argument("--levels", type=int, default=5)
    parser.add_argument("--size", default="1000")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
