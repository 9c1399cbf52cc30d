"""A fixed emulated network latency on an emulator's HTTP answers (every exchange emulator).

The websocket hub delays what it pushes by ``WsHub.latency_s`` (one way, server to client). This
aiohttp middleware gives REST the same one-way latency on both legs of a request: the request
"arrives" (is handled, recorded, matched) ``latency_s`` after it was sent, and its answer leaves
``latency_s`` after it was made. A websocket upgrade is delayed on the way in only: its handler
is the whole session, and the hub delays what flows on it.

The latency is read on every request (``latency_s()``), so a bench can set it on a running
emulator; 0 (the emulators' default) adds no sleep at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def http_latency(latency_s: Callable[[], float]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware that delays each request and its answer by ``latency_s()`` seconds.

    :param latency_s: the one-way latency now (seconds; 0 or less: none).
    :return: the middleware, for ``web.Application(middlewares=[...])``.
    """

    @web.middleware
    async def delayed(request: web.Request, handler: _Handler) -> web.StreamResponse:
        delay = latency_s()
        if delay > 0:
            await asyncio.sleep(delay)  # the request's way in
        response = await handler(request)
        upgrade = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
        delay = latency_s()
        if delay > 0 and not upgrade:
            await asyncio.sleep(delay)  # the answer's way out
        return response

    return delayed
