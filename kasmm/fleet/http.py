"""A minimal HTTP/1.1 GET over loopback TCP, on anyio: how the parent asks its shards.

The shards' control endpoints (:mod:`kasmm.control`) answer one request per connection with
``Content-Length`` and ``Connection: close``; this client speaks exactly that and nothing more
(no redirects, no chunked bodies, no proxies), under one deadline for the whole exchange, so
a shard that hangs costs the parent a timeout, never a stuck task.
"""

from __future__ import annotations

import anyio

from kasmm import __version__

__all__ = ["MAX_BODY_BYTES", "FetchError", "http_get"]

#: A shard's ``/metrics`` is ~20 KB per profile (~40 MB at 2,000); refuse anything absurd.
MAX_BODY_BYTES = 512 * 1024 * 1024
_MAX_HEAD_BYTES = 16 * 1024


class FetchError(Exception):
    """The request failed: no connection, a timeout, a non-200 answer or a malformed one."""


async def http_get(host: str, port: int, path: str, within_s: float) -> bytes:
    """The body of ``GET http://HOST:PORT/PATH``, which must answer 200 within ``within_s``.

    :raises FetchError: with a one-line reason.
    """
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kasmm/{__version__}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
    try:
        with anyio.fail_after(within_s):
            async with await anyio.connect_tcp(host, port) as stream:
                await stream.send(request)
                data = bytearray()
                while True:
                    try:
                        data += await stream.receive(256 * 1024)
                    except anyio.EndOfStream:
                        break
                    if len(data) > MAX_BODY_BYTES + _MAX_HEAD_BYTES:
                        raise FetchError(f"{path}: answer larger than {MAX_BODY_BYTES} bytes")
    except TimeoutError:
        raise FetchError(f"{path}: no answer within {within_s} s") from None
    except (OSError, anyio.BrokenResourceError) as exc:
        raise FetchError(f"{path}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    return _body(bytes(data), path)


def _body(data: bytes, path: str) -> bytes:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise FetchError(f"{path}: incomplete answer")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or not status[0].startswith("HTTP/1."):
        raise FetchError(f"{path}: not an HTTP answer")
    if status[1] != "200":
        raise FetchError(f"{path}: HTTP {' '.join(status[1:])}")
    for line in lines[1:]:
        key, _, value = line.partition(":")
        length = value.strip()
        if key.strip().lower() == "content-length" and (
            not length.isdigit() or int(length) != len(body)
        ):
            raise FetchError(f"{path}: truncated answer")
    return body
