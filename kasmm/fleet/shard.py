"""One shard process of a fleet: start it, watch it, restart it when it crashes, stop it.

:class:`ShardProcess` runs ``kasmm supervise DIR --shard I/N`` (through
:mod:`kasmm.fleet.child`, which ties the child's life to the parent's) with its control
endpoint on a loopback port the parent picked, and follows it in two ways:

* its exit (``await process.wait()``), read by :mod:`kasmm.fleet.outcome`: a crash is
  restarted after a backoff on the monotonic clock, a fatal status ends the fleet;
* its ``/status``, polled every :data:`POLL_UP_S`: the first answer means the shard is ready
  (a shard serves its endpoint only once every profile quotes), later answers feed the parent's
  ``/status``. A shard that was up and then does not answer for :data:`HANG_KILL_S` has a stuck
  event loop (what systemd's ``WatchdogSec=`` catches for a single process): it is sent
  SIGABRT, so Python's fault handler writes every thread's traceback, and it is restarted.

Children run in a session of their own, so a Ctrl-C in a terminal reaches only the parent,
which forwards it once (the terminal's SIGINT to every process plus the parent's forwarded one
would be two, a forced exit).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import anyio
import orjson
import structlog
from anyio.abc import Process

from kasmm.fleet.http import FetchError, http_get
from kasmm.fleet.outcome import FATAL, Backoff, stopped_outcome
from kasmm.fleet.status import ShardState, ShardView

__all__ = ["HANG_KILL_S", "POLL_UP_S", "FleetHost", "ShardProcess", "free_loopback_port"]

log = structlog.get_logger("kasmm.fleet")

#: Seconds between two ``/status`` polls of a shard that is up.
POLL_UP_S = 1.0
#: ... and of one that is starting (its endpoint refuses at once until it is ready).
POLL_STARTING_S = 0.2
#: Deadline of one ``/status`` request.
STATUS_TIMEOUT_S = 2.0
#: A shard that answered before and has not since for this long is killed and restarted
#: (as long as ``WatchdogSec=`` in the systemd units).
HANG_KILL_S = 30.0
#: When the parent itself is cancelled (a bug), how long a child gets to stop before SIGKILL.
STOP_GRACE_S = 15.0


class FleetHost(Protocol):
    """What a shard needs from the fleet that runs it."""

    @property
    def stopping(self) -> bool:
        """Whether the fleet is stopping (no more starts or restarts)."""
        ...

    @property
    def stop_signal(self) -> signal.Signals:
        """The signal to send a shard started while stopping."""
        ...

    async def wait_stopping(self) -> None:
        """Return once the fleet is stopping."""
        ...

    def fatal(self, shard: ShardProcess, code: int) -> None:
        """``shard`` exited with a status that ends the fleet (75, 2, 4)."""
        ...


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the child binds it a moment later; if another
    process takes it first, the child fails to start and is restarted on a new one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ShardProcess:
    """Shard ``index`` of ``count``: its process, its state and its last ``/status``.

    :param command: the child's argv for a control address ``HOST:PORT``.
    :param env: the child's environment.
    :param clock: monotonic seconds (uptimes, backoff, the hang deadline).
    """

    def __init__(
        self,
        index: int,
        count: int,
        host: FleetHost,
        command: Callable[[str], Sequence[str]],
        env: dict[str, str],
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        hang_kill_s: float = HANG_KILL_S,
    ) -> None:
        self.index = index
        self.count = count
        self.host = host
        self.command = command
        self.env = env
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.hang_kill_s = hang_kill_s
        self.state = ShardState.STARTING
        #: The running child's PID (read by the parent's signal handler: a plain attribute).
        self.pid: int | None = None
        self.control: str | None = None
        self.restarts = 0
        self.last_exit: int | None = None
        #: The outcome once the shard is done (:func:`~kasmm.fleet.outcome.stopped_outcome`).
        self.outcome: int | None = None
        self.status: dict[str, Any] | None = None
        self.status_at: float | None = None
        #: Set once the shard answered for the first time (its profiles all started).
        self.ready = anyio.Event()
        self._polled = anyio.Event()
        self._process: Process | None = None
        self._sent: signal.Signals | None = None
        self._down_after_crash = False
        self._started_at = 0.0
        self._hang_killed = False

    @property
    def name(self) -> str:
        """``I/N``."""
        return f"{self.index}/{self.count}"

    def view(self) -> ShardView:
        """This shard now, for :func:`~kasmm.fleet.status.merge_status`."""
        age = None if self.status_at is None else self.clock() - self.status_at
        return ShardView(
            self.index,
            self.count,
            self.state,
            pid=self.pid,
            control=self.control,
            restarts=self.restarts,
            last_exit=self.last_exit,
            status=self.status,
            status_age_s=age,
        )

    async def polled(self) -> None:
        """Return after the next poll of the child's ``/status`` (answered or not), or once
        the child exits."""
        await self._polled.wait()

    def _tick(self) -> None:
        """Wake whoever awaits :meth:`polled`."""
        self._polled.set()
        self._polled = anyio.Event()

    def send(self, sig: signal.Signals) -> bool:
        """Send ``sig`` to the running child; False if there is none."""
        process = self._process
        if process is None or process.returncode is not None:
            return False
        if sig in (signal.SIGTERM, signal.SIGINT):
            if self._sent is not None:
                return False  # one stop is enough; the forced one comes from the parent's handler
            self._sent = sig
            self.state = ShardState.STOPPING
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            return False
        return True

    async def run(self) -> None:
        """Start the shard and keep it running until the fleet stops; then set ``outcome``."""
        while not self.host.stopping:
            returncode = await self._run_once()
            self.last_exit = returncode
            if self._sent is not None or self.host.stopping:
                self.outcome = stopped_outcome(returncode, self._sent)
                self.state = ShardState.STOPPED
                log.info("shard_stopped", shard=self.name, exit_code=returncode)
                return
            if returncode in FATAL:
                self.outcome = returncode
                self.state = ShardState.STOPPED
                log.error("shard_exited", shard=self.name, exit_code=returncode, restart=False)
                self.host.fatal(self, returncode)
                return
            self._down_after_crash = True
            self.restarts += 1
            started = self._started_at
            delay = self.backoff.after_crash(started, self.clock())
            self.state = ShardState.RESTARTING
            log.error(
                "shard_crashed",
                shard=self.name,
                exit_code=returncode,
                ran_s=round(self.clock() - started, 1),
                restart_in_s=delay,
                restarts=self.restarts,
            )
            with anyio.move_on_after(delay):
                await self.host.wait_stopping()
        # Stopped before it (re)started: down after a crash may mean orders left behind.
        self.outcome = stopped_outcome(None) if self._down_after_crash else 0
        self.state = ShardState.STOPPED

    async def _run_once(self) -> int:
        self.control = f"127.0.0.1:{free_loopback_port()}"
        process = await anyio.open_process(
            list(self.command(self.control)),
            stdin=subprocess.DEVNULL,
            stdout=None,
            stderr=None,
            env=self.env,
            start_new_session=True,
        )
        self._process, self.pid, self._sent = process, process.pid, None
        self._started_at = self.clock()
        self.state = ShardState.STARTING
        self._down_after_crash = False
        self._hang_killed = False
        log.info("shard_started", shard=self.name, pid=process.pid, control=self.control)
        if self.host.stopping:  # the stop came while it was being spawned
            self.send(self.host.stop_signal)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._poll, self.control)
                returncode = await process.wait()
                tg.cancel_scope.cancel()
            return returncode
        finally:
            with anyio.CancelScope(shield=True):
                await self._reap(process)
            self._process, self.pid = None, None
            self._tick()

    async def _reap(self, process: Process) -> None:
        """Wait for ``process``; if the parent is being cancelled while it runs, stop it."""
        if process.returncode is None:
            self.send(signal.SIGTERM)
            with anyio.move_on_after(STOP_GRACE_S):
                await process.wait()
            if process.returncode is None:
                process.kill()
        await process.aclose()

    async def _poll(self, control: str) -> None:
        """Follow the child's ``/status`` until it exits (see the module docstring)."""
        host, _, port = control.rpartition(":")
        answered_at: float | None = None
        while not self.host.stopping and self._sent is None:
            try:
                body = await http_get(host, int(port), "/status", STATUS_TIMEOUT_S)
                doc = orjson.loads(body)
                if not isinstance(doc, dict):
                    raise FetchError("/status: not a JSON object")
            except (FetchError, orjson.JSONDecodeError) as exc:
                if answered_at is not None:
                    self._not_answering(answered_at, str(exc))
            else:
                answered_at = self.clock()
                self.status, self.status_at = doc, answered_at
                if self.state is not ShardState.UP and self._sent is None:
                    self.state = ShardState.UP
                    log.info("shard_ready", shard=self.name, pid=self.pid)
                    self.ready.set()
            self._tick()
            await anyio.sleep(POLL_UP_S if answered_at is not None else POLL_STARTING_S)

    def _not_answering(self, answered_at: float, error: str) -> None:
        silent = self.clock() - answered_at
        if self.state is ShardState.UP:
            self.state = ShardState.UNRESPONSIVE
            log.warning("shard_unresponsive", shard=self.name, pid=self.pid, error=error)
        if silent >= self.hang_kill_s and self.pid is not None and not self._hang_killed:
            self._hang_killed = True
            log.error("shard_hung", shard=self.name, pid=self.pid, silent_s=round(silent, 1))
            # SIGABRT: the fault handler (PYTHONFAULTHANDLER) dumps every thread's traceback.
            os.kill(self.pid, signal.SIGABRT)
