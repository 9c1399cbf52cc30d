"""Which profiles are halted, for ``kasmm settle``: the ledger's latched halts, and what the
running supervisors of the state directory say now.

A sweep must wait while any profile of its account is halted (the issue's safety rule: a halted
profile's balances are being looked at by an operator, and its need may be wrong). Two sources,
added together so that neither can hide a halt:

* the ledger's halts (a kill-switch ``halt`` trip not yet ``reset``): latched, so they hold
  whether or not a supervisor runs;
* each running supervisor's status through its control socket (the read-only ``status``
  query, :data:`~kasmm.daemon.control_socket.STATUS_QUERY`): a profile shown ``halted`` there
  counts too (it may have tripped a moment ago). No socket answering means no supervisor runs:
  the ledger alone decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kasmm.daemon.control_socket import (
    STATUS_QUERY,
    ControlSocketError,
    send_request,
    socket_candidates,
)
from kasmm.store import Ledger

__all__ = ["HALTED_STATES", "halted_profiles", "supervisor_states"]

#: Profile states (``/status``) that hold every sweep of the profile's account.
HALTED_STATES = frozenset({"halted"})
#: A status document is local and small: a supervisor that does not answer in this time is
#: treated as absent (its ledger halts still count).
STATUS_TIMEOUT_S = 5.0


def supervisor_states(state_dir: Path) -> dict[str, str]:
    """Profile name -> state, from every supervisor answering on ``state_dir``'s sockets."""
    states: dict[str, str] = {}
    for path in socket_candidates(state_dir, None):
        try:
            answer = send_request(path, {"action": STATUS_QUERY}, timeout=STATUS_TIMEOUT_S)
        except ControlSocketError:
            continue  # a socket a crashed supervisor left behind
        status = answer.get("status") if answer.get("ok") is True else None
        rows = status.get("profiles") if isinstance(status, dict) else None
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and isinstance(row.get("name"), str):
                states[row["name"]] = str(row.get("state"))
    return states


def halted_profiles(ledger: Ledger, state_dir: Path, names: Iterable[str]) -> tuple[str, ...]:
    """Those of ``names`` halted in the ledger or shown halted by a running supervisor."""
    wanted = sorted(set(names))
    live = supervisor_states(state_dir)
    return tuple(
        n for n in wanted if ledger.active_halt(n) is not None or live.get(n) in HALTED_STATES
    )
