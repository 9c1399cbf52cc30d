"""The supervisor's loopback control endpoint: a tiny read-only HTTP/1.1 server on anyio.

Routes (GET only, one request per connection, ``Connection: close``):

* ``/status``  -> JSON of ``status()`` (the same body for ``STATUS_MAX_AGE_S``)
* ``/metrics`` -> ``metrics()`` body and content type (404 when no metrics callable is given)
* ``/healthz`` -> 200 while ``health()`` says healthy, else 503; the body is its reason on one
  line (``ok`` when it gives none)

The endpoint is deliberately minimal rather than a web framework: it must never take the
supervisor down, so every connection is bounded (head size, deadline, concurrency) and every
per-connection failure is logged and swallowed.

Idle clients cannot crowd out a health check. At most ``MAX_CONNECTIONS`` are served at once;
when a new client arrives and that many are open, the one that has been waiting longest on its
client (for a request head, for it to take a response, or lingering after an error) is closed,
once it has waited ``EVICT_AFTER_S``. A connection whose answer the server is computing is never
evicted. So 500 sockets that connect and send nothing delay ``/healthz`` by a fraction of a second
rather than by their whole head deadline each, and a client that is not flooding is unaffected.
Failures a client can cause at will are logged through :class:`ThrottledWarnings`: one full line
per reason per minute, the rest as counts in one summary line.
"""

from __future__ import annotations

import inspect
import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import anyio
import anyio.abc
import orjson
import structlog

from kasmm.obs.throttle import ThrottledWarnings

log = structlog.get_logger("kasmm.control")

#: Default ``HOST:PORT`` of the control endpoint (also what ``kasmm status`` asks).
DEFAULT_CONTROL_ADDR = "127.0.0.1:9301"

#: Cap on request line + headers; anything longer gets 431 and the connection is closed.
MAX_HEAD_BYTES = 8 * 1024
#: Seconds a client gets to send its whole request head. Every real client (Prometheus, curl,
#: ``kasmm status``, a health probe) sends it right after connecting; idle clients are evicted
#: long before this once the endpoint is full, so this only bounds an idle slot while there is
#: room, and it is generous because it is measured by a loop that may itself be late.
READ_TIMEOUT_S = 5.0
#: Seconds a client gets to take each chunk of the response (progress, not the whole body: a
#: large ``/metrics`` over a slow link is fine as long as it keeps moving).
SEND_TIMEOUT_S = 5.0
#: Connections served at once: each costs a file descriptor the venues may need.
MAX_CONNECTIONS = 64
#: When full, a connection waiting on its client this long may be closed for a new one. Short,
#: so that a flood of idle sockets is cycled through quickly; long enough that a client which
#: connects and then writes its request (microseconds on loopback) is never caught in between.
EVICT_AFTER_S = 0.05
#: Responses are written in pieces this large: a client that does not read holds at most about
#: one piece (plus the kernel's buffers) of the supervisor's memory, and every write costs a
#: turn of the event loop, which on an overloaded loop can take hundreds of milliseconds.
SEND_CHUNK_BYTES = 1024 * 1024
#: Window of the per-reason warning throttle.
WARN_INTERVAL_S = 60.0
#: A ``/status`` body younger than this is served again: ``status()`` walks every profile on
#: the event loop (~4.5 ms at 150 profiles, ~60 ms at 2,000), so a client asking in a loop
#: must not be able to keep the bots waiting.
STATUS_MAX_AGE_S = 0.5
#: How long to keep draining a client that is still sending after an error response, so
#: closing with unread data does not turn into a TCP RST that eats the response.
_LINGER_S = 1.0
_LINGER_BYTES = 64 * 1024
#: Longest ``/healthz`` reason returned (it is one line for a probe's log, not a report).
_MAX_REASON_CHARS = 300

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_TEXT = "text/plain; charset=utf-8"

#: A response body: one ``bytes``, or its pieces in order (sent without joining them).
Body = bytes | Sequence[bytes]
StatusFn = Callable[[], dict[str, Any]]
#: ``(body, content_type)``, returned directly or by a coroutine (which may yield to the loop).
MetricsFn = Callable[[], tuple[Body, str] | Awaitable[tuple[Body, str]]]
#: ``(healthy, reason)``; the reason is what ``/healthz`` answers when unhealthy.
HealthFn = Callable[[], tuple[bool, str]]


def always_healthy() -> tuple[bool, str]:
    """The default health check: the endpoint answering at all is the signal."""
    return True, ""


class _HeadTooLarge(Exception):
    """The client sent more than MAX_HEAD_BYTES without finishing its request head."""


