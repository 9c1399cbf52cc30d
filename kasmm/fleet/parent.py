"""The parent of ``kasmm supervise DIR --processes N``: N shard processes as one service.

What the parent does, and nothing else (it runs no profile itself):

* **Children.** One :class:`~kasmm.fleet.shard.ShardProcess` per shard ``i/N``: started at
  once, restarted with backoff when it crashes, each with its own shard lock and ledger
  connection (the same rules as ``--shard`` under systemd). A child that finds its lock busy
  (75), a usage error (2) or the ledger lost (4) stops the whole fleet with that status.
* **Signals.** SIGTERM/SIGINT are forwarded to every child, each stops its profiles (orders
  cancelled in shielded scopes), and the parent waits for all of them; its status is the most
  urgent of theirs (:mod:`kasmm.fleet.outcome`). A second SIGTERM/SIGINT is forwarded at once
  from the signal handler itself, then the parent exits as a single supervisor does (143/130);
  the children, each getting its second signal, do the same. SIGHUP is forwarded (reload).
* **One address.** ``/status`` merges the children's (:mod:`kasmm.fleet.status`), ``/metrics``
  their expositions (:mod:`kasmm.obs.merge`, scraped concurrently, each within
  :data:`METRICS_TIMEOUT_S`) plus the parent's own ``kasmm_shard_*`` families, ``/healthz``
  is healthy while every shard is up and healthy.
* **systemd.** Only the parent talks to it (the children's environment has no
  ``$NOTIFY_SOCKET``): READY=1 once every shard is up, RELOADING=1/READY=1 around a SIGHUP
  (READY once every shard that was up has reloaded), STOPPING=1, WATCHDOG=1 and STATUS=.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup
from prometheus_client import CONTENT_TYPE_LATEST

from kasmm.daemon.signals import SignalInbox, process_signals
from kasmm.fleet.http import FetchError, http_get
from kasmm.fleet.outcome import fleet_exit_code
from kasmm.fleet.shard import ShardProcess
from kasmm.fleet.status import ShardState, merge_status
from kasmm.obs.exposition import TextBackend
from kasmm.obs.merge import merge_expositions
from kasmm.obs.notify import Notifier, status_line, watchdog_task

__all__ = ["CHILD_ENV_DROP", "Fleet", "FleetConfig", "child_env", "run_fleet"]

log = structlog.get_logger("kasmm.fleet")

#: Deadline of one child's ``/metrics`` in a scrape of the parent (Prometheus waits 10 s).
METRICS_TIMEOUT_S = 5.0
#: A merged ``/metrics`` body younger than this is served again.
METRICS_MAX_AGE_S = 1.0
#: How long READY=1 after a SIGHUP waits for the shards to report their reload.
RELOAD_WAIT_S = 30.0
#: Variables meant for the parent alone: systemd's notification socket and watchdog (a child
#: notifying would be refused under ``NotifyAccess=main`` anyway) and socket activation.
CHILD_ENV_DROP = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
)
#: Exit status when the parent's own endpoint cannot listen (the address is in use).
EXIT_ADDR_IN_USE = 75


def child_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The children's environment: the parent's without :data:`CHILD_ENV_DROP`."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k not in CHILD_ENV_DROP}


@dataclass(frozen=True)
class FleetConfig:
    """What ``kasmm supervise`` was asked to do, for ``processes`` shard processes."""

    directory: Path
    state_dir: Path
    processes: int
    control_addr: str | None
    duration: float | None = None
    watch: bool = True
    log_format: str = "auto"
    log_level: str = "info"
    python: str = sys.executable

    def command(self, index: int, control: str) -> list[str]:
        """The argv of shard ``index``, its endpoint on ``control``."""
        argv = [
            self.python,
            "-m",
            "kasmm.fleet.child",
            str(os.getpid()),
            "--log-format",
            self.log_format,
            "--log-level",
            self.log_level,
            "supervise",
            # Absolute, as the lock key is: the child's and the parent's must agree.
            os.path.abspath(self.directory),
            "--shard",
            f"{index}/{self.processes}",
            "--state-dir",
            os.path.abspath(self.state_dir),
            "--metrics-addr",
            control,
        ]
        return argv if self.watch else [*argv, "--no-watch"]


class Fleet:
    """The shard processes of one ``kasmm supervise --processes N`` and what serves them."""

    def __init__(
        self,
        config: FleetConfig,
        notifier: Notifier,
        *,
        clock: Callable[[], float] = time.monotonic,
        env: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.notify = notifier
        self.clock = clock
        self.started = clock()
        environment = child_env() if env is None else env
        self.shards = [
            ShardProcess(i, config.processes, self, partial(config.command, i), environment)
            for i in range(config.processes)
        ]
        self._stopping = anyio.Event()
        self._stop_signal = signal.SIGTERM
        self._metrics: tuple[float, list[bytes]] | None = None
        self._building: anyio.Event | None = None
        self._ready_sent = False

    # --- FleetHost ---------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Whether the fleet is stopping."""
        return self._stopping.is_set()

    @property
    def stop_signal(self) -> signal.Signals:
        """The signal the stop forwards."""
        return self._stop_signal

    async def wait_stopping(self) -> None:
        """Return once the fleet is stopping."""
        await self._stopping.wait()

    def fatal(self, shard: ShardProcess, code: int) -> None:
        """A shard exited with a status a restart cannot help: stop the others."""
        self.stop(signal.SIGTERM, reason=f"shard {shard.name} exited {code}")

    # --- control -----------------------------------------------------------------------------

    def stop(self, sig: signal.Signals, *, reason: str) -> None:
        """Stop every shard (forwarding ``sig``) and start none; idempotent."""
        if self.stopping:
            return
        self._stop_signal = sig
        self._stopping.set()
        self.notify.stopping(f"stopping: {self.sd_status()}")
        log.info("fleet_stopping", reason=reason, signal=sig.name)
        for shard in self.shards:
            shard.send(sig)

    def pids(self) -> list[int]:
        """The running children (read from a signal handler: no locks, no awaits)."""
        return [pid for pid in (s.pid for s in self.shards) if pid is not None]

    def status(self) -> dict[str, Any]:
        """The ``/status`` document (:func:`~kasmm.fleet.status.merge_status`)."""
        return merge_status(
            [s.view() for s in self.shards],
            pid=os.getpid(),
            directory=str(self.config.directory),
            uptime_s=self.clock() - self.started,
        )

    def health(self) -> tuple[bool, str]:
        """``/healthz``: healthy while every shard is up and healthy."""
        sup = self.status()["supervisor"]
        return bool(sup["healthy"]), str(sup["health"])

    def sd_status(self) -> str:
        """systemd's ``STATUS=`` line: shards up, then the profile counts."""
        up = sum(s.state is ShardState.UP for s in self.shards)
        return f"{up}/{len(self.shards)} shards up; {status_line(self.status())}"

    async def metrics(self) -> tuple[list[bytes], str]:
        """The ``/metrics`` body; concurrent scrapes share one build, reused for 1 s."""
        while True:
            cached = self._metrics
            if cached is not None and self.clock() - cached[0] < METRICS_MAX_AGE_S:
                return cached[1], CONTENT_TYPE_LATEST
            if self._building is None:
                break
            await self._building.wait()
        done = self._building = anyio.Event()
        try:
            started = self.clock()
            body = await self._build_metrics()
            self._metrics = (started, body)
        finally:
            self._building = None
            done.set()
        return body, CONTENT_TYPE_LATEST

    async def _build_metrics(self) -> list[bytes]:
        bodies: dict[int, bytes] = {}

        async def scrape(shard: ShardProcess, control: str) -> None:
            host, _, port = control.rpartition(":")
            try:
                bodies[shard.index] = await http_get(host, int(port), "/metrics", METRICS_TIMEOUT_S)
            except FetchError as exc:
                if shard.state is ShardState.UP:
                    log.warning("shard_scrape_failed", shard=shard.name, error=str(exc))

        async with anyio.create_task_group() as tg:
            for shard in self.shards:
                if shard.pid is not None and shard.control is not None:
                    tg.start_soon(scrape, shard, shard.control)
        sources = [(str(i), bodies[i]) for i in sorted(bodies)]
        tail = self._own_metrics(bodies)
        # ~1 s per 25 MB of shard bodies (900 profiles): in a thread, so the loop that
        # watches the shards keeps its turns (the GIL is handed over every 5 ms).
        merged = await anyio.to_thread.run_sync(lambda: merge_expositions(sources, tail=tail))
        for index, families in merged.conflicts.items():
            log.warning("shard_metrics_conflict", shard=index, families=families)
        return merged.pieces

    def _own_metrics(self, scraped: Mapping[int, bytes]) -> bytes:
        backend = TextBackend()
        up = backend.gauge(
            "kasmm_shard_up", "Whether the shard process runs and answers.", ["shard"]
        )
        restarts = backend.counter(
            "kasmm_shard_restarts", "Restarts of the shard process after it crashed.", ["shard"]
        )
        scraped_ok = backend.gauge(
            "kasmm_shard_scrape_success",
            "Whether this scrape has the shard's own metrics.",
            ["shard"],
        )
        for shard in self.shards:
            label = [str(shard.index)]
            up.add_metric(label, float(shard.state is ShardState.UP))
            restarts.add_metric(label, float(shard.restarts))
            scraped_ok.add_metric(label, float(shard.index in scraped))
        backend.gauge(
            "kasmm_shard_processes", "Shard processes of this supervisor.", []
        ).add_metric([], float(len(self.shards)))
        return b"".join(backend.pieces())

    async def reload(self) -> None:
        """Forward SIGHUP; READY=1 again once every shard that was up reports the reload.

        Not :meth:`Notifier.reload`: that sends READY=1 even when the reload is cut short by
        a stop, and systemd must see nothing after STOPPING=1.
        """
        if self._ready_sent:
            self.notify.reloading()
        targets = [
            (shard, _reloads(shard.status))
            for shard in self.shards
            if shard.state is ShardState.UP and shard.send(signal.SIGHUP)
        ]
        log.info("reload_forwarded", shards=[s.name for s, _ in targets])
        with anyio.move_on_after(RELOAD_WAIT_S):
            for shard, before in targets:
                # The shard's /status is polled every second: its reload shows there.
                while shard.state is ShardState.UP and _reloads(shard.status) <= before:
                    await shard.polled()
        if self._ready_sent and not self.stopping:
            self.notify.ready(self.sd_status())

    # --- running -----------------------------------------------------------------------------

    async def on_signals(self, signals: AsyncIterator[signal.Signals], tg: TaskGroup) -> None:
        """Act on the process's signals until cancelled."""
        async for sig in signals:
            if sig != signal.SIGHUP:
                log.info("shutdown_requested", signal=sig.name)
                self.stop(sig, reason=f"signal {sig.name}")
            elif self.stopping:
                log.warning("reload_ignored", signal=sig.name, reason="shutting down")
            else:
                log.info("reload_requested", source="SIGHUP")
                tg.start_soon(self.reload)

    async def run(self) -> int:
        """Run every shard until the fleet stops; return the exit status."""
        cfg = self.config
        log.info(
            "fleet_starting",
            directory=str(cfg.directory),
            state_dir=str(cfg.state_dir),
            processes=cfg.processes,
        )
        async with anyio.create_task_group() as services:
            if cfg.control_addr and not await self._serve(services, cfg.control_addr):
                return EXIT_ADDR_IN_USE
            services.start_soon(lambda: watchdog_task(self.notify, self.sd_status))
            services.start_soon(self._announce_ready)
            if cfg.duration is not None:
                services.start_soon(self._stop_after, cfg.duration)
            async with anyio.create_task_group() as shards:
                for shard in self.shards:
                    shards.start_soon(shard.run)
            services.cancel_scope.cancel()
        code = fleet_exit_code([0 if s.outcome is None else s.outcome for s in self.shards])
        log.info(
            "fleet_stopped",
            exit_code=code,
            outcomes={s.name: s.outcome for s in self.shards},
        )
        return code

    async def _serve(self, tg: TaskGroup, addr: str) -> bool:
        from kasmm.control import parse_addr, serve_control

        host, port = parse_addr(addr)
        try:
            await tg.start(
                lambda *, task_status: serve_control(
                    host,
                    port,
                    status=self.status,
                    metrics=self.metrics,
                    health=self.health,
                    task_status=task_status,
                )
            )
        except OSError as exc:
            log.error("control_listen_failed", addr=addr, error=f"{type(exc).__name__}: {exc}")
            print(f"kasmm supervise: cannot listen on {addr}: {exc.strerror}", file=sys.stderr)
            return False
        return True

    async def _announce_ready(self) -> None:
        for shard in self.shards:
            await shard.ready.wait()
        if not self.stopping:
            log.info("fleet_ready", processes=len(self.shards))
            self._ready_sent = True
            self.notify.ready(self.sd_status())

    async def _stop_after(self, seconds: float) -> None:
        await anyio.sleep(seconds)
        self.stop(signal.SIGTERM, reason="duration")


