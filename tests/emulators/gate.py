"""Loopback Gate.io spot APIv4 REST emulator that unmodified ``ccxt.async_support.gate`` trades on.

Usage::

    async with GateEmulator(api_key="k", secret="s", clock=vclock.now) as emu:
        ex = ccxt.async_support.gate({"apiKey": "k", "secret": "s", "enableRateLimit": False})
        configure_ccxt(ex, emu.base_url)
        try:
            emu.set_mid("0.1", spread_bps=20, levels=5, size=1000)
            await ex.load_markets()
            ...
        finally:
            await ex.close()

Websockets (``gate_ws``): ``emu.ws_url`` (``ws://host:port/ws/v4/``) for ``ccxt.pro.gate``, set by
:func:`configure_ccxt_pro`; ``emu.ws`` is the ``WsHub`` (wire faults), ``emu.ws_protocol`` the
Gate protocol (``spot.obu`` full-snapshot resend). Order book update ids are shared with the REST
``GET /spot/order_book?with_id=true`` ``id``.

or as a process: ``python -m tests.emulators.gate --port 0 --api-key K --secret S [--state F]``
prints one JSON line ``{"base_url", "ws_url", "host", "port", "pid"}`` and serves until
SIGINT/SIGTERM.

Everything is served under ``/api/v4`` (ccxt signs ``'/api/v4' + path`` whatever the host).
Endpoints (``P`` = signed):

=======  ==================================  =================================================
GET      /spot/currency_pairs[/{pair}]       markets (``fetch_spot_markets``)
GET      /spot/currencies                    currencies (``fetch_currencies``, load_markets)
GET      /margin/currency_pairs              ``[]`` (``fetch_spot_markets`` merges it in)
GET      /futures/{settle}/contracts,        ``[]`` (only fetched when ``options.fetchMarkets``
         /delivery/{settle}/contracts,       asks for swap/future/option markets)
         /options/underlyings,
         /options/contracts
GET      /spot/order_book                    synthetic book + own resting orders
GET      /spot/tickers, /spot/time           best bid/ask/last; server time
P GET    /account/detail                     ``{"key": {"mode": 1}}`` (classic account)
P GET    /spot/accounts                      balances ``available`` / ``locked``
P POST   /spot/orders                        create (``text`` client id, gtc/ioc/poc/fok)
P PATCH  /spot/orders/{order_id}             amend price / amount in place (``gate_amend``)
P GET    /spot/orders                        list (``currency_pair`` + ``status`` open|finished)
P DELETE /spot/orders                        cancel all (``currency_pair``, ``side`` optional)
P GET    /spot/orders/{order_id}             get by id, or by ``t-`` text while open
P DELETE /spot/orders/{order_id}             cancel by id, or by ``t-`` text while open
P GET    /spot/open_orders                   open orders grouped by pair (``fetch_open_orders``)
P POST   /spot/batch_orders                  ``create_orders`` (per-order ``succeeded``, 10/pair)
P POST   /spot/cancel_batch_orders           ``cancel_orders`` (per-order ``succeeded``; 20)
P GET    /spot/my_trades                     fills
P POST   /spot/countdown_cancel_all          dead man's switch ``{timeout, currency_pair?}``
WS       /ws/v4/, /gateeu/ws/v4/ (no prefix) spot websockets, see :mod:`tests.emulators.gate_ws`
=======  ==================================  =================================================

Errors are Gate's ``{"label", "message"}`` bodies; ccxt's ``handle_errors`` raises from the label
(``exceptions['exact']``) before it looks at the HTTP status:

========================  ======  =========================================================
label                     HTTP    ccxt class raised (4.5.90)
========================  ======  =========================================================
INVALID_KEY               401     AuthenticationError
INVALID_SIGNATURE         401     AuthenticationError
MISSING_REQUIRED_HEADER   401     AuthenticationError
REQUEST_EXPIRED           401     AuthenticationError (Timestamp > 60 s off wall time)
TOO_MANY_REQUESTS         429     RateLimitExceeded (a NetworkError, not DDoSProtection);
                                  also above ``order_rate`` order requests per second and
                                  pair: create, batch create (one request) and amend share it
BALANCE_NOT_ENOUGH        400     InsufficientFunds
POC_FILL_IMMEDIATELY      400     OrderImmediatelyFillable (subclass of InvalidOrder)
INVALID_PRECISION         400     InvalidOrder (price/amount with too many decimals)
AMOUNT_TOO_LITTLE         400     InvalidOrder (amount < min_base_amount)
AMOUNT_TOO_MUCH           400     InvalidOrder (cost > max_quote_amount, when set)
INVALID_PARAM_VALUE       400     BadRequest (cost < min_quote_amount, bad ``text``, ...)
ORDER_NOT_FOUND           404     OrderNotFound (unknown id; ``t-`` text of a finished order)
ORDER_CLOSED              400     InvalidOrder (cancel of a filled order)
ORDER_CANCELLED           400     InvalidOrder (cancel of a cancelled order)
INVALID_CURRENCY_PAIR     400     BadSymbol
MISSING_REQUIRED_PARAM    400     ArgumentsRequired
INVALID_REQUEST_BODY      400     BadRequest
NOT_FOUND                 404     ExchangeError (unknown path)
========================  ======  =========================================================

A post-only (``time_in_force=poc``) order that would take liquidity is rejected with
``POC_FILL_IMMEDIATELY`` (``poc_cross="reject"``, the default, matching ccxt's exception map
and Gate's label list); ``poc_cross="cancel"`` instead accepts it and returns it already
``cancelled`` with ``finish_as="poc"`` (the other path Gate documents), which ccxt reports with
``status == "poc"`` because its status map lacks ``poc``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import hmac
import json
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from .gate_amend import amend
from .gate_orders import cancel, cancel_all, cancel_batch, place, place_batch, set_countdown
from .gate_shapes import (
    DEFAULT_BALANCES,
    DEFAULT_MARKETS,
    GateError,
    GateFill,
    GateMarket,
    fmt,
)
from .gate_venue import GateVenue
from .gate_wallet import new_wallet, wallet_routes
from .gate_ws import GateWs
from .server import EmulatorServer, read_state, serve_until_signalled, write_state

__all__ = [
    "DEFAULT_BALANCES",
    "DEFAULT_MARKETS",
    "GateEmulator",
    "GateError",
    "GateMarket",
    "RecordedRequest",
    "configure_ccxt",
    "configure_ccxt_pro",
    "sign_request",
]

API_PREFIX = "/api/v4"


@dataclass
class RecordedRequest:
    """One request the emulator received (in arrival order in ``GateEmulator.requests``).

    ``path`` is relative to ``/api/v4`` (``"/spot/orders"``); ``query`` the decoded query;
    ``body`` the parsed JSON body (``None`` when empty, the raw text when not JSON);
    ``signed_ok`` is ``None`` for public endpoints, else whether KEY/Timestamp/SIGN verified.
    """

    method: str
    path: str
    query: dict[str, str]
    body: Any
    signed_ok: bool | None
    status: int = 0
    label: str | None = None
    raw_query: str = ""
    raw_body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    time: float = 0.0


@dataclass
class _Injected:
    status: int
    label: str
    message: str
    path: str | None
    method: str | None
    remaining: int
    #: Handle the request first, then answer the error (a lost answer).
    after: bool = False


Handler = Callable[["_Call"], tuple[int, Any]]


@dataclass
class _Call:
    params: dict[str, str]
    query: dict[str, str]
    body: Any


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    private: bool


def sign_request(
    secret: str, method: str, path: str, query: str, body: str | bytes, timestamp: str
) -> str:
    """Gate APIv4 signature: hex HMAC-SHA512(secret, METHOD\\n/api/v4+path\\nquery\\n
    hex(SHA512(body))\\ntimestamp); ``path`` is relative to ``/api/v4``."""
    raw = body.encode() if isinstance(body, str) else body
    payload = "\n".join(
        [
            method.upper(),
            API_PREFIX + path,
            query,
            hashlib.sha512(raw).hexdigest(),
            timestamp,
        ]
    )
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha512).hexdigest()


def configure_ccxt(exchange: Any, base_url: str, *, spot_only: bool = True) -> None:
    """Point an unmodified ``ccxt.async_support.gate`` instance at the emulator.

    Every entry of ``exchange.urls['api']['public']`` and ``['private']`` becomes ``base_url``
    (``http://127.0.0.1:PORT/api/v4``); ccxt appends ``'/' + section + '/' + path`` for every
    section except ``subAccounts`` and ``withdrawals``. The entries ccxt's spot flow uses:

    * ``public.spot``: ``spot/currency_pairs``, ``spot/currencies``, ``spot/order_book``,
      ``spot/tickers``, ``spot/time``;
    * ``public.margin``: ``margin/currency_pairs`` (``fetch_spot_markets`` always merges it);
    * ``public.futures`` / ``public.delivery`` / ``public.options``: contract lists, only when
      ``options['fetchMarkets']['types']`` includes swap/future/option;
    * ``private.spot``: accounts, orders, open_orders, batch_orders, cancel_batch_orders,
      my_trades, countdown_cancel_all;
    * ``private.account``: ``account/detail``, only when ``options['unifiedAccount']`` is None.

    The rest (wallet, withdrawals, unified, earn, ...) are redirected too so that nothing can
    reach the real exchange. Also sets ``options['unifiedAccount'] = False`` (no
    ``account/detail`` probe) and, with ``spot_only``, ``options['fetchMarkets'] = {'types':
    ['spot']}`` so ``load_markets`` fetches spot (+ margin) pairs and currencies only.
    """
    base = base_url.rstrip("/")
    api = exchange.urls["api"]
    for section in ("public", "private"):
        for name in list(api[section]):
            api[section][name] = base
    exchange.options["unifiedAccount"] = False
    if spot_only:
        exchange.options["fetchMarkets"] = {"types": ["spot"]}


def configure_ccxt_pro(exchange: Any, base_url: str, ws_url: str) -> None:
    """Point an unmodified ``ccxt.pro.gate`` instance at the emulator: REST as
    :func:`configure_ccxt` does, and ``exchange.urls['api']['spot']`` (the spot websocket URL
    ``get_url_by_market`` / ``get_url_by_market_type`` read) to ``ws_url``.

    Give ``emu.ws_url`` for ccxt's default order book channel (``spot.obu``) or ``emu.ws_url_eu``
    for ``spot.order_book_update`` synced with a REST snapshot (ccxt picks it when the URL
    contains ``gateeu``). Swap/future/option websocket URLs are left alone: not emulated.
    """
    configure_ccxt(exchange, base_url)
    exchange.urls["api"]["spot"] = ws_url


class GateEmulator(EmulatorServer[GateWs]):
    """An aiohttp server speaking Gate.io spot APIv4 on loopback, backed by :class:`GateVenue`
    (an adapter over the shared matching engine).

    Args:
        api_key, secret: the only valid credentials.
        markets: spot pairs (default: KAS_USDT, price precision 6, amount precision 2, min
            quote amount 1 USDT, 0.2 % fees).
        balances: initial ``available`` per currency (default KAS 100000, USDT 10000).
        limit, window_s: at most ``limit`` requests (public and private together) per sliding
            ``window_s`` seconds of ``clock``; more get HTTP 429 ``TOO_MANY_REQUESTS``.
            ``limit=None`` disables every rate limit.
        order_rate: Gate's "place orders" limit, requests per second per currency pair (order
            creation, a batch creation counting once per pair in it, and amends).
        clock: seconds source for order/fill times, countdowns and the rate window (e.g.
            ``VirtualClock.now``); default ``time.time``. Signature timestamps are always
            checked against the wall clock, since ccxt signs with it.
        state_path: JSON file saved on every change and loaded by ``start`` when present.
        poc_cross: ``"reject"`` (``POC_FILL_IMMEDIATELY``) or ``"cancel"`` (201, cancelled,
            ``finish_as="poc"``) for a post-only order that would cross.
        max_timestamp_skew_s: ``REQUEST_EXPIRED`` beyond this (None disables).
        timer_interval_s: period of the background countdown check (real seconds).
        ws_heartbeat_s: aiohttp protocol pings from the websocket server (None: none).
        ws_book_interval_s: pace ``spot.order_book_update`` in windows of this many seconds,
            as Gate does (``U`` < ``u``); None sends each change at once.
        http_latency_s: a fixed one-way latency on each REST request and on its answer
            (:mod:`.http_latency`); 0 adds none.
    """

    def __init__(
        self,
        api_key: str = "test-key",
        secret: str = "test-secret",
        markets: Sequence[GateMarket] | None = None,
        balances: Mapping[str, object] | None = None,
        limit: int | None = 200,
        window_s: float = 10.0,
        clock: Callable[[], float] | None = None,
        *,
        state_path: str | os.PathLike[str] | None = None,
        poc_cross: str = "reject",
        max_timestamp_skew_s: float | None = 60.0,
        timer_interval_s: float = 0.05,
        order_rate: int = 10,
        ws_heartbeat_s: float | None = None,
        ws_book_interval_s: float | None = None,
        http_latency_s: float = 0.0,
    ) -> None:
        self._init_server(http_latency_s)
        self.api_key = api_key
        self.order_rate = order_rate
        self.secret = secret
        self.limit = limit
        self.window_s = window_s
        self.clock: Callable[[], float] = clock if clock is not None else time.time
        self.state_path = Path(state_path) if state_path is not None else None
        self.max_timestamp_skew_s = max_timestamp_skew_s
        self.timer_interval_s = timer_interval_s
        self.engine = GateVenue(
            markets=markets,
            balances=balances,
            clock=self.clock,
            poc_cross=poc_cross,
            on_change=self._save_state,
        )
        self.ws_protocol = GateWs(
            self.engine,
            api_key,
            secret,
            self.clock,
            heartbeat_s=ws_heartbeat_s,
            max_time_skew_s=max_timestamp_skew_s,
            book_interval_s=ws_book_interval_s,
        )
        self.requests: list[RecordedRequest] = []
        self._window: collections.deque[float] = collections.deque()
        self._order_times: dict[str, collections.deque[float]] = {}
        self._injected: list[_Injected] = []
        #: Withdrawals and deposit addresses (:mod:`.gate_wallet`); test controls:
        #: ``wallet.allow``, ``wallet.suspend``, ``wallet.advance``.
        self.wallet = new_wallet(self)
        self.wallet.on_change = self.engine.changed  # balance pushes and the state file
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ lifecycle
    #: ``base_url`` is ``http://host:port/api/v4`` once started.
    _base_path = API_PREFIX
    _not_started_message = "GateEmulator not started"
    _shutdown_timeout_s = 60.0  # aiohttp's default, as Gate's emulator always had

    #: ``ws_url`` is ``ws://host:port/ws/v4/`` (ccxt's ``urls['api']['spot']``); ``ws_url_eu``
    #: the second path.
    _ws_paths = ("/ws/v4/", "/gateeu/ws/v4/")

    @property
    def ws_url_eu(self) -> str:
        """The same websocket at ``/gateeu/ws/v4/``: ccxt then watches books through
        ``spot.order_book_update`` and a REST snapshot instead of ``spot.obu``."""
        return self.ws_url.replace("/ws/v4/", "/gateeu/ws/v4/")

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Load ``state_path`` if present, bind, start the countdown task; returns base_url."""
        state = read_state(self.state_path) if self.state_path is not None else None
        if self._runner is None and state is not None:
            self.engine.load_state(state)
            self.ws_protocol.resync()
        return await super().start(host, port)

    async def _after_start(self) -> None:
        self._start_timer(lambda: self.timer_interval_s, self.check_timers)

    async def _before_cleanup(self) -> None:
        await self.ws.shutdown()

    def _save_state(self) -> None:
        if self.state_path is not None:
            write_state(self.state_path, self.engine.to_state())

    # ------------------------------------------------------------------ test controls

    def set_mid(
        self,
        mid: object,
        spread_bps: object = 20,
        levels: int = 5,
        size: object = 1000,
        *,
        pair: str | None = None,
        step_ticks: int = 1,
        fill_crossed: bool = True,
    ) -> list[dict[str, Any]]:
        """Synthetic outside book around ``mid`` (see :meth:`GateVenue.set_mid`): best bid/ask
        ``spread_bps`` apart, ``levels`` levels of ``size`` per side, one tick apart. Resting
        API orders the new book crosses fill as makers unless ``fill_crossed=False``; returns
        those fills as ``my_trades`` entries."""
        fills = self.engine.set_mid(
            mid, spread_bps, levels, size, pair=pair, step_ticks=step_ticks,
            fill_crossed=fill_crossed,
        )  # fmt: skip
        return [self.engine.fill_json(f) for f in fills]

    def set_book(
        self,
        bids: Iterable[tuple[object, object]],
        asks: Iterable[tuple[object, object]],
        *,
        pair: str | None = None,
        fill_crossed: bool = True,
    ) -> list[dict[str, Any]]:
        """Explicit synthetic outside book ``[(price, size), ...]`` per side (see
        :meth:`set_mid` for ``fill_crossed``)."""
        fills = self.engine.set_book(bids, asks, pair, fill_crossed)
        return [self.engine.fill_json(f) for f in fills]

    def trade(
        self, side: str, price: object, size: object, *, pair: str | None = None
    ) -> list[dict[str, Any]]:
        """An outside taker (``side`` is the taker's) fills crossing API orders by price-time
        priority up to ``size``; returns the account's new fills as ``my_trades`` entries."""
        fills = self.engine.trade(side, price, size, pair)
        return [self.engine.fill_json(f) for f in fills]

    def orders(self, pair: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Every order (oldest first) as Gate's order JSON, optionally filtered by pair and
        ``status`` (``open`` | ``closed`` | ``cancelled``)."""
        return [
            self.engine.order_json(o)
            for o in self.engine.orders()
            if (pair is None or o.pair == pair) and (status is None or o.status == status)
        ]

    def my_trades(self, pair: str | None = None) -> list[dict[str, Any]]:
        """Every fill (oldest first) as Gate's ``my_trades`` JSON."""
        fills: list[GateFill] = [f for f in self.engine.fills if pair is None or f.pair == pair]
        return [self.engine.fill_json(f) for f in fills]

    def balances(self) -> dict[str, dict[str, Decimal]]:
        """``{currency: {"available": Decimal, "locked": Decimal}}``."""
        return {
            cur: {"available": b.available, "locked": b.locked}
            for cur, b in self.engine.balances.items()
        }

    def set_balance(self, currency: str, available: object, locked: object | None = None) -> None:
        """Overwrite a balance."""
        self.engine.set_balance(currency, available, locked)

    @property
    def countdowns(self) -> dict[str, float]:
        """Armed dead man's switches: ``{currency_pair or "": deadline on clock}``."""
        return dict(self.engine.countdowns)

    def check_timers(self) -> int:
        """Fire expired countdowns now; returns the number of orders cancelled."""
        return self.engine.check_timers()

    def inject_error(
        self,
        label: str,
        status: int = 400,
        message: str = "injected",
        *,
        path: str | None = None,
        method: str | None = None,
        count: int = 1,
        after: bool = False,
    ) -> None:
        """Answer the next ``count`` requests (matching ``path``/``method`` if given) with this
        Gate error instead of handling them (e.g. ``("SERVER_ERROR", 500)``). ``after=True``:
        handle the request (orders do get placed, amended, cancelled), then answer the error
        instead of the result: a lost answer."""
        self._injected.append(_Injected(status, label, message, path, method, count, after))

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests for ``path`` (relative to /api/v4)."""
        return [
            r
            for r in self.requests
            if r.path == path and (method is None or r.method == method.upper())
        ]

    # ------------------------------------------------------------------ HTTP plumbing

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw_body = await request.read()
        body_text = raw_body.decode("utf-8", "replace")
        raw_path = request.rel_url.raw_path
        path = request.path[len(API_PREFIX) :] if request.path.startswith(API_PREFIX) else None
        record = RecordedRequest(
            method=request.method,
            path=path if path is not None else request.path,
            query=dict(request.rel_url.query),
            body=_parse_body(body_text),
            signed_ok=None,
            raw_query=request.rel_url.raw_query_string,
            raw_body=body_text,
            headers=dict(request.headers),
            time=self.clock(),
        )
        self.requests.append(record)
        self.check_timers()

        status, payload = self._process(request, record, path, raw_path, raw_body)
        record.status = status
        if isinstance(payload, dict) and status >= 400:
            record.label = payload.get("label")
        return web.json_response(
            payload,
            status=status,
            headers=self._rate_headers(),
            dumps=lambda obj: json.dumps(obj, separators=(",", ":")),
        )

    def _process(
        self,
        request: web.Request,
        record: RecordedRequest,
        path: str | None,
        raw_path: str,
        raw_body: bytes,
    ) -> tuple[int, Any]:
        injected = self._take_injected(record)
        if injected is not None and not injected.after:
            return _err(injected.status, injected.label, injected.message)
        if self.limit is not None:
            now = self.clock()
            while self._window and self._window[0] <= now - self.window_s:
                self._window.popleft()
            if len(self._window) >= self.limit or not self._order_rate_ok(record, now):
                return _err(429, "TOO_MANY_REQUESTS", "Request Rate limit Exceeded")
            self._window.append(now)
        if path is None:
            return _err(404, "NOT_FOUND", f"{request.path} not found")
        route, params, method_ok = self._route(request.method, path)
        if route is None:
            if method_ok is False:
                return _err(405, "METHOD_NOT_ALLOWED", f"{request.method} not allowed")
            return _err(404, "NOT_FOUND", f"{API_PREFIX}{path} not found")
        if route.private:
            problem = self._authenticate(request, raw_path, raw_body)
            record.signed_ok = problem is None
            if problem is not None:
                return problem
        body: Any = None
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                return _err(400, "INVALID_REQUEST_BODY", "request body is not valid JSON")
        try:
            answer = route.handler(_Call(params=params, query=record.query, body=body))
        except GateError as err:
            answer = _err(err.status, err.label, err.message)
        if injected is not None:  # handled, and the answer is lost
            return _err(injected.status, injected.label, injected.message)
        return answer

    def _take_injected(self, record: RecordedRequest) -> _Injected | None:
        for inj in self._injected:
            if inj.path is not None and inj.path != record.path:
                continue
            if inj.method is not None and inj.method.upper() != record.method:
                continue
            inj.remaining -= 1
            if inj.remaining <= 0:
                self._injected.remove(inj)
            return inj
        return None

    def _order_rate_ok(self, record: RecordedRequest, now: float) -> bool:
        """Gate's place-orders limit: ``order_rate`` order requests per second and pair."""
        if record.method == "POST" and record.path == "/spot/orders":
            bodies = [record.body]
        elif record.method == "POST" and record.path == "/spot/batch_orders":
            bodies = record.body if isinstance(record.body, list) else []
        elif record.method == "PATCH" and record.path.startswith("/spot/orders/"):
            bodies = [record.body if isinstance(record.body, dict) else {}]
            bodies[0] = {"currency_pair": record.query.get("currency_pair"), **bodies[0]}
        else:
            return True
        pairs = {str(b.get("currency_pair")) for b in bodies if isinstance(b, dict)}
        for pair in pairs:
            times = self._order_times.setdefault(pair, collections.deque())
            while times and times[0] <= now - 1.0:
                times.popleft()
            if len(times) >= self.order_rate:
                return False
        for pair in pairs:
            self._order_times[pair].append(now)
        return True

    def _rate_headers(self) -> dict[str, str]:
        if self.limit is None:
            return {}
        reset = (self._window[0] + self.window_s) if self._window else self.clock()
        return {
            "X-Gate-RateLimit-Limit": str(self.limit),
            "X-Gate-RateLimit-Requests-Remain": str(max(0, self.limit - len(self._window))),
            "X-Gate-RateLimit-Reset-Timestamp": str(int(reset * 1000)),
        }

    def _authenticate(
        self, request: web.Request, raw_path: str, raw_body: bytes
    ) -> tuple[int, Any] | None:
        key = request.headers.get("KEY")
        timestamp = request.headers.get("Timestamp")
        signature = request.headers.get("SIGN")
        if not key or not timestamp or not signature:
            return _err(
                401, "MISSING_REQUIRED_HEADER", "Missing required header: KEY, Timestamp or SIGN"
            )
        if key != self.api_key:
            return _err(401, "INVALID_KEY", "Invalid key provided")
        try:
            ts = float(timestamp)
        except ValueError:
            return _err(401, "REQUEST_EXPIRED", "Invalid Timestamp")
        if (
            self.max_timestamp_skew_s is not None
            and abs(ts - time.time()) > self.max_timestamp_skew_s
        ):
            return _err(
                401,
                "REQUEST_EXPIRED",
                "gap between request Timestamp and server time exceeds "
                f"{self.max_timestamp_skew_s:g}",
            )
        # Gate signs the query string without URL encoding (ccxt signs rawencode(), i.e. the
        # decoded form of what it puts in the URL); accept the form as sent as well.
        raw_query = request.rel_url.raw_query_string
        queries = {urllib.parse.unquote(raw_query), raw_query}
        paths = {raw_path, request.path}
        for sign_path in paths:
            rel = sign_path[len(API_PREFIX) :]
            for query in queries:
                expected = sign_request(
                    self.secret, request.method, rel, query, raw_body, timestamp
                )
                if hmac.compare_digest(expected, signature):
                    return None
        return _err(401, "INVALID_SIGNATURE", "Signature mismatch")

    def _route(self, method: str, path: str) -> tuple[_Route | None, dict[str, str], bool | None]:
        path_known = False
        for route in self._routes:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            path_known = True
            if route.method == method:
                return (
                    route,
                    {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()},
                    True,
                )
        return None, {}, (False if path_known else None)

    # ------------------------------------------------------------------ endpoints

    def _build_routes(self) -> list[_Route]:
        def r(method: str, pattern: str, handler: Handler, private: bool) -> _Route:
            regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
            return _Route(method, re.compile(regex), handler, private)

        empty: Handler = lambda call: (200, [])  # noqa: E731
        return [
            r("GET", "/spot/currency_pairs", self._currency_pairs, False),
            r("GET", "/spot/currency_pairs/{pair}", self._currency_pair, False),
            r("GET", "/spot/currencies", self._currencies, False),
            r("GET", "/margin/currency_pairs", empty, False),
            r("GET", "/futures/{settle}/contracts", empty, False),
            r("GET", "/delivery/{settle}/contracts", empty, False),
            r("GET", "/options/underlyings", empty, False),
            r("GET", "/options/contracts", empty, False),
            r("GET", "/spot/order_book", self._order_book, False),
            r("GET", "/spot/tickers", self._tickers, False),
            r(
                "GET",
                "/spot/time",
                lambda call: (200, {"server_time": self.engine.now_ms()}),
                False,
            ),
            r("GET", "/account/detail", self._account_detail, True),
            r("GET", "/spot/accounts", self._accounts, True),
            r("POST", "/spot/orders", self._create_order, True),
            r("GET", "/spot/orders", self._list_orders, True),
            r("DELETE", "/spot/orders", self._cancel_all, True),
            r("GET", "/spot/orders/{order_id}", self._get_order, True),
            r("DELETE", "/spot/orders/{order_id}", self._cancel_order, True),
            r("PATCH", "/spot/orders/{order_id}", self._amend_order, True),
            r("GET", "/spot/open_orders", self._open_orders, True),
            r("POST", "/spot/batch_orders", self._batch_orders, True),
            r("POST", "/spot/cancel_batch_orders", self._cancel_batch, True),
            r("GET", "/spot/my_trades", self._my_trades, True),
            r("POST", "/spot/countdown_cancel_all", self._countdown, True),
            *(r(method, path, handler, True) for method, path, handler in wallet_routes(self)),
        ]

    def _currency_pairs(self, call: _Call) -> tuple[int, Any]:
        return 200, [m.pair_json() for m in self.engine.markets.values()]

    def _currency_pair(self, call: _Call) -> tuple[int, Any]:
        return 200, self.engine.market(call.params["pair"]).pair_json()

    def _currencies(self, call: _Call) -> tuple[int, Any]:
        names: dict[str, str] = {}
        for m in self.engine.markets.values():
            names.setdefault(m.base, m.base_name)
            names.setdefault(m.quote, m.quote_name)
        return 200, [
            {
                "currency": cur,
                "name": name,
                "delisted": False,
                "withdraw_disabled": False,
                "withdraw_delayed": False,
                "deposit_disabled": False,
                "trade_disabled": False,
                "fixed_rate": "",
                "chain": cur,
                "chains": [
                    {
                        "name": cur,
                        "addr": "",
                        "withdraw_disabled": False,
                        "withdraw_delayed": False,
                        "deposit_disabled": False,
                    }
                ],
            }
            for cur, name in sorted(names.items())
        ]

    def _order_book(self, call: _Call) -> tuple[int, Any]:
        pair = call.query.get("currency_pair")
        limit = _int_param(call.query, "limit", 10)
        if not 1 <= limit <= 1000:
            raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: limit")
        book_pair = self.engine.market(pair).id
        bids, asks, update_ms = self.engine.book_snapshot(book_pair, limit)
        now = self.engine.now_ms()
        out: dict[str, Any] = {"current": now, "update": update_ms or now}
        if call.query.get("with_id") == "true":
            # the id websockets count U/u in (spot.order_book_update syncs on it)
            out = {"id": self.engine.book_ids[book_pair], **out}
        out.update(asks=asks, bids=bids)
        return 200, out

    def _tickers(self, call: _Call) -> tuple[int, Any]:
        pair = call.query.get("currency_pair")
        pairs = [self.engine.market(pair).id] if pair else list(self.engine.markets)
        rows = []
        for p in pairs:
            bid, ask = self.engine.best_prices(p)
            last = self.engine.last_price.get(p)
            if last is None and bid is not None and ask is not None:
                last = (bid + ask) / 2
            rows.append(
                {
                    "currency_pair": p,
                    "last": fmt(last) if last is not None else "",
                    "lowest_ask": fmt(ask) if ask is not None else "",
                    "highest_bid": fmt(bid) if bid is not None else "",
                    "change_percentage": "0",
                    "base_volume": "0",
                    "quote_volume": "0",
                    "high_24h": fmt(last) if last is not None else "",
                    "low_24h": fmt(last) if last is not None else "",
                }
            )
        return 200, rows

    def _account_detail(self, call: _Call) -> tuple[int, Any]:
        return 200, {
            "user_id": 10000001,
            "ip_whitelist": [],
            "currency_pairs": [],
            "key": {"mode": 1},
            "tier": 0,
        }

    def _accounts(self, call: _Call) -> tuple[int, Any]:
        return 200, self.engine.accounts_json(call.query.get("currency"))

    def _create_order(self, call: _Call) -> tuple[int, Any]:
        order = place(self.engine, call.body)
        return 201, self.engine.order_json(order)

    def _batch_orders(self, call: _Call) -> tuple[int, Any]:
        return 200, place_batch(self.engine, call.body)

    def _list_orders(self, call: _Call) -> tuple[int, Any]:
        q = call.query
        orders = self.engine.list_orders(
            q.get("currency_pair"),
            q.get("status"),
            page=_int_param(q, "page", 1),
            limit=_int_param(q, "limit", 100),
            start=_opt_int_param(q, "from"),
            end=_opt_int_param(q, "to"),
            side=q.get("side"),
        )
        return 200, [self.engine.order_json(o) for o in orders]

    def _open_orders(self, call: _Call) -> tuple[int, Any]:
        q = call.query
        return 200, self.engine.open_orders_grouped(
            page=_int_param(q, "page", 1), limit=_int_param(q, "limit", 100)
        )

    def _get_order(self, call: _Call) -> tuple[int, Any]:
        order = self.engine.find(call.query.get("currency_pair"), call.params["order_id"])
        return 200, self.engine.order_json(order)

    def _cancel_order(self, call: _Call) -> tuple[int, Any]:
        order = cancel(self.engine, call.query.get("currency_pair"), call.params["order_id"])
        return 200, self.engine.order_json(order)

    def _amend_order(self, call: _Call) -> tuple[int, Any]:
        pair = call.query.get("currency_pair")
        order = amend(self.engine, pair, call.params["order_id"], call.body)
        self.engine.order_updated(order)  # spot.orders "update" (a no-op once finished)
        return 200, self.engine.order_json(order)

    def _cancel_all(self, call: _Call) -> tuple[int, Any]:
        orders = cancel_all(self.engine, call.query.get("currency_pair"), call.query.get("side"))
        return 200, [
            {**self.engine.order_json(o), "succeeded": True, "label": "", "message": ""}
            for o in orders
        ]

    def _cancel_batch(self, call: _Call) -> tuple[int, Any]:
        return 200, cancel_batch(self.engine, call.body)

    def _my_trades(self, call: _Call) -> tuple[int, Any]:
        q = call.query
        fills = self.engine.my_trades(
            q.get("currency_pair"),
            q.get("order_id"),
            page=_int_param(q, "page", 1),
            limit=_int_param(q, "limit", 100),
            start=_opt_int_param(q, "from"),
            end=_opt_int_param(q, "to"),
        )
        return 200, [self.engine.fill_json(f) for f in fills]

    def _countdown(self, call: _Call) -> tuple[int, Any]:
        trigger_ms = set_countdown(self.engine, call.body)
        return 200, {"triggerTime": str(trigger_ms)}


def _err(status: int, label: str, message: str) -> tuple[int, dict[str, str]]:
    return status, {"label": label, "message": message}


def _parse_body(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    value = _opt_int_param(query, name)
    return default if value is None else value


def _opt_int_param(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: {name}") from None


# ---------------------------------------------------------------------- command line


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.emulators.gate",
        description="Loopback Gate.io spot APIv4 emulator; prints its URL as one JSON line.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--secret", default="test-secret")
    parser.add_argument("--state", default=None, help="JSON state file (saved on every change)")
    parser.add_argument("--limit", type=int, default=200, help="requests per window (0: off)")
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--poc-cross", choices=("reject", "cancel"), default="reject")
    parser.add_argument("--mid", default=None, help="seed a synthetic book around this mid")
    parser.add_argument("--spread-bps", default="20")
    parser.add_argument("--levels", type=int, default=5)
    parser.add_argument("--size", default="1000")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    emu = GateEmulator(
        api_key=args.api_key,
        secret=args.secret,
        limit=args.limit or None,
        window_s=args.window_s,
        state_path=args.state,
        poc_cross=args.poc_cross,
    )
    await emu.start(args.host, args.port)
    if args.mid is not None:
        emu.set_mid(args.mid, args.spread_bps, args.levels, args.size)
    port = int(emu.base_url.rsplit(":", 1)[1].split("/", 1)[0])
    line = {
        "base_url": emu.base_url,
        "ws_url": emu.ws_url,
        "host": args.host,
        "port": port,
        "pid": os.getpid(),
    }
    await serve_until_signalled(emu, line)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m tests.emulators.gate``."""
    asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