def parse_addr(addr: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[V6]:PORT`` for IPv6) into ``(host, port)``.

    >>> parse_addr("127.0.0.1:9301")
    ('127.0.0.1', 9301)
    >>> parse_addr("[::1]:9301")
    ('::1', 9301)

    :raises ValueError: with a message naming the offending address.
    """
    text = addr.strip()
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or not text[close + 1 :].startswith(":"):
            raise ValueError(f"invalid address {addr!r}: expected [IPV6]:PORT, e.g. [::1]:9301")
        host, port_text = text[1:close], text[close + 2 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"invalid address {addr!r}: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError(f"invalid address {addr!r}: expected HOST:PORT, e.g. 127.0.0.1:9301")
        if ":" in host:
            raise ValueError(
                f"invalid address {addr!r}: put IPv6 addresses in brackets, e.g. [::1]:9301"
            )
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"invalid address {addr!r}: missing or malformed host")
    # isascii+isdigit: int() would also take "+1", " 1" and non-ASCII digits.
    if not (port_text.isascii() and port_text.isdigit()):
        raise ValueError(f"invalid address {addr!r}: port {port_text!r} is not a number")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"invalid address {addr!r}: port {port} is out of range 0-65535")
    return host, port


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (``127.0.0.0/8``, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # Any other hostname could resolve anywhere; treat it as remote.
        return False


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        # Fixed-point rather than str(): str(Decimal("0.0000001")) is "1E-7", poor for prices.
        return format(obj, "f")
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    # A status view that renders an odd value as text beats one that answers 500.
    return str(obj)


def render_status_json(status: dict[str, Any]) -> bytes:
    """Serialise a status dict: Decimals as fixed-point strings, floats as JSON numbers.

    orjson renders non-finite floats as ``null``, so the output stays strict JSON.
    """
    return orjson.dumps(status, default=_json_default, option=orjson.OPT_NON_STR_KEYS)


def _response(code: int, body: Body, content_type: str, extra: str = "") -> list[bytes]:
    """The response as the pieces to send: the head (with a small body joined to it), then
    the body's own pieces, none larger than SEND_CHUNK_BYTES."""
    pieces = [body] if isinstance(body, bytes) else list(body)
    length = sum(len(p) for p in pieces)
    head = (
        f"HTTP/1.1 {code} {_REASONS[code]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n"
        f"{extra}\r\n"
    ).encode("latin-1")
    if length <= SEND_CHUNK_BYTES:
        return [head + b"".join(pieces)]
    out = [head]
    for piece in pieces:
        out.extend(piece[i : i + SEND_CHUNK_BYTES] for i in range(0, len(piece), SEND_CHUNK_BYTES))
    return out


def _text(code: int, message: str, extra: str = "") -> list[bytes]:
    return _response(code, f"{message}\n".encode(), _TEXT, extra)


def _one_line(reason: str, default: str) -> str:
    """``reason`` as one bounded line (control characters and runs of blanks become one
    space), or ``default`` if it is blank."""
    line = " ".join(_CONTROL_CHARS.sub(" ", reason).split())
    if len(line) > _MAX_REASON_CHARS:
        line = line[: _MAX_REASON_CHARS - 3] + "..."
    return line or default


async def _read_head(stream: anyio.abc.ByteReceiveStream) -> bytes | None:
    """The request head without its blank-line terminator, or None if the client left."""
    buf = bytearray()
    scanned = 0
    while True:
        # Re-scan only new bytes plus the 3 that could start a terminator split across reads.
        match = _HEAD_END.search(buf, max(0, scanned - 3))
        scanned = len(buf)
        if match is not None:
            if match.start() > MAX_HEAD_BYTES:
                raise _HeadTooLarge
            return bytes(buf[: match.start()])
        if len(buf) > MAX_HEAD_BYTES:
            raise _HeadTooLarge
        try:
            buf.extend(await stream.receive(4096))
        except anyio.EndOfStream:
            return None


