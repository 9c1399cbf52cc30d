"""What the supervisor reports: the ``/status`` document and the ``/healthz`` verdict."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from kasmm.supervisor.state import ProfileState

if TYPE_CHECKING:
    from kasmm.supervisor.core import Supervisor

__all__ = ["health_verdict", "supervisor_status"]


def supervisor_status(sup: Supervisor) -> dict[str, Any]:
    """Supervisor and per-profile state, as plain JSON-ready values (profiles by name)."""
    healthy, health_reason = sup.health()
    return {
        "supervisor": {
            "pid": os.getpid(),
            "directory": str(sup.directory),
            "shard": None if sup.shard is None else str(sup.shard),
            "uptime_s": round(time.monotonic() - sup.started_monotonic, 1),
            "profiles_total": len(sup.slots),
            "reloads": sup.reloads,
            "config_errors": [str(i) for i in sup.issues],
            "directory_missing": sup.directory_missing,
            "ledger_lost": sup.ledger_lost,
            "healthy": healthy,
            "health": health_reason,
        },
        "profiles": [sup.slots[name].status_row() for name in sorted(sup.slots)],
    }


def health_verdict(sup: Supervisor) -> tuple[bool, str]:
    """``(healthy, reason)``: unhealthy while the ledger is lost or any enabled profile is
    ``failed`` (the reason names them).

    A missing profile directory is only a warning (in the reason and the status): the running
    profiles still trade on their last good configuration, and what an unhealthy check leads
    to, a restart, could not bring the directory back but would stop them all.
    """
    if sup.ledger_lost is not None:
        return False, f"ledger lost: {sup.ledger_lost}"
    failed = sorted(
        name for name, runner in sup.slots.items() if runner.state is ProfileState.FAILED
    )
    if failed:
        return False, "failed profiles: " + ", ".join(failed)
    if sup.directory_missing:
        return True, f"ok; warning: profile directory {sup.directory} is missing"
    return True, "ok"
