"""``supervise()``: a :class:`~kasmm.supervisor.core.Supervisor` run as a daemon.

Around the supervisor proper it adds what a long-running process needs: the signals
(:mod:`kasmm.daemon.signals`), the directory watch (:mod:`kasmm.daemon.watch`), the loopback
control endpoint (``/status``, ``/metrics``, ``/healthz``), the operator's control socket
(:mod:`kasmm.daemon.control_socket`: reset, pause, resume, mode, reload), systemd's
notifications, and the ``--duration`` stop.
"""

from __future__ import annotations

import gc
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from kasmm.daemon.signals import process_signals
from kasmm.daemon.watch import watch_directory
from kasmm.obs.notify import Notifier, status_line, watchdog_task
from kasmm.obs.scrape import MetricsExporter
from kasmm.supervisor.core import Supervisor

#: The cyclic garbage collector's thresholds once the supervisor runs (CPython's default:
#: 700, 10, 10). Each bot allocates a few dozen frozen values per book, nearly all freed by
#: reference counting within a few books; collecting the young generation every 700
#: allocations promoted the ones still referenced at that moment, the old generation grew, and
#: full collections ran every few seconds at 500 profiles, each 100-170 ms of frozen loop (the
#: loop-lag tail of bench/scale.py: 8 full collections in a 15 s run). Collecting the young
#: generation every 20,000 allocations lets those values die young: no full collection in the
#: same run, one young collection a second of at most ~25 ms (5,000: more of them, and full
#: collections come back sooner; 50,000: young collections of ~40 ms). Cyclic garbage is still
#: collected, later.
GC_THRESHOLDS = (20_000, 10, 10)

log = structlog.get_logger("kasmm.supervisor")

__all__ = ["supervise"]


async def supervise(
    directory: Path,
    *,
    duration: float | None = None,
    control_addr: str | None = None,
    watch: bool = True,
    supervisor: Supervisor | None = None,
    notifier: Notifier | None = None,
    control_socket: Path | None = None,
    task_status: TaskStatus[Supervisor] = anyio.TASK_STATUS_IGNORED,
) -> int:
    """Run a supervisor with file watching, signals and (optionally) the control endpoint;
    return the exit status (README "Exit codes").

    Signals (:mod:`kasmm.daemon.signals`, handled until this returns): the first SIGTERM or
    SIGINT stops every profile, each cancelling its orders; a second one ends the process at
    once; SIGHUP reloads, and is logged and ignored once stopping. The supervisor stopping by
    itself (a lost ledger) ends the run the same way.

    ``notifier`` (systemd ``Type=notify``) gets READY=1 once every profile quotes,
    RELOADING=1/READY=1 around a SIGHUP reload, STOPPING=1 on shutdown, and WATCHDOG=1/STATUS=
    from the event loop.

    ``control_socket``: where to serve operator actions (removed on exit).
    """
    sup = supervisor or Supervisor(directory)
    notify = notifier or Notifier(None)
    stop_watch = anyio.Event()
    #: Everything but the signal handling: cancelled by the shutdown it starts.
    work = anyio.CancelScope()
    work_tasks: list[TaskGroup] = []

    def sd_status() -> str:
        return status_line(sup.status())

    def shut_down() -> None:
        if not work.cancel_called:
            notify.stopping(f"stopping: {sd_status()}")
        stop_watch.set()
        work.cancel()

    async def reload_from_signal() -> None:
        with notify.reload(sd_status):
            try:
                await sup.reload()
            except Exception as exc:
                log.error("reload_failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)

    async def reload_by_operator() -> None:
        log.info("reload_requested", source="control_socket")
        with notify.reload(sd_status):
            await sup.reload()

    async def on_signals(signals: AsyncIterator[signal.Signals]) -> None:
        # Outside ``work``: it must keep receiving while the shutdown it started runs.
        async for signum in signals:
            if signum != signal.SIGHUP:
                log.info("shutdown_requested", signal=signum.name)
                shut_down()
            elif work.cancel_called or not work_tasks:
                reason = "shutting down" if work.cancel_called else "starting"
                log.warning("reload_ignored", signal=signum.name, reason=reason)
            else:
                log.info("reload_requested", source="SIGHUP")
                # In its own task: a slow reload must not delay a SIGTERM behind it.
                work_tasks[0].start_soon(reload_from_signal)

    async def run_supervisor(*, task_status: TaskStatus[None]) -> None:
        await sup.run(task_status=task_status)
        shut_down()  # it stopped by itself (ledger lost): end the whole run

    with process_signals() as inbox:
        async with inbox.attach() as signals, anyio.create_task_group() as outer:
            outer.start_soon(on_signals, signals)
            with work:
                async with anyio.create_task_group() as tg:
                    work_tasks.append(tg)
                    tg.start_soon(lambda: watchdog_task(notify, sd_status))
                    await tg.start(run_supervisor)
                    if control_socket is not None:
                        await tg.start(_serve_socket, control_socket, sup, reload_by_operator)
                    await _serve(
                        sup, tg, notify, sd_status, directory, control_addr, watch, stop_watch
                    )
                    task_status.started(sup)
                    if duration is not None:
                        await anyio.sleep(duration)
                        shut_down()
            work_tasks.clear()
            outer.cancel_scope.cancel()
    return sup.exit_code


async def _serve_socket(
    path: Path,
    sup: Supervisor,
    reload: Callable[[], Awaitable[None]],
    *,
    task_status: TaskStatus[None],
) -> None:
    """Serve operator actions on ``path`` (see :mod:`kasmm.daemon.control_socket`)."""
    from kasmm.control import render_status_json
    from kasmm.daemon.control_socket import STATUS_QUERY, parse_request, serve_control_socket
    from kasmm.supervisor.actions import perform

    async def handle(message: Mapping[str, Any], peer: str) -> dict[str, Any]:
        if message.get("action") == STATUS_QUERY:
            # Read-only: what /status shows, for a local client that knows only the state
            # directory (kasmm settle's halted-profile gate). Decimals become exact strings.
            return {"ok": True, "status": json.loads(render_status_json(sup.status()))}
        return {"ok": True, "message": await perform(sup, parse_request(message, peer), reload)}

    await serve_control_socket(path, handle, task_status=task_status)


def settle_gc() -> None:
    """Once every profile runs: everything built at startup (modules, schemas, profiles) lives
    as long as the process, so it leaves the cyclic GC's generations (full collections stay
    short), and the young generation is collected every ``GC_THRESHOLDS[0]`` allocations."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _serve(
    sup: Supervisor,
    tg: TaskGroup,
    notify: Notifier,
    sd_status: Callable[[], str],
    directory: Path,
    control_addr: str | None,
    watch: bool,
    stop_watch: anyio.Event,
) -> None:
    """What :func:`supervise` starts once every profile quotes: the endpoint and the watch."""
    settle_gc()
    if control_addr:
        from kasmm.control import parse_addr, serve_control

        host, port = parse_addr(control_addr)
        await tg.start(
            lambda *, task_status: serve_control(
                host,
                port,
                status=sup.status,
                metrics=MetricsExporter(sup).scrape,
                health=sup.health,
                task_status=task_status,
            )
        )
    if watch:
        tg.start_soon(lambda: watch_directory(directory, sup.reload, stop=stop_watch))
    notify.ready(sd_status())
