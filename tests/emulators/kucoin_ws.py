"""KuCoin spot websockets of the emulator: the bullet token, level2 deltas, private order changes.

The protocol, as KuCoin documents it (https://www.kucoin.com/docs-new/websocket-api/base-info/
introduction; topics 3470068w0 "Orderbook - Increment", "Private Order Change" V1/V2) and as
``ccxt/pro/kucoin.py`` 4.5.90 speaks it:

* ``POST /api/v1/bullet-public`` / ``bullet-private`` (REST) answer a token and one
  ``instanceServers`` entry whose ``endpoint`` is the emulator's websocket URL, with
  ``pingInterval`` / ``pingTimeout`` (ms). ccxt connects to ``endpoint?token=..&connectId=..``
  and pings every ``pingInterval``.
* On connect: ``{"id": connectId, "type": "welcome"}``; an unknown token gets an ``error`` 401
  ``token is invalid``, an expired one ``token is expired`` (ccxt then drops its cached URL and
  asks for a new token next time), and the socket is closed.
* ``{"type": "ping"}`` -> ``{"type": "pong"}``; a connection that has not pinged for
  ``pingInterval + pingTimeout`` gets ``error`` 400 ``ping timeout`` and is closed.
* ``subscribe`` (``response: true`` -> ``{"type": "ack"}``): ``/market/level2:SYM[,SYM]``
  (public) and ``/spotMarket/tradeOrders`` / ``/spotMarket/tradeOrdersV2`` (private token only;
  else ``error`` 403 ``login is required``); anything else ``error`` 404.
* ``/market/level2`` pushes ``trade.l2update`` messages: ``changes.asks|bids`` as ``[price, size,
  sequence]`` with ``sequenceStart``/``sequenceEnd``, the engine's per-market sequence, which the
  REST snapshot's ``sequence`` shares (ccxt caches deltas, fetches the snapshot, replays the
  deltas after its sequence). Sequences continue across connections and restarts.
* Order changes (``subject: orderChange``): ``received`` (V2 only, status ``new``), ``open``,
  ``match`` (``matchPrice``, ``matchSize``, ``tradeId``, ``liquidity``, ``feeType``; status
  ``match`` for the taker, ``open`` for a maker), ``filled`` (``done``), ``canceled`` (``done``),
  and ``update`` (``done``) when the engine cancels the rest of a partly filled order (IOC, FOK,
  market). ccxt's ``watch_orders`` and ``watch_my_trades`` both subscribe to the V1 topic.

Protocol faults: :meth:`KucoinWebsockets.expire_tokens` (new connections with an old token are
refused), the ping watchdog, and, through :attr:`hub`, every wire fault of
:mod:`tests.emulators.wire` (a ``drop`` on ``/market/level2`` is a sequence gap; closing the
connections makes ccxt reconnect and fetch a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.emulators.kucoin_engine import JsonDict, KucoinVenue, fmt
from tests.emulators.matching_types import SELL, BookChange, OrderEvent
from tests.emulators.wire import Payload, WsConnection, WsHub

LEVEL2 = "/market/level2"
ORDERS_V1 = "/spotMarket/tradeOrders"
ORDERS_V2 = "/spotMarket/tradeOrdersV2"
PRIVATE_TOPICS = (ORDERS_V1, ORDERS_V2)
#: Engine cancel reasons that KuCoin reports as ``update`` when part of the order had filled.
_ENGINE_CANCELS = frozenset({"ioc", "fok", "no_liquidity"})


@dataclass
class Token:
    """A bullet token: the API key it was issued to (``None``: public) and its expiry."""

    api_key: str | None
    expires_at: float


class KucoinWebsockets:
    """The websocket side of the KuCoin emulator (see the module docstring)."""

    def __init__(
        self,
        venue: KucoinVenue,
        clock: Callable[[], float],
        ping_interval_ms: int,
        ping_timeout_ms: int,
        token_ttl_s: float,
    ) -> None:
        self.venue = venue
        self.clock = clock
        self.ping_interval_ms = ping_interval_ms
        self.ping_timeout_ms = ping_timeout_ms
        self.token_ttl_s = token_ttl_s
        #: The URL handed out in ``instanceServers`` (set when the emulator starts).
        self.endpoint = ""
        self.hub = WsHub(on_message=self._on_message, on_open=self._on_open)
        self.tokens: dict[str, Token] = {}
        #: Connections closed for not pinging, and connections refused for their token.
        self.ping_timeouts = 0
        self.refused: list[str] = []
        #: Pongs answered, and every order change published (``(topic, data)``), for tests.
        self.pongs = 0
        self.order_changes: list[tuple[str, JsonDict]] = []
        self._watchdog: asyncio.Task[None] | None = None
        venue.engine.observers.on_book.append(self._on_book)
        venue.engine.observers.on_order.append(self._on_order)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._watchdog = asyncio.get_running_loop().create_task(self._watch_pings())

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        await self.hub.shutdown()

    # ------------------------------------------------------------------ tokens

    def issue_token(self, api_key: str | None) -> JsonDict:
        """The ``data`` of a bullet answer: a new token for ``api_key`` (``None``: public)."""
        token = secrets.token_urlsafe(48)
        self.tokens[token] = Token(api_key, self.clock() + self.token_ttl_s)
        return {
            "token": token,
            "instanceServers": [
                {
                    "endpoint": self.endpoint,
                    "encrypt": True,
                    "protocol": "websocket",
                    "pingInterval": self.ping_interval_ms,
                    "pingTimeout": self.ping_timeout_ms,
                }
            ],
        }

    def expire_tokens(self) -> int:
        """Expire every token issued so far (open connections stay up, as on KuCoin: a token
        is checked when connecting). Returns how many."""
        now = self.clock()
        for token in self.tokens.values():
            token.expires_at = min(token.expires_at, now - 1)
        return len(self.tokens)

    # ------------------------------------------------------------------ connections

    async def _on_open(self, conn: WsConnection) -> None:
        query = conn.request.query
        connect_id = query.get("connectId") or str(conn.id)
        conn.state["connect_id"] = connect_id
        conn.state["last_ping"] = asyncio.get_running_loop().time()
        token = self.tokens.get(query.get("token", ""))
        problem = None
        if token is None:
            problem = "token is invalid"
        elif token.expires_at <= self.clock():
            problem = "token is expired"
        if problem is not None:
            self.refused.append(problem)
            conn.send_control(_error(connect_id, 401, problem))
            conn.close_after_sent()
            return
        assert token is not None
        conn.state["api_key"] = token.api_key
        conn.send_control(json.dumps({"id": connect_id, "type": "welcome"}))

    async def _on_message(self, conn: WsConnection, payload: Payload) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            conn.send_control(_error(None, 415, "command type is invalid"))
            return
        kind, request_id = message.get("type"), message.get("id")
        if kind == "ping":
            conn.state["last_ping"] = asyncio.get_running_loop().time()
            self.pongs += 1
            now_us = int(self.clock() * 1_000_000)
            conn.send_control(json.dumps({"id": request_id, "type": "pong", "timestamp": now_us}))
        elif kind in ("subscribe", "unsubscribe"):
            topics = self._topics(conn, message)
            if topics is None:
                return
            if kind == "subscribe":
                conn.topics.update(topics)
            else:
                conn.topics.difference_update(topics)
            if message.get("response") in (True, "true"):
                conn.send_control(json.dumps({"id": request_id, "type": "ack"}))
            await self.hub.subscription_changed()
        else:
            conn.send_control(_error(request_id, 415, "command type is invalid"))

    def _topics(self, conn: WsConnection, message: JsonDict) -> list[str] | None:
        """The hub topics a (un)subscribe names, or ``None`` after answering an error."""
        request_id, topic = message.get("id"), message.get("topic")
        if not isinstance(topic, str) or not topic:
            conn.send_control(_error(request_id, 406, "topic is required"))
            return None
        channel, _, symbols = topic.partition(":")
        if channel == LEVEL2:
            names = [s for s in symbols.split(",") if s]
            if not names or any(s not in self.venue.engine.markets for s in names):
                conn.send_control(_error(request_id, 404, f"topic {topic} is not found"))
                return None
            return [f"{LEVEL2}:{s}" for s in names]
        if channel in PRIVATE_TOPICS:
            api_key = conn.state.get("api_key")
            if api_key is None:
                conn.send_control(_error(request_id, 403, "login is required"))
                return None
            return [_private_topic(channel, api_key)]
        conn.send_control(_error(request_id, 404, f"topic {topic} is not found"))
        return None

    async def _watch_pings(self) -> None:
        """Close connections that stopped pinging (``pingInterval + pingTimeout`` of silence)."""
        limit_s = (self.ping_interval_ms + self.ping_timeout_ms) / 1000
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(0.02, self.ping_interval_ms / 4000))
            now = loop.time()
            for conn in list(self.hub.connections.values()):
                if conn.closed or "api_key" not in conn.state:
                    continue
                if now - conn.state["last_ping"] > limit_s:
                    self.ping_timeouts += 1
                    conn.send_control(_error(conn.state["connect_id"], 400, "ping timeout"))
                    conn.close_after_sent()

    # ------------------------------------------------------------------ publishing

    def _on_book(self, change: BookChange) -> None:
        topic = f"{LEVEL2}:{change.symbol}"
        if not self.hub.subscribed(topic):
            return
        asks = [[fmt(c.price), fmt(c.size), str(c.seq)] for c in change.changes if c.side == SELL]
        bids = [[fmt(c.price), fmt(c.size), str(c.seq)] for c in change.changes if c.side != SELL]
        message = {
            "topic": topic,
            "type": "message",
            "subject": "trade.l2update",
            "data": {
                "changes": {"asks": asks, "bids": bids},
                "sequenceEnd": change.seq_end,
                "sequenceStart": change.seq_start,
                "symbol": change.symbol,
                "time": change.time_ms,
            },
        }
        self.hub.publish(topic, json.dumps(message))

    def _on_order(self, event: OrderEvent) -> None:
        account = event.order.account
        for channel in PRIVATE_TOPICS:
            topic = _private_topic(channel, account)
            if event.kind == "received" and channel == ORDERS_V1:
                continue  # "received" is V2's addition
            if not self.hub.subscribed(topic):
                continue
            data = self.order_change(event)
            self.order_changes.append((channel, data))
            message = {
                "type": "message",
                "topic": channel,
                "subject": "orderChange",
                "channelType": "private",
                "userId": account,
                "data": data,
            }
            self.hub.publish(topic, json.dumps(message))

    def order_change(self, event: OrderEvent) -> JsonDict:
        """The ``data`` of an ``orderChange`` message for ``event``."""
        order, kind, fill = event.order, event.kind, event.fill
        status = {"received": "new", "open": "open", "filled": "done", "canceled": "done"}.get(kind)
        if kind == "match":
            assert fill is not None
            status = "match" if fill.role == "taker" else "open"
        if kind == "canceled" and order.filled > 0 and order.cancel_reason in _ENGINE_CANCELS:
            kind = "update"
        remain = order.remaining if order.is_open and order.size is not None else None
        data: dict[str, Any] = {
            "symbol": order.symbol,
            "orderType": order.type,
            "side": order.side,
            "orderId": order.id,
            "type": kind,
            "orderTime": order.created_ms,
            "size": fmt(order.size),
            "filledSize": fmt(order.filled),
            "price": fmt(order.price),
            "clientOid": order.client_id or "",
            "remainSize": fmt(remain),
            "status": status,
            "ts": order.updated_ms * 1_000_000,
        }
        if order.funds is not None:
            data["funds"] = fmt(order.funds)
            data["remainFunds"] = fmt(order.remaining if order.is_open else None)
        if fill is not None:
            data.update(
                liquidity=fill.role,
                feeType=f"{fill.role}Fee",
                matchPrice=fmt(fill.price),
                matchSize=fmt(fill.size),
                tradeId=self.venue.trade_id(fill),
            )
        if kind in ("canceled", "update") and order.size is not None:
            data["canceledSize"] = fmt(order.size - order.filled)
        return data


def _private_topic(channel: str, api_key: str) -> str:
    """The hub topic of an account's private channel (each account sees only its own)."""
    return f"{channel}#{api_key}"


def _error(request_id: object, code: int, text: str) -> str:
    return json.dumps({"id": request_id, "type": "error", "code": code, "data": text})
