"""The ``settlements`` part of ``/status`` (and of ``kasmm status`` with no supervisor running):
per account its open sweeps, its last finished ones and, in a supervisor, its schedule.

Plain JSON-ready values built from a :class:`~kasmm.store.settlement_view.SettlementOverview`:
amounts are exact strings, times Unix seconds, ages seconds. Stdlib and the store only, so
``kasmm status`` builds it straight from the ledger without loading the supervisor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kasmm.alerts.redact import redact
from kasmm.store.settlement_view import SettlementOverview
from kasmm.store.settlements import SweepRecord

__all__ = ["AccountSchedule", "settlement_status", "sweep_row"]

#: An account's schedule as the supervisor reports it: ``cron``, ``timezone``, ``next_run``
#: (Unix seconds) and ``running`` (a run is going on now).
AccountSchedule = Mapping[str, Any]


def sweep_row(r: SweepRecord, wall: float) -> dict[str, Any]:
    """One sweep: what ``kasmm status`` and ``kasmm top`` show of it."""
    return {
        "key": r.key,
        "exchange": r.exchange,
        "asset": r.asset,
        "amount": str(r.amount),
        "fee": str(r.fee),
        "state": r.state,
        "address": r.address,
        "age_s": round(max(0.0, wall - r.requested_ts), 1),
        "requested_ts": r.requested_ts,
        "updated_ts": r.updated_ts,
        "withdrawal_id": r.withdrawal_id,
        "txid": r.txid,
        "confirmations": r.confirmations,
        # The executor stores its own refusal codes, but a reason is exchange text at heart:
        # what the redactor knows (the withdrawal keys, in a supervisor) never shows.
        "reason": None if r.reason is None else redact(r.reason),
    }


def settlement_status(
    overview: SettlementOverview | None,
    wall: float,
    schedules: Mapping[str, AccountSchedule] | None = None,
) -> dict[str, dict[str, Any]]:
    """Account -> ``{open, recent, schedule}`` for every account with a sweep or a schedule.

    ``overview`` ``None`` (not read yet) gives the schedules only.
    """
    scheds = dict(schedules or {})
    names = set(scheds)
    if overview is not None:
        names.update(overview.accounts())
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(names):
        open_ = [] if overview is None else [r for r in overview.open if r.account == name]
        recent = [] if overview is None else [r for r in overview.recent if r.account == name]
        out[name] = {
            "open": [sweep_row(r, wall) for r in open_],
            "recent": [sweep_row(r, wall) for r in recent],
            "schedule": scheds.get(name),
        }
    return out
