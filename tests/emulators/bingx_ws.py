"""BingX spot websockets for the BingX emulator: gzip frames, heartbeats, listen keys, pushes.

Served on the emulator's port at ``/market`` (BingX's ``wss://open-api-ws.bingx.com/market``;
private streams at ``/market?listenKey=K``) through the shared websocket layer
(:mod:`tests.emulators.wire`), driven by the matching engine's observers. As BingX documents it
(https://bingx-api.github.io/docs/#/en-us/spot/socket/) and ccxt 4.5.90 (``ccxt/pro/bingx.py``,
``options['ws']['gunzip']``) reads it, **every server message is gzip-compressed JSON in a binary
frame**; clients send JSON text.

=====================================================  ===========================================
client sends                                           server answers
=====================================================  ===========================================
``{"id", "reqType": "sub", "dataType"}`` (ccxt's       ``{"id", "code": 0, "msg": "",
spot public requests carry no ``reqType``: sub)        "timestamp"}``; a bad ``dataType``:
                                                       ``{"id", "code": 100400, "msg"}`` (*)
``{"id", "reqType": "unsub", "dataType"}``             the same acknowledgement
``{"pong": P, "time": T}`` / ``Pong``                  (nothing: the heartbeat is answered)
=====================================================  ===========================================

``dataType`` served (``<S>``: a symbol id such as ``KAS-USDT``):

=============================  ===================================================================
``<S>@depth<N>``               N in 5, 10, 20, 50, 100: a **full snapshot** of the top N levels
                               ``{"code": 0, "dataType", "data": {"bids", "asks", "lastUpdateId"},
                               "success": true, "timestamp"}`` (asks highest first, as BingX
                               sends them) right after the subscription and after every book
                               change (BingX: every 300 ms); ccxt ``reset``s its book with each
``<S>@trade``                  one ``{"e": "trade", "E", "s", "t", "p", "q", "T", "m"}`` per match
``spot.executionReport``       the account's ``executionReport`` (:func:`execution_report`): NEW on
(listen key connections)       acceptance, TRADE per fill, CANCELED
=============================  ===================================================================

Heartbeat: every ``ping_interval_s`` (BingX: 5 s) the server sends ``{"ping": uuid, "time":
"...+0800"}`` (``heartbeat="json"``, BingX's documented spot heartbeat, answered ``{"pong",
"time"}``) or the text ``Ping`` (``heartbeat="text"``, BingX's swap heartbeat, answered
``Pong``); a connection with a ping unanswered for ``pong_timeout_s`` is closed (*).

Listen keys: a connection with an unknown or expired key gets ``{"code": 100400, "msg":
"listenKey is invalid"}`` (*) and is closed; when a key expires (60 minutes after its creation
or last extension, on the emulator's clock, or :meth:`BingxWs.expire_listen_key`) its
connections get ``{"e": "listenKeyExpired", "E", "listenKey"}`` (BingX's swap event) and close.

Protocol faults (the wire faults are the hub's: :attr:`BingxWs.hub`): :meth:`disconnect_and_move`
(the book moves while the client is away; the reconnect's first snapshot is the moved book),
unanswered pings, listen-key expiry.

(*) Not documented by BingX for spot: shapes in BingX's style, chosen so ccxt reacts visibly.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.emulators.bingx_engine import BingxVenue, JsonDict, fmt, status_of
from tests.emulators.matching_types import BUY, ZERO, BookChange, Fill, OrderEvent
from tests.emulators.wire import Payload, WsConnection, WsHub

__all__ = [
    "DEPTH_LEVELS",
    "EXECUTION_REPORT",
    "LISTEN_KEY_TTL_S",
    "WS_PATH",
    "BingxWs",
    "ListenKeys",
    "depth_topic",
    "gunzip_json",
]

WS_PATH = "/market"
EXECUTION_REPORT = "spot.executionReport"
DEPTH_LEVELS = (5, 10, 20, 50, 100)
_DEPTH = re.compile(r"(?P<sym>[A-Z0-9]+-[A-Z0-9]+)@depth(?P<level>\d+)")
_TRADE = re.compile(r"(?P<sym>[A-Z0-9]+-[A-Z0-9]+)@trade")
_BEIJING = timedelta(hours=8)
LISTEN_KEY_TTL_S = 3600.0


def depth_topic(symbol: str, level: int = 100) -> str:
    """The depth ``dataType`` ccxt subscribes for ``watch_order_book`` (100 by default)."""
    return f"{symbol}@depth{level}"


def gzipped(message: JsonDict | str) -> bytes:
    """A server message as BingX sends it: gzip-compressed JSON (or text)."""
    text = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
    return gzip.compress(text.encode())


def gunzip_json(frame: bytes) -> Any:
    """A server frame decoded (tests): the JSON value, or the text if it is not JSON."""
    text = gzip.decompress(frame).decode()
    try:
        return json.loads(text)
    except ValueError:
        return text


# ------------------------------------------------------------------------------- shapes
def execution_report(event: OrderEvent, now_ms: int) -> JsonDict | None:
    """The ``spot.executionReport`` push of an order event (``None``: BingX sends none).

    ``x`` NEW on acceptance, TRADE per fill (``X`` the status after it), CANCELED when cancelled;
    the engine's ``open`` and ``filled`` events are folded into those. ``c`` (client order id) is
    not in BingX's field table but is what ccxt reads.
    """
    order, fill = event.order, event.fill
    if event.kind == "received":
        execution = "NEW"
    elif event.kind == "match" and fill is not None:
        execution = "TRADE"
    elif event.kind == "canceled":
        execution = "CANCELED"
    else:
        return None
    status = "PENDING" if execution == "NEW" else status_of(order)
    last_qty = fill.size if fill is not None else ZERO
    last_price = fill.price if fill is not None else ZERO
    return {
        "e": "executionReport",
        "E": now_ms,
        "s": order.symbol,
        "S": order.side.upper(),
        "o": order.type.upper(),
        "q": fmt(order.size),
        "p": fmt(order.price),
        "x": execution,
        "X": status,
        "i": int(order.id),
        "c": order.client_id or "",
        "l": fmt(last_qty),
        "z": fmt(order.filled),
        "L": fmt(last_price),
        "n": fmt(-fill.fee) if fill is not None else "0",
        "N": order.fee_asset,
        "T": fill.time_ms if fill is not None else 0,
        "t": int(fill.trade_id) if fill is not None else 0,
        "O": order.created_ms,
        "Z": fmt(order.filled_funds),
        "Y": fmt(last_qty * last_price),
        "Q": fmt(order.funds),
        "m": fill is not None and fill.role == "maker",
    }


def public_trade(fill: Fill, now_ms: int) -> JsonDict:
    """A ``<symbol>@trade`` push of one match; ``m``: the buyer was the maker."""
    buyer_is_maker = (fill.role == "maker") == (fill.side == BUY)
    return {
        "e": "trade",
        "E": now_ms,
        "s": fill.symbol,
        "t": fill.trade_id,
        "p": fmt(fill.price),
        "q": fmt(fill.size),
        "T": fill.time_ms,
        "m": buyer_is_maker,
    }


# ---------------------------------------------------------------------------- listen keys
@dataclass
class ListenKey:
    key: str
    account: str
    expires_at: float  # emulator clock, seconds


class ListenKeys:
    """User-data-stream keys (``/openApi/user/auth/userDataStream``): valid 60 minutes from
    creation or the last extension, on the emulator's ``clock`` (seconds)."""

    def __init__(self, clock: Callable[[], float], ttl_s: float = LISTEN_KEY_TTL_S) -> None:
        self.clock, self.ttl_s = clock, ttl_s
        self.keys: dict[str, ListenKey] = {}

    def create(self, account: str) -> str:
        key = secrets.token_hex(32)
        self.keys[key] = ListenKey(key, account, self.clock() + self.ttl_s)
        return key

    def account_of(self, key: str | None) -> str | None:
        """The account of a known, unexpired key."""
        entry = self.keys.get(key or "")
        return entry.account if entry is not None and entry.expires_at > self.clock() else None

    def extend(self, account: str, key: str | None) -> bool:
        """Another 60 minutes; False for an unknown, expired or foreign key."""
        if key is None or self.account_of(key) != account:
            return False
        self.keys[key].expires_at = self.clock() + self.ttl_s
        return True

    def delete(self, account: str, key: str | None) -> bool:
        if key is None or self.account_of(key) != account:
            return False
        del self.keys[key]
        return True

    def expire(self, key: str | None = None) -> list[str]:
        """Fault: ``key`` (every key when None) expires now; returns the keys."""
        expired = [k for k in self.keys.values() if key is None or k.key == key]
        for entry in expired:
            entry.expires_at = self.clock()
        return [k.key for k in expired]


