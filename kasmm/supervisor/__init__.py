"""The supervisor: owns every profile's lifetime.

* :mod:`~kasmm.supervisor.state`: :class:`ProfileState`, shared with metrics and status, and
  the one rule deriving the state a reader sees.
* :mod:`~kasmm.supervisor.plan`: :func:`plan_reload`, the pure diff a reload applies.
* :mod:`~kasmm.supervisor.runner`: :class:`ProfileRunner`, one profile's restart loop, failed
  cool-down, mode channel and lock.
* :mod:`~kasmm.supervisor.core`: :class:`Supervisor`: reload, start and stop many, the
  ledger check; :mod:`~kasmm.supervisor.status`: its ``/status`` and ``/healthz``.
* :mod:`~kasmm.supervisor.settling`: scheduled settlement (``_settlement.yaml``), the gates it
  reads from the member bots, and the ledger watch behind the settlement status, metrics and
  notifications (``settle_*`` modules).
* :mod:`~kasmm.supervisor.daemon`: :func:`supervise`, the supervisor as a process (signals,
  directory watch, control endpoint, systemd).

The names below are loaded on first use: :mod:`kasmm.obs` imports :class:`ProfileState` from
here, and must not pull in the supervisor (which imports :mod:`kasmm.obs` in turn).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kasmm.supervisor.plan import DesiredProfile, ReloadPlan, RunningProfile, plan_reload
from kasmm.supervisor.state import ProfileState

if TYPE_CHECKING:
    from kasmm.supervisor.core import ReloadResult, Supervisor, VenueFactory
    from kasmm.supervisor.daemon import supervise
    from kasmm.supervisor.runner import ModeSwitch, ProfileRunner, RestartPolicy, RunnerHost

__all__ = [
    "DesiredProfile",
    "ModeSwitch",
    "ProfileRunner",
    "ProfileState",
    "ReloadPlan",
    "ReloadResult",
    "RestartPolicy",
    "RunnerHost",
    "RunningProfile",
    "Supervisor",
    "VenueFactory",
    "plan_reload",
    "supervise",
]

_LAZY = {
    "ReloadResult": "core",
    "Supervisor": "core",
    "VenueFactory": "core",
    "supervise": "daemon",
    "ModeSwitch": "runner",
    "ProfileRunner": "runner",
    "RestartPolicy": "runner",
    "RunnerHost": "runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
