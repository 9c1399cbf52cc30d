"""``kasmm supervise DIR``: the product's main command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import structlog

from kasmm.errors import LedgerLost
from kasmm.obs.notify import Notifier
from kasmm.shard import Shard
from kasmm.store import AsyncLedger, Ledger, LedgerError, SchemaError
from kasmm.supervisor import Supervisor, supervise

log = structlog.get_logger("kasmm.supervise")


def resolve_state_dir(state_dir: Path | None) -> Path:
    """``--state-dir``, else ``$STATE_DIRECTORY`` (systemd), else ``./state``."""
    if state_dir is not None:
        return state_dir
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    return Path("state")


def supervise_command(
    directory: Path,
    *,
    state_dir: Path | None,
    metrics_addr: str | None,
    duration: float | None,
    watch: bool,
    shard: Shard | None = None,
) -> int:
    """Run the supervisor in the foreground; exit 0 when every profile confirmed its cancels."""
    if not directory.is_dir():
        print(f"kasmm supervise: {directory}: not a directory", file=sys.stderr)
        return 2
    state = resolve_state_dir(state_dir)
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        opened = Ledger(ledger_path(state))
    except (LedgerLost, LedgerError, SchemaError) as exc:
        # One line naming the file; exit 2: a restart cannot repair it (RestartPreventExitStatus).
        print(f"kasmm supervise: {exc}", file=sys.stderr)
        return 2
    with opened as ledger:
        sup = Supervisor(directory, ledger=AsyncLedger(ledger), shard=shard)
        log.info(
            "supervisor_starting",
            directory=str(directory),
            state_dir=str(state),
            shard=None if shard is None else str(shard),
        )
        return anyio.run(
            lambda: supervise(
                directory,
                duration=duration,
                control_addr=metrics_addr,
                watch=watch,
                supervisor=sup,
                notifier=Notifier.from_env(),
            )
        )


def ledger_path(state_dir: Path) -> Path:
    """Where the supervisor's ledger lives inside a state directory."""
    return state_dir / "kasmm.sqlite"