# ----------------------------------------------------------------------------- protocol
class BingxWs:
    """BingX's spot websocket protocol over a :class:`WsHub` (see the module docstring).

    The emulator registers :meth:`on_book`, :meth:`on_order` and :meth:`on_fill` as engine
    observers and calls :meth:`sweep` periodically (heartbeats, listen-key expiry).
    """

    def __init__(
        self,
        venue: BingxVenue,
        listen_keys: ListenKeys,
        *,
        heartbeat: str = "json",
        ping_interval_s: float = 5.0,
        pong_timeout_s: float = 10.0,
    ) -> None:
        if heartbeat not in ("json", "text"):
            raise ValueError("heartbeat must be 'json' or 'text'")
        self.venue = venue
        self.listen_keys = listen_keys
        self.heartbeat = heartbeat
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.hub = WsHub(on_message=self._on_message, on_open=self._on_open)
        #: Every text a client sent: ``(connection id, text)``.
        self.received: list[tuple[int, str]] = []
        #: Pings sent and pongs received, per connection id.
        self.pings_sent: dict[int, int] = {}
        self.pongs_received: dict[int, int] = {}
        #: Connections closed for not answering pings.
        self.closed_for_silence: list[int] = []
        self._published_trades: deque[str] = deque(maxlen=4096)

    # --- connections and requests -------------------------------------------------------
    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    async def _on_open(self, conn: WsConnection) -> None:
        now = self._loop_time()
        conn.state.update(opened=now, last_ping=now, pending={})
        if "listenKey" not in conn.request.query:
            return
        key = conn.request.query["listenKey"]
        account = self.listen_keys.account_of(key)
        if account is None:
            conn.state["closing"] = True
            conn.send_control(gzipped(self._error(None, "listenKey is invalid")))
            conn.close_after_sent()
            return
        conn.state.update(listen_key=key, account=account)

    def _error(self, request_id: object, msg: str) -> JsonDict:
        return {"id": request_id, "code": 100400, "msg": msg, "timestamp": self.venue.now_ms()}

    async def _on_message(self, conn: WsConnection, data: Payload) -> None:
        text = data if isinstance(data, str) else data.decode(errors="replace")
        self.received.append((conn.id, text))
        if text == "Pong":
            self._pong(conn, None)
            return
        try:
            request = json.loads(text)
        except ValueError:
            return
        if not isinstance(request, dict):
            return
        if "pong" in request:
            self._pong(conn, str(request["pong"]))
            return
        request_id = request.get("id")
        data_type = str(request.get("dataType", ""))
        req_type = str(request.get("reqType") or "sub")
        if req_type == "unsub":
            conn.topics.discard(data_type)
            conn.send_control(gzipped(self._ack(request_id)))
        elif req_type == "sub" and self._serves(conn, data_type):
            conn.topics.add(data_type)
            conn.send_control(gzipped(self._ack(request_id)))
            depth = _DEPTH.fullmatch(data_type)
            if depth is not None:
                level = int(depth["level"])
                conn.send_data(gzipped(self._depth_message(depth["sym"], level)))
        else:
            conn.send_control(gzipped(self._error(request_id, f"invalid dataType {data_type}")))
        await self.hub.subscription_changed()

    def _ack(self, request_id: object) -> JsonDict:
        return {"id": request_id, "code": 0, "msg": "", "timestamp": self.venue.now_ms()}

    def _serves(self, conn: WsConnection, data_type: str) -> bool:
        if data_type == EXECUTION_REPORT:
            return "account" in conn.state
        depth = _DEPTH.fullmatch(data_type)
        if depth is not None:
            return int(depth["level"]) in DEPTH_LEVELS and depth["sym"] in self.venue.engine.markets
        trade = _TRADE.fullmatch(data_type)
        return trade is not None and trade["sym"] in self.venue.engine.markets

    def _depth_message(self, symbol: str, level: int) -> JsonDict:
        return {
            "code": 0,
            "data": self.venue.depth(symbol, level),
            "dataType": depth_topic(symbol, level),
            "success": True,
            "timestamp": self.venue.now_ms(),
        }

    # --- engine observers: what the engine did, pushed ----------------------------------
    def on_book(self, change: BookChange) -> None:
        for level in DEPTH_LEVELS:
            topic = depth_topic(change.symbol, level)
            if self.hub.subscribed(topic):
                self.hub.publish(topic, gzipped(self._depth_message(change.symbol, level)))

    def on_fill(self, fill: Fill) -> None:
        if fill.trade_id in self._published_trades:
            return  # the other side of a match already went out
        self._published_trades.append(fill.trade_id)
        topic = f"{fill.symbol}@trade"
        if self.hub.subscribed(topic):
            message = {
                "code": 0,
                "data": public_trade(fill, self.venue.now_ms()),
                "dataType": topic,
                "success": True,
            }
            self.hub.publish(topic, gzipped(message))

    def on_order(self, event: OrderEvent) -> None:
        report = execution_report(event, self.venue.now_ms())
        if report is None:
            return
        targets = [
            c
            for c in self.hub.subscribed(EXECUTION_REPORT)
            if c.state.get("account") == event.order.account
        ]
        if targets:
            payload = gzipped({"code": 0, "dataType": EXECUTION_REPORT, "data": report})
            for conn in targets:
                conn.send_data(payload)

    # --- heartbeats, listen keys, protocol faults ---------------------------------------
    def _ping_message(self) -> bytes:
        if self.heartbeat == "text":
            return gzipped("Ping")
        now = datetime.now(UTC) + _BEIJING
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0800"
        return gzipped({"ping": uuid.uuid4().hex, "time": stamp})

    def ping(self, conn: WsConnection) -> None:
        """Send one server ping now (its answer is expected within ``pong_timeout_s``)."""
        payload = self._ping_message()
        ping_id = "Ping" if self.heartbeat == "text" else gunzip_json(payload)["ping"]
        conn.state["pending"][ping_id] = conn.state["last_ping"] = self._loop_time()
        self.pings_sent[conn.id] = self.pings_sent.get(conn.id, 0) + 1
        conn.send_control(payload)

    def _pong(self, conn: WsConnection, ping_id: str | None) -> None:
        pending: dict[str, float] = conn.state.setdefault("pending", {})
        if ping_id is None:
            pending.clear()
        else:
            pending.pop(ping_id, None)
        self.pongs_received[conn.id] = self.pongs_received.get(conn.id, 0) + 1

    def sweep(self) -> None:
        """Ping due connections, close silent ones and those whose listen key died."""
        now = self._loop_time()
        for conn in list(self.hub.connections.values()):
            if conn.closed or conn.state.get("closing") or "opened" not in conn.state:
                continue
            key = conn.state.get("listen_key")
            if key is not None and self.listen_keys.account_of(key) is None:
                self._close_expired(conn, key)
                continue
            pending: dict[str, float] = conn.state["pending"]
            if pending and now - min(pending.values()) > self.pong_timeout_s:
                conn.state["closing"] = True
                self.closed_for_silence.append(conn.id)
                conn.close_after_sent()
                continue
            if now - conn.state["last_ping"] >= self.ping_interval_s:
                self.ping(conn)

    def _close_expired(self, conn: WsConnection, key: str) -> None:
        conn.state["closing"] = True
        expired = {"e": "listenKeyExpired", "E": self.venue.now_ms(), "listenKey": key}
        conn.send_control(gzipped(expired))
        conn.close_after_sent()

    def connections_of(self, key: str) -> list[WsConnection]:
        """Open connections that use listen key ``key``."""
        return [c for c in self.hub.connections.values() if c.state.get("listen_key") == key]

    def expire_listen_key(self, key: str | None = None) -> int:
        """Fault: ``key`` (every key when None) expires now; its connections are told and
        closed. Returns how many connections that was."""
        closed = 0
        for expired in self.listen_keys.expire(key):
            for conn in self.connections_of(expired):
                if not conn.state.get("closing"):
                    self._close_expired(conn, expired)
                    closed += 1
        return closed

    async def disconnect_and_move(self, move: Callable[[], Any], topic: str | None = None) -> int:
        """Fault "fresh snapshot after reconnect": close the connections subscribed to
        ``topic`` (all when None), wait until they are gone, then call ``move`` (which changes
        the book) while the client is away. Returns how many connections were closed."""
        targets = self.hub.subscribed(topic) if topic else list(self.hub.connections.values())
        closing = {c.id for c in targets}
        await self.hub.close_all(topic)
        await self.hub.wait_for(lambda hub: not closing & hub.connections.keys())
        move()
        return len(closing)
