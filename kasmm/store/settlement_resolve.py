"""An operator's resolution of a sweep that cannot finish on its own: the rules, and the write.

A sweep can stay open for good, and while open it holds every new sweep of its asset:

* ``sent``, but the node never shows the payment deep enough (the operator spent it from the
  wallet before the confirmations, so the node's UTXO index no longer lists it; or the node
  never saw it);
* ``requested``, but the exchange's list cannot tell which withdrawal is its (KuCoin keeps no
  client id: two unclaimed withdrawals of the same amount match), or cannot answer at all.

The operator then states what happened (``kasmm settle --resolve KEY --as ...``), and the
statement is recorded like any other step, so the trail says who decided, when and why:

* ``confirmed``: the payment arrived; it needs the transaction id (the sweep's own, or one the
  operator gives when the sweep has none). A given id must be a Kaspa transaction id and must
  agree with the sweep's.
* ``failed``: nothing left the account, or it came back. The day's limit stops counting the
  sweep, and a running bot that booked it as gone books it back (it expects the balance to
  return): stating it for money that did leave makes the books wrong, which is why it is the
  operator's word, recorded with a reason.
* ``accepted`` (from ``requested`` only): the operator found the withdrawal in the exchange's
  own interface and gives its id; normal tracking (by that id) continues from there.

Only an open sweep can be resolved, a withdrawal id another sweep of the account claims is
refused, and every resolution needs a reason. :func:`check_resolution` is the rules as a pure
function of the stored record; :func:`resolve` reads the record, checks and writes the step and
the operator action in the caller's one write transaction (no other writer can slip between
the check and the write).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, get_args

from kasmm.store.settlements import SettlementStateError, SweepRecord, advance, sweep

__all__ = [
    "OPERATOR_ACTION",
    "RESOLVE_AS",
    "Resolution",
    "ResolveAs",
    "ResolveRefused",
    "Resolved",
    "ResolvedStep",
    "check_resolution",
    "resolve",
    "resolved_reason",
    "resolved_steps",
]

ResolveAs = Literal["accepted", "confirmed", "failed"]
RESOLVE_AS: Final[tuple[ResolveAs, ...]] = get_args(ResolveAs)
#: The ``operator_actions.action`` of a resolution.
OPERATOR_ACTION: Final = "settle_resolve"
#: A Kaspa transaction id: 32 bytes, hex.
_TXID: Final = re.compile(r"[0-9a-f]{64}")
#: Longest reason kept (it is shown in status and notifications).
_MAX_REASON: Final = 500


class ResolveRefused(SettlementStateError):
    """The resolution is not allowed (the message says why; nothing was written)."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """What the operator states about sweep ``key``."""

    key: str
    to: ResolveAs
    #: why: the operator's own words (required)
    reason: str
    #: who (the login name)
    by: str
    txid: str | None = None
    withdrawal_id: str | None = None


@dataclass(frozen=True, slots=True)
class Resolved:
    """A resolution written: the sweep before and after it."""

    before: SweepRecord
    after: SweepRecord
    resolution: Resolution


@dataclass(frozen=True, slots=True)
class ResolvedStep:
    """A trail step an operator wrote (what the supervisor's watch announces as such)."""

    by: str
    reason: str


def resolved_reason(resolution: Resolution) -> str:
    """The text stored as a failed sweep's ``reason``: who resolved it, and why."""
    return f"resolved by {resolution.by}: {resolution.reason}"


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def check_resolution(
    record: SweepRecord | None, resolution: Resolution, claimed: Mapping[str, str]
) -> Resolution:
    """The resolution as it will be written (the sweep's txid and withdrawal id filled in), or
    why not.

    :param claimed: withdrawal id -> key of the account's *other* sweeps holding it.
    :raises ResolveRefused: the message names the sweep and the reason.
    """
    key = resolution.key
    reason = _clean(resolution.reason)
    if reason is None:
        raise ResolveRefused("a resolution needs a reason (--reason TEXT): it goes to the trail")
    by = _clean(resolution.by)
    if by is None:
        raise ResolveRefused("a resolution needs the operator's name")
    if resolution.to not in RESOLVE_AS:
        raise ResolveRefused(f"a sweep is resolved as one of {', '.join(RESOLVE_AS)}")
    if record is None:
        raise ResolveRefused(f"no sweep {key!r} in the ledger")
    if not record.is_open:
        raise ResolveRefused(
            f"sweep {key!r} is {record.state} already: only an open sweep "
            "(requested, accepted, sent) can be resolved"
        )
    withdrawal_id = _clean(resolution.withdrawal_id)
    if withdrawal_id is not None:
        if record.withdrawal_id is not None and record.withdrawal_id != withdrawal_id:
            raise ResolveRefused(
                f"sweep {key!r} has withdrawal id {record.withdrawal_id!r}, not {withdrawal_id!r}"
            )
        other = claimed.get(withdrawal_id)
        if other is not None and other != key:
            raise ResolveRefused(f"withdrawal id {withdrawal_id!r} belongs to sweep {other!r}")
    txid = _clean(resolution.txid)
    if txid is not None:
        if resolution.to != "confirmed":
            raise ResolveRefused("a transaction id (--txid) goes with --as confirmed only")
        txid = txid.lower()
        if not _TXID.fullmatch(txid):
            raise ResolveRefused(f"{txid!r} is not a Kaspa transaction id (64 hexadecimal digits)")
        if record.txid is not None and record.txid.lower() != txid:
            raise ResolveRefused(f"sweep {key!r} was sent in transaction {record.txid}, not {txid}")
    if resolution.to == "accepted":
        if record.state != "requested":
            raise ResolveRefused(
                f"sweep {key!r} is {record.state}: only a requested sweep moves to accepted"
            )
        withdrawal_id = withdrawal_id or record.withdrawal_id
        if withdrawal_id is None:
            raise ResolveRefused(
                "--as accepted needs the exchange's withdrawal id (--withdrawal-id ID)"
            )
    elif resolution.to == "confirmed":
        txid = txid or record.txid
        if txid is None:
            raise ResolveRefused(
                f"sweep {key!r} has no transaction id: --as confirmed needs --txid TXID "
                "(the payment's, from the wallet or an explorer)"
            )
    return replace(
        resolution, reason=reason[:_MAX_REASON], by=by, txid=txid, withdrawal_id=withdrawal_id
    )


def _claimed(conn: sqlite3.Connection, record: SweepRecord) -> dict[str, str]:
    rows = conn.execute(
        "SELECT withdrawal_id, sweep_key FROM settlements "
        "WHERE account = ? AND withdrawal_id IS NOT NULL AND sweep_key != ?",
        (record.account, record.key),
    ).fetchall()
    return {wid: key for wid, key in rows}


def resolve(conn: sqlite3.Connection, resolution: Resolution, ts: float) -> Resolved:
    """Check ``resolution`` against the stored sweep and write it, inside the caller's write
    transaction: the step (detail ``{"by", "reason", "resolved": true, "from"}``) and one
    ``operator_actions`` row.

    :raises ResolveRefused: see :func:`check_resolution` (nothing written).
    """
    record = sweep(conn, resolution.key)
    claimed = {} if record is None else _claimed(conn, record)
    final = check_resolution(record, resolution, claimed)
    assert record is not None  # check_resolution refuses an unknown key
    detail: dict[str, Any] = {
        "by": final.by,
        "reason": final.reason,
        "resolved": True,
        "from": record.state,
    }
    after = advance(
        conn,
        final.key,
        final.to,
        ts,
        withdrawal_id=final.withdrawal_id,
        txid=final.txid,
        reason=resolved_reason(final) if final.to == "failed" else None,
        detail=detail,
    )
    action = {
        "sweep_key": final.key,
        "account": record.account,
        "asset": record.asset,
        "amount": str(record.amount),
        "from": record.state,
        "to": final.to,
        "reason": final.reason,
        "txid": final.txid,
        "withdrawal_id": final.withdrawal_id,
    }
    conn.execute(
        "INSERT INTO operator_actions (ts, operator, action, profile, details) "
        "VALUES (?, ?, ?, NULL, ?)",
        (ts, final.by, OPERATOR_ACTION, json.dumps(action, sort_keys=True)),
    )
    return Resolved(record, after, final)


def resolved_steps(conn: sqlite3.Connection, since: float) -> dict[tuple[str, str], ResolvedStep]:
    """``(sweep key, state)`` -> the operator's step, for sweeps updated at or after ``since``
    (what a watcher announces as a resolution, not as the executor's own progress)."""
    rows = conn.execute(
        "SELECT st.sweep_key, st.state, st.detail FROM settlement_steps st "
        "JOIN settlements s ON s.sweep_key = st.sweep_key "
        "WHERE s.updated_ts >= ? AND json_extract(st.detail, '$.resolved') = 1",
        (since,),
    ).fetchall()
    out: dict[tuple[str, str], ResolvedStep] = {}
    for key, state, text in rows:
        detail = json.loads(text)
        out[(key, state)] = ResolvedStep(str(detail.get("by", "?")), str(detail.get("reason", "")))
    return out
