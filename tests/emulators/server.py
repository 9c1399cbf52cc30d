"""The loopback HTTP server plumbing the four exchange emulators share (MEXC, Gate, KuCoin, BingX).

Each emulator is an aiohttp server on 127.0.0.1 over the shared matching engine; what it speaks
(routes, signing, error bodies, rate limits) is its own, but how it runs is the same everywhere,
so it lives here once:

- :class:`EmulatorServer`, a base class: the aiohttp app, runner and site (``start`` / ``stop`` /
  ``async with``), ``base_url``, the optional REST latency (:mod:`.http_latency`) and background
  timer tasks, with hooks for the exchange's routes and its websocket start and stop;
- :class:`Fault`, :class:`FaultList` and :class:`FaultInjection`: injectable HTTP faults for the
  next requests to one endpoint (MEXC, KuCoin, BingX; Gate's are Gate-shaped errors and stay in
  :mod:`.gate`);
- :func:`write_state` / :func:`read_state`: the engine state file of a restartable emulator;
- :func:`serve_until_signalled`: the process mode (``python -m tests.emulators.<x>``) prints one
  JSON line and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from aiohttp import web

from .http_latency import http_latency
from .wire import WsHub

__all__ = [
    "EmulatorServer",
    "Fault",
    "FaultInjection",
    "FaultList",
    "read_state",
    "serve_until_signalled",
    "write_state",
]


class _WsProtocol(Protocol):
    """An exchange's websocket protocol: it speaks through a :class:`WsHub`."""

    hub: WsHub


WsProtocolT = TypeVar("WsProtocolT", bound=_WsProtocol)


class EmulatorServer(Generic[WsProtocolT]):
    """Runs an emulator's aiohttp app on ``host:port`` (0: any free port) until :meth:`stop`.

    A subclass sets :attr:`ws_protocol` and calls :meth:`_init_server` in its ``__init__``,
    answers REST in ``_dispatch`` (websockets on ``_ws_paths``, or other routes in
    :meth:`_add_routes`) and, where it has them, starts its websocket protocol and timers in
    :meth:`_after_start` and stops the websockets in :meth:`_before_cleanup`.
    """

    #: The exchange's websocket protocol (its hub is :attr:`ws`).
    ws_protocol: WsProtocolT
    #: The paths the websocket hub serves; the first one makes :attr:`ws_url`.
    _ws_paths: tuple[str, ...] = ()

    #: The answer of :attr:`base_url` before :meth:`start`.
    _not_started_message = "emulator not started"
    #: Appended to ``http://host:port`` to make :attr:`base_url` (Gate: ``/api/v4``).
    _base_path = ""
    #: How long aiohttp waits for requests in flight when the server stops.
    _shutdown_timeout_s = 0.5

    def _init_server(self, http_latency_s: float) -> None:
        #: A fixed one-way latency on each REST request and its answer (see http_latency).
        self.http_latency_s = http_latency_s
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._timer_tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ hooks
    def _add_routes(self, app: web.Application) -> None:
        """Serve the websockets on :attr:`_ws_paths` and every other path with ``_dispatch``."""
        for path in self._ws_paths:
            app.router.add_get(path, self.ws.handle)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        """Answer one REST request as the exchange does."""
        raise NotImplementedError

    async def _after_start(self) -> None:
        """Serving (``base_url`` is set): start websockets and timers."""

    async def _before_cleanup(self) -> None:
        """About to close the server: stop the websockets."""

    async def _after_stop(self) -> None:
        """Stopped (also when never started): e.g. persist the state."""

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:port`` (plus the exchange's ``_base_path``) once started."""
        if self._base_url is None:
            raise RuntimeError(self._not_started_message)
        return self._base_url

    @property
    def ws_url(self) -> str:
        """The websocket URL to give ccxt.pro: ``ws://host:port`` and the first websocket path."""
        origin = self.base_url.removesuffix(self._base_path)
        return "ws" + origin.removeprefix("http") + self._ws_paths[0]

    @property
    def ws(self) -> WsHub:
        """The websocket connections, for wire faults (protocol faults: :attr:`ws_protocol`)."""
        return self.ws_protocol.hub

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: any free port); returns :attr:`base_url`."""
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        app = web.Application(middlewares=[http_latency(lambda: self.http_latency_s)])
        self._add_routes(app)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=self._shutdown_timeout_s
        )
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        self._base_url = f"http://{host}:{runner.addresses[0][1]}{self._base_path}"
        await self._after_start()
        return self._base_url

    async def stop(self) -> None:
        """Cancel the timers, stop the websockets and the server (idempotent)."""
        timers, self._timer_tasks = self._timer_tasks, []
        for task in timers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await self._before_cleanup()
            await runner.cleanup()
        await self._after_stop()

    async def __aenter__(self) -> Self:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _start_timer(self, interval_s: Callable[[], float], tick: Callable[[], object]) -> None:
        """Call ``tick()`` every ``interval_s()`` real seconds until :meth:`stop`."""

        async def run() -> None:
            while True:
                await asyncio.sleep(interval_s())
                tick()

        self._timer_tasks.append(asyncio.get_running_loop().create_task(run()))


@dataclass
class Fault:
    """An injected failure for the next ``count`` requests to ``method path`` (no query).

    ``after=False``: answer ``status``/``body`` without processing. ``after=True``: process the
    request (orders do get placed/cancelled), then answer ``status``/``body`` instead (a lost
    answer). ``delay_s`` sleeps before answering (with ``status=200`` and ``body=None`` it only
    delays). ``body=None`` with an error status: the exchange's own error body for it.
    """

    method: str
    path: str
    status: int = 503
    body: dict[str, Any] | None = None
    count: int = 1
    delay_s: float = 0.0
    after: bool = False


class FaultInjection:
    r"""``emu.faults`` and ``emu.inject_fault`` for an emulator whose faults are :class:`Fault`\ s
    (MEXC, KuCoin, BingX); its dispatcher takes them with ``self.faults.take(method, path)``."""

    faults: FaultList

    def inject_fault(
        self,
        method: str,
        path: str,
        *,
        status: int = 503,
        body: dict[str, Any] | None = None,
        count: int = 1,
        delay_s: float = 0.0,
        after: bool = False,
    ) -> Fault:
        """Fail the next ``count`` requests to ``method path`` (the server path, e.g.
        ``/api/v3/order``, without the query); see :class:`Fault`."""
        fault = Fault(method.upper(), path, status, body, count, delay_s, after)
        self.faults.append(fault)
        return fault


class FaultList(list[Fault]):
    """The faults armed on an emulator (``emu.faults``), first armed first taken."""

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if one is armed (it counts one use), else None."""
        for fault in self:
            if fault.method == method and fault.path == path and fault.count > 0:
                fault.count -= 1
                if fault.count == 0:
                    self.remove(fault)
                return fault
        return None


def write_state(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically (a synced sibling, then a rename), so a
    killed emulator leaves the old state or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, separators=(",", ":"))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_state(path: Path) -> Any:
    """The JSON state saved at ``path``, or None when there is none yet."""
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


async def serve_until_signalled(emulator: EmulatorServer[Any], line: Mapping[str, Any]) -> None:
    """The process mode, for a started ``emulator``: print ``line`` as one JSON line on stdout
    (the parent reads the URL and port from it), serve until SIGINT or SIGTERM, then stop the
    emulator (its state file is then up to date)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        sys.stdout.write(json.dumps(dict(line)) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await emulator.stop()