class _Routes:
    """The callbacks behind the routes."""

    def __init__(
        self,
        status: StatusFn,
        metrics: MetricsFn | None,
        health: HealthFn,
        status_max_age_s: float = STATUS_MAX_AGE_S,
    ) -> None:
        self.status = status
        self.metrics = metrics
        self.health = health
        self.status_max_age_s = status_max_age_s
        self._status: tuple[float, bytes] | None = None

    def status_json(self) -> bytes:
        """``status()`` as JSON, reused while younger than ``status_max_age_s``."""
        now = anyio.current_time()
        if self._status is not None and now - self._status[0] < self.status_max_age_s:
            return self._status[1]
        body = render_status_json(self.status())
        self._status = (now, body)
        return body

    async def respond(self, head: bytes) -> tuple[list[bytes], bool]:
        """The response to a request head; the flag says the request was well-formed."""
        request_line = head.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return _text(400, "bad request"), False
        method, target, _version = parts
        path = target.split("?", 1)[0].split("#", 1)[0]
        if method != "GET":
            return _text(405, "method not allowed", "Allow: GET\r\n"), False
        if path == "/status":
            return _response(200, self.status_json(), "application/json"), True
        if path == "/metrics":
            if self.metrics is None:
                return _text(404, "metrics disabled"), True
            result = self.metrics()
            body, content_type = await result if inspect.isawaitable(result) else result
            return _response(200, body, content_type), True
        if path == "/healthz":
            healthy, reason = self.health()
            if healthy:
                return _text(200, _one_line(reason, "ok")), True
            return _text(503, _one_line(reason, "unhealthy")), True
        return _text(404, "not found"), True


class _Conn:
    """One connection being served: the scope that evicts it, and since when it has been
    waiting on its client (None while the server is working on its answer)."""

    __slots__ = ("evicted", "scope", "waiting_since")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.waiting_since: float | None = None
        self.evicted = False


class _Pool:
    """The connections being served: at most ``limit``; when full, a newcomer takes the place
    of the connection that has waited longest on its client (once it has waited ``grace_s``)."""

    def __init__(self, limit: int, grace_s: float) -> None:
        self.limit = limit
        self.grace_s = grace_s
        self.active: set[_Conn] = set()
        self.evictions = 0
        self._changed = anyio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def admit(self) -> _Conn:
        """Room for one more connection: wait for a slot, evicting an idle one when possible."""
        while len(self.active) >= self.limit:
            idle = [c for c in self.active if c.waiting_since is not None]
            victim = min(idle, key=lambda c: c.waiting_since or 0.0, default=None)
            delay: float | None = None
            if victim is not None and victim.waiting_since is not None:
                delay = victim.waiting_since + self.grace_s - anyio.current_time()
                if delay <= 0:
                    self.active.discard(victim)
                    victim.evicted = True
                    victim.scope.cancel()
                    self.evictions += 1
                    continue
            # Until a connection ends, starts waiting on its client, or the victim's grace ends.
            with anyio.move_on_after(delay):
                await self._changed.wait()
        conn = _Conn()
        self.active.add(conn)
        return conn

    def release(self, conn: _Conn) -> None:
        self.active.discard(conn)
        self._notify()

    @contextmanager
    def waiting(self, conn: _Conn) -> Iterator[None]:
        """Mark ``conn`` as waiting on its client (evictable) for the block."""
        conn.waiting_since = anyio.current_time()
        self._notify()
        try:
            yield
        finally:
            conn.waiting_since = None


async def _linger(stream: anyio.abc.SocketStream) -> None:
    """Half-close, then discard what the client is still sending, briefly and boundedly."""
    try:
        await stream.send_eof()
        with anyio.move_on_after(_LINGER_S):
            drained = 0
            while drained < _LINGER_BYTES:
                drained += len(await stream.receive())
    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
        pass


