"""Settlements in the ledger: each sweep's row, its trail of steps, and its booking per profile.

A sweep is written *before* its withdrawal is requested (state ``requested``), under an
idempotency key chosen by the caller: whatever happens next (the answer lost, the process
killed), the row says a request may have gone out, so a resumed settlement looks the
withdrawal up instead of sending a second one. Each change of state appends a step to
``settlement_steps`` (the trail ``kasmm settle`` and ``status`` show) in the same transaction.

The states move forward only: ``requested`` -> ``accepted`` (the exchange's withdrawal id) ->
``sent`` (the transaction id on chain) -> ``confirmed`` (enough confirmations at the node);
``failed`` may end any open state. A step may skip ahead (a resumed sweep found already sent).

The functions take a connection and run inside the caller's transaction (a write one for the
writers); :class:`~kasmm.store.settlement_book.SettlementBook` runs each in its own on the
shared ledger.

``transfers`` records, per profile of the account, that the profile booked a sweep as a
transfer (``out``: the base left; ``back``: a failed withdrawal returned it), so a restart
neither books it twice nor forgets it. Money is exact text (:mod:`kasmm.store.records`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from kasmm.store.records import decode_decimal, encode_decimal

__all__ = [
    "OPEN_STATES",
    "BookedTransfer",
    "SettlementStateError",
    "SweepRecord",
    "SweepState",
    "SweepStep",
    "TransferDirection",
    "advance",
    "book_transfer",
    "booked_transfers",
    "insert_requested",
    "insert_requested_alone",
    "steps_of",
    "sweep",
    "sweeps",
    "swept_since",
]

SweepState = Literal["requested", "accepted", "sent", "confirmed", "failed"]
TransferDirection = Literal["out", "back"]

#: States in which the withdrawal may still be on its way (the sweep is pending).
OPEN_STATES: frozenset[SweepState] = frozenset({"requested", "accepted", "sent"})
_RANK: dict[SweepState, int] = {"requested": 0, "accepted": 1, "sent": 2, "confirmed": 3}

_COLUMNS = (
    "sweep_key, account, exchange, asset, amount, fee, address, network, client_id, state, "
    "withdrawal_id, txid, confirmations, reason, derivation, requested_ts, updated_ts"
)


class SettlementStateError(ValueError):
    """A state change the sweep's state machine does not allow, or an unknown sweep."""


@dataclass(frozen=True, slots=True)
class SweepRecord:
    """One sweep as the ledger holds it."""

    key: str
    account: str
    exchange: str
    asset: str
    amount: Decimal
    #: the exchange's withdrawal fee expected when requested
    fee: Decimal
    address: str
    network: str
    #: the client id sent with the request (``None`` where the exchange takes none)
    client_id: str | None
    state: SweepState
    withdrawal_id: str | None = None
    txid: str | None = None
    confirmations: int = 0
    #: why it failed (``failed`` only)
    reason: str | None = None
    #: the receive index derived from the destination's xpub (``None``: a fixed address)
    derivation: int | None = None
    #: wall-clock time the sweep was requested, and last changed
    requested_ts: float = 0.0
    updated_ts: float = 0.0

    @property
    def is_open(self) -> bool:
        """The withdrawal may still be on its way (neither confirmed nor failed)."""
        return self.state in OPEN_STATES


@dataclass(frozen=True, slots=True)
class SweepStep:
    """One entry of a sweep's trail."""

    seq: int
    state: SweepState
    ts: float
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BookedTransfer:
    """A profile's booking of a sweep: ``amount`` of ``asset`` moved at ``mark``."""

    key: str
    direction: TransferDirection
    asset: str
    amount: Decimal
    mark: Decimal
    ts: float


def _record(row: tuple[Any, ...]) -> SweepRecord:
    return SweepRecord(
        key=row[0],
        account=row[1],
        exchange=row[2],
        asset=row[3],
        amount=decode_decimal(row[4]),
        fee=decode_decimal(row[5]),
        address=row[6],
        network=row[7],
        client_id=row[8],
        state=row[9],
        withdrawal_id=row[10],
        txid=row[11],
        confirmations=row[12],
        reason=row[13],
        derivation=row[14],
        requested_ts=row[15],
        updated_ts=row[16],
    )


def _step(conn: sqlite3.Connection, key: str, state: SweepState, ts: float, detail: Any) -> None:
    (seq,) = conn.execute(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM settlement_steps WHERE sweep_key = ?", (key,)
    ).fetchone()
    conn.execute(
        "INSERT INTO settlement_steps (sweep_key, seq, state, ts, detail) VALUES (?, ?, ?, ?, ?)",
        (key, seq, state, ts, json.dumps(dict(detail), sort_keys=True, default=str)),
    )


def insert_requested(conn: sqlite3.Connection, record: SweepRecord) -> bool:
    """Record a sweep about to be requested (its first step); ``False`` if its key exists.

    Commit it *before* the withdrawal request goes out.
    """
    if record.state != "requested":
        raise SettlementStateError(f"a new sweep starts as requested, not {record.state}")
    cur = conn.execute(
        f"INSERT OR IGNORE INTO settlements ({_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.key,
            record.account,
            record.exchange,
            record.asset,
            encode_decimal(record.amount),
            encode_decimal(record.fee),
            record.address,
            record.network,
            record.client_id,
            record.state,
            record.withdrawal_id,
            record.txid,
            record.confirmations,
            record.reason,
            record.derivation,
            record.requested_ts,
            record.updated_ts or record.requested_ts,
        ),
    )
    if cur.rowcount == 0:
        return False
    detail = {"amount": str(record.amount), "fee": str(record.fee), "to": record.address}
    _step(conn, record.key, "requested", record.requested_ts, detail)
    return True


