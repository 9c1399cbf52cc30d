"""Websocket plumbing shared by the exchange emulators: connections, subscriptions, wire faults.

Each exchange emulator speaks its own protocol (message shapes, login, pings, sequence numbers)
and uses this module for what every one of them needs:

* :class:`WsHub` accepts websocket connections on an aiohttp route, keeps them with their
  subscriptions, and publishes to every connection subscribed to a topic;
* :class:`WsConnection` sends through one ordered queue per connection, so a fixed emulated
  latency and the wire faults below apply to every message in order, as on a real socket;
* :class:`Faults` are injected per connection (or on all of them through the hub).

Wire faults, on *data* messages (what a subscription publishes; answers to requests, pongs and
errors are *control* messages and are never lost, duplicated or reordered):

=============  ==============================================================================
``stall``      the socket stays open and answers pings, but no data message leaves
               (a feed that is "connected" but stopped updating); cleared by ``resume``
``drop``       the next ``n`` data messages are lost: the client sees a sequence gap
``duplicate``  the next ``n`` data messages are sent twice
``reorder``    the next ``n`` data messages each swap places with the message after them
``latency_s``  every message (data and control) leaves this much later, in order
``burst_s``    data messages are held for this long and then flushed together
               (a slow consumer: the client falls behind, then catches up at once)
``close``      the server closes the connection (:meth:`WsConnection.close`)
=============  ==============================================================================

Protocol faults (a fresh snapshot after a reconnect, server pings the client must answer,
listen-key expiry) belong to each exchange's protocol and live in its emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

Payload = str | bytes

#: What an emulator does with one text or binary message from a client.
MessageHandler = Callable[["WsConnection", Payload], Awaitable[None]]


@dataclass
class Faults:
    """The wire faults active on one connection (see the module docstring)."""

    stall: bool = False
    drop: int = 0
    duplicate: int = 0
    reorder: int = 0
    latency_s: float = 0.0
    burst_s: float = 0.0


@dataclass
class _Outgoing:
    payload: Payload
    due: float  # loop time at which it may leave


class WsConnection:
    """One client connection: its subscriptions, its protocol state, its ordered sender."""

    def __init__(self, conn_id: int, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.id = conn_id
        self.ws = ws
        self.request = request
        self.topics: set[str] = set()
        #: Protocol state an emulator keeps per connection (login, listen key, ...).
        self.state: dict[str, Any] = {}
        self.faults = Faults()
        #: Data messages published to this connection, and those that actually left.
        self.published = 0
        self.delivered = 0
        self._queue: asyncio.Queue[_Outgoing | None] = asyncio.Queue()
        self._held: Payload | None = None  # a reordered message waiting for the next one
        self._sender = asyncio.get_running_loop().create_task(self._send_loop())

    @property
    def closed(self) -> bool:
        """The socket is closed (by either side)."""
        return self.ws.closed

    # --- sending ------------------------------------------------------------------------

    def send_control(self, payload: Payload) -> None:
        """Queue an answer (subscription ack, pong, error): latency applies, faults do not."""
        self._enqueue(payload, self.faults.latency_s)

    def send_data(self, payload: Payload) -> None:
        """Queue a published message, through the connection's wire faults."""
        self.published += 1
        faults = self.faults
        if faults.stall:
            return  # published while stalled: lost, not buffered (see resume)
        if faults.drop > 0:
            faults.drop -= 1
            return
        copies = 1
        if faults.duplicate > 0:
            faults.duplicate -= 1
            copies = 2
        delay = faults.latency_s + faults.burst_s
        if self._held is not None:
            # The held message goes out after this one: the two arrive swapped.
            held, self._held = self._held, None
            for _ in range(copies):
                self._enqueue(payload, delay, data=True)
            self._enqueue(held, delay, data=True)
            return
        if faults.reorder > 0:
            faults.reorder -= 1
            self._held = payload
            return
        for _ in range(copies):
            self._enqueue(payload, delay, data=True)

    def _enqueue(self, payload: Payload, delay: float, *, data: bool = False) -> None:
        if self.closed:
            return
        due = asyncio.get_running_loop().time() + delay
        self._queue.put_nowait(_DataOut(payload, due) if data else _Outgoing(payload, due))

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await self._queue.get()
            if item is None:
                return
            wait = item.due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if isinstance(item, _DataOut) and self.faults.stall:
                continue  # queued before the stall began: lost with the rest
            if self.ws.closed:
                continue
            if isinstance(item, _CloseOut):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.close(code=item.code, message=item.message)
                continue
            try:
                if isinstance(item.payload, bytes):
                    await self.ws.send_bytes(item.payload)
                else:
                    await self.ws.send_str(item.payload)
            except (ConnectionError, RuntimeError):
                continue  # the peer went away; the receive loop ends the connection
            if isinstance(item, _DataOut):
                self.delivered += 1

    # --- faults -------------------------------------------------------------------------

    def stall(self) -> None:
        """Stop sending data messages (the socket stays open and control still flows)."""
        self.faults.stall = True

    def resume(self) -> None:
        """End a stall. Data published meanwhile is lost, as on an exchange that stopped
        publishing (not buffered server-side): the client must resynchronise."""
        self.faults.stall = False

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        """Close the socket from the server's side."""
        await self.ws.close(code=code, message=message)

    def close_after_sent(self, code: int = 1000, message: bytes = b"") -> None:
        """Close the socket from the server's side once every message queued before this call
        has left (an error answer, then the close, in that order on the wire)."""
        if self.closed:
            return
        due = asyncio.get_running_loop().time() + self.faults.latency_s
        self._queue.put_nowait(_CloseOut(b"", due, code, message))

    async def _finish(self) -> None:
        self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender


