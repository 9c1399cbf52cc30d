"""``kasmm supervise DIR``: the product's main command (one process, or ``--processes N``)."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import structlog

from kasmm import native
from kasmm.daemon.control_socket import socket_path
from kasmm.errors import LedgerLost
from kasmm.obs.logs import console_output
from kasmm.obs.notify import Notifier
from kasmm.shard import Shard, default_metrics_addr
from kasmm.store import AsyncLedger, Ledger, LedgerError, SchemaError
from kasmm.store.state_dir import (
    EXIT_IN_USE,
    LockBusy,
    ProfileLocks,
    ledger_path,
    lock_supervisor,
    prepare_state_dir,
    resolve_state_dir,
    supervisor_role,
)
from kasmm.supervisor import Supervisor, supervise
from kasmm.supervisor.settle_wiring import scheduled_settle
from kasmm.supervisor.summary import SUMMARY_EVERY_S, exit_table

__all__ = ["start_hint", "supervise_command"]

log = structlog.get_logger("kasmm.supervise")


def supervise_command(
    directory: Path,
    *,
    state_dir: Path | None,
    metrics_addr: str | None,
    duration: float | None,
    watch: bool,
    shard: Shard | None = None,
    processes: int = 1,
    log_options: tuple[str, str] = ("auto", "info"),
) -> int:
    """Run the supervisor in the foreground; exit 0 when every profile confirmed its cancels.

    Exit :data:`~kasmm.store.state_dir.EXIT_IN_USE` (75) at once, with one line naming the
    holder's PID, when another supervisor of this shard (or an overlapping one) of ``directory``
    uses the state directory.

    :param processes: more than 1: run the shards ``0/N`` .. ``N-1/N`` as child processes of
        this one (:mod:`kasmm.fleet`), which holds the lock of the whole directory.
    :param log_options: ``(--log-format, --log-level)``, passed on to those children.
    """
    if not directory.is_dir():
        print(f"kasmm supervise: {directory}: not a directory", file=sys.stderr)
        return 2
    state = prepare_state_dir(resolve_state_dir(state_dir))
    try:
        held = lock_supervisor(
            state, directory, shard, processes=processes if processes > 1 else None
        )
    except LockBusy as exc:
        print(f"kasmm supervise: {exc}", file=sys.stderr)
        return EXIT_IN_USE
    if processes > 1:
        with held:
            return _supervise_fleet(
                directory, state, metrics_addr, duration, watch, processes, log_options
            )
    # Held until the supervisor has stopped every profile; released by the kernel on a crash.
    with held:
        return _supervise(directory, state, metrics_addr, duration, watch, shard)


def start_hint(metrics_addr: str | None) -> str:
    """One line for the start: where to watch the bots (the console, the status, the metrics)."""
    if metrics_addr is None:
        return (
            "the status endpoint is off (--metrics-addr ''): kasmm top and kasmm status need it; "
            "kasmm report and kasmm pnl read the ledger"
        )
    addr = "" if metrics_addr == default_metrics_addr(None) else f" --addr {metrics_addr}"
    return (
        f"watch with: kasmm top{addr} | kasmm status{addr} | metrics http://{metrics_addr}/metrics"
    )


def _supervise_fleet(
    directory: Path,
    state: Path,
    metrics_addr: str | None,
    duration: float | None,
    watch: bool,
    processes: int,
    log_options: tuple[str, str],
) -> int:
    from kasmm.fleet.child import whole_lines
    from kasmm.fleet.parent import FleetConfig, run_fleet

    # The children write to the same streams: one write() per line keeps lines whole.
    whole_lines(sys.stdout, sys.stderr)
    log.info("where_to_look", hint=start_hint(metrics_addr))  # once: the shards do not

    config = FleetConfig(
        directory,
        state,
        processes,
        metrics_addr,
        duration=duration,
        watch=watch,
        log_format=log_options[0],
        log_level=log_options[1],
    )
    return anyio.run(lambda: run_fleet(config, Notifier.from_env()))


def _supervise(
    directory: Path,
    state: Path,
    metrics_addr: str | None,
    duration: float | None,
    watch: bool,
    shard: Shard | None,
) -> int:
    try:
        opened = Ledger(ledger_path(state))
    except (LedgerLost, LedgerError, SchemaError) as exc:
        # One line naming the file; exit 2: a restart cannot repair it (RestartPreventExitStatus).
        print(f"kasmm supervise: {exc}", file=sys.stderr)
        return 2
    with opened as ledger:
        sup = Supervisor(
            directory,
            ledger=AsyncLedger(ledger),
            shard=shard,
            profile_locks=ProfileLocks(state, supervisor_role(directory, shard)),
        )
        # Scheduled settlement (_settlement.yaml with a schedule; off otherwise).
        sup.settling.scheduler.settle = scheduled_settle(sup.settling, state)
        log.info(
            "supervisor_starting",
            directory=str(directory),
            state_dir=str(state),
            shard=None if shard is None else str(shard),
            hot_path=native.status().describe(),
        )
        if shard is None:  # a shard of --processes: its parent says it, once
            log.info("where_to_look", hint=start_hint(metrics_addr))
        people = console_output()  # a person reads the console: summaries and a last table
        if people:
            sup.summary_every_s = SUMMARY_EVERY_S
        try:
            return anyio.run(
                lambda: supervise(
                    directory,
                    duration=duration,
                    control_addr=metrics_addr,
                    watch=watch,
                    supervisor=sup,
                    notifier=Notifier.from_env(),
                    control_socket=socket_path(state, shard),
                )
            )
        finally:
            if people and sup.slots:
                print(exit_table(sup.status()["profiles"]), file=sys.stderr)
