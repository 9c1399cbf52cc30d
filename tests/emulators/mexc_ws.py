"""MEXC spot v3 websockets for the emulator: protobuf pushes, listen keys, protocol faults.

MEXC moved its spot websockets (``wss://wbs-api.mexc.com/ws``) to protobuf in August 2025 and
renamed every channel; the old JSON channels are answered "Blocked!". This module serves the new
protocol as ccxt 4.5.90 (``ccxt/pro/mexc.py``) speaks it, on the emulator's HTTP port at
``/ws``, through the shared websocket layer (:mod:`tests.emulators.wire`), driven by the
matching engine's change hooks as MEXC's venue tells them
(:class:`~tests.emulators.mexc_shapes.VenueObserver`).

Requests are JSON text; answers are JSON text; pushes are binary ``PushDataV3ApiWrapper``
messages built with the generated classes ccxt ships (``ccxt.protobuf.mexc``), i.e. what
ccxt decodes with ``MessageToDict``:

=================================================  =============================================
client sends                                       server answers
=================================================  =============================================
``{"method":"SUBSCRIPTION","params":[ch,...]}``    ``{"id":0,"code":0,"msg":"ch,..."}``
  an unknown/retired channel, or over the cap      ``{"id":0,"code":0,"msg":"Not Subscribed
                                                   successfully! [ch,...].  Reason： Blocked! "}``
``{"method":"UNSUBSCRIPTION","params":[ch,...]}``  ``{"id":0,"code":0,"msg":"ch,..."}``
``{"method":"PING"}`` (or ccxt's ``ping`` (*))     ``{"id":0,"code":0,"msg":"PONG"}``
connect ``/ws?listenKey=K``, K invalid/expired     text ``Invalid listen key``, then close (*)
=================================================  =============================================

``id`` echoes the request's (0 without one). Channels served (``<S>``: a market id such as
``KASUSDT``; ``(100ms|10ms)``: both frequencies are served, with that ``eventType``):

=====================================================  ===========================================
``spot@public.aggre.depth.v3.api.pb@(100ms|10ms)@<S>``  ``publicAggreDepths``: changed levels
                                                       (quantity 0: gone), ``fromVersion`` ..
                                                       ``toVersion``: the depth versions covered
``spot@public.aggre.deals.v3.api.pb@(100ms|10ms)@<S>``  ``publicAggreDeals``: one deal per match,
                                                       ``tradeType`` 1 buy / 2 sell (taker side)
``spot@private.orders.v3.api.pb`` (listen key only)    ``privateOrders``: on acceptance, each fill
                                                       and the close
``spot@private.deals.v3.api.pb`` (listen key only)     ``privateDeals``: the account's side of each
                                                       match
=====================================================  ===========================================

Depth versions are per symbol, contiguous, and the REST snapshot's ``lastUpdateId`` is the same
counter, so MEXC's rule "next ``fromVersion`` = previous ``toVersion`` + 1" holds and a
snapshot is consistent with the stream. By default each engine change is pushed at once as its
own message (``fromVersion`` = ``toVersion``: a window holding one change); with
``depth_window_s`` the changes of a symbol merge for that long into one push spanning their
versions, as MEXC's 100 ms aggregation does (both frequencies share the window;
:meth:`MexcWs.flush_depth` ends it now). Other channels (``bookTicker``, ``kline``,
``private.account``, ``limit.depth``) are answered "Blocked!" by the emulator (not by MEXC).

Limits and lifecycle, as MEXC documents them: 30 subscriptions per connection (a further one
is refused as above (*)); a connection with no subscription is closed after 30 s and one with
no traffic either way (pings count) after 60 s; a listen key is valid 60 minutes from creation
or its last keep-alive on the emulator's clock, and a connection using it is closed when it
expires or is deleted (*).

Protocol faults (wire faults such as drop, duplicate, reorder, stall, burst and close are on
:attr:`MexcWs.hub`, per connection or topic):

* :meth:`MexcWs.expire_listen_key` - the key expires now: its sockets close, a reconnect with
  it gets ``Invalid listen key`` and a keep-alive gets code 730708;
* :meth:`MexcWs.disconnect_and_move` - a fresh snapshot after a reconnect: the connections
  close, the book moves while the client is away, and the stream resumes at the current
  version (nothing is replayed), so only a new REST snapshot gives the right book;
* a version gap is a dropped depth message (``hub.inject(depth_channel(S), drop=1)``).

(*) Not verified against MEXC: MEXC documents no answer for these; the shapes are the ones it
uses elsewhere (the "Blocked!" text is what it answers for retired channels; ``Invalid listen
key`` is the text ccxt 4.5.90 checks for).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ccxt.protobuf.mexc import PushDataV3ApiWrapper_pb2 as wrapper_pb2

from tests.emulators.mexc_shapes import (
    Deal,
    DepthChange,
    MexcError,
    MexcOrder,
    MexcTrade,
    err_mandatory,
    fmt,
)
from tests.emulators.mexc_venue import MexcVenue
from tests.emulators.wire import Payload, WsConnection, WsHub

__all__ = [
    "DEALS",
    "DEPTH",
    "LISTEN_KEY_TTL_S",
    "PRIVATE_DEALS",
    "PRIVATE_ORDERS",
    "ListenKeys",
    "MexcWs",
    "deals_channel",
    "depth_channel",
]

WS_PATH = "/ws"
DEPTH = "spot@public.aggre.depth.v3.api.pb"
DEALS = "spot@public.aggre.deals.v3.api.pb"
PRIVATE_ORDERS = "spot@private.orders.v3.api.pb"
PRIVATE_DEALS = "spot@private.deals.v3.api.pb"
FREQUENCIES = ("100ms", "10ms")
MAX_SUBSCRIPTIONS = 30
LISTEN_KEY_TTL_S = 3600.0

_PUBLIC_CHANNEL = re.compile(
    r"(?P<base>spot@public\.aggre\.(?:depth|deals)\.v3\.api\.pb)@(?P<freq>100ms|10ms)@(?P<sym>\w+)"
)
_ORDER_TYPES = {"LIMIT": 1, "LIMIT_MAKER": 2, "IMMEDIATE_OR_CANCEL": 3, "FILL_OR_KILL": 4}
_ORDER_STATUSES = {
    "NEW": 1,
    "FILLED": 2,
    "PARTIALLY_FILLED": 3,
    "CANCELED": 4,
    "PARTIALLY_CANCELED": 5,
}
_SIDES = {"BUY": 1, "SELL": 2}


def depth_channel(symbol: str, frequency: str = "100ms") -> str:
    """The aggregated-depth channel ccxt subscribes for ``watch_order_book`` (default 100ms)."""
    return f"{DEPTH}@{frequency}@{symbol}"


def deals_channel(symbol: str, frequency: str = "100ms") -> str:
    """The aggregated-deals channel ccxt subscribes for ``watch_trades``."""
    return f"{DEALS}@{frequency}@{symbol}"


def _answer(request_id: int, msg: str) -> str:
    return json.dumps({"id": request_id, "code": 0, "msg": msg}, ensure_ascii=False)


def _blocked(channels: list[str]) -> str:
    return f"Not Subscribed successfully! [{','.join(channels)}].  Reason： Blocked! "


# ------------------------------------------------------------------------------- encoding
def encode_depth(change: DepthChange, frequency: str, from_version: int | None = None) -> bytes:
    """A ``publicAggreDepths`` push of one book change (or of a window of changes merged,
    ``from_version`` to ``change.version``)."""
    push = wrapper_pb2.PushDataV3ApiWrapper()
    push.channel = depth_channel(change.symbol, frequency)
    push.symbol = change.symbol
    push.sendTime = change.time
    body = push.publicAggreDepths
    for levels, side in ((change.asks, body.asks), (change.bids, body.bids)):
        for price, qty in levels:
            item = side.add()
            item.price, item.quantity = fmt(price), fmt(qty)
    body.eventType = f"{DEPTH}@{frequency}"
    body.fromVersion = str(change.version if from_version is None else from_version)
    body.toVersion = str(change.version)
    return bytes(push.SerializeToString())


def encode_deal(fill: Deal, frequency: str) -> bytes:
    """A ``publicAggreDeals`` push of one match (no trade id: MEXC's public deals have none)."""
    push = wrapper_pb2.PushDataV3ApiWrapper()
    push.channel = deals_channel(fill.symbol, frequency)
    push.symbol = fill.symbol
    push.sendTime = fill.time
    deal = push.publicAggreDeals.deals.add()
    deal.price, deal.quantity = fmt(fill.price), fmt(fill.qty)
    deal.tradeType = _SIDES[fill.taker_side]
    deal.time = fill.time
    push.publicAggreDeals.eventType = f"{DEALS}@{frequency}"
    return bytes(push.SerializeToString())


def encode_order(order: MexcOrder, fill: MexcTrade | None, send_time: int) -> bytes:
    """A ``privateOrders`` push: the order as it is now (``fill``: the match that changed it)."""
    push = wrapper_pb2.PushDataV3ApiWrapper()
    push.channel = PRIVATE_ORDERS
    push.symbol = order.symbol
    push.sendTime = send_time
    body = push.privateOrders
    price = order.price or Decimal(0)
    remaining = max(order.remaining, Decimal(0))
    body.id = order.order_id
    if order.client_order_id:
        body.clientId = order.client_order_id
    body.price, body.quantity = fmt(price), fmt(order.orig_qty)
    # "Total order amount": price x quantity, or what a MARKET order by quote amount spends.
    quote = order.orig_quote_qty
    body.amount = fmt(price * order.orig_qty if quote is None else quote)
    body.avgPrice = fmt(order.cum_quote / order.executed_qty) if order.executed_qty else "0"
    body.orderType = _ORDER_TYPES.get(order.type, 5)  # 5: MARKET_ORDER
    body.tradeType = _SIDES[order.side]
    body.remainAmount = fmt(price * remaining)
    body.remainQuantity = fmt(remaining)
    if fill is not None:
        body.isMaker = fill.is_maker
        body.lastDealQuantity = fmt(fill.qty)
    body.cumulativeQuantity = fmt(order.executed_qty)
    body.cumulativeAmount = fmt(order.cum_quote)
    body.status = _ORDER_STATUSES[order.status]
    body.createTime = order.time
    return bytes(push.SerializeToString())


def encode_private_deal(trade: MexcTrade, send_time: int) -> bytes:
    """A ``privateDeals`` push: the account's side of one match."""
    push = wrapper_pb2.PushDataV3ApiWrapper()
    push.channel = PRIVATE_DEALS
    push.symbol = trade.symbol
    push.sendTime = send_time
    body = push.privateDeals
    body.price, body.quantity = fmt(trade.price), fmt(trade.qty)
    body.amount = fmt(trade.price * trade.qty)
    body.tradeType = 1 if trade.is_buyer else 2
    body.isMaker = trade.is_maker
    body.tradeId = trade.trade_id
    if trade.client_order_id:
        body.clientOrderId = trade.client_order_id
    body.orderId = trade.order_id
    body.feeAmount, body.feeCurrency = fmt(trade.commission), trade.commission_asset
    body.time = trade.time
    return bytes(push.SerializeToString())


# ---------------------------------------------------------------------------- listen keys
@dataclass
class ListenKey:
    key: str
    account: str
    expires_at: float  # emulator clock, seconds


def err_listen_key() -> MexcError:
    # Seen from MEXC for a keep-alive of a key it no longer knows (mexc-api-demo issue #35).
    return MexcError(730708, "listen key information error")


class ListenKeys:
    """User-data-stream keys (``/api/v3/userDataStream``): 60 minutes from creation or the last
    keep-alive on the emulator's ``clock`` (seconds)."""

    def __init__(self, clock: Callable[[], float], ttl_s: float = LISTEN_KEY_TTL_S) -> None:
        self.clock = clock
        self.ttl_s = ttl_s
        self.keys: dict[str, ListenKey] = {}

    def create(self, account: str) -> str:
        key = secrets.token_hex(32)
        self.keys[key] = ListenKey(key, account, self.clock() + self.ttl_s)
        return key

    def account_of(self, key: str | None) -> str | None:
        """The account of a valid (known, unexpired) key."""
        entry = self.keys.get(key or "")
        return entry.account if entry is not None and entry.expires_at > self.clock() else None

    def valid(self, account: str) -> list[str]:
        return [k.key for k in self.keys.values() if self.account_of(k.key) == account]

    def _own(self, account: str, key: str | None) -> ListenKey:
        if not key:
            raise err_mandatory("listenKey")
        if self.account_of(key) != account:
            raise err_listen_key()
        return self.keys[key]

    def keep_alive(self, account: str, key: str | None) -> str:
        entry = self._own(account, key)
        entry.expires_at = self.clock() + self.ttl_s
        return entry.key

    def delete(self, account: str, key: str | None) -> str:
        entry = self._own(account, key)
        del self.keys[entry.key]
        return entry.key

    def expire(self, key: str | None = None) -> list[str]:
        """Fault: ``key`` (every key when None) expires now."""
        expired = [k for k in self.keys.values() if key is None or k.key == key]
        for entry in expired:
            entry.expires_at = self.clock()
        return [k.key for k in expired]


# ------------------------------------------------------------------------------- protocol
@dataclass
class _DepthWindow:
    """Depth changes of one symbol waiting for their push: levels merged, first version kept."""

    from_version: int
    last: DepthChange
    bids: dict[Decimal, Decimal]
    asks: dict[Decimal, Decimal]
    timer: asyncio.TimerHandle | None = None

    def merged(self) -> DepthChange:
        bids = tuple(sorted(self.bids.items(), key=lambda level: -level[0]))
        last = self.last
        return DepthChange(
            last.symbol, last.version, bids, tuple(sorted(self.asks.items())), last.time
        )


class MexcWs:
    """MEXC's spot websocket protocol over a :class:`WsHub` (see the module docstring).

    Register it as an engine observer; ``start`` and ``stop`` run its housekeeping (idle and
    listen-key timeouts, checked every ``sweep_s``).
    """

    def __init__(
        self,
        engine: MexcVenue,
        listen_keys: ListenKeys,
        *,
        max_subscriptions: int = MAX_SUBSCRIPTIONS,
        idle_unsubscribed_s: float = 30.0,
        idle_silent_s: float = 60.0,
        sweep_s: float = 0.05,
        depth_window_s: float | None = None,
    ) -> None:
        self.engine = engine
        self.listen_keys = listen_keys
        self.max_subscriptions = max_subscriptions
        self.idle_unsubscribed_s = idle_unsubscribed_s
        self.idle_silent_s = idle_silent_s
        self.sweep_s = sweep_s
        self.depth_window_s = depth_window_s
        self._windows: dict[str, _DepthWindow] = {}
        self.hub = WsHub(on_message=self._on_message, on_open=self._on_open)
        #: Every text a client sent: ``(connection id, text)``.
        self.received: list[tuple[int, str]] = []
        #: Every refused subscription: ``(connection id, channel)``.
        self.refused: list[tuple[int, str]] = []
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for window in self._windows.values():
            if window.timer is not None:
                window.timer.cancel()
        self._windows.clear()
        await self.hub.shutdown()

    # --- connections and requests -------------------------------------------------------
    async def _on_open(self, conn: WsConnection) -> None:
        now = asyncio.get_running_loop().time()
        conn.state.update(opened=now, last_traffic=now)
        if "listenKey" not in conn.request.query:
            return
        key = conn.request.query["listenKey"]
        account = self.listen_keys.account_of(key)
        if account is None:
            conn.send_control("Invalid listen key")
            conn.close_after_sent()
            return
        conn.state.update(listen_key=key, account=account)

    async def _on_message(self, conn: WsConnection, data: Payload) -> None:
        text = data if isinstance(data, str) else data.decode(errors="replace")
        self.received.append((conn.id, text))
        conn.state["last_traffic"] = asyncio.get_running_loop().time()
        try:
            request = json.loads(text)
        except ValueError:
            return  # not answered (unverified)
        if not isinstance(request, dict):
            return
        raw_id = request.get("id", 0)
        request_id = raw_id if isinstance(raw_id, int) and raw_id >= 0 else 0
        method = str(request.get("method", "")).upper()
        params = request.get("params")
        channels = [p for p in params if isinstance(p, str)] if isinstance(params, list) else []
        if method == "PING":
            conn.send_control(_answer(request_id, "PONG"))
        elif method == "SUBSCRIPTION":
            self._subscribe(conn, request_id, channels)
            await self.hub.subscription_changed()
        elif method == "UNSUBSCRIPTION":
            conn.topics.difference_update(channels)
            conn.send_control(_answer(request_id, ",".join(channels)))
            await self.hub.subscription_changed()

    def _subscribe(self, conn: WsConnection, request_id: int, channels: list[str]) -> None:
        accepted: list[str] = []
        refused: list[str] = []
        for channel in channels:
            fits = channel in conn.topics or len(conn.topics) < self.max_subscriptions
            if self._serves(conn, channel) and fits:
                conn.topics.add(channel)
                accepted.append(channel)
            else:
                refused.append(channel)
                self.refused.append((conn.id, channel))
        if accepted:
            conn.send_control(_answer(request_id, ",".join(accepted)))
        if refused:
            conn.send_control(_answer(request_id, _blocked(refused)))

    def _serves(self, conn: WsConnection, channel: str) -> bool:
        if channel in (PRIVATE_ORDERS, PRIVATE_DEALS):
            return "account" in conn.state
        match = _PUBLIC_CHANNEL.fullmatch(channel)
        return match is not None and match["sym"] in self.engine.markets

    # --- engine hooks: what the engine did, pushed --------------------------------------
    def on_book_changed(self, change: DepthChange) -> None:
        if self.depth_window_s is None:
            self._push_depth(change, change.version)
            return
        window = self._windows.get(change.symbol)
        if window is None:
            window = self._windows[change.symbol] = _DepthWindow(change.version, change, {}, {})
            window.timer = asyncio.get_running_loop().call_later(
                self.depth_window_s, self.flush_depth, change.symbol
            )
        window.last = change
        window.bids.update(change.bids)
        window.asks.update(change.asks)

    def flush_depth(self, symbol: str | None = None) -> None:
        """End the depth window of ``symbol`` (every symbol when None): push what it merged."""
        for name in [symbol] if symbol is not None else list(self._windows):
            window = self._windows.pop(name, None)
            if window is None:
                continue
            if window.timer is not None:
                window.timer.cancel()
            self._push_depth(window.merged(), window.from_version)

    def _push_depth(self, change: DepthChange, from_version: int) -> None:
        for frequency in FREQUENCIES:
            conns = self.hub.subscribed(depth_channel(change.symbol, frequency))
            if conns:
                self._push(conns, encode_depth(change, frequency, from_version))

    def on_trade(self, fill: Deal) -> None:
        for frequency in FREQUENCIES:
            conns = self.hub.subscribed(deals_channel(fill.symbol, frequency))
            if conns:
                self._push(conns, encode_deal(fill, frequency))
        for trade in fill.trades:
            conns = self._private(PRIVATE_DEALS, trade.account)
            if conns:
                self._push(conns, encode_private_deal(trade, self.engine.clock_ms()))

    def on_order_changed(self, order: MexcOrder, fill: MexcTrade | None) -> None:
        conns = self._private(PRIVATE_ORDERS, order.account)
        if conns:
            self._push(conns, encode_order(order, fill, self.engine.clock_ms()))

    def _private(self, channel: str, account: str) -> list[WsConnection]:
        return [c for c in self.hub.subscribed(channel) if c.state.get("account") == account]

    def _push(self, conns: list[WsConnection], payload: bytes) -> None:
        now = asyncio.get_running_loop().time()
        for conn in conns:
            conn.state["last_traffic"] = now
            conn.send_data(payload)

    # --- housekeeping and protocol faults -----------------------------------------------
    def connections_of(self, key: str) -> list[WsConnection]:
        """Open connections that use listen key ``key``."""
        return [c for c in self.hub.connections.values() if c.state.get("listen_key") == key]

    def expire_listen_key(self, key: str | None = None) -> int:
        """Fault: ``key`` (every key when None) expires now; its sockets close. Returns how
        many connections were closed."""
        closed = 0
        for expired in self.listen_keys.expire(key):
            for conn in self.connections_of(expired):
                conn.close_after_sent()
                closed += 1
        return closed

    async def disconnect_and_move(self, move: Callable[[], Any], topic: str | None = None) -> int:
        """Fault "fresh snapshot after reconnect": close the connections subscribed to
        ``topic`` (all when None), wait until they are gone, then call ``move`` (which changes
        the book, e.g. ``lambda: emu.set_mid(...)``) while the client is away. Depth versions
        continue, so a client that merges new pushes into the book it had is visibly wrong."""
        targets = self.hub.subscribed(topic) if topic else self.hub.connections.values()
        closing = {c.id for c in targets}
        await self.hub.close_all(topic)
        await self.hub.wait_for(lambda hub: not closing & hub.connections.keys())
        move()
        return len(closing)

    def sweep(self) -> None:
        """Close what MEXC would close now: idle connections, dead listen keys."""
        now = asyncio.get_running_loop().time()
        for conn in list(self.hub.connections.values()):
            if conn.closed or conn.state.get("closing") or "opened" not in conn.state:
                continue
            key = conn.state.get("listen_key")
            dead_key = key is not None and self.listen_keys.account_of(key) is None
            unsubscribed = not conn.topics and now - conn.state["opened"] > self.idle_unsubscribed_s
            silent = now - conn.state["last_traffic"] > self.idle_silent_s
            if dead_key or unsubscribed or silent:
                conn.state["closing"] = True
                conn.close_after_sent()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)
            self.sweep()