@dataclass
class _DataOut(_Outgoing):
    """An outgoing published message (subject to the wire faults)."""


@dataclass
class _CloseOut(_Outgoing):
    """A server-side close, queued behind the messages before it."""

    code: int = 1000
    message: bytes = b""


@dataclass
class WsHub:
    """The emulator's websocket connections, by id, with topic publishing and fault injection."""

    on_message: MessageHandler
    #: Called with each new connection before its first message (a welcome, a server ping).
    on_open: Callable[[WsConnection], Awaitable[None]] | None = None
    #: aiohttp's websocket heartbeat (seconds): protocol-level pings from the server.
    heartbeat_s: float | None = None
    #: A fixed one-way latency (seconds) every new connection starts with (its
    #: ``faults.latency_s``): an emulated network that a reconnect does not escape.
    latency_s: float = 0.0
    connections: dict[int, WsConnection] = field(default_factory=dict)
    #: Connections ever accepted (a reconnect is a new connection).
    accepted: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The aiohttp handler of the websocket route."""
        ws = web.WebSocketResponse(heartbeat=self.heartbeat_s, autoping=True)
        await ws.prepare(request)
        conn = WsConnection(next(self._ids), ws, request)
        conn.faults.latency_s = self.latency_s
        self.connections[conn.id] = conn
        self.accepted += 1
        await self._notify()
        try:
            if self.on_open is not None:
                await self.on_open(conn)
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self.on_message(conn, msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self.connections.pop(conn.id, None)
            await conn._finish()
            await self._notify()
        return ws

    async def _notify(self) -> None:
        cond = self._condition()
        async with cond:
            cond.notify_all()

    def subscribed(self, topic: str) -> list[WsConnection]:
        """Open connections subscribed to ``topic``."""
        return [c for c in self.connections.values() if topic in c.topics and not c.closed]

    def publish(self, topic: str, payload: Payload | Callable[[WsConnection], Payload]) -> int:
        """Send ``payload`` (or what it returns for each connection) to every subscriber of
        ``topic`` as a data message; returns how many connections it was queued for."""
        targets = self.subscribed(topic)
        for conn in targets:
            conn.send_data(payload(conn) if callable(payload) else payload)
        return len(targets)

    async def wait_for(self, predicate: Callable[[WsHub], bool], timeout_s: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds after a connection opened or closed (or now)."""
        cond = self._condition()
        async with cond:
            await asyncio.wait_for(cond.wait_for(lambda: predicate(self)), timeout_s)

    async def wait_subscribed(self, topic: str, count: int = 1, timeout_s: float = 10.0) -> None:
        """Wait until ``count`` open connections are subscribed to ``topic``."""
        cond = self._condition()
        async with cond:
            await asyncio.wait_for(
                cond.wait_for(lambda: len(self.subscribed(topic)) >= count), timeout_s
            )

    async def subscription_changed(self) -> None:
        """Tell waiters a connection's topics changed (emulators call it after a subscribe)."""
        await self._notify()

    # --- faults on every connection (or on those subscribed to a topic) -------------------

    def _targets(self, topic: str | None) -> Iterable[WsConnection]:
        return self.subscribed(topic) if topic is not None else list(self.connections.values())

    def inject(self, topic: str | None = None, **faults: Any) -> int:
        """Set fault fields (``drop=2``, ``latency_s=0.025``, ...) on the connections subscribed
        to ``topic`` (all connections when ``None``); returns how many were touched."""
        targets = list(self._targets(topic))
        for conn in targets:
            for name, value in faults.items():
                if name in ("stall",):
                    raise ValueError("use stall()/resume() for a stall")
                if not hasattr(conn.faults, name):
                    raise ValueError(f"unknown wire fault {name!r}")
                setattr(conn.faults, name, value)
        return len(targets)

    def stall(self, topic: str | None = None) -> int:
        """Stall the connections subscribed to ``topic`` (all when ``None``)."""
        targets = list(self._targets(topic))
        for conn in targets:
            conn.stall()
        return len(targets)

    def resume(self, topic: str | None = None) -> int:
        """End a stall on the connections subscribed to ``topic`` (all when ``None``)."""
        targets = list(self._targets(topic))
        for conn in targets:
            conn.resume()
        return len(targets)

    async def close_all(self, topic: str | None = None, code: int = 1000) -> int:
        """Close the connections subscribed to ``topic`` (all when ``None``) from the server."""
        targets = list(self._targets(topic))
        for conn in targets:
            await conn.close(code=code)
        return len(targets)

    async def shutdown(self) -> None:
        """Close every connection (the emulator is stopping)."""
        for conn in list(self.connections.values()):
            await conn.close(code=1001)
