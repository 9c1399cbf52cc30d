"""The supervisor's loopback control endpoint: a tiny read-only HTTP/1.1 server on anyio.

Routes (GET only, one request per connection, ``Connection: close``):

* ``/status``  -> JSON of ``status()``
* ``/metrics`` -> ``metrics()`` body and content type (404 when no metrics callable is given)
* ``/healthz`` -> ``ok``

The endpoint is deliberately minimal rather than a web framework: it must never take the
supervisor down, so every connection is bounded (head size, deadline, concurrency) and every
per-connection failure is logged and swallowed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import anyio
import anyio.abc
import orjson
import structlog

log = structlog.get_logger("kasmm.control")

#: Default ``HOST:PORT`` of the control endpoint (also what ``kasmm status`` asks).
DEFAULT_CONTROL_ADDR = "127.0.0.1:9301"

#: Cap on request line + headers; anything longer gets 431 and the connection is closed.
MAX_HEAD_BYTES = 8 * 1024
#: Seconds a client gets to send its whole request head, and again to take the response.
READ_TIMEOUT_S = 5.0
#: Connections served at once; further clients wait in the kernel backlog instead of
#: costing the supervisor file descriptors it needs for its venues.
MAX_CONNECTIONS = 64
#: How long to keep draining a client that is still sending after an error response, so
#: closing with unread data does not turn into a TCP RST that eats the response.
_LINGER_S = 1.0
_LINGER_BYTES = 64 * 1024

_HEAD_END = re.compile(rb"\r?\n\r?\n")

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}
_TEXT = "text/plain; charset=utf-8"

StatusFn = Callable[[], dict[str, Any]]
MetricsFn = Callable[[], tuple[bytes, str]]


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


def _response(code: int, body: bytes, content_type: str, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {code} {_REASONS[code]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n"
        f"{extra}\r\n"
    )
    return head.encode("latin-1") + body


def _text(code: int, message: str, extra: str = "") -> bytes:
    return _response(code, f"{message}\n".encode(), _TEXT, extra)


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


def _route(head: bytes, status: StatusFn, metrics: MetricsFn | None) -> tuple[bytes, bool]:
    """Build the response for a request head; the flag says the request was well-formed."""
    request_line = head.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return _text(400, "bad request"), False
    method, target, _version = parts
    path = target.split("?", 1)[0].split("#", 1)[0]
    if method != "GET":
        return _text(405, "method not allowed", "Allow: GET\r\n"), False
    if path == "/status":
        return _response(200, render_status_json(status()), "application/json"), True
    if path == "/metrics":
        if metrics is None:
            return _text(404, "metrics disabled"), True
        body, content_type = metrics()
        return _response(200, body, content_type), True
    if path == "/healthz":
        return _text(200, "ok"), True
    return _text(404, "not found"), True


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


async def _handle(
    stream: anyio.abc.SocketStream,
    status: StatusFn,
    metrics: MetricsFn | None,
    io_timeout: float,
) -> None:
    """Serve one request on one connection; never raises (except cancellation)."""
    peer: Any = None
    request = "-"
    try:
        async with stream:
            peer = stream.extra(anyio.abc.SocketAttribute.remote_address, None)
            clean = True
            try:
                with anyio.fail_after(io_timeout):
                    head = await _read_head(stream)
            except _HeadTooLarge:
                reply, clean = _text(431, "request head too large"), False
                log.warning("control_request_failed", peer=peer, reason="head_too_large")
            else:
                if head is None:
                    return  # connected and left without a request: nothing to answer
                request = head.split(b"\n", 1)[0][:200].decode("latin-1").rstrip("\r")
                try:
                    reply, clean = _route(head, status, metrics)
                except Exception as exc:
                    # A failing status()/metrics() callback must not cost the client an answer.
                    log.warning(
                        "control_request_failed",
                        peer=peer,
                        request=request,
                        reason="handler_error",
                        error=repr(exc),
                        exc_info=True,
                    )
                    reply = _text(500, "internal error")
            with anyio.fail_after(io_timeout):
                await stream.send(reply)
                if not clean:
                    await _linger(stream)
    except TimeoutError:
        log.warning("control_request_failed", peer=peer, request=request, reason="timeout")
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
        log.warning(
            "control_request_failed", peer=peer, request=request, reason="io", error=repr(exc)
        )
    except Exception as exc:
        log.warning(
            "control_request_failed",
            peer=peer,
            request=request,
            reason="unexpected",
            error=repr(exc),
            exc_info=True,
        )


async def _accept_loop(
    listener: anyio.abc.SocketListener,
    slots: anyio.Semaphore,
    tg: anyio.abc.TaskGroup,
    status: StatusFn,
    metrics: MetricsFn | None,
    io_timeout: float,
) -> None:
    async def run(stream: anyio.abc.SocketStream) -> None:
        try:
            await _handle(stream, status, metrics, io_timeout)
        finally:
            slots.release()

    while True:
        # Take the slot before accepting, so excess clients queue in the kernel backlog.
        await slots.acquire()
        try:
            stream = await listener.accept()
        except OSError as exc:
            # EMFILE/ECONNABORTED and friends are transient; back off rather than die.
            slots.release()
            log.warning("control_request_failed", reason="accept", error=repr(exc))
            await anyio.sleep(0.1)
            continue
        except BaseException:
            slots.release()
            raise
        tg.start_soon(run, stream)


async def serve_control(
    host: str,
    port: int,
    *,
    status: StatusFn,
    metrics: MetricsFn | None = None,
    allow_remote: bool = False,
    read_timeout: float = READ_TIMEOUT_S,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the control endpoint on ``host:port`` until cancelled.

    Start it with ``port = await tg.start(serve_control, host, 0, status=...)`` to learn the
    bound port (``port`` 0 picks a free one).

    :param status: returns the supervisor status dict for ``GET /status``; called on the
        event loop, so it must be cheap and non-blocking.
    :param metrics: returns ``(body, content_type)`` for ``GET /metrics``; None -> 404.
    :param allow_remote: must be True to bind a non-loopback address: the endpoint has no
        authentication, so exposing it is an explicit operator decision.
    :param read_timeout: seconds a client gets to send its request head (and to take the
        response).
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
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port, backlog=128)
    async with listener, anyio.create_task_group() as tg:
        bound = int(listener.extra(anyio.abc.SocketAttribute.local_port))
        slots = anyio.Semaphore(MAX_CONNECTIONS)
        for sub in listener.listeners:
            if not isinstance(sub, anyio.abc.SocketListener):  # pragma: no cover
                raise TypeError(f"unexpected listener {sub!r}")
            tg.start_soon(_accept_loop, sub, slots, tg, status, metrics, read_timeout)
        log.info("control_listening", host=host, port=bound)
        task_status.started(bound)
