"""Gate.io spot v4 websockets for the Gate emulator (``gate.py``), on the shared ``wire.WsHub``.

Served at ``/ws/v4/`` (Gate's ``wss://api.gateio.ws/ws/v4/``) and at ``/gateeu/ws/v4/``: the same
protocol, but ccxt 4.5.90 picks its order book channel from the URL (``watch_order_book`` uses
``spot.obu`` unless the spot websocket URL contains ``gateeu``, then ``spot.order_book_update``
synchronised with a REST snapshot), so the second path is how a test drives the REST-synced path.

Requests are Gate's envelope ``{time, id?, channel, event, payload, auth?}``; answers echo ``id``,
``channel``, ``event`` and ``payload`` with ``result.status`` ``success``/``fail`` and ``error``:

======================  =====================  ==============================================
channel                 payload                pushes (``event: update``)
======================  =====================  ==============================================
spot.ping               (none)                 ``spot.pong`` answer, no auth
spot.order_book_update  ``[pair, interval]``   changed levels ``{t, e, E, s, U, u, b, a}``
                        (20ms / 100ms)         of every book change; ``U``..``u`` are the
                                               ``id`` sequence of ``GET /spot/order_book?
                                               with_id=true`` (one id per engine change);
                                               paced per ``book_interval_s`` if set
spot.order_book         ``[pair, level,        ``{t, lastUpdateId, s, l, bids, asks}``: once
                        interval]``            on subscribe, then after every book change
spot.obu                ``["ob.PAIR.50"]``     first a full ``{t, full: true, s, u, b, a}``,
                        (levels 50 / 400)      then top-``level`` changes ``{t, s, U, u, b, a}``
                                               with ``U`` = the previous message's ``u`` + 1
spot.orders (P)         ``[pair...]``/!all     Gate orders with ``event`` put/update/finish
spot.usertrades (P)     ``[pair...]``/!all     the account's fills, ``text`` = client id
spot.balances (P)       (none)                 changed currencies: total/available/freeze
======================  =====================  ==============================================

(P) = private: each subscribe carries ``auth = {method: "api_key", KEY, SIGN}`` with ``SIGN`` =
hex HMAC-SHA512(secret, ``channel=<c>&event=<e>&time=<t>``) (Gate's "Authentication" section;
ccxt's ``subscribe_private``). Errors, as Gate's ``error`` object (ccxt ``exceptions['ws']``):

====  ==============================================================  ======================
code  when                                                            ccxt raises
====  ==============================================================  ======================
1     not JSON / not an object / no ``channel`` / ``time`` missing    BadRequest
2     unknown channel or event, bad pair, level or interval, a second BadRequest
      ``spot.obu`` subscription to one stream (``Alert sub ...``)
4     private channel without auth, unknown key, bad signature,      AuthenticationError
      ``time`` more than 60 s off (message: the REST label JSON)
====  ==============================================================  ======================

Protocol faults (the wire faults are ``WsHub``'s): order book ids are the engine's, so they keep
counting across reconnects (a client that merges post-reconnect updates into its stale book
skips the changes made while it was away); :meth:`GateWs.push_obu_full` re-sends a full
``spot.obu`` snapshot mid-stream ("the server may resend full depth").
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .gate_shapes import BookUpdate, GateFill, GateOrder, Levels, fmt, level_changes
from .gate_venue import GateVenue
from .wire import Payload, WsConnection, WsHub

#: The emulated account's user id (Gate puts it on private pushes).
USER_ID = 10000001
OBU_LEVELS = (50, 400)
ORDER_BOOK_LEVELS = ("5", "10", "20", "50", "100")
ORDER_BOOK_INTERVALS = ("100ms", "1000ms")
UPDATE_INTERVALS = ("20ms", "100ms")
PRIVATE_CHANNELS = ("spot.orders", "spot.usertrades", "spot.balances")
PUBLIC_CHANNELS = ("spot.order_book_update", "spot.order_book", "spot.obu")


class WsError(Exception):
    """A request Gate refuses: the answer's ``error`` object."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def ws_signature(secret: str, channel: str, event: str, timestamp: int) -> str:
    """Gate's websocket ``auth.SIGN``: hex HMAC-SHA512 of ``channel=..&event=..&time=..``."""
    message = f"channel={channel}&event={event}&time={timestamp}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha512).hexdigest()


