"""What the supervisor and ``kasmm status`` show of settlements, read in one ledger snapshot.

The settlement rows are written by whichever process settles (``kasmm settle``, the
supervisor's schedule); the readers here only look. One :func:`read_overview` call gives the
open sweeps, the last few finished ones of each account, the sweeps changed since a wall time
(what a watcher has not seen yet) with the steps of theirs an operator resolved, how many sweeps
of each account and asset entered each state (from the trail, so the counts only ever grow,
whichever process wrote them and however often the reader restarts) and the time of each
account's last confirmed sweep per asset.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field

from kasmm.store.ledger import Ledger
from kasmm.store.settlement_resolve import ResolvedStep, resolved_steps
from kasmm.store.settlements import OPEN_STATES, SweepRecord, sweeps
from kasmm.store.settlements import _record as decode_sweep  # the table's one row decoder

__all__ = ["FINALS_PER_ACCOUNT", "SettlementOverview", "overview_from", "read_overview"]

#: Finished (confirmed or failed) sweeps kept per account for status.
FINALS_PER_ACCOUNT = 5

_SWEEP_COLUMNS = (
    "sweep_key, account, exchange, asset, amount, fee, address, network, client_id, state, "
    "withdrawal_id, txid, confirmations, reason, derivation, requested_ts, updated_ts"
)


@dataclass(frozen=True, slots=True)
class SettlementOverview:
    """Settlements as the ledger holds them at one instant."""

    #: sweeps still on their way (requested, accepted, sent), oldest first
    open: tuple[SweepRecord, ...] = ()
    #: per account its last finished sweeps, newest first
    recent: tuple[SweepRecord, ...] = ()
    #: sweeps whose row changed at or after the ``since`` asked for, oldest change first
    changed: tuple[SweepRecord, ...] = ()
    #: ``(account, asset, state)`` -> sweeps that entered ``state`` (a monotonic count)
    reached: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    #: ``(account, asset)`` -> wall time of the last confirmation
    last_confirmed: Mapping[tuple[str, str], float] = field(default_factory=dict)
    #: ``(sweep key, state)`` -> the operator's resolution that moved a sweep of ``changed``
    #: into ``state`` (``kasmm settle --resolve``)
    resolved: Mapping[tuple[str, str], ResolvedStep] = field(default_factory=dict)

    def accounts(self) -> list[str]:
        """Every account with a sweep in this overview, sorted."""
        names = {r.account for r in (*self.open, *self.recent)}
        names.update(account for account, _asset, _state in self.reached)
        return sorted(names)


def overview_from(
    conn: sqlite3.Connection, *, since: float | None, finals: int = FINALS_PER_ACCOUNT
) -> SettlementOverview:
    """The overview, inside the caller's (read) transaction.

    :param since: wall time; sweeps updated at or after it fill ``changed`` (``None``: none).
    :param finals: finished sweeps kept per account in ``recent``.
    """
    open_ = tuple(sweeps(conn, states=OPEN_STATES))
    recent_rows = conn.execute(
        f"SELECT {_SWEEP_COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY account "
        "ORDER BY updated_ts DESC, sweep_key) AS n FROM settlements "
        "WHERE state IN ('confirmed', 'failed')) WHERE n <= ? ORDER BY account, updated_ts DESC",
        (finals,),
    ).fetchall()
    changed: tuple[SweepRecord, ...] = ()
    resolved: dict[tuple[str, str], ResolvedStep] = {}
    if since is not None:
        resolved = resolved_steps(conn, since)
        changed = tuple(
            decode_sweep(row)
            for row in conn.execute(
                f"SELECT {_SWEEP_COLUMNS} FROM settlements WHERE updated_ts >= ? "
                "ORDER BY updated_ts, sweep_key",
                (since,),
            ).fetchall()
        )
    reached = {
        (account, asset, state): count
        for account, asset, state, count in conn.execute(
            "SELECT s.account, s.asset, st.state, COUNT(DISTINCT st.sweep_key) "
            "FROM settlement_steps st JOIN settlements s ON s.sweep_key = st.sweep_key "
            "GROUP BY s.account, s.asset, st.state"
        ).fetchall()
    }
    last_confirmed = {
        (account, asset): ts
        for account, asset, ts in conn.execute(
            "SELECT account, asset, MAX(updated_ts) FROM settlements WHERE state = 'confirmed' "
            "GROUP BY account, asset"
        ).fetchall()
    }
    return SettlementOverview(
        open=open_,
        recent=tuple(decode_sweep(row) for row in recent_rows),
        changed=changed,
        reached=reached,
        last_confirmed=last_confirmed,
        resolved=resolved,
    )


def read_overview(
    ledger: Ledger, *, since: float | None = None, finals: int = FINALS_PER_ACCOUNT
) -> SettlementOverview:
    """:func:`overview_from` in one read snapshot of ``ledger`` (blocking: run it in a thread
    from async code, e.g. through :meth:`kasmm.store.AsyncLedger.settlement_overview`)."""
    with ledger.snapshot() as conn:
        return overview_from(conn, since=since, finals=finals)
