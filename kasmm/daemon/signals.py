"""SIGTERM, SIGINT and SIGHUP for ``kasmm supervise``: one receiver from start-up to exit.

Why not ``anyio.open_signal_receiver``: its handlers exist only while the receiver is open, and
asyncio restores the *default* disposition when it closes. A receiver inside the task group that
the first SIGTERM cancels is gone during the very shutdown it started: a SIGHUP then killed the
process, a second SIGTERM killed it without a word, a second SIGINT raised KeyboardInterrupt.
And a signal that arrived during start-up, before the event loop ran, killed it outright.

So plain ``signal.signal`` handlers are installed once, before the heavy imports, and stay:

* The first SIGTERM/SIGINT asks for the normal clean shutdown (every profile cancels its
  orders). One that arrives before the event loop runs waits here, and the supervisor then
  starts by shutting down.
* A second SIGTERM/SIGINT logs ``forced_exit`` and ends the process at once with 128 + signal
  (143, 130), from the handler itself, so it works even when the event loop is stuck.
* SIGHUP asks for a reload. The supervisor ignores it (and logs so) once it is shutting down.

The handlers only record the signal. The event loop learns of it through
``signal.set_wakeup_fd``, a byte on a socket it watches, which (unlike a flag checked later)
also wakes a loop blocked in ``select`` when the signal landed on another thread.

Stdlib imports only: :func:`install_process_signals` runs before anything else is imported.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

from kasmm.daemon.exit_codes import forced_exit_code

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["HANDLED", "SignalInbox", "install_process_signals", "process_signals"]

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_STOP = (signal.SIGTERM, signal.SIGINT)


class SignalInbox:
    """Records SIGTERM/SIGINT/SIGHUP and hands them to the event loop while one is attached."""

    def __init__(self) -> None:
        self._pending: deque[signal.Signals] = deque()
        self._stops = 0
        self._previous: dict[signal.Signals, Any] = {}
        self._send: MemoryObjectSendStream[signal.Signals] | None = None

    @property
    def stop_requested(self) -> bool:
        """True once a SIGTERM or SIGINT arrived."""
        return self._stops > 0

    def install(self) -> None:
        """Handle the signals from now on (main thread only); :meth:`uninstall` puts back the
        previous handlers."""
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def uninstall(self) -> None:
        """Restore the handlers that were in place before :meth:`install`."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Runs between two bytecodes of whatever the main thread was doing: record, nothing else
        # (the event loop is told through the wakeup fd), except the forced exit.
        sig = signal.Signals(signum)
        if sig in _STOP:
            self._stops += 1
            if self._stops > 1:
                _forced_exit(sig)
        self._pending.append(sig)

    def _deliver(self) -> None:
        send = self._send
        while send is not None and self._pending:
            send.send_nowait(self._pending.popleft())

    @asynccontextmanager
    async def attach(self) -> AsyncIterator[MemoryObjectReceiveStream[signal.Signals]]:
        """Receive the signals in the running event loop (asyncio, main thread), those that
        arrived before included, in order, until the block ends. One attachment at a time."""
        import asyncio
        import math

        import anyio

        loop = asyncio.get_running_loop()
        send, receive = anyio.create_memory_object_stream[signal.Signals](math.inf)
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)

        def on_wakeup() -> None:
            try:
                while wake_r.recv(512):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
            self._deliver()

        previous_fd = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        loop.add_reader(wake_r.fileno(), on_wakeup)
        self._send = send
        self._deliver()
        try:
            with receive:
                yield receive
        finally:
            self._send = None
            loop.remove_reader(wake_r.fileno())
            signal.set_wakeup_fd(previous_fd)
            wake_r.close()
            wake_w.close()
            send.close()


#: The forced exit has begun (a handler interrupted by another signal must not start it again).
_exiting = False


def _forced_exit(sig: signal.Signals) -> None:
    """Log ``forced_exit`` and end the process now: no cleanup, no traceback.

    The line is written with one ``os.write`` on stderr, never through structlog: its
    PrintLogger holds a non-reentrant lock while it writes a line, and a signal that lands
    while the main thread holds it (a busy stop logs a lot) would wait for it forever, so the
    forced exit would never come. Same format as the configured logs (JSON or console).
    """
    global _exiting
    if _exiting:  # a signal that lands while the exit is under way: one line, one exit
        return
    _exiting = True
    code = forced_exit_code(sig)
    stamp = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    logs = sys.modules.get("kasmm.obs.logs")  # only if loaded: no import in a signal handler
    if logs is not None and logs.console_output():
        line = (
            f"{stamp[:19].replace('T', ' ')} [error    ] forced_exit    "
            f"exit_code={code} orders='may be left open' signal={sig.name}\n"
        )
    else:
        line = (
            f'{{"signal": "{sig.name}", "exit_code": {code}, "orders": "may be left open", '
            f'"event": "forced_exit", "level": "error", "timestamp": "{stamp}"}}\n'
        )
    with contextlib.suppress(OSError):  # stderr closed: exit all the same
        os.write(2, line.encode())
    os._exit(code)


_process_inbox: SignalInbox | None = None


def install_process_signals() -> SignalInbox:
    """Install the process's handlers for the rest of its life (idempotent; main thread).

    ``kasmm supervise`` calls this before it imports anything heavy, so that a SIGTERM during
    start-up already leads to a clean stop.
    """
    global _process_inbox
    if _process_inbox is None:
        inbox = SignalInbox()
        inbox.install()
        _process_inbox = inbox
    return _process_inbox


@contextmanager
def process_signals() -> Iterator[SignalInbox]:
    """The process's inbox if :func:`install_process_signals` ran, else a temporary one.

    The temporary one (an embedding program, a test) handles the signals only inside the block
    and then restores the previous handlers.
    """
    if _process_inbox is not None:
        yield _process_inbox
        return
    inbox = SignalInbox()
    inbox.install()
    try:
        yield inbox
    finally:
        inbox.uninstall()