@dataclass
class WsRequest:
    """One message a client sent (in arrival order in ``GateWs.requests``)."""

    conn_id: int
    message: Any
    error_code: int | None = None


def _auth_error(label: str, message: str) -> WsError:
    # Gate wraps the REST error body in the message, newline included (see ccxt's comment).
    return WsError(4, json.dumps({"label": label, "message": message}) + "\n")


def _rows(levels: Iterable[tuple[Decimal, Decimal]]) -> list[list[str]]:
    return [[fmt(price), fmt(size)] for price, size in levels]


def _top(levels: Levels, depth: int, bids: bool) -> Levels:
    ordered = sorted(levels.items(), key=lambda kv: -kv[0] if bids else kv[0])
    return dict(ordered[:depth])


@dataclass
class _PendingUpdate:
    """``spot.order_book_update`` changes collected during one interval."""

    first_id: int
    last: BookUpdate | None = None
    bids: Levels = field(default_factory=dict)
    asks: Levels = field(default_factory=dict)


class GateWs:
    """Gate's spot websocket protocol over a :class:`WsHub`, fed by the engine's listeners.

    Args:
        engine: the emulator's engine (its listeners are registered here).
        api_key, secret: the credentials private subscriptions must sign with.
        clock: seconds for the ``time``/``t`` fields (the emulator's clock); request ``time``
            is checked against the wall clock, as ccxt signs with it.
        heartbeat_s: aiohttp protocol pings from the server (``WsHub.heartbeat_s``).
        max_time_skew_s: ``REQUEST_EXPIRED`` beyond this on private requests (None: off).
        book_interval_s: pace ``spot.order_book_update`` like Gate (0.1 for its ``100ms``):
            the changes of each interval in one message with ``U`` < ``u``. None (default):
            one message per change, ``U`` == ``u``, sent at once.
    """

    def __init__(
        self,
        engine: GateVenue,
        api_key: str,
        secret: str,
        clock: Callable[[], float],
        *,
        heartbeat_s: float | None = None,
        max_time_skew_s: float | None = 60.0,
        book_interval_s: float | None = None,
    ) -> None:
        self.engine = engine
        self.book_interval_s = book_interval_s
        self._pending: dict[str, _PendingUpdate] = {}
        self.api_key = api_key
        self.secret = secret
        self.clock = clock
        self.max_time_skew_s = max_time_skew_s
        self.hub = WsHub(on_message=self._on_message, heartbeat_s=heartbeat_s)
        self.requests: list[WsRequest] = []
        #: Top-``level`` view last sent on each ``spot.obu`` stream, by (pair, level).
        self._obu_views: dict[tuple[str, int], tuple[Levels, Levels]] = {}
        self._balances = self._balance_view()
        self._balance_cause = "other"
        self._traces = 0
        engine.book_listeners.append(self._on_book_update)
        engine.order_listeners.append(self._on_order_event)
        engine.fill_listeners.append(self._on_fill)
        engine.change_listeners.append(self._on_change)

    def resync(self) -> None:
        """Forget what was published (the engine's state was replaced, e.g. loaded)."""
        self._balances = self._balance_view()
        self._obu_views.clear()

    # ------------------------------------------------------------------ envelopes

    def _times(self) -> dict[str, int]:
        now = self.clock()
        return {"time": int(now), "time_ms": int(now * 1000)}

    def _push(self, channel: str, result: Any) -> str:
        return json.dumps(
            {**self._times(), "channel": channel, "event": "update", "result": result},
            separators=(",", ":"),
        )

    def _answer(
        self, conn: WsConnection, request: dict[str, Any], error: WsError | None = None
    ) -> None:
        self._traces += 1
        trace_id = f"{conn.id:08x}{self._traces:024x}"
        out: dict[str, Any] = self._times()
        if request.get("id") is not None:
            out["id"] = request["id"]
        out.update(
            conn_id=f"{conn.id:016x}",
            trace_id=trace_id,
            channel=request.get("channel", ""),
            event=request.get("event", ""),
        )
        if "payload" in request:
            out["payload"] = request["payload"]
        if error is not None:
            out["error"] = {"code": error.code, "message": error.message}
        out["result"] = {"status": "fail" if error is not None else "success"}
        out["requestId"] = trace_id
        conn.send_control(json.dumps(out, separators=(",", ":")))

    # ------------------------------------------------------------------ requests

    async def _on_message(self, conn: WsConnection, data: Payload) -> None:
        record = WsRequest(conn.id, None)
        self.requests.append(record)
        try:
            request = json.loads(data)
        except ValueError:
            request = None
        record.message = request
        if not isinstance(request, dict):
            record.error_code = 1
            self._answer(conn, {}, WsError(1, "Invalid request body format"))
            return
        try:
            if await self._handle(conn, request):
                return
        except WsError as err:
            record.error_code = err.code
            self._answer(conn, request, err)
            return
        self._answer(conn, request)

    async def _handle(self, conn: WsConnection, request: dict[str, Any]) -> bool:
        """Carry out ``request``; True when it was answered already (a pong)."""
        channel, event = request.get("channel"), request.get("event")
        if not isinstance(channel, str) or not channel:
            raise WsError(1, "Invalid request body format: channel is required")
        if channel == "spot.ping":
            pong: dict[str, Any] = {**self._times(), "channel": "spot.pong", "event": ""}
            if request.get("id") is not None:
                pong["id"] = request["id"]
            pong.update(error=None, result=None)
            conn.send_control(json.dumps(pong, separators=(",", ":")))
            return True
        if not isinstance(request.get("time"), int):
            raise WsError(1, "Invalid request body format: time is required")
        if channel not in PUBLIC_CHANNELS + PRIVATE_CHANNELS:
            raise WsError(2, f"unknown channel {channel}")
        if event not in ("subscribe", "unsubscribe"):
            raise WsError(2, f"unknown event {event}")
        if channel in PRIVATE_CHANNELS:
            self._authenticate(request)
        topics = self._topics(channel, request.get("payload"))
        if event == "unsubscribe":
            conn.topics.difference_update(topics)
            return False
        if channel == "spot.obu":
            for topic in topics:
                if topic in conn.topics:
                    raise WsError(2, f"Alert sub {topic.split(':', 1)[1]}")
        conn.topics.update(topics)
        self._answer(conn, request)
        for topic in topics:  # the first pushes of a snapshot channel follow the answer
            if channel == "spot.obu":
                self._send_obu_full(conn, topic)
            elif channel == "spot.order_book":
                conn.send_data(self._order_book_push(topic))
        await self.hub.subscription_changed()
        return True

    def _authenticate(self, request: dict[str, Any]) -> None:
        auth = request.get("auth")
        if not isinstance(auth, dict) or auth.get("method") != "api_key":
            raise _auth_error("MISSING_REQUIRED_HEADER", "Missing required auth: KEY or SIGN")
        if auth.get("KEY") != self.api_key:
            raise _auth_error("INVALID_KEY", "Invalid key provided")
        stamp = int(request["time"])
        if self.max_time_skew_s is not None and abs(stamp - time.time()) > self.max_time_skew_s:
            raise _auth_error("REQUEST_EXPIRED", "gap between request time and server time")
        expected = ws_signature(self.secret, request["channel"], request["event"], stamp)
        sign = auth.get("SIGN")
        if not isinstance(sign, str) or not hmac.compare_digest(expected, sign):
            raise _auth_error("INVALID_SIGNATURE", "Signature mismatch")

    def _pair(self, value: object) -> str:
        if not isinstance(value, str) or value not in self.engine.markets:
            raise WsError(2, f"unknown currency pair: {value}")
        return value

    def _topics(self, channel: str, payload: object) -> set[str]:
        """The hub topics a subscription covers (``channel:...``), or Gate's code 2."""
        if channel == "spot.balances":
            return {channel}
        if not isinstance(payload, list) or not payload:
            raise WsError(2, "Invalid argument provided: payload")
        if channel in ("spot.orders", "spot.usertrades"):
            pairs = (
                list(self.engine.markets)
                if payload == ["!all"]
                else [self._pair(p) for p in payload]
            )
            return {f"{channel}:{p}" for p in pairs}
        if channel == "spot.order_book_update":
            if len(payload) != 2 or payload[1] not in UPDATE_INTERVALS:
                raise WsError(2, f"invalid interval, expected one of {UPDATE_INTERVALS}")
            return {f"{channel}:{self._pair(payload[0])}"}
        if channel == "spot.order_book":
            if len(payload) != 3 or payload[1] not in ORDER_BOOK_LEVELS:
                raise WsError(2, f"invalid level, expected one of {ORDER_BOOK_LEVELS}")
            if payload[2] not in ORDER_BOOK_INTERVALS:
                raise WsError(2, f"invalid interval, expected one of {ORDER_BOOK_INTERVALS}")
            return {f"{channel}:{self._pair(payload[0])}:{payload[1]}"}
        topics = set()  # spot.obu: ["ob.PAIR.LEVEL", ...]
        for stream in payload:
            parts = stream.split(".") if isinstance(stream, str) else []
            if len(parts) != 3 or parts[0] != "ob" or parts[2] not in map(str, OBU_LEVELS):
                raise WsError(2, f"invalid stream {stream}, expected ob.PAIR.50 or ob.PAIR.400")
            self._pair(parts[1])
            topics.add(f"spot.obu:{stream}")
        return topics

    # ------------------------------------------------------------------ order books

    def _on_book_update(self, update: BookUpdate) -> None:
        if self.book_interval_s is None:
            self._publish_update(update)
        else:
            self._batch_update(update, self.book_interval_s)
        for level in ORDER_BOOK_LEVELS:
            topic = f"spot.order_book:{update.pair}:{level}"
            if self.hub.subscribed(topic):
                self.hub.publish(topic, self._order_book_push(topic))
        for depth in OBU_LEVELS:
            self._publish_obu_changes(update.pair, depth, update.time_ms)

    def _publish_update(self, update: BookUpdate, first_id: int | None = None) -> None:
        result = {
            "t": update.time_ms,
            "e": "depthUpdate",
            "E": update.time_ms // 1000,
            "s": update.pair,
            "U": update.update_id if first_id is None else first_id,
            "u": update.update_id,
            "b": _rows(update.bids),
            "a": _rows(update.asks),
        }
        self.hub.publish(
            f"spot.order_book_update:{update.pair}", self._push("spot.order_book_update", result)
        )

    def _batch_update(self, update: BookUpdate, interval_s: float) -> None:
        """Gate's pacing: the changes of one interval go out as one message, ``U`` the first
        id in it and ``u`` the last, each level at its latest size."""
        pending = self._pending.get(update.pair)
        if pending is None:
            loop = asyncio.get_running_loop()
            loop.call_later(interval_s, self._flush_update, update.pair)
            self._pending[update.pair] = pending = _PendingUpdate(update.update_id)
        pending.last = update
        pending.bids.update(update.bids)
        pending.asks.update(update.asks)

    def _flush_update(self, pair: str) -> None:
        pending = self._pending.pop(pair, None)
        if pending is None or pending.last is None:
            return
        last = pending.last
        merged = BookUpdate(
            pair,
            last.update_id,
            last.time_ms,
            tuple(sorted(pending.bids.items())),
            tuple(sorted(pending.asks.items())),
        )
        self._publish_update(merged, first_id=pending.first_id)

    def _order_book_push(self, topic: str) -> str:
        _, pair, level = topic.split(":")
        bids, asks, _ = self.engine.book_snapshot(pair, int(level))
        result = {
            "t": self.engine.now_ms(),
            "lastUpdateId": self.engine.book_ids[pair],
            "s": pair,
            "l": level,
            "bids": bids,
            "asks": asks,
        }
        return self._push("spot.order_book", result)

    def _obu_view(self, pair: str, depth: int) -> tuple[Levels, Levels]:
        bids, asks = self.engine.merged_levels(pair)
        return _top(bids, depth, bids=True), _top(asks, depth, bids=False)

    def _send_obu_full(self, conn: WsConnection, topic: str) -> None:
        stream = topic.split(":", 1)[1]
        _, pair, level = stream.split(".")
        bids, asks = self._obu_views.setdefault(
            (pair, int(level)), self._obu_view(pair, int(level))
        )
        update_id = self.engine.book_ids[pair]
        conn.state[topic] = update_id  # the u this connection last saw on the stream
        result = {
            "t": self.engine.now_ms(),
            "full": True,
            "s": stream,
            "u": update_id,
            "b": _rows(sorted(bids.items(), key=lambda kv: -kv[0])),
            "a": _rows(sorted(asks.items())),
        }
        conn.send_data(self._push("spot.obu", result))

    def _publish_obu_changes(self, pair: str, depth: int, time_ms: int) -> None:
        topic = f"spot.obu:ob.{pair}.{depth}"
        if not self.hub.subscribed(topic):
            self._obu_views.pop((pair, depth), None)
            return
        old_bids, old_asks = self._obu_views.get((pair, depth), ({}, {}))
        bids, asks = self._obu_view(pair, depth)
        bid_changes, ask_changes = level_changes(old_bids, bids), level_changes(old_asks, asks)
        if not bid_changes and not ask_changes:
            return  # beyond the stream's depth: the next message's U covers this id too
        self._obu_views[(pair, depth)] = (bids, asks)
        update_id = self.engine.book_ids[pair]

        def message(conn: WsConnection) -> str:
            first = int(conn.state.get(topic, update_id - 1)) + 1
            conn.state[topic] = update_id
            result = {
                "t": time_ms,
                "s": f"ob.{pair}.{depth}",
                "U": first,
                "u": update_id,
                "b": _rows(bid_changes),
                "a": _rows(ask_changes),
            }
            return self._push("spot.obu", result)

        self.hub.publish(topic, message)

    def push_obu_full(self, pair: str | None = None) -> int:
        """Protocol fault: re-send a full ``spot.obu`` snapshot on every stream of ``pair``
        (all pairs when None), as Gate may at any time; returns how many were queued."""
        sent = 0
        for conn in list(self.hub.connections.values()):
            for topic in sorted(conn.topics):
                if topic.startswith("spot.obu:") and (pair is None or f".{pair}." in topic):
                    self._send_obu_full(conn, topic)
                    sent += 1
        return sent

    # ------------------------------------------------------------------ private channels

    def _on_order_event(self, event: str, order: GateOrder) -> None:
        self._balance_cause = {"put": "order-create", "update": "order-match"}.get(
            event, "order-update"
        )
        row = {**self.engine.order_json(order), "user": USER_ID, "event": event}
        row["create_time_ms"] = str(order.create_ms)
        row["update_time_ms"] = str(order.update_ms)
        row["biz_info"] = "-"
        self.hub.publish(f"spot.orders:{order.pair}", self._push("spot.orders", [row]))

    def _on_fill(self, fill: GateFill) -> None:
        self._balance_cause = "order-match"
        row = {
            "id": int(fill.id),
            "user_id": USER_ID,
            "order_id": fill.order_id,
            "currency_pair": fill.pair,
            "create_time": int(fill.time_ms // 1000),
            "create_time_ms": f"{fill.time_ms:.3f}",
            "side": fill.side,
            "amount": fmt(fill.amount),
            "role": fill.role,
            "price": fmt(fill.price),
            "fee": fmt(fill.fee),
            "fee_currency": fill.fee_currency,
            "point_fee": "0",
            "gt_fee": "0",
            "text": fill.text,
            "id_market": int(fill.id),
        }
        self.hub.publish(f"spot.usertrades:{fill.pair}", self._push("spot.usertrades", [row]))

    def _balance_view(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {cur: (b.available, b.locked) for cur, b in self.engine.balances.items()}

    def _on_change(self) -> None:
        view = self._balance_view()
        old, self._balances = self._balances, view
        cause, self._balance_cause = self._balance_cause, "other"
        now = self.clock()
        rows = []
        for currency, (available, locked) in sorted(view.items()):
            was_available, was_locked = old.get(currency, (Decimal(0), Decimal(0)))
            if (available, locked) == (was_available, was_locked):
                continue
            rows.append(
                {
                    "timestamp": str(int(now)),
                    "timestamp_ms": str(int(now * 1000)),
                    "user": str(USER_ID),
                    "currency": currency,
                    "change": fmt(available + locked - was_available - was_locked),
                    "total": fmt(available + locked),
                    "available": fmt(available),
                    "freeze": fmt(locked),
                    "freeze_change": fmt(locked - was_locked),
                    "change_type": cause,
                }
            )
        if rows:
            self.hub.publish("spot.balances", self._push("spot.balances", rows))