class _Server:
    """What every connection of one endpoint shares."""

    def __init__(
        self,
        routes: _Routes,
        pool: _Pool,
        warnings: ThrottledWarnings,
        read_timeout: float,
        send_timeout: float,
    ) -> None:
        self.routes = routes
        self.pool = pool
        self.warnings = warnings
        self.read_timeout = read_timeout
        self.send_timeout = send_timeout

    async def serve(self, stream: anyio.abc.SocketStream, conn: _Conn) -> None:
        """Serve one request on one connection; never raises (except cancellation)."""
        peer: Any = None
        request = "-"
        warn = self.warnings.warn
        with conn.scope:
            try:
                async with stream:
                    peer = stream.extra(anyio.abc.SocketAttribute.remote_address, None)
                    clean = True
                    try:
                        with self.pool.waiting(conn), anyio.fail_after(self.read_timeout):
                            head = await _read_head(stream)
                    except _HeadTooLarge:
                        reply, clean = _text(431, "request head too large"), False
                        warn("head_too_large", peer=peer)
                    else:
                        if head is None:
                            return  # connected and left without a request: nothing to answer
                        request = head.split(b"\n", 1)[0][:200].decode("latin-1").rstrip("\r")
                        try:
                            reply, clean = await self.routes.respond(head)
                        except Exception as exc:
                            # A failing callback must not cost the client an answer.
                            warn(
                                "handler_error",
                                peer=peer,
                                request=request,
                                error=repr(exc),
                                exc_info=True,
                            )
                            reply = _text(500, "internal error")
                    for piece in reply:
                        with self.pool.waiting(conn), anyio.fail_after(self.send_timeout):
                            await stream.send(piece)
                    if not clean:
                        with self.pool.waiting(conn):
                            await _linger(stream)
            except TimeoutError:
                warn("timeout", peer=peer, request=request)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                warn("io", peer=peer, request=request, error=repr(exc))
            except Exception as exc:
                warn("unexpected", peer=peer, request=request, error=repr(exc), exc_info=True)
        if conn.evicted:
            warn("evicted", peer=peer, request=request, open_connections=len(self.pool.active))

    async def accept_loop(
        self, listener: anyio.abc.SocketListener, tg: anyio.abc.TaskGroup
    ) -> None:
        async def run(stream: anyio.abc.SocketStream, conn: _Conn) -> None:
            try:
                await self.serve(stream, conn)
            finally:
                self.pool.release(conn)

        while True:
            # Accept first, then make room: a client waiting in the kernel's backlog cannot be
            # served or evicted, so a backlog of idle sockets would stall everyone behind it.
            try:
                stream = await listener.accept()
            except OSError as exc:
                # EMFILE/ECONNABORTED and friends are transient; back off rather than die.
                self.warnings.warn("accept", error=repr(exc))
                await anyio.sleep(0.1)
                continue
            try:
                conn = await self.pool.admit()
            except BaseException:
                await anyio.aclose_forcefully(stream)
                raise
            tg.start_soon(run, stream, conn)


async def serve_control(
    host: str,
    port: int,
    *,
    status: StatusFn,
    metrics: MetricsFn | None = None,
    health: HealthFn = always_healthy,
    allow_remote: bool = False,
    read_timeout: float = READ_TIMEOUT_S,
    send_timeout: float = SEND_TIMEOUT_S,
    max_connections: int = MAX_CONNECTIONS,
    warn_interval_s: float = WARN_INTERVAL_S,
    status_max_age_s: float = STATUS_MAX_AGE_S,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the control endpoint on ``host:port`` until cancelled.

    Start it with ``port = await tg.start(serve_control, host, 0, status=...)`` to learn the
    bound port (``port`` 0 picks a free one).

    :param status: returns the supervisor status dict for ``GET /status``; called on the
        event loop, so it must be cheap and non-blocking.
    :param metrics: returns ``(body, content_type)`` for ``GET /metrics``, or a coroutine
        function that does (so it can build the body in slices); None -> 404.
    :param health: returns ``(healthy, reason)`` for ``GET /healthz``: 200 when healthy, else
        503; the body is the reason on one line (``ok`` if blank). Called on the event loop;
        must be cheap.
    :param allow_remote: must be True to bind a non-loopback address: the endpoint has no
        authentication, so exposing it is an explicit operator decision.
    :param read_timeout: seconds a client gets to send its request head.
    :param send_timeout: seconds a client gets to take each piece of the response.
    :param max_connections: connections served at once (see the module docstring).
    :param warn_interval_s: per-reason window of the throttled failure warnings.
    :param status_max_age_s: how long a ``/status`` body is served again (0: never).
    :raises ValueError: non-loopback ``host`` without ``allow_remote``, or a bad ``port``.
    :raises OSError: the address cannot be bound (e.g. already in use).
    """
    if not allow_remote and not is_loopback(host):
        raise ValueError(
            f"refusing to bind the control endpoint to non-loopback address {host!r}: "
            "it is unauthenticated; pass allow_remote=True to expose it"
        )
    if not 0 <= port <= 65535:
        raise ValueError(f"control port {port} is out of range 0-65535")
    if max_connections < 1:
        raise ValueError("max_connections must be at least 1")
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port, backlog=128)
    warnings = ThrottledWarnings(log, "control_request_failed", interval_s=warn_interval_s)
    server = _Server(
        _Routes(status, metrics, health, status_max_age_s),
        _Pool(max_connections, EVICT_AFTER_S),
        warnings,
        read_timeout,
        send_timeout,
    )
    async with listener, anyio.create_task_group() as tg:
        bound = int(listener.extra(anyio.abc.SocketAttribute.local_port))
        tg.start_soon(warnings.run)
        for sub in listener.listeners:
            if not isinstance(sub, anyio.abc.SocketListener):  # pragma: no cover
                raise TypeError(f"unexpected listener {sub!r}")
            tg.start_soon(server.accept_loop, sub, tg)
        log.info("control_listening", host=host, port=bound)
        task_status.started(bound)
