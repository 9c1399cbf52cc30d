"""The supervisor's eye on settlements: what the ledger says, what changed, who is told.

Any process may settle (``kasmm settle --execute`` from a shell, the supervisor's own schedule),
and every one records each step in the shared ledger, so the ledger is what is watched:
:class:`SettlementWatch` reads it every ``poll_s`` (on the monotonic clock: ``anyio.sleep``) in
one snapshot (:func:`~kasmm.store.settlement_view.read_overview`), keeps that overview for
``/status`` and ``/metrics`` (which then read memory, never the disk), and turns each change of
a sweep into a log line and a notification.

What it has announced is remembered per sweep (its state, and whether its lookup was reported
pending). The first read only learns: a restart does not announce old sweeps again, only what
changes after it. The pure part, :func:`sweep_changes`, takes that memory and the changed rows
and returns the new memory and the announcements, so every rule is tested as plain data.

An *unknown outcome* is a sweep still ``requested`` without a withdrawal id ``pending_after_s``
after its request: the request's answer was lost, and the executor looks it up (never resends).
It is announced once, as ``settlement_pending``.

A step an operator wrote (``kasmm settle --resolve``: the overview's ``resolved``) is announced
as ``settlement_resolved`` instead of the state's own event, saying who and why, once like any
other change of state.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import anyio
import structlog

from kasmm.alerts import settlement_events as events
from kasmm.alerts.events import Alert
from kasmm.alerts.redact import redact
from kasmm.store.settlement_resolve import ResolvedStep
from kasmm.store.settlement_view import SettlementOverview
from kasmm.store.settlements import SweepRecord, SweepState

log = structlog.get_logger("kasmm.settlement")

__all__ = ["Announcement", "Known", "SettlementWatch", "sweep_changes"]

#: How long a sweep may stay ``requested`` without a withdrawal id before it is reported as
#: pending a lookup (the exchange normally answers a withdraw within seconds).
PENDING_AFTER_S = 120.0
#: A change is looked for this far before the previous read: a writer stamps its row before it
#: commits, so a row may become visible with a time slightly older than the last read.
_OVERLAP_S = 120.0


@dataclass(frozen=True, slots=True)
class Known:
    """What was announced of one sweep."""

    state: SweepState
    pending_told: bool = False


@dataclass(frozen=True, slots=True)
class Announcement:
    """One change to log and notify."""

    event: str
    record: SweepRecord
    alert: Alert | None
    #: the operator's step when the change is a resolution
    resolved: ResolvedStep | None = None


def sweep_changes(
    known: Mapping[str, Known],
    rows: tuple[SweepRecord, ...],
    wall: float,
    pending_after_s: float,
    resolved: Mapping[tuple[str, str], ResolvedStep] | None = None,
) -> tuple[dict[str, Known], list[Announcement]]:
    """The announcements for ``rows`` (sweeps read now) against what was ``known``, and the
    new memory.

    A sweep not known yet is announced as requested first (whatever state it is in by now), then
    as confirmed or failed if it already is; a known one only on a change of state. A
    confirmation or failure is final: announced once. A change into a state an operator
    resolved (``resolved``: ``(key, state)`` -> their step) is announced as
    ``settlement_resolved``.
    """
    by_operator = resolved or {}
    memory = dict(known)
    out: list[Announcement] = []
    for r in rows:
        before = memory.get(r.key)
        if before is None:
            out.append(Announcement("settlement_requested", r, events.sweep_requested(r)))
            before = Known("requested")
        told = before.pending_told
        step = by_operator.get((r.key, r.state))
        if r.state != before.state and step is not None:
            out.append(Announcement("settlement_resolved", r, events.sweep_resolved(r, step), step))
        elif r.state != before.state:
            if r.state == "confirmed":
                out.append(Announcement("settlement_confirmed", r, events.sweep_confirmed(r)))
            elif r.state == "failed":
                out.append(Announcement("settlement_failed", r, events.sweep_failed(r)))
            elif r.state in ("accepted", "sent"):
                out.append(Announcement(f"settlement_{r.state}", r, None))
        age = wall - r.requested_ts
        lost = r.state == "requested" and r.withdrawal_id is None
        if lost and not told and age >= pending_after_s:
            out.append(Announcement("settlement_pending", r, events.sweep_pending(r, age)))
            told = True
        memory[r.key] = Known(r.state, told)
    return memory, out


@dataclass(eq=False)
class SettlementWatch:
    """Reads the ledger's settlements every ``poll_s`` and publishes what changed.

    :param read: the ledger read (``AsyncLedger.settlement_overview``); ``since`` is a wall time.
    :param publish: where alerts go (the supervisor's notifier's ``publish``).
    """

    read: Callable[[float | None], Awaitable[SettlementOverview]]
    publish: Callable[[Alert], None]
    wall_clock: Callable[[], float] = time.time
    poll_s: float = 5.0
    pending_after_s: float = PENDING_AFTER_S
    #: The last overview read (``/status`` and ``/metrics`` show it); ``None`` before the first.
    overview: SettlementOverview | None = None
    known: dict[str, Known] = field(default_factory=dict)
    _last_read: float | None = None

    async def poll(self) -> list[Announcement]:
        """One read: remember the overview, announce what changed since the previous read."""
        wall = self.wall_clock()
        last = self._last_read
        first = last is None
        result = await self.read(None if last is None else last - _OVERLAP_S)
        self.overview = result
        self._last_read = wall
        if first:
            # Learn, announce nothing: a restart must not repeat old sweeps. Open ones are
            # remembered as they are now, pending lookups as already told.
            for r in (*result.open, *result.recent):
                self.known[r.key] = Known(r.state, pending_told=True)
            return []
        rows = _unique((*result.changed, *result.open))
        self.known, out = sweep_changes(
            self.known, rows, wall, self.pending_after_s, result.resolved
        )
        for a in out:
            _log(a)
            if a.alert is not None:
                self.publish(a.alert)
        self._forget_final(result)
        return out

    async def run(self) -> None:
        """Poll until cancelled; a failed read is logged and retried at the next poll."""
        while True:
            try:
                await self.poll()
            except Exception as exc:
                log.warning("settlement_watch_failed", error=redact(f"{type(exc).__name__}: {exc}"))
            await anyio.sleep(self.poll_s)

    def _forget_final(self, overview: SettlementOverview) -> None:
        """Keep the memory bounded: finished sweeps no longer in the overview are forgotten
        (a finished sweep never changes again, so it is never announced twice)."""
        if len(self.known) < 2048:
            return
        keep = {r.key for r in (*overview.open, *overview.recent, *overview.changed)}
        self.known = {k: v for k, v in self.known.items() if k in keep}


def _unique(rows: tuple[SweepRecord, ...]) -> tuple[SweepRecord, ...]:
    seen: dict[str, SweepRecord] = {}
    for r in rows:
        seen[r.key] = r
    return tuple(seen.values())


def _log(a: Announcement) -> None:
    """One line per change seen (the executor logs its own steps, in the process that acts;
    these are the supervisor's, whoever acted)."""
    r = a.record
    fields = {
        "account": r.account,
        "exchange": r.exchange,
        "asset": r.asset,
        "amount": str(r.amount),
        "sweep_key": r.key,
        "state": r.state,
        "txid": r.txid,
        "confirmations": r.confirmations,
    }
    if a.event == "settlement_pending":
        log.warning("settlement_lookup_overdue", **fields)
    elif a.resolved is not None:
        log.warning(
            "settlement_seen",
            resolved_by=a.resolved.by,
            resolution=redact(a.resolved.reason),
            withdrawal_id=r.withdrawal_id,
            **fields,
        )
    elif r.state == "failed":
        log.warning("settlement_seen", reason=redact(r.reason or ""), **fields)
    else:
        log.info("settlement_seen", withdrawal_id=r.withdrawal_id, **fields)
