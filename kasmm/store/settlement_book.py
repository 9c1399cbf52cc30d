"""The settlement rows of the shared ledger, each call its own transaction.

``kasmm settle``, the supervisor's scheduled settlement and every bot of a settled account
use the one ledger file (``state/kasmm.sqlite``), so a sweep recorded by one process is seen by
the others: a running bot learns of a sweep of its account from here, whoever executed it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from kasmm.store import settlements as rows
from kasmm.store.ledger import Ledger
from kasmm.store.settlement_resolve import Resolution, Resolved, resolve
from kasmm.store.settlements import (
    BookedTransfer,
    SweepRecord,
    SweepState,
    SweepStep,
    TransferDirection,
)

__all__ = ["SettlementBook"]


class SettlementBook:
    """Settlement reads and writes on ``ledger`` (see :mod:`kasmm.store.settlements`)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def record_requested(self, record: SweepRecord) -> bool:
        """Store a sweep before its request goes out; ``False`` if its key is stored already."""
        with self._ledger.transaction() as conn:
            return rows.insert_requested(conn, record)

    def record_requested_alone(self, record: SweepRecord) -> SweepRecord | None:
        """Store a sweep before its request goes out, unless its account has an open sweep of
        the asset: ``None`` when stored, else that open sweep (see
        :func:`~kasmm.store.settlements.insert_requested_alone`)."""
        with self._ledger.transaction() as conn:
            return rows.insert_requested_alone(conn, record)

    def advance(
        self,
        key: str,
        state: SweepState,
        ts: float,
        *,
        withdrawal_id: str | None = None,
        txid: str | None = None,
        confirmations: int | None = None,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> SweepRecord:
        """Move a sweep on (see :func:`~kasmm.store.settlements.advance`)."""
        with self._ledger.transaction() as conn:
            return rows.advance(
                conn,
                key,
                state,
                ts,
                withdrawal_id=withdrawal_id,
                txid=txid,
                confirmations=confirmations,
                reason=reason,
                detail=detail,
            )

    def resolve(self, resolution: Resolution, ts: float) -> Resolved:
        """Write an operator's resolution of an open sweep, with its operator action, in one
        transaction (see :mod:`~kasmm.store.settlement_resolve`).

        :raises ResolveRefused: not allowed (unknown or closed sweep, ...); nothing written.
        """
        with self._ledger.transaction() as conn:
            return resolve(conn, resolution, ts)

    def sweep(self, key: str) -> SweepRecord | None:
        """The sweep with idempotency key ``key``."""
        with self._ledger.snapshot() as conn:
            return rows.sweep(conn, key)

    def sweeps(
        self,
        account: str | None = None,
        *,
        states: Iterable[SweepState] | None = None,
        since: float | None = None,
    ) -> list[SweepRecord]:
        """Sweeps, oldest first (see :func:`~kasmm.store.settlements.sweeps`)."""
        with self._ledger.snapshot() as conn:
            return rows.sweeps(conn, account, states=states, since=since)

    def steps(self, key: str) -> list[SweepStep]:
        """The trail of sweep ``key``."""
        with self._ledger.snapshot() as conn:
            return rows.steps_of(conn, key)

    def swept_since(self, account: str, asset: str, since: float) -> Decimal:
        """What ``account`` swept of ``asset`` (not failed) since wall time ``since``."""
        with self._ledger.snapshot() as conn:
            return rows.swept_since(conn, account, asset, since)

    def book_transfer(
        self,
        profile: str,
        key: str,
        direction: TransferDirection,
        asset: str,
        amount: Decimal,
        mark: Decimal,
        ts: float,
        value: Decimal | None = None,
    ) -> bool:
        """Record ``profile``'s booking of sweep ``key`` (``False``: booked already); with
        ``value``, lower its stored equity peak by it (see
        :func:`~kasmm.store.settlements.book_transfer`)."""
        with self._ledger.transaction() as conn:
            return rows.book_transfer(conn, profile, key, direction, asset, amount, mark, ts, value)

    def opened_at(self, profile: str) -> float | None:
        """Wall time ``profile``'s accounting opened (``None``: not yet)."""
        with self._ledger.snapshot() as conn:
            row = conn.execute("SELECT ts FROM openings WHERE profile = ?", (profile,)).fetchone()
        return None if row is None else float(row[0])

    def booked_transfers(self, profile: str) -> list[BookedTransfer]:
        """Every transfer ``profile`` booked, oldest first."""
        with self._ledger.snapshot() as conn:
            return rows.booked_transfers(conn, profile)