def insert_requested_alone(conn: sqlite3.Connection, record: SweepRecord) -> SweepRecord | None:
    """Record a sweep about to be requested unless its account has an open sweep of its asset.

    The check and the insert run in the caller's one write transaction, so two processes
    settling one account at once cannot both start a sweep of one asset (nor hand out one
    receive index twice). Returns ``None`` when recorded, else the open sweep that stopped it
    (nothing written).

    :raises SettlementStateError: the key exists, or the receive index was used before.
    """
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM settlements WHERE account = ? AND asset = ? "
        "AND state IN ('requested', 'accepted', 'sent') ORDER BY requested_ts LIMIT 1",
        (record.account, record.asset),
    ).fetchone()
    if row is not None:
        return _record(row)
    if record.derivation is not None:
        used = conn.execute(
            "SELECT 1 FROM settlements WHERE account = ? AND derivation = ?",
            (record.account, record.derivation),
        ).fetchone()
        if used is not None:
            raise SettlementStateError(
                f"receive index {record.derivation} of {record.account!r} was used before"
            )
    if not insert_requested(conn, record):
        raise SettlementStateError(f"sweep {record.key!r} is in the ledger already")
    return None


def advance(
    conn: sqlite3.Connection,
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
    """Move sweep ``key`` to ``state`` (or update it within its state), appending a step when
    the state changes; return the new record. Fields left ``None`` keep their value.

    :raises SettlementStateError: unknown key, or a move backwards or out of a final state.
    """
    current = sweep(conn, key)
    if current is None:
        raise SettlementStateError(f"no sweep {key!r} in the ledger")
    if current.state != state:
        if not current.is_open:
            raise SettlementStateError(f"sweep {key!r} is {current.state}: final")
        if state != "failed" and _RANK[state] < _RANK[current.state]:
            raise SettlementStateError(
                f"sweep {key!r} cannot go back from {current.state} to {state}"
            )
    conn.execute(
        "UPDATE settlements SET state = ?, withdrawal_id = COALESCE(?, withdrawal_id), "
        "txid = COALESCE(?, txid), confirmations = COALESCE(?, confirmations), "
        "reason = COALESCE(?, reason), updated_ts = ? WHERE sweep_key = ?",
        (state, withdrawal_id, txid, confirmations, reason, ts, key),
    )
    if current.state != state:
        step: dict[str, Any] = dict(detail or {})
        for name, value in (
            ("withdrawal_id", withdrawal_id),
            ("txid", txid),
            ("confirmations", confirmations),
            ("reason", reason),
        ):
            if value is not None:
                step.setdefault(name, value)
        _step(conn, key, state, ts, step)
    updated = sweep(conn, key)
    assert updated is not None
    return updated


def sweep(conn: sqlite3.Connection, key: str) -> SweepRecord | None:
    """The sweep with idempotency key ``key``, or ``None``."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM settlements WHERE sweep_key = ?", (key,)).fetchone()
    return None if row is None else _record(row)


def sweeps(
    conn: sqlite3.Connection,
    account: str | None = None,
    *,
    states: Iterable[SweepState] | None = None,
    since: float | None = None,
) -> list[SweepRecord]:
    """Sweeps, oldest request first: of ``account`` (all when ``None``), in ``states``, and
    requested at or after wall time ``since``."""
    where: list[str] = []
    args: list[Any] = []
    if account is not None:
        where.append("account = ?")
        args.append(account)
    if states is not None:
        wanted = sorted(set(states))
        where.append(f"state IN ({', '.join('?' * len(wanted))})")
        args.extend(wanted)
    if since is not None:
        where.append("requested_ts >= ?")
        args.append(since)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM settlements{clause} ORDER BY requested_ts, sweep_key", args
    ).fetchall()
    return [_record(row) for row in rows]


def steps_of(conn: sqlite3.Connection, key: str) -> list[SweepStep]:
    """The trail of sweep ``key``, in order."""
    rows = conn.execute(
        "SELECT seq, state, ts, detail FROM settlement_steps WHERE sweep_key = ? ORDER BY seq",
        (key,),
    ).fetchall()
    return [SweepStep(seq, state, ts, json.loads(detail)) for seq, state, ts, detail in rows]


def swept_since(conn: sqlite3.Connection, account: str, asset: str, since: float) -> Decimal:
    """What was swept (requested and not failed) of ``asset`` since wall time ``since``: what
    a day's limit has already used."""
    rows = conn.execute(
        "SELECT amount FROM settlements WHERE account = ? AND asset = ? AND state != 'failed' "
        "AND requested_ts >= ?",
        (account, asset, since),
    ).fetchall()
    return sum((decode_decimal(amount) for (amount,) in rows), Decimal(0))


def book_transfer(
    conn: sqlite3.Connection,
    profile: str,
    key: str,
    direction: TransferDirection,
    asset: str,
    amount: Decimal,
    mark: Decimal,
    ts: float,
) -> bool:
    """Record that ``profile`` booked sweep ``key`` (``False``: it already had)."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO transfers (profile, sweep_key, direction, asset, amount, mark, ts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (profile, key, direction, asset, encode_decimal(amount), encode_decimal(mark), ts),
    )
    return cur.rowcount == 1


def booked_transfers(conn: sqlite3.Connection, profile: str) -> list[BookedTransfer]:
    """Every transfer ``profile`` booked, oldest first."""
    rows = conn.execute(
        "SELECT sweep_key, direction, asset, amount, mark, ts FROM transfers WHERE profile = ? "
        "ORDER BY ts, sweep_key, direction",
        (profile,),
    ).fetchall()
    return [
        BookedTransfer(key, direction, asset, decode_decimal(amount), decode_decimal(mark), ts)
        for key, direction, asset, amount, mark, ts in rows
    ]
