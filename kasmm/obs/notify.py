"""systemd's notification protocol (``sd_notify``), spoken directly: no libsystemd, no dependency.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``, an ``AF_UNIX``/``SOCK_DGRAM`` address (a
path, or ``@name`` for the abstract namespace); each datagram is newline-separated ``KEY=VALUE``
lines. The supervisor sends:

* ``READY=1`` once every profile quotes (or gave up), with a ``STATUS=`` line;
* ``RELOADING=1`` + ``MONOTONIC_USEC=`` (``CLOCK_MONOTONIC`` in µs, as systemd >= 253 requires)
  when a ``SIGHUP`` reload begins, then ``READY=1`` when it is done;
* ``STOPPING=1`` when a shutdown begins;
* ``WATCHDOG=1`` every half ``$WATCHDOG_USEC`` (``WatchdogSec=``), from a task of the event loop
  itself: a blocked loop stops the pings, and systemd kills and restarts the process;
* ``STATUS=`` (``systemctl status``) refreshed with the profile counts.

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op. A socket error never reaches the
caller: it is logged once as a warning and the message is dropped. Sends never block (a full
queue drops the message), so a stuck service manager cannot stall the event loop either.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import anyio
import structlog

from kasmm.supervisor.state import ProfileState

__all__ = [
    "Notifier",
    "monotonic_usec",
    "status_line",
    "watchdog_interval",
    "watchdog_task",
]

log = structlog.get_logger("kasmm.notify")

#: How often ``STATUS=`` is refreshed when the watchdog does not ask for more often.
STATUS_INTERVAL_S = 5.0
#: ``STATUS=`` text is cut to this many characters (it is one line of ``systemctl status``).
_MAX_STATUS = 400


def monotonic_usec() -> int:
    """``CLOCK_MONOTONIC`` in microseconds: the clock ``MONOTONIC_USEC=`` is read against."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def _socket_address(value: str) -> bytes | None:
    """``$NOTIFY_SOCKET`` as a ``sendto`` address; ``None`` when not an AF_UNIX address."""
    if value.startswith("@"):
        return b"\0" + os.fsencode(value[1:])  # abstract namespace
    if value.startswith("/"):
        return os.fsencode(value)
    return None  # e.g. systemd's vsock:... (VMs): not spoken here


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_STATUS else line[: _MAX_STATUS - 3] + "..."


class Notifier:
    """Sends notifications to systemd; every method is a no-op when ``address`` is ``None``.

    Methods return whether the datagram was sent (never raise on socket errors).
    """

    def __init__(self, address: bytes | None) -> None:
        self.address = address
        self._warned = False
        self._ready = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """A notifier for ``$NOTIFY_SOCKET``, or a no-op one when it is unset or unsupported."""
        env = os.environ if environ is None else environ
        value = env.get("NOTIFY_SOCKET", "")
        if not value:
            return cls(None)
        address = _socket_address(value)
        if address is None:
            log.warning("notify_socket_unsupported", notify_socket=value)
        return cls(address)

    @property
    def enabled(self) -> bool:
        """Whether there is a service manager to talk to."""
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram."""
        if self.address is None or not lines:
            return False
        try:
            # A socket per message, as libsystemd does: a few datagrams a minute, and nothing
            # to close or to keep across a fork.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "notify_failed",
                    error=f"{type(exc).__name__}: {exc}",
                    note="systemd notifications are dropped; later failures are not logged",
                )
            return False
        return True

    def _with_status(self, line: str, status: str | None) -> bool:
        if status is None:
            return self.send(line)
        return self.send(line, f"STATUS={_one_line(status)}")

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up (or a reload) is complete."""
        self._ready = True
        return self._with_status("READY=1", status)

    def reloading(self) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC=``: a reload begins (send ``ready`` after)."""
        return self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}")

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: a shutdown begins."""
        return self._with_status("STOPPING=1", status)

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the service is alive."""
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        """``STATUS=``: one free-form line shown by ``systemctl status``."""
        return self.send(f"STATUS={_one_line(text)}")

    @contextmanager
    def reload(self, status: Callable[[], str] | None = None) -> Iterator[None]:
        """``RELOADING=1`` on entry, ``READY=1`` (+ ``STATUS=`` from ``status``) on exit.

        ``READY=1`` is sent even if the body raises: systemd must not stay in "reloading".
        Before the first ``READY=1`` (a reload during start-up) nothing is sent: start-up's
        own ``READY=1`` follows.
        """
        if not self._ready:
            yield
            return
        self.reloading()
        try:
            yield
        finally:
            self.ready(_safe_status(status))


def _safe_status(status: Callable[[], str] | None) -> str | None:
    if status is None:
        return None
    try:
        return status()
    except Exception as exc:  # a status line is never worth a crash
        log.warning("notify_status_failed", error=f"{type(exc).__name__}: {exc}")
        return None


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half ``$WATCHDOG_USEC``; ``None`` when off.

    ``$WATCHDOG_PID``, when set, must be this process (the variables are meant for it only).
    """
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", "") or 0)
        pid = int(env.get("WATCHDOG_PID", "") or 0)
    except ValueError:
        return None
    if usec <= 0 or (pid and pid != os.getpid()):
        return None
    return usec / 2 / 1_000_000


async def watchdog_task(
    notifier: Notifier,
    status: Callable[[], str],
    *,
    environ: Mapping[str, str] | None = None,
    status_interval: float = STATUS_INTERVAL_S,
) -> None:
    """Until cancelled: ``WATCHDOG=1`` every :func:`watchdog_interval` (if systemd asked for a
    watchdog) and ``STATUS=`` from ``status()`` whenever it changed.

    It runs as a task of the event loop it vouches for, so a blocked loop stops the pings.
    Returns at once when there is no service manager.
    """
    if not notifier.enabled:
        return
    interval = watchdog_interval(environ)
    period = status_interval if interval is None else min(interval, status_interval)
    last: str | None = None
    while True:
        lines = [] if interval is None else ["WATCHDOG=1"]
        text = _safe_status(status)
        if text is not None and text != last:
            last = text
            lines.append(f"STATUS={_one_line(text)}")
        if lines:
            notifier.send(*lines)
        await anyio.sleep(period)


#: States counted in the status line even at 0 (the others only when present).
_ALWAYS = (ProfileState.QUOTING, ProfileState.HALTED, ProfileState.FAILED)


def status_line(status: Mapping[str, Any]) -> str:
    """One ``STATUS=`` line from :meth:`Supervisor.status`.

    ``3 profiles: 2 quoting, 1 halted, 0 failed`` (other states only when present, e.g.
    ``1 restarting``), then ``; 2 config errors`` when files are invalid, after ``shard I/N: ``
    when the supervisor runs one shard.
    """
    sup = status.get("supervisor", {})
    states = Counter(str(row.get("state")) for row in status.get("profiles", []))
    total = sum(states.values())
    parts = [f"{states.pop(name, 0)} {name}" for name in _ALWAYS]
    parts += [f"{count} {name}" for name, count in sorted(states.items())]
    text = f"{total} profile{'' if total == 1 else 's'}: {', '.join(parts)}"
    errors = len(sup.get("config_errors", []))
    if errors:
        text += f"; {errors} config error{'' if errors == 1 else 's'}"
    shard = sup.get("shard")
    return f"shard {shard}: {text}" if shard else text
