"""Loopback BingX spot emulator that unmodified ``ccxt.async_support.bingx`` and ``ccxt.pro.bingx``
trade against (REST here, websockets in :mod:`tests.emulators.bingx_ws`, exchange shapes and
codes in :mod:`tests.emulators.bingx_engine`, matching in :mod:`tests.emulators.matching`).

Use::

    async with BingxEmulator(api_key="k", secret="s") as emu:
        emu.set_mid("0.05", spread_bps=20)
        ex = emu.ccxt_pro()          # or emu.ccxt() for REST only; both configured
        await load_spot_markets(ex)  # what kasmm does (fetch_spot_markets + set_markets)
        ...
        await ex.close()

ccxt builds every URL as ``urls['api'][section] + '/' + section + '/' + version + '/' + path``
(``spot/v1``, ``user/auth``), so the emulator serves under ``/openApi`` and
:func:`configure_ccxt` sets ``urls['api'][every REST section] = base_url + '/openApi'`` (kasmm's
``rest_url`` override does the same for ``spot`` only) and ``urls['api']['ws']['spot'] =
ws_url`` (``ws://host:port/market``; ``linear``/``inverse`` point at unserved loopback paths).

Endpoints served (signed = ``X-BX-APIKEY`` header + ``timestamp`` + ``signature``, all in the
query string, also for POST, as ccxt sends them):

public   GET  /openApi/spot/v1/server/time, /common/symbols, /market/depth, /ticker/24hr
public   GET  /openApi/swap/v2/quote/contracts, /openApi/cswap/v1/market/contracts (empty: no
              swaps, so ``load_markets()`` works too)
signed   GET  /openApi/wallets/v1/capital/config/getall (``load_markets`` → currencies: the
              wallet's coins), /wallets/v1/capital/deposit/address,
              /api/v3/capital/withdraw/history; POST /wallets/v1/capital/withdraw/apply
              (:mod:`tests.emulators.bingx_wallet`, ``emu.wallet``)
signed   GET  /openApi/spot/v1/account/balance, /trade/query, /trade/openOrders,
              /trade/historyOrders, /trade/myTrades
signed   POST /openApi/spot/v1/trade/order, /trade/cancel (``orderId`` or ``clientOrderID``),
              /trade/cancelOrders, /trade/cancelOpenOrders, /trade/cancelAllAfter
signed   POST, PUT, DELETE /openApi/user/auth/userDataStream (listen keys: POST answers
              ``{"listenKey": K}`` without the envelope; PUT/DELETE 200 ``{}``, or 404 with an
              empty body for an unknown or expired key, as BingX documents)

Answers are BingX's envelope ``{"code": 0, "msg": "", "debugMsg": "", "data": ...}``; errors
are listed in :mod:`tests.emulators.bingx_engine`. Anything else answers 404 ``{"code": 100400,
...}`` and is recorded. Signing is checked as BingX documents it: ``signature`` = hex
HMAC-SHA256(secret, the query's parameters in the order sent, values not URL-encoded, without
``signature``); ``timestamp`` must satisfy ``timestamp < now + 1000`` and ``now - timestamp <=
recvWindow`` (default 5000 ms). Each (account or IP, endpoint) has its own request rate
(:data:`DEFAULT_RATE_LIMITS`, BingX's per-endpoint UID limits); a request over it answers
``100410`` "rate limited".

The dead man's switch (``cancelAllAfter``) fires on the emulator's ``clock``: checked before each
request and every ``sweep_s`` (or call :meth:`BingxEmulator.check_timers`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from aiohttp import web

from tests.emulators.bingx_engine import (
    DEFAULT_MARKET,
    BingxError,
    BingxVenue,
    JsonDict,
    cancelled_row,
    err_api_key,
    err_param,
    err_rate_limited,
    err_signature,
    err_timestamp,
    order_row,
    placed_row,
    trade_row,
)
from tests.emulators.bingx_wallet import ROUTES as WALLET_ROUTES
from tests.emulators.bingx_wallet import new_wallet
from tests.emulators.bingx_ws import WS_PATH, BingxWs, ListenKeys
from tests.emulators.matching_types import Fill, Market, Order
from tests.emulators.server import (
    EmulatorServer,
    Fault,
    FaultInjection,
    FaultList,
    read_state,
    write_state,
)

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "BingxEmulator",
    "Fault",
    "RequestRecord",
    "configure_ccxt",
    "load_spot_markets",
]

DEFAULT_BALANCES: Mapping[str, object] = {"KAS": "100000", "USDT": "10000"}
API = "/openApi"
SPOT = API + "/spot/v1"
LISTEN_KEY_PATH = API + "/user/auth/userDataStream"
#: ccxt's REST sections (``urls['api']``), all served under ``/openApi``.
REST_SECTIONS = (
    "fund",
    "spot",
    "swap",
    "contract",
    "wallets",
    "user",
    "subAccount",
    "account",
    "copyTrading",
    "cswap",
    "api",
)

#: Requests per window per (account or IP, endpoint): BingX's documented UID rate limits
#: (spot trade API pages: place/cancel 5/s, open orders 10/s, cancelOrders, cancelOpenOrders,
#: cancelAllAfter and listen keys 2/s) and the market-data IP group (500 per 10 s).
DEFAULT_RATE_LIMITS: Mapping[tuple[str, str], tuple[int, float]] = {
    ("POST", SPOT + "/trade/order"): (5, 1.0),
    ("POST", SPOT + "/trade/cancel"): (5, 1.0),
    ("POST", SPOT + "/trade/cancelOrders"): (2, 1.0),
    ("POST", SPOT + "/trade/cancelOpenOrders"): (2, 1.0),
    ("POST", SPOT + "/trade/cancelAllAfter"): (2, 1.0),
    ("GET", SPOT + "/trade/openOrders"): (10, 1.0),
    ("GET", SPOT + "/trade/query"): (10, 1.0),
    ("GET", SPOT + "/trade/myTrades"): (5, 1.0),
    ("GET", SPOT + "/account/balance"): (5, 1.0),
    ("POST", LISTEN_KEY_PATH): (2, 1.0),
    ("PUT", LISTEN_KEY_PATH): (2, 1.0),
    ("GET", SPOT + "/market/depth"): (500, 10.0),
}


def configure_ccxt(exchange: Any, base_url: str, ws_url: str | None = None) -> None:
    """Point a ``ccxt.async_support.bingx`` / ``ccxt.pro.bingx`` instance at the emulator.

    Sets ``urls['api'][s] = base_url + '/openApi'`` for every REST section ``s`` (BingX's values
    contain ``{hostname}``; ``user`` carries the listen-key calls ccxt.pro makes) and, with
    ``ws_url``, ``urls['api']['ws']['spot'] = ws_url`` (``linear`` / ``inverse``: unserved
    loopback paths, so a stray swap subscription fails locally).
    """
    rest = base_url.rstrip("/") + API
    api = dict(exchange.urls["api"])
    for section in REST_SECTIONS:
        api[section] = rest
    if ws_url is not None:
        root = ws_url.rsplit(WS_PATH, 1)[0]
        api["ws"] = {"spot": ws_url, "linear": root + "/swap-market", "inverse": root + "/cswap"}
    exchange.urls = {**exchange.urls, "api": api}


async def load_spot_markets(exchange: Any) -> None:
    """Load the spot markets as kasmm does (``fetch_spot_markets`` then ``set_markets``)."""
    exchange.set_markets(await exchange.fetch_spot_markets({}))


@dataclass
class RequestRecord:
    """One request as the emulator saw it (``emu.requests``)."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    signed: bool
    #: For a signed endpoint: whether key, signature and timestamp checked out; None if public.
    signed_ok: bool | None
    api_key: str | None
    status: int = 200
    #: BingX code of the answer (0: success).
    code: int | None = None
    time_ms: int = 0