def _reloads(status: Mapping[str, Any] | None) -> int:
    sup = status.get("supervisor") if status is not None else None
    value = sup.get("reloads") if isinstance(sup, Mapping) else None
    return value if isinstance(value, int) else 0


@contextmanager
def forward_forced_stop(inbox: SignalInbox, pids: Callable[[], list[int]]) -> Iterator[None]:
    """Chain a SIGTERM/SIGINT handler before ``inbox``'s that forwards a second stop signal to
    ``pids()`` before the inbox's handler ends the process (a forced exit waits for nobody,
    so the children must get theirs first)."""
    stops = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.getsignal(sig) for sig in stops}

    def forward(signum: int, frame: FrameType | None) -> None:
        if inbox.stop_requested:  # this is the second: the next handler exits at once
            for pid in pids():
                with suppress(OSError):
                    os.kill(pid, signum)
        handler = previous[signal.Signals(signum)]
        if callable(handler):
            handler(signum, frame)

    for sig in stops:
        signal.signal(sig, forward)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def run_fleet(config: FleetConfig, notifier: Notifier | None = None) -> int:
    """Run ``config.processes`` shard processes until a stop signal, ``--duration`` or a fatal
    exit of one of them; return the parent's exit status (README "Exit status")."""
    fleet = Fleet(config, notifier or Notifier(None))
    with process_signals() as inbox, forward_forced_stop(inbox, fleet.pids):
        async with inbox.attach() as signals, anyio.create_task_group() as outer:
            outer.start_soon(fleet.on_signals, signals, outer)
            code = await fleet.run()
            outer.cancel_scope.cancel()
    return code