@dataclass
class _Ctx:
    params: dict[str, str]
    api_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_Handler = Callable[["BingxEmulator", _Ctx], Any]


class BingxEmulator(EmulatorServer[BingxWs], FaultInjection):
    """A BingX spot venue (REST and websockets) on 127.0.0.1; see the module docstring.

    ``clock`` returns seconds (``time.time`` by default): it drives server time, order and fill
    times, the timestamp check, listen-key validity and the dead man's switch.
    """

    def __init__(
        self,
        api_key: str = "emu-key",
        secret: str = "emu-secret",
        *,
        markets: Iterable[Market] | None = None,
        balances: Mapping[str, object] | None = None,
        clock: Callable[[], float] | None = None,
        state_path: str | os.PathLike[str] | None = None,
        rate_limits: Mapping[tuple[str, str], tuple[int, float]] | None = DEFAULT_RATE_LIMITS,
        check_timestamp: bool = True,
        post_only_cross: str = "cancel",
        heartbeat: str = "json",
        ping_interval_s: float = 5.0,
        pong_timeout_s: float = 10.0,
        sweep_s: float = 0.05,
        http_latency_s: float = 0.0,
    ) -> None:
        self._init_server(http_latency_s)
        self.api_key = api_key
        self.clock: Callable[[], float] = clock or time.time
        self.venue = BingxVenue(
            list(markets) if markets is not None else [DEFAULT_MARKET],
            self.clock,
            post_only_cross=post_only_cross,
        )
        self.engine = self.venue.engine
        #: Withdrawals and deposit addresses (:mod:`tests.emulators.bingx_wallet`); test
        #: controls: ``wallet.allow``, ``wallet.suspend``, ``wallet.advance``.
        self.wallet = new_wallet(self)
        self.wallet.on_change = self._persist  # the balances it moves
        self.default_symbol = next(iter(self.engine.markets))
        self.secrets: dict[str, str] = {}
        self.add_account(api_key, secret, balances)
        self.state_path = Path(state_path) if state_path is not None else None
        state = read_state(self.state_path) if self.state_path is not None else None
        if state is not None:
            self.engine.load_state(state)
        self.rate_limits = dict(rate_limits or {})
        self.check_timestamp = check_timestamp
        self.sweep_s = sweep_s
        #: User-data-stream keys (REST ``userDataStream``, checked by the websockets).
        self.listen_keys = ListenKeys(self.clock)
        self.ws_protocol = BingxWs(
            self.venue,
            self.listen_keys,
            heartbeat=heartbeat,
            ping_interval_s=ping_interval_s,
            pong_timeout_s=pong_timeout_s,
        )
        observers = self.engine.observers
        observers.on_book.append(self.ws_protocol.on_book)
        observers.on_order.append(self.ws_protocol.on_order)
        observers.on_fill.append(self.ws_protocol.on_fill)
        self.requests: list[RequestRecord] = []
        #: Tracebacks of handler crashes (answered 500): tests should assert this stays empty.
        self.internal_errors: list[str] = []
        self.faults = FaultList()
        self._hits: dict[tuple[str, str, str], deque[float]] = {}

    # ------------------------------------------------------------------ lifecycle
    #: ``ws_url``: the spot websocket URL to give ccxt.pro (``urls['api']['ws']['spot']``).
    _ws_paths = (WS_PATH,)

    async def _after_start(self) -> None:
        self._start_timer(lambda: self.sweep_s, self._sweep)

    async def _before_cleanup(self) -> None:
        await self.ws.shutdown()

    async def _after_stop(self) -> None:
        self._persist()

    def _config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {"apiKey": self.api_key, "secret": self.secrets[self.api_key], **config}

    def ccxt(self, **config: Any) -> Any:
        """An unmodified ``ccxt.async_support.bingx`` with this emulator's key, pointed at it
        (``enableRateLimit`` off unless given). Close it with ``await ex.close()``."""
        import ccxt.async_support as ccxt_async

        exchange = ccxt_async.bingx(self._config({"enableRateLimit": False, **config}))
        configure_ccxt(exchange, self.base_url)
        return exchange

    def ccxt_pro(self, **config: Any) -> Any:
        """An unmodified ``ccxt.pro.bingx`` pointed at the emulator's REST and websockets."""
        import ccxt.pro as ccxt_pro

        exchange = ccxt_pro.bingx(self._config({"enableRateLimit": False, **config}))
        configure_ccxt(exchange, self.base_url, self.ws_url)
        return exchange

    # ------------------------------------------------------------- test controls
    def add_account(
        self, api_key: str, secret: str, balances: Mapping[str, object] | None = None
    ) -> None:
        """Another API key on the venue (its own balances, orders and fills)."""
        self.secrets[api_key] = secret
        self.engine.add_account(api_key, DEFAULT_BALANCES if balances is None else balances)

    def set_balance(self, asset: str, available: object, account: str | None = None) -> None:
        self.engine.set_balance(account or self.api_key, asset, available)

    def balances(self, account: str | None = None) -> dict[str, tuple[Decimal, Decimal]]:
        """``{asset: (free, locked)}`` of ``account`` (default: the main key)."""
        assets = self.engine.accounts[account or self.api_key]
        return {a: (b.available, b.locked) for a, b in assets.items()}

    def set_book(
        self, bids: Iterable[tuple[object, object]], asks: Iterable[tuple[object, object]]
    ) -> list[Fill]:
        """Replace the synthetic (outside) liquidity of the default market."""
        return self.engine.set_book(bids, asks, self.default_symbol)

    def set_mid(
        self, mid: object, spread_bps: object = 20, levels: int = 5, size: object = 1000
    ) -> list[Fill]:
        """A symmetric synthetic book around ``mid`` (see ``MatchingEngine.set_mid``)."""
        return self.engine.set_mid(mid, spread_bps, levels, size, self.default_symbol)

    def trade(self, side: str, price: object, size: object) -> list[Fill]:
        """An outside taker ``side`` up to ``price``: fills resting API orders as maker."""
        return self.engine.trade(self.default_symbol, side, price, size)

    def orders(self, account: str | None = None, open_only: bool = False) -> list[JsonDict]:
        """Orders of ``account`` (default: the main key) in ``trade/query``'s shape."""
        return [
            order_row(o)
            for o in self.engine.orders_of(
                account or self.api_key, None, True if open_only else None
            )
        ]

    def check_timers(self) -> int:
        """Fire expired dead man's switches now; returns how many orders they cancelled."""
        return self.engine.check_timers()

    def expire_listen_key(self, key: str | None = None) -> int:
        """Fault: ``key`` (every key when None) expires now; see ``BingxWs.expire_listen_key``."""
        return self.ws_protocol.expire_listen_key(key)

    # ------------------------------------------------------------------ internals
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _persist(self) -> None:
        if self.state_path is not None:
            write_state(self.state_path, self.engine.to_state())

    def _sweep(self) -> None:
        if self.engine.timers:
            self.engine.check_timers()
        self.ws_protocol.sweep()

    def _check_auth(self, request: web.Request, raw_query: str, ctx: _Ctx) -> None:
        api_key = request.headers.get("X-BX-APIKEY")
        if not api_key:
            raise err_api_key(missing=True)
        secret = self.secrets.get(api_key)
        if secret is None:
            raise err_api_key()
        ctx.api_key = api_key
        pairs = [p.partition("=") for p in raw_query.split("&") if p]
        signatures = [v for k, _, v in pairs if k == "signature"]
        payload = "&".join(f"{k}={unquote_plus(v)}" for k, _, v in pairs if k != "signature")
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not signatures or not hmac.compare_digest(expected, signatures[0]):
            raise err_signature()
        raw_ts, raw_window = ctx.params.get("timestamp", ""), ctx.params.get("recvWindow") or "5000"
        if not raw_ts.isdigit() or not raw_window.isdigit():
            raise err_timestamp()
        now, ts = self._now_ms(), int(raw_ts)
        if self.check_timestamp and not (ts < now + 1000 and now - ts <= int(raw_window)):
            raise err_timestamp()

    def _over_rate(self, method: str, path: str, who: str) -> bool:
        limit = self.rate_limits.get((method, path))
        if limit is None:
            return False
        count, window = limit
        now = self.clock()
        hits = self._hits.setdefault((who, method, path), deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= count:
            return True
        hits.append(now)
        return False

    async def _dispatch(self, request: web.Request) -> web.Response:
        method, path = request.method.upper(), request.path
        raw_query = request.raw_path.partition("?")[2]
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        params.pop("signature", None)
        route = _ROUTES.get((method, path))
        signed = route is not None and route[1]
        record = RequestRecord(
            method=method,
            path=path,
            params=params,
            headers=dict(request.headers),
            signed=signed,
            signed_ok=None,
            api_key=request.headers.get("X-BX-APIKEY"),
            time_ms=self._now_ms(),
        )
        self.requests.append(record)
        if self.engine.timers:
            self.engine.check_timers()
        status, payload = await self._answer(request, route, raw_query, record)
        record.status = status
        if isinstance(payload, dict):
            code = payload.get("code", 0)
            record.code = code if isinstance(code, int) else None
        if method != "GET":
            self._persist()
        if payload is None:
            return web.Response(status=status)
        return web.json_response(payload, status=status)

    async def _answer(
        self,
        request: web.Request,
        route: tuple[_Handler, bool] | None,
        raw_query: str,
        record: RequestRecord,
    ) -> tuple[int, Any]:
        if route is None:
            return 404, err_param(f"emulator: no endpoint {record.method} {record.path}").body()
        who = record.api_key or (request.remote or "")
        if self._over_rate(record.method, record.path, who):
            return 200, err_rate_limited().body()
        fault = self.faults.take(record.method, record.path)
        if fault is not None and fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        injected = fault is not None and (fault.status != 200 or fault.body is not None)
        if fault is not None and injected and not fault.after:
            return fault.status, fault.body
        handler, signed = route
        ctx = _Ctx(params=record.params)
        try:
            if signed:
                record.signed_ok = False
                self._check_auth(request, raw_query, ctx)
                record.signed_ok = True
            result = handler(self, ctx)
            status, payload = (404, None) if result is _NOT_FOUND else (200, result)
        except BingxError as exc:
            status, payload = exc.status, exc.body()
        except Exception:
            self.internal_errors.append(traceback.format_exc())
            status, payload = 500, {"code": 100500, "msg": "emulator internal error"}
        if fault is not None and injected:
            return fault.status, fault.body
        return status, payload


# ---------------------------------------------------------------------- handlers
_NOT_FOUND = object()  # a handler's answer: HTTP 404 with an empty body


def _ok(data: Any, **extra: Any) -> JsonDict:
    return {"code": 0, "msg": "", "debugMsg": "", "data": data, **extra}


def _h_time(emu: BingxEmulator, ctx: _Ctx) -> Any:
    return _ok({"serverTime": emu._now_ms()})


def _h_symbols(emu: BingxEmulator, ctx: _Ctx) -> Any:
    return _ok(emu.venue.symbols())


def _h_depth(emu: BingxEmulator, ctx: _Ctx) -> Any:
    market = emu.venue.market(ctx.params.get("symbol"))
    raw = ctx.params.get("limit") or "20"
    if not raw.isdigit():
        raise err_param("limit is invalid")
    data = emu.venue.depth(market.symbol, max(1, min(int(raw), 1000)))
    return _ok(data, timestamp=emu._now_ms())


def _h_ticker(emu: BingxEmulator, ctx: _Ctx) -> Any:
    symbol = ctx.params.get("symbol")
    symbols = [emu.venue.market(symbol).symbol] if symbol else list(emu.engine.markets)
    return _ok([emu.venue.ticker(s) for s in symbols], timestamp=emu._now_ms())


def _h_empty_list(emu: BingxEmulator, ctx: _Ctx) -> Any:
    return _ok([])


def _h_balance(emu: BingxEmulator, ctx: _Ctx) -> Any:
    return _ok(emu.venue.balances(ctx.api_key))


def _h_order(emu: BingxEmulator, ctx: _Ctx) -> Any:
    return _ok(placed_row(emu.venue.place(ctx.api_key, ctx.params)))


def _h_cancel(emu: BingxEmulator, ctx: _Ctx) -> Any:
    return _ok(cancelled_row(emu.venue.cancel(ctx.api_key, ctx.params)))


def _orders(orders: Iterable[Order]) -> JsonDict:
    return {"orders": [cancelled_row(o) for o in orders]}


def _h_cancel_orders(emu: BingxEmulator, ctx: _Ctx) -> Any:
    return _ok(_orders(emu.venue.cancel_orders(ctx.api_key, ctx.params)))


def _h_cancel_open(emu: BingxEmulator, ctx: _Ctx) -> Any:
    return _ok(_orders(emu.venue.cancel_open_orders(ctx.api_key, ctx.params)))


def _h_cancel_after(emu: BingxEmulator, ctx: _Ctx) -> Any:
    return _ok(emu.venue.cancel_all_after(ctx.api_key, ctx.params))


def _h_query(emu: BingxEmulator, ctx: _Ctx) -> Any:
    return _ok(order_row(emu.venue.query(ctx.api_key, ctx.params)))


def _h_open_orders(emu: BingxEmulator, ctx: _Ctx) -> Any:
    return _ok({"orders": [order_row(o) for o in emu.venue.open_orders(ctx.api_key, ctx.params)]})


def _h_history(emu: BingxEmulator, ctx: _Ctx) -> Any:
    orders = emu.venue.history_orders(ctx.api_key, ctx.params)
    return _ok({"orders": [order_row(o) for o in orders]})


def _h_my_trades(emu: BingxEmulator, ctx: _Ctx) -> Any:
    return _ok({"fills": [trade_row(f) for f in emu.venue.my_trades(ctx.api_key, ctx.params)]})


def _h_listen_key_new(emu: BingxEmulator, ctx: _Ctx) -> Any:
    return {"listenKey": emu.listen_keys.create(ctx.api_key)}


def _h_listen_key_extend(emu: BingxEmulator, ctx: _Ctx) -> Any:
    found = emu.listen_keys.extend(ctx.api_key, ctx.params.get("listenKey"))
    return {} if found else _NOT_FOUND


def _h_listen_key_delete(emu: BingxEmulator, ctx: _Ctx) -> Any:
    key = ctx.params.get("listenKey")
    if not emu.listen_keys.delete(ctx.api_key, key):
        return _NOT_FOUND
    for conn in emu.ws_protocol.connections_of(key or ""):
        conn.close_after_sent()
    return {}


#: (method, server path) → (handler, signed).
_ROUTES: dict[tuple[str, str], tuple[_Handler, bool]] = {
    ("GET", SPOT + "/server/time"): (_h_time, False),
    ("GET", SPOT + "/common/symbols"): (_h_symbols, False),
    ("GET", SPOT + "/market/depth"): (_h_depth, False),
    ("GET", SPOT + "/ticker/24hr"): (_h_ticker, False),
    ("GET", API + "/swap/v2/quote/contracts"): (_h_empty_list, False),
    ("GET", API + "/cswap/v1/market/contracts"): (_h_empty_list, False),
    ("GET", API + "/wallets/v1/capital/config/getall"): (_h_empty_list, True),
    ("GET", SPOT + "/account/balance"): (_h_balance, True),
    ("POST", SPOT + "/trade/order"): (_h_order, True),
    ("POST", SPOT + "/trade/cancel"): (_h_cancel, True),
    ("POST", SPOT + "/trade/cancelOrders"): (_h_cancel_orders, True),
    ("POST", SPOT + "/trade/cancelOpenOrders"): (_h_cancel_open, True),
    ("POST", SPOT + "/trade/cancelAllAfter"): (_h_cancel_after, True),
    ("GET", SPOT + "/trade/query"): (_h_query, True),
    ("GET", SPOT + "/trade/openOrders"): (_h_open_orders, True),
    ("GET", SPOT + "/trade/historyOrders"): (_h_history, True),
    ("GET", SPOT + "/trade/myTrades"): (_h_my_trades, True),
    ("POST", LISTEN_KEY_PATH): (_h_listen_key_new, True),
    ("PUT", LISTEN_KEY_PATH): (_h_listen_key_extend, True),
    ("DELETE", LISTEN_KEY_PATH): (_h_listen_key_delete, True),
    **WALLET_ROUTES,
}
